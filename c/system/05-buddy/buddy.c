// System Lab 5 — 内存管理: physical memory, zones and the buddy allocator.
//
//   buddy <huge> <small>
//
// Takes <huge> blocks of order 9 (2 MiB, one transparent huge page each) and
// <small> pages of order 0 (4 KiB each) from the kernel's buddy allocator, and
// shows what that did to the free lists of /proc/buddyinfo:
//
//   before <zone> <c0> … <c10>     the free blocks of each order, before
//   huge <i> <vaddr> pfn <pfn>     the physical frame of each 2 MiB region (/proc/self/pagemap)
//   after <zone> <c0> … <c10>      the free blocks, after
//   delta <zone> <d0> … <d10>      after − before, per order
//   ready
//
// Then it holds the memory until its stdin ends, releases it and exits 0.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ORDERS 11              /* MAX_ORDER (NR_PAGE_ORDERS): orders 0 … 10 */
#define MAX_ZONES 8
#define PAGE 4096UL
#define HUGE (512 * PAGE)      /* order 9: 2^9 pages */

struct zone_free {
	char zone_name[16];
	long count[ORDERS];        /* free blocks of each order */
};

/* Fill z[] with the free-block counts of every zone of /proc/buddyinfo; the number of zones, -1 on error. */
static int read_buddyinfo(struct zone_free *z, int max)
{
	// LAB:BEGIN parse /proc/buddyinfo: one line per zone, "Node 0, zone Normal" then the 11 counts
	FILE *f = fopen("/proc/buddyinfo", "r");
	if (!f)
		return -1;
	int n = 0;
	char row[512];
	while (n < max && fgets(row, sizeof row, f)) {
		char *p = strstr(row, "zone");
		if (!p)
			continue;
		p += 4;
		int used = 0;
		if (sscanf(p, " %15s%n", z[n].zone_name, &used) != 1)
			continue;
		p += used;
		for (int k = 0; k < ORDERS; k++)
			z[n].count[k] = strtol(p, &p, 10);
		n++;
	}
	fclose(f);
	return n;
	// LAB:STARTER
	// (void)z; (void)max;
	// return 0;
	// LAB:END
}

/* Map <n> regions of 2 MiB, each backed by one order-9 page: their addresses in out[]. 0 on success. */
static int alloc_huge(int n, char **out)
{
	// LAB:BEGIN a transparent huge page: a 2 MiB-aligned anonymous region, asked for with madvise(2) (THP is "madvise" here), then touched
	for (int idx = 0; idx < n; idx++) {
		char *raw = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (raw == MAP_FAILED)
			return -1;
		char *a = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
		if (a > raw)
			munmap(raw, a - raw);
		munmap(a + HUGE, raw + 2 * HUGE - (a + HUGE));
		if (madvise(a, HUGE, MADV_HUGEPAGE) != 0)
			return -1;
		a[0] = 1;
		out[idx] = a;
	}
	return 0;
	// LAB:STARTER
	// (void)n; (void)out;
	// return 0;
	// LAB:END
}

/* Map <n> pages of 4 KiB, each backed by its own order-0 page (never a huge one). NULL on error. */
static char *alloc_small(long n)
{
	// LAB:BEGIN ordinary pages: an anonymous region that must not become huge, each page touched once
	char *a = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return NULL;
	madvise(a, n * PAGE, MADV_NOHUGEPAGE);
	for (long i = 0; i < n; i++)
		a[i * PAGE] = 1;
	return a;
	// LAB:STARTER
	// (void)n;
	// return NULL;
	// LAB:END
}

/* The page frame number that backs virtual address <va> (/proc/self/pagemap, as root); 0 if not present. */
static uint64_t pfn_of(const void *va)
{
	// LAB:BEGIN one 64-bit entry per virtual page: bit 63 "present", bits 0–54 the PFN (Documentation/admin-guide/mm/pagemap.rst)
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return 0;
	uint64_t e = 0;
	off_t off = (off_t)((uintptr_t)va / PAGE) * sizeof e;
	ssize_t r = pread(fd, &e, sizeof e, off);
	close(fd);
	if (r != sizeof e || !(e >> 63))
		return 0;
	return e & ((1ULL << 55) - 1);
	// LAB:STARTER
	// (void)va;
	// return 0;
	// LAB:END
}

static void print_zones(const char *tag, const struct zone_free *z, int n)
{
	for (int row = 0; row < n; row++) {
		printf("%s %s", tag, z[row].zone_name);
		for (int k = 0; k < ORDERS; k++)
			printf(" %ld", z[row].count[k]);
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s <huge 2 MiB blocks> <small 4 KiB pages>\n", argv[0]);
		return 2;
	}
	int huge = atoi(argv[1]);
	long small = atol(argv[2]);
	if (huge < 0 || huge > 256 || small < 0) {
		fprintf(stderr, "buddy: counts out of range\n");
		return 2;
	}
	struct zone_free before[MAX_ZONES], after[MAX_ZONES];
	char **regions = calloc(huge + 1, sizeof *regions);
	int nb = read_buddyinfo(before, MAX_ZONES);
	if (nb < 0 || !regions) {
		perror("buddy: /proc/buddyinfo");
		return 1;
	}
	print_zones("before", before, nb);
	fflush(stdout);

	if (alloc_huge(huge, regions) != 0) {
		perror("buddy: huge pages");
		return 1;
	}
	char *pages = small ? alloc_small(small) : NULL;
	if (small && !pages)
		fprintf(stderr, "buddy: small pages: %s\n", strerror(errno));
	int na = read_buddyinfo(after, MAX_ZONES);

	for (int i = 0; i < huge; i++)
		if (regions[i])
			printf("huge %d %p pfn 0x%llx\n", i, (void *)regions[i], (unsigned long long)pfn_of(regions[i]));
	print_zones("after", after, na);
	for (int i = 0; i < nb && i < na; i++) {
		struct zone_free d = before[i];
		for (int k = 0; k < ORDERS; k++)
			d.count[k] = after[i].count[k] - before[i].count[k];
		print_zones("delta", &d, 1);
	}
	printf("ready\n");
	fflush(stdout);

	/* Hold everything until stdin ends: the spec reads /proc/buddyinfo meanwhile. */
	char buf[256];
	while (read(0, buf, sizeof buf) > 0)
		;
	for (int i = 0; i < huge; i++)
		if (regions[i])
			munmap(regions[i], HUGE);
	if (pages)
		munmap(pages, small * PAGE);
	free(regions);
	return 0;
}
