/* A shared library for the dlopen tests. */
int portcullis_test_value(void)
{
	return 42;
}
