/* Usage: try_mprotect FILE
 * Maps FILE private and readable, then calls mprotect to add PROT_EXEC.
 * Exits 0 when mprotect succeeds, 1 with its error when it fails. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	void *addr;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: try_mprotect FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	addr = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (addr == MAP_FAILED) {
		fprintf(stderr, "mmap %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (mprotect(addr, 4096, PROT_READ | PROT_EXEC) != 0) {
		fprintf(stderr, "mprotect %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("mprotect %s: allowed\n", argv[1]);
	return 0;
}
