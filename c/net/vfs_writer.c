// SPDX-License-Identifier: GPL-2.0
/*
 * vfs_writer: the workload of Net Lab 5.6. It writes a random number of
 * random-sized chunks to the lab's file (fd LAB_FD), one of them a short
 * write (the buffer runs into a PROT_NONE page, so the kernel copies only
 * the readable part and write(2) returns less than it was asked) that asks
 * for more than 2 GiB: vfs_write cuts the count down to MAX_RW_COUNT
 * (INT_MAX rounded down to a page) before it builds the iov_iter, so the
 * file system's write_iter is handed less than write(2) asked for; with
 * decoy writes to another file (fd DECOY_FD) in between; then a child
 * process appends a few more chunks to the lab's file and to the decoy.
 * The processes are named kl_vfs_writer and kl_vfs_child (comm), so the
 * lab finds their write(2) calls among the syscall tracepoints' records.
 *
 * Build: gcc -O2 -g -Wall -static vfs_writer.c -o vfs_writer
 * Usage: vfs_writer <lab file> <decoy file> <seed> <writes>
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define LAB_FD 7
#define DECOY_FD 8
#define MAX_CHUNK 20000
#define PAGE 4096
/* Readable bytes before the guard page, and bytes asked beyond them, in the short write. */
#define SHORT_MAX 3000
/* The short write asks for at least this much beyond the readable bytes: more than MAX_RW_COUNT. */
#define HUGE_EXTRA (1L << 31)
/*
 * Where the buffer goes: far below the top of user space, so that the short
 * write's huge count still passes access_ok() (buf + count below TASK_SIZE)
 * and vfs_write reaches the file system.
 */
#define BUF_AT ((void *)0x100000000000UL)
#define CHILD_WRITES 3

static char *buf;	/* MAX_CHUNK readable bytes, then one PROT_NONE page */
static char *guard;

static long chunk(void)
{
	return 1 + rand() % MAX_CHUNK;
}

/* One write(2); the kernel's view is in the syscall tracepoints, this is only for the log. */
static long do_write(int fd, const char *p, long n, long *total)
{
	long r = write(fd, p, n);

	if (r < 0)
		fprintf(stderr, "write fd %d of %ld bytes failed: %s\n", fd, n, strerror(errno));
	else if (total)
		*total += r;
	return r;
}

static int open_at(const char *path, int fd)
{
	int f = open(path, O_WRONLY | O_TRUNC);

	if (f < 0) {
		fprintf(stderr, "open %s failed: %s\n", path, strerror(errno));
		return -1;
	}
	if (dup2(f, fd) < 0) {
		fprintf(stderr, "dup2 failed: %s\n", strerror(errno));
		return -1;
	}
	close(f);
	return 0;
}

int main(int argc, char **argv)
{
	long total = 0, short_at, k, extra;
	int writes, i, status;
	size_t len;
	pid_t child;

	if (argc != 5) {
		fprintf(stderr, "usage: %s <lab file> <decoy file> <seed> <writes>\n", argv[0]);
		return 2;
	}
	srand(atoi(argv[3]));
	writes = atoi(argv[4]);
	prctl(PR_SET_NAME, "kl_vfs_writer");

	/* The data: MAX_CHUNK bytes rounded up to pages, then a guard page. */
	len = (MAX_CHUNK + PAGE - 1) / PAGE * PAGE;
	buf = mmap(BUF_AT, len + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "mmap failed: %s\n", strerror(errno));
		return 1;
	}
	memset(buf, 'v', len);
	guard = buf + len;
	if (mprotect(guard, PAGE, PROT_NONE)) {
		fprintf(stderr, "mprotect failed: %s\n", strerror(errno));
		return 1;
	}
	if (open_at(argv[1], LAB_FD) || open_at(argv[2], DECOY_FD))
		return 1;

	/* The parent's writes: lab chunks with decoys between, one short. */
	short_at = rand() % writes;
	for (i = 0; i < writes; i++) {
		if (i == short_at) {
			k = 1 + rand() % SHORT_MAX;
			extra = HUGE_EXTRA + rand() % SHORT_MAX;
			do_write(LAB_FD, guard - k, k + extra, &total);
		} else {
			do_write(LAB_FD, buf, chunk(), &total);
		}
		do_write(DECOY_FD, buf, chunk(), NULL);
	}

	/* Another process writes the same file (the fd and its offset are shared). */
	child = fork();
	if (child < 0) {
		fprintf(stderr, "fork failed: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		prctl(PR_SET_NAME, "kl_vfs_child");
		for (i = 0; i < CHILD_WRITES; i++) {
			do_write(DECOY_FD, buf, chunk(), NULL);
			do_write(LAB_FD, buf, chunk(), NULL);
		}
		_exit(0);
	}
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "child %d did not exit 0\n", child);
		return 1;
	}
	fprintf(stderr, "parent wrote %ld bytes to the lab file in %d writes; child %d wrote %d more\n",
		total, writes, child, CHILD_WRITES);
	return 0;
}
