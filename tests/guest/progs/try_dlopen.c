/* Usage: try_dlopen LIBRARY
 * Exits 0 when the library loads, 1 with dlerror() on standard error when not. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *handle;

	if (argc != 2) {
		fprintf(stderr, "usage: try_dlopen LIBRARY\n");
		return 2;
	}
	handle = dlopen(argv[1], RTLD_NOW);
	if (!handle) {
		fprintf(stderr, "dlopen failed: %s\n", dlerror());
		return 1;
	}
	printf("dlopen %s: loaded\n", argv[1]);
	return 0;
}
