// SPDX-License-Identifier: GPL-2.0
/*
 * sayhello_test - Lab K3's user side: calls the new system call three ways
 * and prints one machine-readable line, which the spec reads from the
 * serial console of the QEMU guest:
 *
 *     sayhello nr=451 ok=5/0 oversized=-1/22 negative=-1/22 badptr=-1/14
 *
 * Each field is <return value>/<errno> (errno 0 when the call succeeded):
 *   ok         syscall(nr, "hello", 5)
 *   oversized  syscall(nr, a 4096-byte buffer, 4096)   (length check)
 *   negative   syscall(nr, "hello", -1)                 (length check)
 *   edge       syscall(nr, a 512-byte buffer, 512)     (no room left for the NUL: EINVAL)
 *   badptr     syscall(nr, (char *)BAD_POINTER, 5)      (copy_from_user)
 * An unknown syscall number gives -1/38 (ENOSYS) everywhere.
 *
 * Build: gcc -O2 -Wall -static -o sayhello_test sayhello_test.c
 * Run:   ./sayhello_test [nr]     (inside the guest; default nr 451)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NR_SAYHELLOWORLD 451
#define OVERSIZED_LEN 4096
/* An address no user program can read: the start of the kernel's direct map. */
#define BAD_POINTER 0xffff888000000000UL

struct outcome {
	long ret;
	int err;
};

static struct outcome call(long nr, const char *words, int count)
{
	struct outcome o;

	errno = 0;
	o.ret = syscall(nr, words, count);
	o.err = o.ret < 0 ? errno : 0;
	return o;
}

int main(int argc, char **argv)
{
	static char big[OVERSIZED_LEN];
	struct outcome ok, oversized, negative, edge, badptr;
	long nr = NR_SAYHELLOWORLD;

	if (argc > 1)
		nr = strtol(argv[1], NULL, 0);
	memset(big, 'A', sizeof(big));

	ok = call(nr, "hello", 5);
	oversized = call(nr, big, OVERSIZED_LEN);
	negative = call(nr, "hello", -1);
	edge = call(nr, big, 512);
	badptr = call(nr, (const char *)BAD_POINTER, 5);

	printf("sayhello nr=%ld ok=%ld/%d oversized=%ld/%d negative=%ld/%d edge=%ld/%d badptr=%ld/%d\n",
	       nr, ok.ret, ok.err, oversized.ret, oversized.err,
	       negative.ret, negative.err, edge.ret, edge.err, badptr.ret, badptr.err);
	return 0;
}
