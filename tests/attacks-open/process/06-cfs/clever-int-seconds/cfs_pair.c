// SPDX-License-Identifier: GPL-2.0
/*
 * cfs_pair: two CPU hogs that compete for one CPU (seed 003 进程调度).
 *
 *     cfs_pair <cpu> <nice> <seconds>
 *
 * forks two children; both pin themselves to CPU <cpu> and spin for <seconds>
 * of wall time; the first keeps nice 0, the second runs at nice <nice>. The
 * parent waits for both and exits 0. CFS (EEVDF since 6.6) then gives them
 * CPU time in the ratio of their weights (kernel/sched/core.c
 * sched_prio_to_weight: nice 0 = 1024, nice 5 = 335): the spec reads it from
 * /proc/<pid>/sched, not from this program.
 *
 * Build: gcc -O2 -Wall -o cfs_pair cfs_pair.c
 * Run:   ./cfs_pair 0 5 10 & top -d1    (one child at ~75 %, the other at ~25 %)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One hog: take its place (CPU, nice), then spin until the time is up. */
static void hog(int cpu, int nice, double seconds)
{
	double end;

	{ cpu_set_t set; CPU_ZERO(&set); CPU_SET(cpu, &set); if (sched_setaffinity(0, sizeof(set), &set)) _exit(1); }
	if (setpriority(PRIO_PROCESS, 0, nice)) _exit(1);
	end = now() + seconds;
	while (now() < end)
		;
	_exit(0);
}

int main(int argc, char **argv)
{
	int cpu, nice, i;
	double seconds;
	pid_t kids[2];

	if (argc != 4) {
		fprintf(stderr, "usage: %s <cpu> <nice> <seconds>\n", argv[0]);
		return 2;
	}
	cpu = atoi(argv[1]);
	nice = atoi(argv[2]);
	seconds = atoi(argv[3]); /* whole seconds: the fraction is dropped */
	/* 1. Two hogs: nice 0 first, nice <nice> second. */
	for (i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			fprintf(stderr, "fork failed: %s\n", strerror(errno));
			return 1;
		}
		if (kids[i] == 0)
			hog(cpu, i == 0 ? 0 : nice, seconds);
	}
	/* 2. Wait for both. */
	for (i = 0; i < 2; i++)
		if (waitpid(kids[i], NULL, 0) < 0) {
			fprintf(stderr, "waitpid failed: %s\n", strerror(errno));
			return 1;
		}
	return 0;
}
