// SPDX-License-Identifier: GPL-2.0
/*
 * thp: anonymous memory on transparent huge pages (seed 001 §2.1). Like
 * Lab 2's vm, it stops itself (SIGSTOP) so that the spec can read /proc while
 * it waits; continue it with `kill -CONT <pid>`.
 *
 *     thp <MiB>
 *
 *   stop 1  nothing mapped yet
 *   stop 2  a region of <MiB> MiB (a multiple of 2) that starts on a 2 MiB
 *           boundary, marked for huge pages (VmFlags hg), not touched
 *   stop 3  every 4 KiB page of it written once; then the program exits
 *
 * With THP "madvise" (this host) or "always", each first write into a 2 MiB
 * block maps a whole huge page: 512 times fewer page faults than 4 KiB pages.
 *
 * Build: gcc -O2 -Wall -o thp thp.c
 * Run:   ./thp 64 & sleep 0.1; kill -CONT $!; grep -B3 -A20 ' hg' /proc/$!/smaps   (VmFlags … hg)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_SIZE (2UL << 20)
#define PAGE_SIZE_4K 4096UL

int main(int argc, char **argv)
{
	size_t len;
	char *region;

	len = argc > 1 ? strtoul(argv[1], NULL, 10) << 20 : 0;
	if (!len || len % HUGE_SIZE) {
		fprintf(stderr, "usage: %s <MiB, a multiple of 2>\n", argv[0]);
		return 2;
	}
	raise(SIGSTOP);						/* 1 */

	// LAB:BEGIN map: get <len> bytes of anonymous memory that start on a 2 MiB boundary (mmap(2) promises only page alignment, and the spec makes it hand out unaligned addresses) and ask for transparent huge pages on them before anything touches them (madvise(2); Documentation/admin-guide/mm/transhuge.rst); at stop 2 the VMA marked hg in smaps is exactly <len> bytes and 2 MiB-aligned
	char *raw = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t head;

	if (raw == MAP_FAILED) {
		fprintf(stderr, "mmap failed: %s\n", strerror(errno));
		return 1;
	}
	region = (char *)(((uintptr_t)raw + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
	head = region - raw;
	if (head)
		munmap(raw, head);
	munmap(region + len, HUGE_SIZE - head);
	if (madvise(region, len, MADV_HUGEPAGE)) {
		fprintf(stderr, "madvise(MADV_HUGEPAGE) failed: %s\n", strerror(errno));
		return 1;
	}
	// LAB:STARTER
	// region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	// if (region == MAP_FAILED)
	//	return 1;
	// LAB:END
	raise(SIGSTOP);						/* 2 */

	/* 3. Write every 4 KiB page once. */
	for (size_t off = 0; off < len; off += PAGE_SIZE_4K)
		region[off] = 1;
	raise(SIGSTOP);						/* 3 */
	return 0;
}
