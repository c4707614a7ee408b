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
 * Both are taken before main() and wiped from the environment (the strings
 * too, so /proc/self/environ no longer shows them): a program that read how
 * far the preload moves its mapping would shift by that instead of aligning.
 * With KL_MISALIGN_PROGRAM=<path> only that executable takes them: a wrapper
 * in front of it (the harness's sandbox: setpriv, sh) leaves them for it.
 *
 * Build: gcc -O2 -shared -fPIC -o misalign.so misalign.c
 * Use:   LD_PRELOAD=./misalign.so ./thp 16
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HUGE (2UL << 20)

static void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static unsigned long calls, hint_base, hint_pages;

/* Take KL_MISALIGN_BASE and KL_MISALIGN_PAGES before main() and wipe them: the program never learns the offset. */
static unsigned long take(const char *name, int hex)
{
	char *v = getenv(name);
	unsigned long x = v && *v ? strtoul(v, NULL, hex ? 16 : 10) : 0;

	if (v) {
		for (char *c = v; *c; c++)
			*c = '\0';
		unsetenv(name);
	}
	return x;
}

__attribute__((constructor)) static void take_hints(void)
{
	const char *program = getenv("KL_MISALIGN_PROGRAM");
	char exe[4096];
	ssize_t n;

	if (program && *program) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return;
		exe[n] = '\0';
		if (strcmp(exe, program))
			return;		/* a wrapper: the hints are for the program it starts */
	}
	hint_base = take("KL_MISALIGN_BASE", 1);
	hint_pages = take("KL_MISALIGN_PAGES", 0);
	take("KL_MISALIGN_PROGRAM", 0);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!addr && (flags & MAP_ANONYMOUS) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && len >= HUGE) {
		unsigned long k = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
		uint32_t r[2] = { 0, 0 };
		unsigned long p;

		if (getrandom(r, sizeof(r), 0) != sizeof(r))
			r[0] = r[1] = (uint32_t)getpid();
		p = hint_pages;
		if (p < 1 || p > 511)
			p = 1 + r[1] % 511;
		if (hint_base) {
			addr = (void *)(hint_base + (k % 64) * (1UL << 30) + p * 4096);
		} else {
			/* 0x7e00_0000_0000 + a random 2 MiB slot in 256 GiB, + 1–511 pages: below the stack, above everything else. */
			addr = (void *)(0x7e0000000000UL + (r[0] % (1U << 17)) * HUGE + p * 4096);
		}
	}
	return raw_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));
