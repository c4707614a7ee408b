// SPDX-License-Identifier: GPL-2.0
/*
 * tracee: the workload every recipe of Lab 8.4 traces. It starts, opens the
 * FIFO it is given (blocking until the harness opens the other end), reads
 * the number of calls N from it, makes exactly N calls of one system call
 * through syscall(2) (never cached or replaced by libc), prints how long the
 * loop took and exits. The recipe is attached while the tracee waits in
 * open(2): it traces a process it did not start, with a count it cannot know.
 * With a second FIFO (the spec's way), N is read from the first before the
 * recipe starts and the calls begin when the second is opened for writing:
 * N never passes through a system call the recipe could trace.
 * A harness program: the student never edits it.
 *
 * Build: gcc -O2 -Wall -static -o tracee tracee.c
 * Run:   ./tracee umask /tmp/fifo &  echo 5000 > /tmp/fifo
 *        ./tracee umask /tmp/fifo /tmp/go &  echo 5000 > /tmp/fifo; ...; echo > /tmp/go
 * Output: calls=5000 ns=<loop time in nanoseconds>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#define MAX_CALLS 10000000L

/* One call of the chosen system call; each leaves the process as it was. */
static long one_call(const char *name)
{
	struct rusage ru;
	struct itimerval it;
	struct tms t;

	if (!strcmp(name, "umask"))
		return syscall(SYS_umask, 022);
	if (!strcmp(name, "getpgid"))
		return syscall(SYS_getpgid, 0);
	if (!strcmp(name, "getsid"))
		return syscall(SYS_getsid, 0);
	if (!strcmp(name, "getpriority"))
		return syscall(SYS_getpriority, PRIO_PROCESS, 0);
	if (!strcmp(name, "sched_getscheduler"))
		return syscall(SYS_sched_getscheduler, 0);
	if (!strcmp(name, "getrusage"))
		return syscall(SYS_getrusage, RUSAGE_SELF, &ru);
	if (!strcmp(name, "times"))
		return syscall(SYS_times, &t);
	if (!strcmp(name, "getitimer"))
		return syscall(SYS_getitimer, ITIMER_REAL, &it);
	if (!strcmp(name, "dup")) {
		/* dup(2) is counted; the close(2) that follows is another system call. */
		long fd = syscall(SYS_dup, 2);
		if (fd >= 0)
			syscall(SYS_close, fd);
		return fd;
	}
	errno = ENOSYS;
	return -1;
}

static const char *const known[] = { "umask", "getpgid", "getsid", "getpriority", "sched_getscheduler",
	"getrusage", "times", "getitimer", "dup" };

int main(int argc, char **argv)
{
	struct timespec a, b;
	char line[32] = "";
	long n, i;
	ssize_t got;
	int fd, ok = 0;
	size_t k;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s <syscall> <fifo> [<go-fifo>]\n", argv[0]);
		return 2;
	}
	for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		ok |= !strcmp(argv[1], known[k]);
	if (!ok) {
		fprintf(stderr, "tracee: unknown system call %s\n", argv[1]);
		return 2;
	}
	/* Wait here (in open) until the harness has attached the tracer and writes N. */
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", argv[2], strerror(errno));
		return 1;
	}
	got = read(fd, line, sizeof(line) - 1);
	if (got <= 0) {
		fprintf(stderr, "read %s failed: %s\n", argv[2], got < 0 ? strerror(errno) : "end of file");
		return 1;
	}
	n = strtol(line, NULL, 10);
	if (n <= 0 || n > MAX_CALLS) {
		fprintf(stderr, "tracee: bad count %s\n", line);
		return 2;
	}
	close(fd);
	if (argc == 4) {
		/* N is in memory only; wait (in open) until the harness releases the calls. */
		fd = open(argv[3], O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "open %s failed: %s\n", argv[3], strerror(errno));
			return 1;
		}
		close(fd);
	}
	/* From here to the exit: exactly n calls of argv[1], and none before the first. */
	clock_gettime(CLOCK_MONOTONIC, &a); /* the vDSO: no system call */
	for (i = 0; i < n; i++)
		if (one_call(argv[1]) < 0 && strcmp(argv[1], "getpriority")) {
			fprintf(stderr, "%s failed: %s\n", argv[1], strerror(errno));
			return 1;
		}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("calls=%ld ns=%lld\n", n, (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	return 0;
}
