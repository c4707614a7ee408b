// SPDX-License-Identifier: GPL-2.0
/*
 * sayhello.c - Lab K3: the seed's new system call, sys_sayhelloworld.
 *
 * A user program passes a string and its length; the kernel copies the
 * string into a buffer of its own (never trusting the user's pointer or
 * length) and prints it to the kernel log:
 *
 *     User Mode says hello to the Kernel Mode!
 *
 * Contract (what the spec checks):
 *   0 <= count < SAYHELLO_MAX  otherwise -EINVAL, nothing printed
 *   words not readable          -EFAULT, nothing printed
 *   success                     the number of bytes copied (count)
 *
 * This file is not built on its own: helpers/kernel/kbuild.ts copies it to
 * kernel/sayhello.c in the linux-source-6.1 tree, adds "obj-y += sayhello.o"
 * to kernel/Makefile and the entry of syscall_64.tbl (next to this file) to
 * arch/x86/entry/syscalls/syscall_64.tbl, then runs make -j$(nproc) bzImage.
 * Build: npx tsx helpers/kernel/kbuild.ts   (or let labs/kernel/K3-syscall build it)
 *
 * Unlike the seed (Linux 4.15), the function is defined with SYSCALL_DEFINE2:
 * since 4.17 the x86-64 table calls __x64_sys_<name>(struct pt_regs *), a
 * wrapper that only the SYSCALL_DEFINEx macros generate.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/syscalls.h>
#include <linux/uaccess.h>

/* Longest message (including its terminating NUL) the kernel accepts. */
#define SAYHELLO_MAX 512

SYSCALL_DEFINE2(sayhelloworld, const char __user *, words, int, count)
{
	// LAB:BEGIN implement the contract at the top of this file: a length the kernel's own SAYHELLO_MAX buffer cannot hold is invalid; the user's bytes may only be read through the uaccess interface (include/linux/uaccess.h: what its return value means), never by dereferencing words; the message line is printed to the kernel log exactly as shown above, as a C string
	char buffer[SAYHELLO_MAX];

	if (count < 0 || count >= SAYHELLO_MAX)
		return -EINVAL;
	if (copy_from_user(buffer, words, count))
		return -EFAULT;
	buffer[count] = '\0';
	pr_info("User Mode says %s to the Kernel Mode!\n", buffer);
	return count;
	// LAB:STARTER
	// return -ENOSYS;
	// LAB:END
}
