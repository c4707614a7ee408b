// SPDX-License-Identifier: GPL-2.0
/*
 * zero_page_probe: does a first read of anonymous memory map the kernel's
 * shared zero page (nothing allocated), as on every stock kernel? Some VM
 * kernels turn it off (e.g. pvm_no_zero_page=1 on the command line): there a
 * read fault allocates a page of its own, like a write. Reads 64 pages of a
 * new private anonymous mapping and compares their frames in
 * /proc/self/pagemap. Used by the capability probe, not a lab.
 *
 * Build: gcc -O2 -Wall -o zero_page_probe zero_page_probe.c
 * Output: one line; exit 0 when the 64 reads share one frame, 1 when they do not.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 64

int main(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	volatile char *p = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t first = 0, e;
	int fd, i, distinct = 0;
	char sink = 0;

	if (p == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (i = 0; i < PAGES; i++)
		sink += p[i * ps];
	(void)sink;
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0) {
		perror("/proc/self/pagemap");
		return 2;
	}
	for (i = 0; i < PAGES; i++) {
		if (pread(fd, &e, sizeof(e), ((uintptr_t)p / ps + i) * sizeof(e)) != sizeof(e)) {
			perror("pread pagemap");
			return 2;
		}
		e &= (1ULL << 55) - 1;	/* bits 0-54: the frame number */
		if (i == 0)
			first = e;
		else if (e != first)
			distinct++;
	}
	if (distinct) {
		printf("a read of anonymous memory took %d frames of its own for %d pages (no shared zero page)\n", distinct + 1, PAGES);
		return 1;
	}
	printf("%d reads share one frame (the zero page)\n", PAGES);
	return 0;
}
