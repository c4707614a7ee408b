// SPDX-License-Identifier: GPL-2.0
/*
 * cpu_hog: the seed's `while true; do :; done`, for a fixed wall time. It
 * spins on the CPU until <seconds> of wall-clock time have passed, then
 * reports how much CPU time the kernel charged it:
 *
 *     started pid=<pid>
 *     cpu_ms=<CPU time> wall_ms=<wall time> share=<cpu/wall>
 *
 * Under cpu.max "10000 100000" share is about 0.10; unlimited, about 1.
 *
 * Build: gcc -O2 -Wall -o cpu_hog cpu_hog.c
 * Run:   ./cpu_hog 3
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECONDS 600

static double now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	double seconds, start, wall, cpu;
	volatile unsigned long spins = 0;

	seconds = argc == 2 ? strtod(argv[1], NULL) : 0;
	if (seconds <= 0 || seconds > MAX_SECONDS) {
		fprintf(stderr, "usage: %s <seconds of wall time, 0..%d>\n", argv[0], MAX_SECONDS);
		return 2;
	}
	printf("started pid=%d\n", (int)getpid());
	fflush(stdout);

	start = now_ms(CLOCK_MONOTONIC);
	// LAB:BEGIN Keep this thread runnable for `seconds` of wall time (use now_ms, a monotonic clock), so that only the cgroup's CPU limit decides how much CPU it gets: anything that sleeps or blocks hides the limit. Count the iterations in spins.
	while (now_ms(CLOCK_MONOTONIC) - start < seconds * 1e3)
		spins++;
	// LAB:STARTER
	// struct timespec rest = { .tv_sec = (time_t)seconds, .tv_nsec = 0 };
	// nanosleep(&rest, NULL);
	// LAB:END
	wall = now_ms(CLOCK_MONOTONIC) - start;
	cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID);

	printf("cpu_ms=%.1f wall_ms=%.1f share=%.3f spins=%lu\n", cpu, wall, cpu / wall, (unsigned long)spins);
	return 0;
}
