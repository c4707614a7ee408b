// SPDX-License-Identifier: GPL-2.0
/*
 * sessions: the seed's units, from the largest to the smallest, built for
 * real so that /proc can show them (001 §1.1–1.5):
 *
 *   main ── L   the leader of a new session (no controlling terminal)
 *           ├── J    leader of a process group "the job", with THREADS more threads
 *           ├── M    a second member of J's group
 *           └── Z    a child that exits at once: a zombie until L reaps it
 *
 * L reaps Z only when SIGUSR1 arrives, then waits (like J and M) until it is
 * killed. main waits for L. The spec finds the processes in /proc; nothing
 * this program prints is taken as proof.
 *
 * Build: gcc -O2 -Wall -o sessions sessions.c -lpthread
 * Run:   ./sessions & ps -o pid,ppid,pgid,sid,tty,stat,nlwp,comm --ppid $!   (then kill -USR1 <L>)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 3	/* threads the job leader starts besides its own */

static void die(const char *call)
{
	fprintf(stderr, "%s failed: %s\n", call, strerror(errno));
	_exit(1);
}

/* Block until a signal kills us (also a thread's start routine). */
static void *block_forever(void *arg)
{
	for (;;)
		pause();
	return arg;
}

/* J: the job's leader, a process of 1 + THREADS tasks. */
static void job_leader(void)
{
	// LAB:BEGIN threads: make this process run THREADS more threads besides its own, each blocking forever (block_forever above can be a thread's start routine; pthreads(7), pthread_create(3)); /proc/<pid>/task then lists 1 + THREADS tasks, all with this process's Tgid
	pthread_t thread;
	int i, err;

	for (i = 0; i < THREADS; i++) {
		err = pthread_create(&thread, NULL, block_forever, NULL);
		if (err) {
			errno = err;
			die("pthread_create");
		}
	}
	// LAB:END
	block_forever(NULL);
}

/* L: leads a new session that holds two process groups: its own and the job's. */
static void session_leader(void)
{
	pid_t job, member;

	// LAB:BEGIN session: make this process the leader of a new session (credentials(7), setsid(2)): afterwards its session ID and process group ID both equal its PID, and it has no controlling terminal (tty_nr 0 in /proc/<pid>/stat)
	if (setsid() < 0)
		die("setsid");
	// LAB:END

	job = fork();
	if (job < 0)
		die("fork");
	if (job == 0)
		job_leader();
	member = fork();
	if (member < 0)
		die("fork");
	if (member == 0)
		block_forever(NULL);
	// LAB:BEGIN group: make J and M one process group, "the job", led by J: J's process group ID is its own PID and M's is J's (credentials(7), setpgid(2)); J and M already run concurrently with this code, so the result must not depend on which of them gets there first
	if (setpgid(job, job) < 0 || setpgid(member, job) < 0)
		die("setpgid");
	// LAB:END

	// LAB:BEGIN zombie: create a child Z that exits at once and stays a zombie (state Z) until SIGUSR1 reaches this process, then reap it; SIGUSR1's default action would kill this process, and the signal may arrive before this code is ready for it (signal(7), "Signal mask and pending signals"; sigwait(3); wait(2))
	sigset_t usr1;
	pid_t zombie;
	int sig;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &usr1, NULL) < 0)
		die("sigprocmask");
	zombie = fork();
	if (zombie < 0)
		die("fork");
	if (zombie == 0)
		_exit(0);
	if (sigwait(&usr1, &sig))
		die("sigwait");
	if (waitpid(zombie, NULL, 0) < 0)
		die("waitpid");
	// LAB:END
	block_forever(NULL);
}

int main(void)
{
	pid_t leader;

	/* 1. setsid() refuses a process group leader: do it in a child. */
	leader = fork();
	if (leader < 0)
		die("fork");
	if (leader == 0)
		session_leader();
	printf("session leader pid=%d\n", leader);
	fflush(stdout);
	/* 2. Wait until the session leader is gone. */
	while (waitpid(leader, NULL, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	return 0;
}
