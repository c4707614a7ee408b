// SPDX-License-Identifier: GPL-2.0
/*
 * chardev_probe: the harness's user of a character device (Lab 7.1). It runs
 * the operations named on its command line against one device node, in
 * order, and prints what each system call returned, one line per operation:
 *
 *   <n> <op> ret=<return value> errno=<errno or 0>[ val=<int>][ data=<hex>]
 *
 * Operations (slot = one letter, an open file of its own):
 *   open:<slot>                 open(path, O_RDWR)
 *   close:<slot>
 *   write:<slot>:<hex>          write(2) of those bytes
 *   read:<slot>:<count>         read(2) of up to count bytes (data = what came)
 *   seek:<slot>:<offset>:<S|C|E> lseek(2) with SEEK_SET, SEEK_CUR or SEEK_END
 *   pwrite:<slot>:<hex>:<offset>  pwrite(2) of those bytes at that offset
 *   pread:<slot>:<count>:<offset> pread(2) of up to count bytes at that offset (data = what came)
 *   ioctl:<slot>:<cmd hex>      ioctl(2) with a pointer to an int (val = the int after, preset -1)
 *   cycles:<slot>:<n>           n times: open, write(2) of one byte, close (ret = how many
 *                               rounds succeeded; errno = the first failure's)
 *   readbad:<slot>:<count>      read(2) into an address nothing is mapped at
 *   writebad:<slot>:<count>     write(2) from an address nothing is mapped at
 *   ioctlbad:<slot>:<cmd hex>   ioctl(2) with that address as the pointer
 *
 * It judges nothing: the spec compares these results with what it wrote.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fds[26];

static int slot(const char *s)
{
	if (s[0] < 'A' || s[0] > 'Z') {
		fprintf(stderr, "chardev_probe: bad slot '%s'\n", s);
		exit(2);
	}
	return s[0] - 'A';
}

static void hexout(const unsigned char *p, long n)
{
	printf(" data=");
	while (n-- > 0)
		printf("%02x", *p++);
}

int main(int argc, char **argv)
{
	static unsigned char buf[1 << 16];
	if (argc < 2) {
		fprintf(stderr, "usage: chardev_probe <device> <op>...\n");
		return 2;
	}
	const char *path = argv[1];
	/* An address with nothing mapped: a page mapped and unmapped again. */
	void *bad = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bad == MAP_FAILED || munmap(bad, 1 << 16)) {
		perror("mmap");
		return 2;
	}
	for (int i = 0; i < 26; i++)
		fds[i] = -1;
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int k = 2; k < argc; k++) {
		char *op = strdup(argv[k]);
		char *args[4] = { 0 };
		char *name = strtok(op, ":");
		for (int i = 0; i < 4; i++)
			args[i] = strtok(NULL, ":");
		if (!name || !args[0]) {
			fprintf(stderr, "chardev_probe: bad op '%s'\n", argv[k]);
			return 2;
		}
		int s = slot(args[0]);
		long ret = 0;
		int val = -1, haveval = 0;
		long got = -1;
		errno = 0;
		if (!strcmp(name, "open")) {
			ret = fds[s] = open(path, O_RDWR);
		} else if (!strcmp(name, "close")) {
			ret = close(fds[s]);
			fds[s] = -1;
		} else if (!strcmp(name, "write")) {
			const char *h = args[1] ? args[1] : "";
			long n = (long)strlen(h) / 2;
			for (long i = 0; i < n && i < (long)sizeof(buf); i++)
				sscanf(h + 2 * i, "%2hhx", &buf[i]);
			ret = write(fds[s], buf, n);
		} else if (!strcmp(name, "read")) {
			long n = args[1] ? atol(args[1]) : 0;
			if (n > (long)sizeof(buf))
				n = sizeof(buf);
			memset(buf, 0xa5, sizeof(buf));
			ret = read(fds[s], buf, n);
			got = ret;
		} else if (!strcmp(name, "pwrite")) {
			const char *h = args[1] ? args[1] : "";
			long n = (long)strlen(h) / 2;
			for (long i = 0; i < n && i < (long)sizeof(buf); i++)
				sscanf(h + 2 * i, "%2hhx", &buf[i]);
			ret = pwrite(fds[s], buf, n, args[2] ? atol(args[2]) : 0);
		} else if (!strcmp(name, "pread")) {
			long n = args[1] ? atol(args[1]) : 0;
			if (n > (long)sizeof(buf))
				n = sizeof(buf);
			memset(buf, 0xa5, sizeof(buf));
			ret = pread(fds[s], buf, n, args[2] ? atol(args[2]) : 0);
			got = ret;
		} else if (!strcmp(name, "seek")) {
			int whence = !args[2] ? -1 : args[2][0] == 'S' ? SEEK_SET : args[2][0] == 'C' ? SEEK_CUR : args[2][0] == 'E' ? SEEK_END : 99;
			ret = lseek(fds[s], args[1] ? atol(args[1]) : 0, whence);
		} else if (!strcmp(name, "ioctl")) {
			ret = ioctl(fds[s], strtoul(args[1] ? args[1] : "0", NULL, 16), &val);
			haveval = 1;
		} else if (!strcmp(name, "cycles")) {
			long n = args[1] ? atol(args[1]) : 0, done = 0;
			for (; done < n; done++) {
				int fd = open(path, O_RDWR);
				if (fd < 0)
					break;
				if (write(fd, "x", 1) != 1) {
					int e = errno;
					close(fd);
					errno = e;
					break;
				}
				if (close(fd))
					break;
			}
			ret = done;
		} else if (!strcmp(name, "readbad")) {
			ret = read(fds[s], bad, args[1] ? atol(args[1]) : 1);
		} else if (!strcmp(name, "writebad")) {
			ret = write(fds[s], bad, args[1] ? atol(args[1]) : 1);
		} else if (!strcmp(name, "ioctlbad")) {
			ret = ioctl(fds[s], strtoul(args[1] ? args[1] : "0", NULL, 16), bad);
		} else {
			fprintf(stderr, "chardev_probe: unknown op '%s'\n", name);
			return 2;
		}
		int e = ret < 0 ? errno : 0;
		printf("%d %s ret=%ld errno=%d", k - 2, name, ret, e);
		if (haveval)
			printf(" val=%d", val);
		if (got > 0)
			hexout(buf, got);
		printf("\n");
		free(op);
	}
	return 0;
}
