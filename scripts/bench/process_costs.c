// SPDX-License-Identifier: GPL-2.0
/*
 * process_costs: what the process labs' mechanisms cost on this machine.
 *
 *     process_costs <MiB> <calls>
 *
 * prints key=value lines:
 *   syscall_ns      getppid(2) through syscall(2): a real kernel entry and exit
 *   vdso_ns         clock_gettime(CLOCK_MONOTONIC): the vDSO, no kernel entry
 *   small_faults, small_ns_per_page   first write to each 4 KiB page of <MiB>
 *                   MiB of anonymous memory with MADV_NOHUGEPAGE
 *   huge_faults, huge_ns_per_page, huge_kb     the same with MADV_HUGEPAGE on
 *                   a 2 MiB-aligned region (THP "madvise" or "always");
 *                   huge_kb is AnonHugePages the kernel reported for it
 * Faults are counted by getrusage(2) (ru_minflt), the kernel's count.
 * A harness program of `npm run bench -- process`.
 *
 * Build: gcc -O2 -Wall -o process_costs process_costs.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SMALL 4096UL
#define HUGE (2UL << 20)

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* AnonHugePages of the VMA starting at addr, from /proc/self/smaps (kB). */
static long anon_huge_kb(void *addr)
{
	char line[256], want[32];
	long kb = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strstr(line, " rw"))
			in = !strncmp(line, want, strlen(want));
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Touch every 4 KiB page of len bytes at p; ns per page and faults taken. */
static void touch(char *p, size_t len, double *ns_per_page, long *faults)
{
	long f0 = minflt();
	double t0 = now_ns();

	for (size_t off = 0; off < len; off += SMALL)
		p[off] = 1;
	*ns_per_page = (now_ns() - t0) / (len / SMALL);
	*faults = minflt() - f0;
}

int main(int argc, char **argv)
{
	size_t len;
	long calls, small_faults, huge_faults;
	double t0, sys_ns, vdso_ns, small_ns, huge_ns;
	struct timespec ts;
	char *small, *raw, *huge;

	if (argc != 3 || atol(argv[1]) < 2 || atol(argv[2]) < 1) {
		fprintf(stderr, "usage: %s <MiB >= 2> <calls>\n", argv[0]);
		return 2;
	}
	len = (size_t)atol(argv[1]) << 20 & ~(HUGE - 1);
	calls = atol(argv[2]);

	/* 1. A system call vs the vDSO. */
	t0 = now_ns();
	for (long i = 0; i < calls; i++)
		syscall(SYS_getppid);
	sys_ns = (now_ns() - t0) / calls;
	t0 = now_ns();
	for (long i = 0; i < calls; i++)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	vdso_ns = (now_ns() - t0) / calls;

	/* 2. First touch of 4 KiB pages. */
	small = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (small == MAP_FAILED || madvise(small, len, MADV_NOHUGEPAGE)) {
		fprintf(stderr, "mmap/madvise failed: %s\n", strerror(errno));
		return 1;
	}
	touch(small, len, &small_ns, &small_faults);
	munmap(small, len);

	/* 3. The same on huge pages: a 2 MiB-aligned region inside a larger mapping. */
	raw = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		fprintf(stderr, "mmap failed: %s\n", strerror(errno));
		return 1;
	}
	huge = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (madvise(huge, len, MADV_HUGEPAGE)) {
		fprintf(stderr, "madvise(MADV_HUGEPAGE) failed: %s\n", strerror(errno));
		return 1;
	}
	touch(huge, len, &huge_ns, &huge_faults);

	printf("syscall_ns=%.1f\nvdso_ns=%.1f\n", sys_ns, vdso_ns);
	printf("pages=%zu\nsmall_faults=%ld\nsmall_ns_per_page=%.1f\n", len / SMALL, small_faults, small_ns);
	printf("huge_faults=%ld\nhuge_ns_per_page=%.1f\nhuge_kb=%ld\n", huge_faults, huge_ns, anon_huge_kb(huge));
	munmap(raw, len + HUGE);
	return 0;
}
