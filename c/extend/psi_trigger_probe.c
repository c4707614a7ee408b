// SPDX-License-Identifier: GPL-2.0
/*
 * psi_trigger_probe: does file descriptor <fd> of process <pid> hold a PSI
 * trigger? (harness program of the extend labs; the student never edits it)
 *
 *   psi_trigger_probe <pid> <fd>
 *
 * pidfd_getfd(2) gives this process the same open file as the target's
 * descriptor. The kernel allows one trigger per open file and checks that
 * before it parses what is written (psi_write, cgroup_pressure_write):
 * writing a string that is no trigger answers EBUSY when the file has a
 * trigger and EINVAL when it has none, and changes nothing either way.
 *
 * Prints "trigger" (exit 0) or "none" (exit 1, also for a descriptor opened
 * read-only, which cannot hold one); other errors exit 2.
 * Build: gcc -O2 -Wall -o psi_trigger_probe psi_trigger_probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* Not a trigger: the kernel refuses it with EINVAL unless the file already has one. */
#define NOT_A_TRIGGER "probe"

int main(int argc, char **argv)
{
	int pidfd = -1, fd = -1, ret = 2;
	ssize_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <pid> <fd>\n", argv[0]);
		return 2;
	}
	/* 1. The target's open file, shared (same struct file, same trigger slot). */
	pidfd = syscall(SYS_pidfd_open, atoi(argv[1]), 0);
	if (pidfd < 0) {
		fprintf(stderr, "pidfd_open %s failed: %s\n", argv[1], strerror(errno));
		goto cleanup;
	}
	fd = syscall(SYS_pidfd_getfd, pidfd, atoi(argv[2]), 0);
	if (fd < 0) {
		fprintf(stderr, "pidfd_getfd %s fd %s failed: %s\n", argv[1], argv[2], strerror(errno));
		goto cleanup;
	}
	/* 2. EBUSY: a trigger is there; EINVAL: none. */
	n = write(fd, NOT_A_TRIGGER, sizeof(NOT_A_TRIGGER));
	if (n < 0 && errno == EBUSY) {
		printf("trigger\n");
		ret = 0;
	} else if (n < 0 && errno == EINVAL) {
		printf("none\n");
		ret = 1;
	} else if (n < 0 && errno == EBADF) {
		printf("none (opened read-only)\n");
		ret = 1;
	} else {
		fprintf(stderr, "write to the shared descriptor: %s\n", n < 0 ? strerror(errno) : "accepted (not a pressure file?)");
	}
cleanup:
	if (fd >= 0)
		close(fd);
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}
