// SPDX-License-Identifier: GPL-2.0
/*
 * workload: a command with a known number of system calls, for checking a
 * syscall counter: <threads> threads each call getppid(2) <calls> times
 * through syscall(2) (never cached by libc), then the process exits.
 * A harness program of Process Lab 5: the student never edits it.
 *
 * Build: gcc -O2 -Wall -o workload workload.c -lpthread
 * Run:   ./workload 3 100     (300 getppid calls in 3 threads)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 64

static long calls;

static void *caller(void *arg)
{
	for (long i = 0; i < calls; i++)
		syscall(SYS_getppid);
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t threads[MAX_THREADS];
	int n, err;

	n = argc > 2 ? atoi(argv[1]) : 0;
	calls = argc > 2 ? atol(argv[2]) : 0;
	if (n < 1 || n > MAX_THREADS || calls < 0) {
		fprintf(stderr, "usage: %s <threads 1..%d> <calls>\n", argv[0], MAX_THREADS);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		err = pthread_create(&threads[i], NULL, caller, NULL);
		if (err) {
			fprintf(stderr, "pthread_create failed: %s\n", strerror(err));
			return 1;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
