// SPDX-License-Identifier: GPL-2.0
/*
 * misalign.so: a harness preload of Lab 4.3 (the student never edits it).
 *
 * Since Linux 6.7 the kernel places an anonymous mapping whose length is a
 * multiple of 2 MiB on a 2 MiB boundary by itself (thp_get_unmapped_area),
 * so on such a kernel a program that never aligns its region looks right;
 * on 6.1 or 5.15 it does not. This preload takes the kernel's help away: an
 * anonymous mmap(NULL, len >= 2 MiB, …) without MAP_FIXED goes to the kernel
 * with a hint a random number of 4 KiB pages (1–511) past a random 2 MiB
 * boundary, which the kernel honours when that range is free — as an older
 * kernel's placement would be. A
 * program that aligns by itself (map more, trim the ends) gets its aligned
 * region all the same.
 *
 * The spec chooses the hints: with KL_MISALIGN_BASE=<hex, 2 MiB-aligned> the
 * k-th such mmap (k = 0, 1, …) asks for KL_MISALIGN_BASE + k GiB + P × 4 KiB,
 * P from KL_MISALIGN_PAGES (1–511, random per run; random per call when
 * unset), so that no constant offset undoes it and the spec can tell, from the mmap calls the kernel records, an address
 * the kernel (or this preload) chose from one the program chose itself.
 *
 * Build: gcc -O2 -shared -fPIC -o misalign.so misalign.c
 * Use:   LD_PRELOAD=./misalign.so ./thp 16
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HUGE (2UL << 20)

static void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static unsigned long calls;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!addr && (flags & MAP_ANONYMOUS) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && len >= HUGE) {
		const char *base = getenv("KL_MISALIGN_BASE");
		unsigned long k = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
		const char *pages = getenv("KL_MISALIGN_PAGES");
		uint32_t r[2] = { 0, 0 };
		unsigned long p;

		if (getrandom(r, sizeof(r), 0) != sizeof(r))
			r[0] = r[1] = (uint32_t)getpid();
		p = pages && *pages ? strtoul(pages, NULL, 10) : 0;
		if (p < 1 || p > 511)
			p = 1 + r[1] % 511;
		if (base && *base) {
			addr = (void *)(strtoul(base, NULL, 16) + (k % 64) * (1UL << 30) + p * 4096);
		} else {
			/* 0x7e00_0000_0000 + a random 2 MiB slot in 256 GiB, + 1–511 pages: below the stack, above everything else. */
			addr = (void *)(0x7e0000000000UL + (r[0] % (1U << 17)) * HUGE + p * 4096);
		}
	}
	return raw_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));
