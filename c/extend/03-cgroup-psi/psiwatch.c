// SPDX-License-Identifier: GPL-2.0
/*
 * psiwatch: wait for memory stalls with a PSI trigger (Documentation/accounting/psi.rst).
 *
 *   psiwatch <pressure file> <stall µs> <window µs> <seconds>
 *
 * <pressure file> is a cgroup's memory.pressure (or /proc/pressure/memory).
 * While it runs, the program holds the trigger "some <stall µs> <window µs>"
 * on it: the kernel then reports an event whenever some task of the group
 * was stalled on memory for <stall µs> within one <window µs> (at most one
 * event per window). The trigger goes away with the program.
 *
 * Prints "watching <file>: <trigger>", then one line per event with the
 * CLOCK_MONOTONIC time in seconds,
 *   event 1 at 12345.678901
 * and after <seconds> "events=<n>", exit status 0. If the group goes away,
 * it says so on stderr and exits 1.
 *
 * Build: gcc -O2 -Wall -o psiwatch psiwatch.c
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRIGGER_LEN 128

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char trigger[TRIGGER_LEN];
	double deadline;
	int fd = -1, events = 0, ret = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: %s <pressure file> <stall us> <window us> <seconds>\n", argv[0]);
		return 2;
	}
	snprintf(trigger, sizeof(trigger), "some %s %s", argv[2], argv[3]);
	deadline = now() + atof(argv[4]);

	// LAB:BEGIN register `trigger` on the pressure file as a PSI trigger and keep it for the whole run (Documentation/accounting/psi.rst, "Userspace monitor usage": how a trigger is made and how long it lives; the kernel takes the string whole, terminating NUL included). On failure print what failed on which file and why, then goto cleanup
	/* 1. The trigger: the write must reach the kernel as one string. */
	fd = open(argv[1], O_RDWR | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", argv[1], strerror(errno));
		goto cleanup;
	}
	if (write(fd, trigger, strlen(trigger) + 1) < 0) {
		fprintf(stderr, "write \"%s\" to %s failed: %s\n", trigger, argv[1], strerror(errno));
		goto cleanup;
	}
	// LAB:STARTER
	// (void)trigger;
	// LAB:END
	printf("watching %s: %s\n", argv[1], trigger);
	fflush(stdout);

	/* 2. Wait for events until the deadline. */
	while (now() < deadline) {
		// LAB:BEGIN wait, without burning CPU, for the trigger's events until the deadline and print the event line described at the top for each (the time from now()); psi.rst and poll(2) say how the kernel signals an event and that the group is gone (then say so on stderr and goto cleanup)
		struct pollfd pfd = { .fd = fd, .events = POLLPRI };
		int left_ms = (int)((deadline - now()) * 1000) + 1;
		int n = poll(&pfd, 1, left_ms);

		if (n < 0 && errno != EINTR) {	/* EINTR: a signal, not an event; poll again */
			fprintf(stderr, "poll failed: %s\n", strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		if (n > 0 && (pfd.revents & POLLERR)) {
			fprintf(stderr, "%s: the group is gone (POLLERR)\n", argv[1]);
			goto cleanup;
		}
		if (n > 0 && (pfd.revents & POLLPRI)) {
			printf("event %d at %.6f\n", ++events, now());
			fflush(stdout);
		}
		// LAB:STARTER
		// usleep(100 * 1000);
		// LAB:END
	}
	printf("events=%d\n", events);
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}
