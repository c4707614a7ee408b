// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_exits: what one VM exit costs. The guest executes `out 0x10, al`
 * N times (N is handed to it in ECX) and halts; each OUT is a round trip
 * guest -> KVM -> this VMM -> KVM -> guest. The VMM counts the exits, times
 * the whole run, and for comparison times N plain getppid(2) system calls:
 *
 *     exits=<n> expected=<N> ns_per_exit=<ns> syscall_ns=<ns> exit_reason=KVM_EXIT_HLT
 *
 * Exit 0 when the guest halted; 77 without /dev/kvm; 1 otherwise.
 *
 * Build: gcc -O2 -Wall -o kvm_exits kvm_exits.c
 * Run:   sudo ./kvm_exits 100000
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include "vm_setup.h"

#define COUNT_PORT	0x10
#define SYSCALL_LOOPS_MAX 1000000

/*
 * The guest, 16-bit real mode at GUEST_ENTRY, ECX = N on entry:
 * loop:	out 0x10, al		; E6 10      -> KVM_EXIT_IO
 *	dec ecx			; 66 49
 *	jnz loop		; 75 FA
 *	hlt			; F4         -> KVM_EXIT_HLT
 */
static const uint8_t guest_code[] = { 0xe6, COUNT_PORT, 0x66, 0x49, 0x75, 0xfa, 0xf4 };

int main(int argc, char **argv)
{
	unsigned long n, exits = 0, loops, i;
	uint64_t t0, t1, s0, s1;
	struct kvm_regs regs;
	struct vm v;
	int ret = 1, err;

	n = argc == 2 ? strtoul(argv[1], NULL, 0) : 0;
	if (n == 0 || n > 0xffffffffUL) {
		fprintf(stderr, "usage: %s <number of OUT instructions, 1..2^32-1>\n", argv[0]);
		return 2;
	}

	err = vm_init(&v, GUEST_ENTRY);
	if (err) {
		vm_destroy(&v);
		return err == EXIT_SKIP ? EXIT_SKIP : 1;
	}
	memcpy(v.mem + GUEST_ENTRY, guest_code, sizeof(guest_code));
	if (ioctl(v.vcpu, KVM_GET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_GET_REGS failed: %s\n", strerror(errno));
		goto cleanup;
	}
	regs.rcx = n;
	if (ioctl(v.vcpu, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_SET_REGS failed: %s\n", strerror(errno));
		goto cleanup;
	}
	if (arm_watchdog(WATCHDOG_SECONDS * 6) < 0)
		goto cleanup;

	t0 = now_ns();
	// LAB:BEGIN The run loop of a VMM: run the guest (vm_run) until it halts, counting in `exits` each OUT to COUNT_PORT the kernel hands back (api.rst 5, struct kvm_run). Any other exit: report_exit() and goto cleanup; so does a failed run.
	for (;;) {
		int reason = vm_run(&v);

		if (reason < 0)
			goto cleanup;
		if (reason == KVM_EXIT_HLT)
			break;
		if (reason != KVM_EXIT_IO || v.run->io.port != COUNT_PORT || v.run->io.direction != KVM_EXIT_IO_OUT) {
			report_exit(v.run);
			goto cleanup;
		}
		exits++;
	}
	// LAB:END
	t1 = now_ns();

	/* The same number of the cheapest round trip into the kernel, for scale. */
	loops = n < SYSCALL_LOOPS_MAX ? n : SYSCALL_LOOPS_MAX;
	s0 = now_ns();
	for (i = 0; i < loops; i++)
		syscall(SYS_getppid);
	s1 = now_ns();

	printf("exits=%lu expected=%lu ns_per_exit=%.1f syscall_ns=%.1f exit_reason=%s\n", exits, n,
	       exits ? (double)(t1 - t0) / (double)exits : 0.0, (double)(s1 - s0) / (double)loops,
	       exit_reason_name(v.run->exit_reason));
	ret = v.run->exit_reason == KVM_EXIT_HLT ? 0 : 1;

cleanup:
	alarm(0);
	vm_destroy(&v);
	return ret;
}
