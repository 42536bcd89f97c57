/* Usage: exec_bench COUNT PROGRAM
 * Runs PROGRAM (no arguments) COUNT times with fork and execv, and prints
 * the mean microseconds per run. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec start, end;
	long count, i;
	double us;

	if (argc != 3) {
		fprintf(stderr, "usage: exec_bench COUNT PROGRAM\n");
		return 2;
	}
	count = atol(argv[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (i = 0; i < count; i++) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			char *args[] = { argv[2], NULL };

			execv(argv[2], args);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "run %ld of %s failed\n", i, argv[2]);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	us = (end.tv_sec - start.tv_sec) * 1e6 + (end.tv_nsec - start.tv_nsec) / 1e3;
	printf("%.1f\n", us / count);
	return 0;
}
