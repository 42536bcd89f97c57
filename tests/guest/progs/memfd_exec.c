/* Usage: memfd_exec FILE [ARG...]
 * Copies FILE into a memfd and runs it with fexecve().
 * Exits 1 with the error when fexecve fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	char buf[65536];
	ssize_t n;
	int in, fd;

	if (argc < 2) {
		fprintf(stderr, "usage: memfd_exec FILE [ARG...]\n");
		return 2;
	}
	in = open(argv[1], O_RDONLY);
	fd = memfd_create("portcullis-test", MFD_CLOEXEC);
	if (in < 0 || fd < 0) {
		fprintf(stderr, "open: %s\n", strerror(errno));
		return 2;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(fd, buf, n) != n) {
			fprintf(stderr, "write: %s\n", strerror(errno));
			return 2;
		}
	}
	fexecve(fd, argv + 1, environ);
	fprintf(stderr, "fexecve: %s\n", strerror(errno));
	return 1;
}
