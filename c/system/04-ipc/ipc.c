// SPDX-License-Identifier: GPL-2.0
/*
 * ipc: the four ways of seed 003 进程间通信 — a pipe, a POSIX message queue,
 * shared memory and a queued real-time signal — on request.
 * It reads one command per line on stdin and answers each with one line:
 *
 *   pipe <bytes> <total>   make a pipe whose capacity is at least <bytes>, start a
 *                          writer child that writes <total> bytes into it and exits;
 *                          this program holds the read end and reads nothing yet
 *                                                          -> the writer's pid
 *   drain                  read the pipe to its end, reap the writer  -> "drained"
 *   mq <name> <prio>:<size>...   create the POSIX message queue <name> and send one
 *                          message per argument (<size> bytes, priority <prio>),
 *                          in that order; leave them in the queue   -> "sent"
 *   mqdone <name>          remove the queue <name>                  -> "removed"
 *   shm <pages> <token>    a shared memory object of <pages> pages mapped by this
 *                          program and by a child: the child writes "<token> <i>"
 *                          at the start of page i, this program reads every page
 *                          back; the child stays until shmdone     -> the child's pid
 *   shmdone                end the child, unmap and release the object -> "released"
 *   sigblock <sig>...      block these real-time signals            -> "blocked"
 *   sigtake <n>            take <n> of the blocked signals, in the order the kernel
 *                          gives them; after each, rename this program (its comm)
 *                          to "v<value>" where <value> came with the signal -> "taken"
 *   sigsend <pid> <sig> <value>   queue <sig> with <value> to <pid> -> "sent"
 *
 * Build: gcc -O2 -Wall -o ipc ipc.c -lrt
 * Run:   ./ipc   then type e.g.  pipe 20000 100000   (in another terminal:
 *        cat /proc/<writer>/wchan) and  drain;  Ctrl-D ends it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_MSGS 64

static int pipe_read_end = -1;
static pid_t pipe_writer = -1;

static void *shm_area;
static size_t shm_bytes;
static pid_t shm_child = -1;
static int shm_fd = -1;

static sigset_t rt_blocked;

/* pipe <bytes> <total>: the writer's pid, or -1. */
static pid_t start_pipe(long bytes, long total)
{
	// LAB:BEGIN pipe: a pipe whose capacity the kernel sets from <bytes> (fcntl(2), "Changing the capacity of a pipe"); a child writes <total> bytes into it (it blocks while the pipe is full) and exits; keep the read end in pipe_read_end and the child in pipe_writer, and read nothing yet
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	if (fcntl(fds[1], F_SETPIPE_SZ, (int)bytes) < 0)
		fprintf(stderr, "F_SETPIPE_SZ %ld: %s\n", bytes, strerror(errno));
	pid = fork();
	if (pid == 0) {
		static char buf[1 << 16];
		long left = total;

		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(buf, 'p', sizeof(buf));
		while (left > 0L) {
			ssize_t n = write(fds[1], buf, left < (long)sizeof(buf) ? (size_t)left : sizeof(buf));

			if (n < 0 && errno != EINTR)
				_exit(1);
			if (n > 0)
				left -= n;
		}
		_exit(0);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	pipe_read_end = fds[0];
	pipe_writer = pid;
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* drain: read everything the writer writes, until it has closed its end; then reap it. */
static void drain_pipe(void)
{
	// LAB:BEGIN drain: read pipe_read_end until end of file (read(2) returns 0 once no writer is left), close it and reap the writer
	char buf[PAGE];
	ssize_t n;

	while ((n = read(pipe_read_end, buf, sizeof(buf))) != 0)
		if (n < 0 && errno != EINTR)
			break;
	close(pipe_read_end);
	pipe_read_end = -1;
	waitpid(pipe_writer, NULL, 0);
	pipe_writer = -1;
	// LAB:STARTER
	// LAB:END
}

/* mq <name> <prio>:<size>...: 0 once every message is in the queue. */
static int send_messages(const char *name, int n, const unsigned *prio, const long *size)
{
	// LAB:BEGIN mq: create the POSIX message queue <name> (mq_overview(7)) big enough for the n messages and the largest size, send message i with size[i] bytes and priority prio[i], in order, and close it: the messages stay in the kernel
	struct mq_attr attr = { .mq_maxmsg = n, .mq_msgsize = 1 };
	static char buf[1 << 16];
	mqd_t q;

	for (int i = 0; i < n; i++)
		if (size[i] > attr.mq_msgsize)
			attr.mq_msgsize = size[i];
	q = mq_open(name, O_CREAT | O_WRONLY, 0600, &attr);
	if (q == (mqd_t)-1)
		return -1;
	memset(buf, 'm', sizeof(buf));
	for (int i = 0; i < n; i++)
		if (mq_send(q, buf, size[i], prio[i]) < 0) {
			mq_close(q);
			return -1;
		}
	mq_close(q);
	return 0;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* mqdone <name> */
static int remove_queue(const char *name)
{
	// LAB:BEGIN mqdone: remove the queue's name (it disappears from the mqueue file system)
	return mq_unlink(name);
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* shm <pages> <token>: the child's pid, or -1. */
static pid_t share_memory(long pages, const char *token)
{
	// LAB:BEGIN shm: one shared memory object (memfd_create(2), shm_open(3) or shmget(2)) of <pages> pages, mapped shared here (shm_area, shm_bytes) and in a child; the child writes "<token> <i>" at the start of every page i and then waits (it must die with this program); once it is done (synchronise: a pipe, a semaphore…), read every page here — the same frames, now mapped in both
	int sync[2];
	char c;
	pid_t pid;

	shm_bytes = pages * PAGE;
	shm_fd = memfd_create("kl-ipc-shm", 0);
	if (shm_fd < 0 || ftruncate(shm_fd, shm_bytes) < 0)
		return -1;
	shm_area = mmap(NULL, shm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	if (shm_area == MAP_FAILED || pipe(sync) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sync[0]);
		for (long i = 0; i < pages; i++)
			snprintf((char *)shm_area + i * PAGE, PAGE, "%s %ld", token, i);
		if (write(sync[1], "w", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	if (pid < 0 || read(sync[0], &c, 1) != 1) {
		close(sync[0]);
		return -1;
	}
	close(sync[0]);
	for (long i = 0; i < pages; i++) {
		char want[64];

		snprintf(want, sizeof(want), "%s %ld", token, i);
		if (strcmp((char *)shm_area + i * PAGE, want) != 0)
			fprintf(stderr, "page %ld: '%.40s', not '%s'\n", i, (char *)shm_area + i * PAGE, want);
	}
	shm_child = pid;
	return pid;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* shmdone */
static void release_memory(void)
{
	if (shm_child > 0) {
		kill(shm_child, SIGKILL);
		waitpid(shm_child, NULL, 0);
		shm_child = -1;
	}
	if (shm_area && shm_area != MAP_FAILED)
		munmap(shm_area, shm_bytes);
	shm_area = NULL;
	if (shm_fd >= 0)
		close(shm_fd);
	shm_fd = -1;
}

/* sigblock <sig>...: add the signals to rt_blocked and block them. */
static int block_signals(int n, const int *sigs)
{
	// LAB:BEGIN sigblock: block these signals for this program (sigprocmask(2)) so that the kernel queues them instead of delivering them; remember them in rt_blocked
	for (int i = 0; i < n; i++)
		sigaddset(&rt_blocked, sigs[i]);
	return sigprocmask(SIG_BLOCK, &rt_blocked, NULL);
	// LAB:STARTER
	// return 0;
	// LAB:END
}

/* sigtake <n>: 0 once n signals were taken. */
static int take_signals(int n)
{
	// LAB:BEGIN sigtake: take n of the queued signals of rt_blocked synchronously (sigwaitinfo(2)), in the kernel's order; after each, rename this program "v<value>" with the value that came with it (siginfo's si_value; prctl(2) PR_SET_NAME)
	for (int taken = 0; taken < n; taken++) {
		siginfo_t info;
		char name[16];

		if (sigwaitinfo(&rt_blocked, &info) < 0) {
			if (errno == EINTR) {
				taken--;
				continue;
			}
			return -1;
		}
		snprintf(name, sizeof(name), "v%d", info.si_value.sival_int);
		prctl(PR_SET_NAME, name);
	}
	return 0;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* sigsend <pid> <sig> <value> */
static int send_signal(pid_t pid, int sig, int value)
{
	// LAB:BEGIN sigsend: queue signal <sig> to <pid> with <value> attached (sigqueue(3))
	union sigval v = { .sival_int = value };

	return sigqueue(pid, sig, v);
	// LAB:STARTER
	// return -1;
	// LAB:END
}

int main(void)
{
	char line[4096];

	/* stdout is a pipe when the spec runs it: one line per answer, at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&rt_blocked);
	while (fgets(line, sizeof(line), stdin)) {
		char *argv[MAX_MSGS + 2];
		int argc = 0;

		line[strcspn(line, "\r\n")] = '\0';
		for (char *t = strtok(line, " "); t && argc < MAX_MSGS + 2; t = strtok(NULL, " "))
			argv[argc++] = t;
		if (argc == 0)
			continue;
		if (!strcmp(argv[0], "pipe") && argc == 3) {
			printf("%d\n", (int)start_pipe(atol(argv[1]), atol(argv[2])));
		} else if (!strcmp(argv[0], "drain")) {
			if (pipe_read_end >= 0)
				drain_pipe();
			printf("drained\n");
		} else if (!strcmp(argv[0], "mq") && argc >= 3) {
			unsigned prio[MAX_MSGS];
			long size[MAX_MSGS];
			int n = argc - 2;

			for (int i = 0; i < n; i++)
				if (sscanf(argv[i + 2], "%u:%ld", &prio[i], &size[i]) != 2)
					size[i] = 1, prio[i] = 0;
			if (send_messages(argv[1], n, prio, size) < 0)
				fprintf(stderr, "mq %s: %s\n", argv[1], strerror(errno));
			printf("sent\n");
		} else if (!strcmp(argv[0], "mqdone") && argc == 2) {
			if (remove_queue(argv[1]) < 0)
				fprintf(stderr, "mqdone %s: %s\n", argv[1], strerror(errno));
			printf("removed\n");
		} else if (!strcmp(argv[0], "shm") && argc == 3) {
			printf("%d\n", (int)share_memory(atol(argv[1]), argv[2]));
		} else if (!strcmp(argv[0], "shmdone")) {
			release_memory();
			printf("released\n");
		} else if (!strcmp(argv[0], "sigblock") && argc >= 2) {
			int sigs[MAX_MSGS];

			for (int i = 1; i < argc; i++)
				sigs[i - 1] = atoi(argv[i]);
			if (block_signals(argc - 1, sigs) < 0)
				fprintf(stderr, "sigblock: %s\n", strerror(errno));
			printf("blocked\n");
		} else if (!strcmp(argv[0], "sigtake") && argc == 2) {
			if (take_signals(atoi(argv[1])) < 0)
				fprintf(stderr, "sigtake: %s\n", strerror(errno));
			printf("taken\n");
		} else if (!strcmp(argv[0], "sigsend") && argc == 4) {
			if (send_signal(atoi(argv[1]), atoi(argv[2]), atoi(argv[3])) < 0)
				fprintf(stderr, "sigsend: %s\n", strerror(errno));
			printf("sent\n");
		} else {
			fprintf(stderr, "unknown command '%s'\n", argv[0]);
			printf("?\n");
		}
	}
	release_memory();
	return 0;
}
