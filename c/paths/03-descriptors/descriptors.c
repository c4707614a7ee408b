// SPDX-License-Identifier: GPL-2.0
/*
 * descriptors: what a file descriptor points to (seed 003 存储管理, 001 §4,
 * 002 "df -h"). It reads one command per line on stdin and answers each with
 * one line on stdout:
 *
 *   share <path> <k>     open <path>; duplicate that descriptor; start a child
 *                        that reads exactly <k> bytes through the descriptor it
 *                        inherited and then waits; open <path> a second time
 *                                       -> "<fd> <dup> <again> <child pid>"
 *   unlinked <path> <n>  create <path>, write <n> bytes of data into it (every
 *                        block written: no holes), remove its name and keep it
 *                        open                                     -> "<fd>"
 *   close <fd>           close that descriptor                    -> "closed <fd>"
 *   df <dir>             the file system holding <dir>, as df computes it, in
 *                        bytes                      -> "<size> <used> <available>"
 *
 * At the end of its input the child ends and the program exits 0.
 *
 * Build: gcc -O2 -Wall -o descriptors descriptors.c
 * Run:   ./descriptors   then type e.g.  share /etc/services 100  and, in another
 *        terminal,  cat /proc/<pid>/fdinfo/<fd>;  Ctrl-D ends it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define MAX_ARGS 8

/* The child `share` started (ended at the end of input), or -1. */
static pid_t share_child = -1;

/* Read exactly n bytes from fd (fewer only at end of file); -1 on error. */
static long read_exactly(int fd, long n)
{
	static char buf[CHUNK];
	long done = 0;

	while (done < n) {
		long want = n - done < CHUNK ? n - done : CHUNK;
		ssize_t r = read(fd, buf, want);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += r;
	}
	return done;
}

/* share <path> <k>: out = fd, dup, again, child pid; 0, or -1 with errno. */
static int share(const char *path, long k, long out[4])
{
	// LAB:BEGIN share: one open file (open(2)) reached through two descriptors of this process (dup(2)) and one of a child (fork(2): the child's table is a copy); the child reads k bytes through its inherited descriptor, tells this process (a pipe), then waits until killed; only then open the path a second time — a new open file with its own offset. Keep the child in share_child
	int ready[2];
	char c = 0;
	int fd, dupfd, again;
	pid_t pid;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	dupfd = dup(fd);
	if (dupfd < 0 || pipe(ready) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* The child: its descriptor is a copy that points to the parent's open file. */
		close(ready[0]);
		if (read_exactly(dupfd, k) != k)
			_exit(1);
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	share_child = pid;
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		errno = EIO;
		return -1;
	}
	close(ready[0]);
	again = open(path, O_RDONLY);
	if (again < 0)
		return -1;
	out[0] = fd;
	out[1] = dupfd;
	out[2] = again;
	out[3] = pid;
	return 0;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* unlinked <path> <n>: the descriptor of the unlinked file, or -1 with errno. */
static int unlinked(const char *path, long n)
{
	// LAB:BEGIN unlinked: create the file, write n bytes into it from start to end (holes would leave blocks unallocated: see st_blocks in stat(2)), make sure they reached the file system, then remove the name (unlink(2)) and return the descriptor, still open
	static char data[CHUNK];
	long done = 0;
	int fd;

	memset(data, 'd', sizeof(data));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	while (done < n) {
		long want = n - done < CHUNK ? n - done : CHUNK;
		ssize_t put = write(fd, data, want);

		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			return -1;
		done += put;
	}
	if (fsync(fd) < 0 || unlink(path) < 0)
		return -1;
	return fd;
	// LAB:STARTER
	// return -1;
	// LAB:END
}

/* df <dir>: size, used and available in bytes; 0, or -1 with errno. */
static int df(const char *dir, unsigned long long out[3])
{
	// LAB:BEGIN df: ask the kernel about the file system that holds dir (statfs(2)); size is its data blocks, used the blocks not free, available what an ordinary user may still take (the free blocks less the ones reserved for root), each times the block size
	struct statfs s;

	if (statfs(dir, &s) < 0)
		return -1;
	out[0] = (unsigned long long)s.f_blocks * s.f_bsize;
	out[1] = (unsigned long long)(s.f_blocks - s.f_bfree) * s.f_bsize;
	out[2] = (unsigned long long)s.f_bavail * s.f_bsize;
	return 0;
	// LAB:STARTER
	// out[0] = out[1] = out[2] = 0;
	// return 0;
	// LAB:END
}

int main(void)
{
	char line[4096];

	/* stdout is a pipe when the spec runs it: one line per answer, at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		char *argv[MAX_ARGS];
		int argc = 0;

		line[strcspn(line, "\r\n")] = '\0';
		for (char *t = strtok(line, " "); t && argc < MAX_ARGS; t = strtok(NULL, " "))
			argv[argc++] = t;
		if (argc == 0)
			continue;
		if (!strcmp(argv[0], "share") && argc == 3) {
			long out[4] = { -1, -1, -1, -1 };

			if (share(argv[1], atol(argv[2]), out) < 0)
				fprintf(stderr, "share %s: %s\n", argv[1], strerror(errno));
			printf("%ld %ld %ld %ld\n", out[0], out[1], out[2], out[3]);
		} else if (!strcmp(argv[0], "unlinked") && argc == 3) {
			int fd = unlinked(argv[1], atol(argv[2]));

			if (fd < 0)
				fprintf(stderr, "unlinked %s: %s\n", argv[1], strerror(errno));
			printf("%d\n", fd);
		} else if (!strcmp(argv[0], "close") && argc == 2) {
			if (close(atoi(argv[1])) < 0)
				fprintf(stderr, "close %s: %s\n", argv[1], strerror(errno));
			printf("closed %s\n", argv[1]);
		} else if (!strcmp(argv[0], "df") && argc == 2) {
			unsigned long long out[3] = { 0, 0, 0 };

			if (df(argv[1], out) < 0)
				fprintf(stderr, "df %s: %s\n", argv[1], strerror(errno));
			printf("%llu %llu %llu\n", out[0], out[1], out[2]);
		} else {
			fprintf(stderr, "unknown command '%s'\n", argv[0]);
			printf("?\n");
		}
	}
	/* End of input: the child ends with this program. */
	if (share_child > 0) {
		kill(share_child, SIGTERM);
		waitpid(share_child, NULL, 0);
	}
	return 0;
}
