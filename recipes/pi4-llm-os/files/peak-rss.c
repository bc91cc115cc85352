/* peak-rss.c - pi4-llm-os: run a command and report its peak resident set size.
 *
 *   peak-rss FILE COMMAND [ARG...]
 *
 * Runs COMMAND, then writes one line to FILE:  peak_rss_kb=<ru_maxrss of the child>
 * and exits with the command's status (128+N if it was killed by signal N; 127 if it could not
 * be run). The kernel's own high-water mark (VmHWM) as wait4() returns it, in kB.
 * (BusyBox 1.35's `time -f %M` multiplies that number by 4, taking kB for pages.)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: peak-rss FILE COMMAND [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "peak-rss: fork: %s\n", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "peak-rss: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "peak-rss: wait4: %s\n", strerror(errno));
			return 127;
		}
	}
	f = fopen(argv[1], "w");
	if (!f || fprintf(f, "peak_rss_kb=%ld\n", ru.ru_maxrss) < 0 || fclose(f) != 0) {
		fprintf(stderr, "peak-rss: cannot write %s\n", argv[1]);
		return 127;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
