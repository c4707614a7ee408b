// SPDX-License-Identifier: GPL-2.0
/*
 * task_states: children in every task state, on request (seed 003 进程调度).
 * It reads one command per line on stdin:
 *
 *   R  a child that runs (never sleeps)                 -> prints its pid
 *   S  a child in an interruptible sleep                -> prints its pid
 *   D  a child in an uninterruptible (killable) sleep:
 *      a vfork() parent that catches SIGTERM            -> prints its pid
 *   T  a child stopped by a signal (group stop)         -> prints its pid
 *   t  a child stopped by its tracer (this program)     -> prints its pid
 *   Z  a child that has exited and is not reaped        -> prints its pid
 *   W  reap every child that has exited                 -> "reaped <pid>" lines
 *   end of input: end every child still there, reap them all, exit 0
 *
 * Build: gcc -O2 -Wall -o task_states task_states.c
 * Run:   ./task_states    then type R, S, D, T, t, Z, W; Ctrl-D ends it.
 *        In another terminal: ps -o pid,stat,wchan:24,cmd --ppid <its pid>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 256

static pid_t children[MAX_CHILDREN];
static int nchildren;

/* Keeps the R child's loop from being optimised away. */
static volatile unsigned long spins;

/* The D child's SIGTERM handler: it can only run once the vfork wait is over. */
static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

/* R: a child that is always runnable. */
static pid_t make_running(void)
{
	// LAB:BEGIN R: fork a child that never sleeps: it spins on the CPU until it is killed, so the scheduler only ever preempts it (state R, its CPU time grows)
	pid_t pid = fork();

	if (pid == 0)
		for (;;)
			spins++;
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* S: a child asleep until a signal wakes it. */
static pid_t make_sleeping(void)
{
	// LAB:BEGIN S: fork a child that sleeps in the kernel until a signal comes (an interruptible sleep: state S; a SIGSTOP stops it at once, SIGCONT puts it back to sleep)
	pid_t pid = fork();

	if (pid == 0)
		for (;;)
			pause();
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* D: a child that waits in vfork() for its own child, which never ends by itself. */
static pid_t make_uninterruptible(void)
{
	// LAB:BEGIN D: fork a child that catches SIGTERM with on_term and then calls vfork(2): it waits in the kernel (state D) until its vfork child execs or exits; the vfork child must die with it (prctl PR_SET_PDEATHSIG) and otherwise sleep until a signal ends it
	pid_t pid = fork();

	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_term };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		if (vfork() == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		_exit(0);
	}
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* T: a child stopped by a stop signal. */
static pid_t make_stopped(void)
{
	// LAB:BEGIN T: fork a child that stops itself with a stop signal (a group stop, state T), and sleeps once it is continued
	pid_t pid = fork();

	if (pid == 0) {
		kill(getpid(), SIGSTOP);
		for (;;)
			pause();
	}
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* t: a child stopped by its tracer, this program. */
static pid_t make_traced(void)
{
	// LAB:BEGIN t: fork a child that asks to be traced by this program (ptrace(2)) and then stops itself: the tracer is told of the stop (wait for it) and leaves it stopped (state t)
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) == -1)
			_exit(1);
		kill(getpid(), SIGSTOP);	/* a signal-delivery stop: the tracer hears of it */
		for (;;)
			pause();
	}
	if (pid > 0 && waitpid(pid, &status, 0) < 0)
		fprintf(stderr, "waitpid failed: %s\n", strerror(errno));
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* Z: a child that has exited; its parent has not asked for its status yet. */
static pid_t make_zombie(void)
{
	// LAB:BEGIN Z: fork a child that exits at once; do not wait for it here (it stays a zombie until W reaps it)
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* W: collect the exit status of every child that has exited, and only those. */
static void reap_zombies(void)
{
	// LAB:BEGIN W: reap every child that has already exited without waiting for the others (waitpid(2) without blocking), and print "reaped <pid>" for each
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		printf("reaped %d\n", (int)pid);
	// LAB:STARTER
	// LAB:END
}

/* End of input: no child may outlive the program. */
static void end_children(void)
{
	// LAB:BEGIN end: kill every child still there (a signal that stopped, traced and sleeping children cannot ignore) and reap them all before returning
	for (int i = 0; i < nchildren; i++)
		kill(children[i], SIGKILL);
	while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
		;
	// LAB:STARTER
	// LAB:END
}

int main(void)
{
	char line[64];

	/* stdout is a pipe when the spec runs it: one line per answer, at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A vfork child whose parent died comes back to us, and is reaped with the rest. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	while (fgets(line, sizeof(line), stdin)) {
		pid_t pid;

		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "W") == 0) {
			reap_zombies();
			continue;
		}
		if (strlen(line) != 1 || !strchr("RSDTtZ", line[0])) {
			fprintf(stderr, "unknown command '%s' (R S D T t Z W)\n", line);
			continue;
		}
		if (nchildren == MAX_CHILDREN) {
			fprintf(stderr, "too many children (%d)\n", MAX_CHILDREN);
			printf("-1\n");
			continue;
		}
		switch (line[0]) {
		case 'R': pid = make_running(); break;
		case 'S': pid = make_sleeping(); break;
		case 'D': pid = make_uninterruptible(); break;
		case 'T': pid = make_stopped(); break;
		case 't': pid = make_traced(); break;
		default:  pid = make_zombie(); break;
		}
		if (pid < 0)
			fprintf(stderr, "%s: no child made (%s)\n", line, errno ? strerror(errno) : "not written yet");
		else
			children[nchildren++] = pid;
		printf("%d\n", (int)pid);
	}
	end_children();
	return 0;
}
