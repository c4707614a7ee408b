// SPDX-License-Identifier: GPL-2.0
/*
 * mytrace: a minimal `strace -c -f` (seed 001 §6). It runs a command under
 * ptrace(2), follows every process and thread it creates, and counts the
 * system calls they make by name:
 *
 *     mytrace -o <file> <command> [args...]
 *
 * writes one line "<calls> <name>" per system call to <file> when the
 * command and all its descendants have ended, and exits with the command's
 * exit status. exit and exit_group may be counted or not (strace -c does not:
 * it counts a call when it returns).
 *
 * Build: gcc -O2 -Wall -o mytrace mytrace.c
 * Run:   ./mytrace -o counts.txt ls /; sort -n counts.txt
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/ptrace.h>	/* struct ptrace_syscall_info, PTRACE_SYSCALL_INFO_* */
#include "syscall_names.h"

#define MAX_NR 1024		/* counts for syscall numbers 0..MAX_NR-1 */

static unsigned long counts[MAX_NR];

static void write_counts(FILE *out)
{
	for (long nr = 0; nr < MAX_NR; nr++) {
		if (!counts[nr])
			continue;
		if (nr < SYSCALL_NAMES_MAX && syscall_names[nr])
			fprintf(out, "%lu %s\n", counts[nr], syscall_names[nr]);
		else
			fprintf(out, "%lu syscall_%ld\n", counts[nr], nr);
	}
}

int main(int argc, char **argv)
{
	const char *outfile;
	FILE *out;
	pid_t child, pid;
	int status, exit_code = 1;

	if (argc < 4 || strcmp(argv[1], "-o")) {
		fprintf(stderr, "usage: %s -o <file> <command> [args...]\n", argv[0]);
		return 2;
	}
	outfile = argv[2];

	/* 1. The child asks to be traced, stops so we can set options, then execs. */
	child = fork();
	if (child < 0) {
		fprintf(stderr, "fork failed: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) {
			fprintf(stderr, "ptrace(PTRACE_TRACEME) failed: %s\n", strerror(errno));
			_exit(127);
		}
		raise(SIGSTOP);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "execvp %s failed: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	if (waitpid(child, &status, 0) < 0 || !WIFSTOPPED(status)) {
		fprintf(stderr, "the child did not stop for tracing\n");
		return 1;
	}

	/* 2. Options, then run to the first system call. */
	// LAB:BEGIN options: make the kernel trace the whole command, not just this child: every process and thread it creates is traced from its start, syscall-stops can be told apart from a real SIGTRAP, and no tracee outlives this tracer; which options do that is under PTRACE_SETOPTIONS in ptrace(2). On failure report it, kill the child and return 1
	if (ptrace(PTRACE_SETOPTIONS, child, NULL, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		   PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL) < 0) {
		fprintf(stderr, "ptrace(PTRACE_SETOPTIONS) failed: %s\n", strerror(errno));
		kill(child, SIGKILL);
		return 1;
	}
	// LAB:END
	ptrace(PTRACE_SYSCALL, child, NULL, NULL);

	/* 3. Every stop of every tracee: count syscall entries, pass signals on. */
	while ((pid = waitpid(-1, &status, __WALL)) > 0) {
		int sig = 0;

		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (pid == child)
				exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		// LAB:BEGIN count: at a syscall-stop, ask the kernel whether the tracee is entering or leaving a system call and which one (ptrace(2), "Syscall-stops" and PTRACE_GET_SYSCALL_INFO), and count each call once in counts[] by its number. Any other stop: decide from ptrace(2) ("Signal-delivery-stop", "PTRACE_EVENT stops", the initial stop of a new tracee) whether it carries a signal the tracee must still receive, and if so put it in sig
		if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
			struct ptrace_syscall_info info;

			if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(info), &info) > 0 &&
			    info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr < MAX_NR)
				counts[info.entry.nr]++;
		} else if (status >> 16) {
			/* PTRACE_EVENT_FORK/VFORK/CLONE/EXEC: nothing to deliver */
		} else if (WSTOPSIG(status) != SIGSTOP) {
			/* a signal-delivery-stop, SIGTRAP included: TRACESYSGOOD and TRACEEXEC leave no other SIGTRAP stop */
			sig = WSTOPSIG(status);
		}
		// LAB:STARTER
		// (void)status;
		// LAB:END
		ptrace(PTRACE_SYSCALL, pid, NULL, sig);
	}

	/* 4. Everything has ended: write the table. */
	out = fopen(outfile, "w");
	if (!out) {
		fprintf(stderr, "fopen %s failed: %s\n", outfile, strerror(errno));
		return 1;
	}
	write_counts(out);
	fclose(out);
	return exit_code;
}
