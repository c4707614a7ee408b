// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_hlt: the smallest virtual machine monitor (Lab 3, 深入 KVM).
 * It talks to the kernel's KVM through ioctl(2) on /dev/kvm: one VM, 64 KiB
 * of guest memory, one vCPU in real mode (all set up by vm_init, which you
 * write in vm_setup.h), one byte of guest code (0xf4 = HLT) at GUEST_ENTRY,
 * one KVM_RUN (vm_run, also in vm_setup.h). Then it prints why the guest stopped:
 *
 *     exit_reason=KVM_EXIT_HLT code=5 rip=0x1001 create_to_hlt_ns=<ns>
 *
 * Exit 0 only when the guest halted; 77 when /dev/kvm is absent; 1 otherwise
 * (each failing step prints "<ioctl> failed: <errno text>" on stderr).
 *
 * Build: gcc -O2 -Wall -o kvm_hlt kvm_hlt.c
 * Run:   sudo ./kvm_hlt
 */
#include "vm_setup.h"

#define HLT_OPCODE	0xf4

int main(void)
{
	struct kvm_regs regs = { 0 };
	unsigned int exit_reason = KVM_EXIT_UNKNOWN;
	struct vm v;
	uint64_t start, end = 0;
	int ret = 1, err, why;

	if (arm_watchdog(WATCHDOG_SECONDS) < 0)
		return 1;
	start = now_ns();

	/* 1, 2, 4, 5: /dev/kvm, the VM and its memory, the vCPU, real mode at GUEST_ENTRY (vm_setup.h). */
	err = vm_init(&v, GUEST_ENTRY);
	if (err) {
		vm_destroy(&v);
		return err == EXIT_SKIP ? EXIT_SKIP : 1;
	}

	// LAB:BEGIN 3. The guest's program: its only instruction, HLT_OPCODE, at guest physical address GUEST_ENTRY. Guest RAM is this process's v.mem: what you store there, the vCPU executes.
	v.mem[GUEST_ENTRY] = HLT_OPCODE;
	// LAB:END

	/* 6. Run the vCPU once: why the guest stopped (vm_setup.h). */
	why = vm_run(&v);
	if (why < 0)
		goto cleanup;
	exit_reason = (unsigned int)why;
	end = now_ns();

	/* 7. Report: where the guest stopped, and why. */
	if (v.vcpu >= 0 && ioctl(v.vcpu, KVM_GET_REGS, &regs) < 0)
		fprintf(stderr, "KVM_GET_REGS failed: %s\n", strerror(errno));
	printf("exit_reason=%s code=%u rip=0x%llx create_to_hlt_ns=%llu\n", exit_reason_name(exit_reason),
	       exit_reason, (unsigned long long)regs.rip, (unsigned long long)(end ? end - start : 0));
	if (exit_reason != KVM_EXIT_HLT) {
		if (v.run != MAP_FAILED)
			report_exit(v.run);
		else
			fprintf(stderr, "no kvm_run mapped: the vCPU never ran\n");
		goto cleanup;
	}
	ret = 0;

cleanup:
	alarm(0);
	vm_destroy(&v);
	return ret;
}
