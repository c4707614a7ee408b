// SPDX-License-Identifier: GPL-2.0
/*
 * pcache: the page cache, cold and warm (seed 001 §2.2). It stops itself
 * (SIGSTOP) after each step so that the spec can ask the kernel which pages
 * of the file are cached; continue it with `kill -CONT <pid>`.
 *
 *     pcache <file>
 *
 *   stop 1  the file's pages evicted from the page cache (only this file's:
 *           never the machine-wide /proc/sys/vm/drop_caches)
 *   stop 2  the whole file read once: cold, every page comes from the disk
 *   stop 3  the whole file read again: warm, every page from memory
 *
 * Build: gcc -O2 -Wall -o pcache pcache.c
 * Run:   ./pcache big.bin & P=$!; fincore big.bin; kill -CONT $P; fincore big.bin; kill -CONT $P
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BS (128 * 1024)

static char buf[BS];

/* Read the file from start to end; 0 on success. */
static int read_all(int fd)
{
	// LAB:BEGIN read: read the whole file, from its first byte to its end, through the page cache (pread(2) or read(2): what their return value says at the end of the file); afterwards every page of the file is cached. On an error, print it and return -1
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0)
		off += n;
	if (n < 0) {
		fprintf(stderr, "pread failed: %s\n", strerror(errno));
		return -1;
	}
	// LAB:STARTER
	// (void)fd;
	// LAB:END
	return 0;
}

int main(int argc, char **argv)
{
	int fd, ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <file>\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* 1. Evict this file's pages. */
	// LAB:BEGIN evict: drop this file's pages, and only this file's, from the page cache by advising the kernel about how this file's data will be used (posix_fadvise(2)); at stop 1 fincore shows none of it resident. Dirty pages would have to be written back first (fdatasync(2))
	int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

	if (err) {
		fprintf(stderr, "posix_fadvise failed: %s\n", strerror(err));
		goto cleanup;
	}
	// LAB:END
	raise(SIGSTOP);						/* 1 */
	/* 2. Cold read. */
	if (read_all(fd))
		goto cleanup;
	raise(SIGSTOP);						/* 2 */
	/* 3. Warm read. */
	if (read_all(fd))
		goto cleanup;
	raise(SIGSTOP);						/* 3 */
	ret = 0;
cleanup:
	close(fd);
	return ret;
}
