// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring_probe: can this process set up an io_uring? Calls io_uring_setup(2)
 * directly (no liburing needed), so seccomp filters (EPERM) and
 * kernel.io_uring_disabled are seen as they are. Used by the capability probe.
 *
 * Build: gcc -O2 -Wall -o io_uring_probe io_uring_probe.c
 * Output: "io_uring=ok features=0x<hex>"; exit 77 on ENOSYS, 1 on other errors.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	struct io_uring_params p;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0) {
		fprintf(stderr, "io_uring_setup failed: %s\n", strerror(errno));
		return errno == ENOSYS ? 77 : 1;
	}
	printf("io_uring=ok features=0x%x\n", p.features);
	close(fd);
	return 0;
}
