// SPDX-License-Identifier: GPL-2.0
/*
 * fd_probe: the spec's own hands for Paths Lab 3 (never the student's). It asks
 * the kernel about another process's descriptors:
 *
 *   kcmp <pid1> <fd1> <pid2> <fd2>   print kcmp(2) KCMP_FILE: 0 when both
 *                                    descriptors point to one struct file,
 *                                    1, 2 or 3 when they do not
 *   seek <pid> <fd> <offset>         take a copy of that descriptor
 *                                    (pidfd_getfd(2): the same open file),
 *                                    lseek it to <offset>, print the offset
 *
 * Build: gcc -O2 -Wall -o fd_probe fd_probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KCMP_FILE_TYPE 0 /* KCMP_FILE in <linux/kcmp.h> */

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 6 && !strcmp(argv[1], "kcmp")) {
		long r = syscall(SYS_kcmp, atoi(argv[2]), atoi(argv[4]), KCMP_FILE_TYPE, atol(argv[3]), atol(argv[5]));

		if (r < 0) {
			fprintf(stderr, "kcmp %s/%s %s/%s: %s\n", argv[2], argv[3], argv[4], argv[5], strerror(errno));
			return 1;
		}
		printf("%ld\n", r);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "seek")) {
		int pidfd = syscall(SYS_pidfd_open, atoi(argv[2]), 0);
		int fd;
		off_t at;

		if (pidfd < 0) {
			fprintf(stderr, "pidfd_open %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		fd = syscall(SYS_pidfd_getfd, pidfd, atoi(argv[3]), 0);
		if (fd < 0) {
			fprintf(stderr, "pidfd_getfd %s/%s: %s\n", argv[2], argv[3], strerror(errno));
			return 1;
		}
		at = lseek(fd, atoll(argv[4]), SEEK_SET);
		if (at < 0) {
			fprintf(stderr, "lseek: %s\n", strerror(errno));
			return 1;
		}
		printf("%lld\n", (long long)at);
		return 0;
	}
	fprintf(stderr, "usage: fd_probe kcmp <pid1> <fd1> <pid2> <fd2> | seek <pid> <fd> <offset>\n");
	return 2;
}
