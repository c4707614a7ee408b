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
 * The FIFO's line may go on with a shape: "N <linger-ms> [<pause-ms>...]":
 * the N calls are then made in as many bursts as there are pauses plus one,
 * a pause between two bursts, and the tracee stays alive <linger-ms> after
 * its last call before it exits. Pauses and linger are alike: busy on the
 * CPU, reading the clock through the vDSO, no system call, so nothing but
 * their length tells them apart. A recipe that ends when the calls stop
 * coming, instead of when the tracee exits, ends too early or too late.
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
#define MAX_PAUSES 4
#define MAX_SLEEP_MS 20000L

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

/* Stay busy for ms milliseconds without a system call (clock_gettime is the vDSO's). */
static void busy_ms(long ms)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000L + (b.tv_nsec - a.tv_nsec) / 1000000L < ms);
}

static const char *const known[] = { "umask", "getpgid", "getsid", "getpriority", "sched_getscheduler",
	"getrusage", "times", "getitimer", "dup" };

int main(int argc, char **argv)
{
	struct timespec a, b;
	char line[128] = "";
	char *p, *end;
	long n, i, linger = 0, pauses[MAX_PAUSES], npauses = 0, burst, done = 0;
	long long ns = 0;
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
	n = strtol(line, &end, 10);
	if (n <= 0 || n > MAX_CALLS) {
		fprintf(stderr, "tracee: bad count %s\n", line);
		return 2;
	}
	/* The optional shape: linger, then the pauses between bursts (milliseconds). */
	for (p = end, i = 0;; i++) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		if (v < 0 || v > MAX_SLEEP_MS || i > MAX_PAUSES) {
			fprintf(stderr, "tracee: bad shape %s\n", line);
			return 2;
		}
		if (i == 0)
			linger = v;
		else
			pauses[npauses++] = v;
		p = end;
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
	for (burst = 0; burst <= npauses; burst++) {
		long upto = n * (burst + 1) / (npauses + 1);

		if (burst > 0)
			busy_ms(pauses[burst - 1]);
		clock_gettime(CLOCK_MONOTONIC, &a); /* the vDSO: no system call */
		for (i = done; i < upto; i++)
			if (one_call(argv[1]) < 0 && strcmp(argv[1], "getpriority")) {
				fprintf(stderr, "%s failed: %s\n", argv[1], strerror(errno));
				return 1;
			}
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns += (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
		done = upto;
	}
	printf("calls=%ld ns=%lld\n", n, ns);
	fflush(stdout);
	busy_ms(linger);
	return 0;
}
