// SPDX-License-Identifier: GPL-2.0
/*
 * getcpu_trigger - Lab K2's guest program: makes one getcpu(2) system call
 * (number 309 on x86-64) with a recognisable third argument, so that the
 * gdb breakpoint in the kernel can tell this call from any other:
 *
 *     syscall(SYS_getcpu, &cpu, &node, (void *)TRIGGER_MAGIC)
 *
 * (the third argument, "tcache", has been ignored by the kernel since
 * 2.6.24). Prints one machine-readable line:
 *
 *     getcpu_trigger nr=309 ret=0 cpu=0 node=0 magic=0x4b4c4b32
 *
 * Build: gcc -O2 -Wall -static -o getcpu_trigger getcpu_trigger.c
 * Run:   ./getcpu_trigger [magic]   (in the QEMU guest of lab K2; the spec
 *        passes a magic chosen at random, so that only a breakpoint that
 *        really stopped in this call can read it from regs->dx)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TRIGGER_MAGIC 0x4b4c4b32UL /* "KLK2" */

int main(int argc, char **argv)
{
	unsigned int cpu = ~0U, node = ~0U;
	unsigned long magic = argc > 1 ? strtoul(argv[1], NULL, 0) : TRIGGER_MAGIC;
	long ret;

	ret = syscall(SYS_getcpu, &cpu, &node, (void *)magic);
	if (ret < 0) {
		fprintf(stderr, "getcpu failed: %s\n", strerror(errno));
		return 1;
	}
	printf("getcpu_trigger nr=%d ret=%ld cpu=%u node=%u magic=%#lx\n",
	       SYS_getcpu, ret, cpu, node, magic);
	return 0;
}
