/* Usage: exec_bench COUNT PROGRAM [ARG...]
 * Runs PROGRAM with its arguments COUNT times with fork and execv, and
 * prints the mean microseconds per run. */
#include <fcntl.h>
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

	if (argc < 3) {
		fprintf(stderr, "usage: exec_bench COUNT PROGRAM [ARG...]\n");
		return 2;
	}
	count = atol(argv[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (i = 0; i < count; i++) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			int devnull = open("/dev/null", O_WRONLY);

			if (devnull >= 0)
				dup2(devnull, STDOUT_FILENO);
			execv(argv[2], argv + 2);
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
