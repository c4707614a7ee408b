// SPDX-License-Identifier: GPL-2.0
/*
 * misalign.so: a harness preload of Lab 4.3 (the student never edits it).
 *
 * Since Linux 6.7 the kernel places an anonymous mapping whose length is a
 * multiple of 2 MiB on a 2 MiB boundary by itself (thp_get_unmapped_area),
 * so on such a kernel a program that never aligns its region looks right;
 * on 6.1 or 5.15 it does not. This preload takes the kernel's help away: an
 * anonymous mmap(NULL, len >= 2 MiB, …) without MAP_FIXED goes to the kernel
 * with a hint 4 KiB past a random 2 MiB boundary, which the kernel honours
 * when that range is free — as an older kernel's placement would be. A
 * program that aligns by itself (map more, trim the ends) gets its aligned
 * region all the same.
 *
 * Build: gcc -O2 -shared -fPIC -o misalign.so misalign.c
 * Use:   LD_PRELOAD=./misalign.so ./thp 16
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HUGE (2UL << 20)

static void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!addr && (flags & MAP_ANONYMOUS) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && len >= HUGE) {
		uint32_t r = 0;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)getpid();
		/* 0x7e00_0000_0000 + a random 2 MiB slot in 256 GiB, + 4 KiB: below the stack, above everything else. */
		addr = (void *)(0x7e0000000000UL + (r % (1U << 17)) * HUGE + 4096);
	}
	return raw_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));
