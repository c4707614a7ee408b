// SPDX-License-Identifier: GPL-2.0
/*
 * vm: virtual memory made visible (seed 001 §2.1, 003 内存管理). It maps
 * memory, touches it, and stops itself (SIGSTOP) at fixed points so that the
 * spec can read /proc/<pid>/{stat,status,maps,pagemap} while the process
 * waits. Continue it with `kill -CONT <pid>`.
 *
 *   stop 1  nothing mapped yet
 *   stop 2  <pages> anonymous private pages mapped, none touched
 *   stop 3  each of those pages written once (one minor fault per page)
 *   stop 4  one memfd page mapped twice (MAP_SHARED), written through one
 *           mapping, read through the other
 *   then    fork(): the child stops (5), writes the first anonymous page
 *           (copy on write), stops again (6) and exits; the parent waits
 *           for it and exits.
 *
 * Build: gcc -O2 -Wall -o vm vm.c
 * Run:   ./vm 300 & sleep 0.1; grep -E 'VmRSS|RssAnon' /proc/$!/status; kill -CONT $!
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PAGES 65536

static long page_size;

/* Wait here, stopped, until someone sends SIGCONT. */
static void stop_here(void)
{
	raise(SIGSTOP);
}

int main(int argc, char **argv)
{
	volatile char *anon, *shared1, *shared2;
	long pages;
	pid_t child;
	int ret = 1, fd = -1;

	pages = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	if (pages < 1 || pages > MAX_PAGES) {
		fprintf(stderr, "usage: %s <pages 1..%d>\n", argv[0], MAX_PAGES);
		return 2;
	}
	page_size = sysconf(_SC_PAGESIZE);
	stop_here();						/* 1 */

	/* 2. Reserve virtual memory: a new VMA, no physical page yet. */
	// LAB:BEGIN map: reserve <pages> pages of memory that no file backs, private to this process, readable and writable (mmap(2)); at stop 2 the kernel has only created a VMA of exactly that size (rw-p in maps) and RssAnon has not moved
	anon = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED) {
		fprintf(stderr, "mmap failed: %s\n", strerror(errno));
		return 1;
	}
	// LAB:STARTER
	// anon = malloc(page_size);
	// LAB:END
	stop_here();						/* 2 */

	/* 3. Touch it: each first write is a page fault that allocates a page. */
	// LAB:BEGIN touch: write to every page of the mapping once: each first write takes a minor page fault and gets its own physical page (a read would map the shared zero page instead)
	for (long i = 0; i < pages; i++)
		anon[i * page_size] = 1;
	// LAB:END
	stop_here();						/* 3 */

	/* 4. One page of a memfd, mapped twice: two virtual addresses, one frame. */
	fd = memfd_create("vm-lab", 0);
	if (fd < 0 || ftruncate(fd, page_size) < 0) {
		fprintf(stderr, "memfd_create/ftruncate failed: %s\n", strerror(errno));
		goto cleanup;
	}
	// LAB:BEGIN shared: give this process two virtual addresses for the memfd's one page, both mappings shared with the file rather than private copies (mmap(2)); write through one and read through the other, so that at stop 4 both page-table entries are present and point to the page cache's one frame
	shared1 = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	shared2 = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shared1 == MAP_FAILED || shared2 == MAP_FAILED) {
		fprintf(stderr, "mmap of the memfd failed: %s\n", strerror(errno));
		goto cleanup;
	}
	shared1[0] = 'x';
	(void)shared2[0];
	// LAB:END
	stop_here();						/* 4 */

	/* 5. fork(): the child shares every page until one of them writes. */
	child = fork();
	if (child < 0) {
		fprintf(stderr, "fork failed: %s\n", strerror(errno));
		goto cleanup;
	}
	if (child == 0) {
		stop_here();					/* 5 */
		// LAB:BEGIN cow: in the child, write to the first page of the anonymous mapping (only that one): the write faults and the kernel copies the page for the child (copy on write)
		anon[0] = 2;
		// LAB:END
		stop_here();					/* 6 */
		_exit(0);
	}
	if (waitpid(child, NULL, 0) < 0) {
		fprintf(stderr, "waitpid failed: %s\n", strerror(errno));
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}
