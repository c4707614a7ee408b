// SPDX-License-Identifier: GPL-2.0
/*
 * perf-counters: what perf's own events counted, read from the kernel. A
 * harness program of Lab 8.4: the student never edits it.
 *
 * It takes copies of another process's perf event fds (pidfd_getfd(2), the
 * same open file: the same counter), so the counters outlive the process
 * that opened them, waits until a given process has exited (gone, or a
 * zombie), then read(2)s each counter: the first 8 bytes are its value (the
 * rest depends on the event's read_format: times enabled/running, an id).
 * A recipe that keeps some other event open (a dummy, another tracepoint)
 * and counts elsewhere shows here as counters that never reached N.
 *
 * Usage: perf-counters <wait-pid> <pid>:<fd>...
 * Output: "held <k>" once it holds k of them (stdout flushed), then, after
 *         <wait-pid> exited, one line per held fd: "fd <pid>:<fd> <u64>..."
 *         (the words read(2) returned), or "fd <pid>:<fd> error <text>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define MAX_FDS 512

/* The process is gone or a zombie (its counters are final either way). */
static int exited(const char *pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t got;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 1;
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	p = strrchr(buf, ')');
	return !p || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

int main(int argc, char **argv)
{
	static int held[MAX_FDS];
	static const char *names[MAX_FDS];
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	unsigned long long words[64];
	int k = 0, i, j, tries;

	if (argc < 3) {
		fprintf(stderr, "usage: %s <wait-pid> <pid>:<fd>...\n", argv[0]);
		return 2;
	}
	for (i = 2; i < argc && k < MAX_FDS; i++) {
		long pid = strtol(argv[i], NULL, 10);
		const char *colon = strchr(argv[i], ':');
		int pfd, fd;

		if (!colon)
			continue;
		pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
		if (pfd < 0) {
			printf("fd %s error pidfd_open: %s\n", argv[i], strerror(errno));
			continue;
		}
		fd = (int)syscall(SYS_pidfd_getfd, pfd, atoi(colon + 1), 0);
		close(pfd);
		if (fd < 0) {
			printf("fd %s error pidfd_getfd: %s\n", argv[i], strerror(errno));
			continue;
		}
		held[k] = fd;
		names[k++] = argv[i];
	}
	printf("held %d\n", k);
	fflush(stdout);
	/* Bounded: the harness waits for the tracee itself and ends this run anyway. */
	for (tries = 0; tries < 3000 && !exited(argv[1]); tries++)
		nanosleep(&nap, NULL);
	for (i = 0; i < k; i++) {
		ssize_t got = read(held[i], words, sizeof(words));

		if (got < 0) {
			printf("fd %s error read: %s\n", names[i], strerror(errno));
			continue;
		}
		printf("fd %s", names[i]);
		for (j = 0; j < got / 8; j++)
			printf(" %llu", words[j]);
		printf("\n");
	}
	return 0;
}
