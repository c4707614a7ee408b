// SPDX-License-Identifier: GPL-2.0
/*
 * subreaper: run a command as this process's child with
 * prctl(PR_SET_CHILD_SUBREAPER), so that every orphan below it (a session
 * whose leader exited, a zombie whose parent died) is reparented here instead
 * of to PID 1, and say what the kernel reported for each process it reaps:
 *
 *     reaped pid=<pid> exit=<code>      or      reaped pid=<pid> signal=<n>
 *
 * It exits when it has no children left (waitpid gives ECHILD). A harness
 * program of the process labs: the student never edits it.
 *
 * Build: gcc -O2 -Wall -o subreaper subreaper.c
 * Run:   ./subreaper ./sessions
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t child, pid;
	int status;

	if (argc < 2) {
		fprintf(stderr, "usage: %s <command> [args...]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* 1. Become the reaper of every orphan below us. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "prctl(PR_SET_CHILD_SUBREAPER) failed: %s\n", strerror(errno));
		return 1;
	}
	/* 2. Run the command. */
	child = fork();
	if (child < 0) {
		fprintf(stderr, "fork failed: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "execvp %s failed: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	/* 3. Reap the command and every orphan handed to us, until none is left. */
	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				return 0;
			fprintf(stderr, "waitpid failed: %s\n", strerror(errno));
			return 1;
		}
		if (WIFSIGNALED(status))
			printf("reaped pid=%d signal=%d\n", pid, WTERMSIG(status));
		else
			printf("reaped pid=%d exit=%d\n", pid, WEXITSTATUS(status));
	}
}
