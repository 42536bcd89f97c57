/* A small dynamically linked program that the guest tests approve, copy and
 * patch. The marker string gives the patch a harmless place to change. */
#include <stdio.h>

int main(void)
{
	puts("hello from the portcullis test program");
	return 0;
}
