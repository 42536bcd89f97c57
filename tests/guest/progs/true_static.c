/* A static program that does nothing, the smallest exec for benchmarks. */
int main(void)
{
	return 0;
}
