// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_hlt: the smallest virtual machine monitor (Lab 3, 深入 KVM).
 * It talks to the kernel's KVM through ioctl(2) on /dev/kvm: one VM, 64 KiB
 * of guest memory, one byte of guest code (0xf4 = HLT) at GUEST_ENTRY, one
 * vCPU in real mode, one KVM_RUN. Then it prints why the guest stopped:
 *
 *     exit_reason=KVM_EXIT_HLT code=5 rip=0x1001 create_to_hlt_ns=<ns>
 *
 * Exit 0 only when the guest halted; 77 when /dev/kvm is absent; 1 otherwise
 * (each failing step prints "<ioctl> failed: <errno text>" on stderr).
 *
 * Build: gcc -O2 -Wall -o kvm_hlt kvm_hlt.c
 * Run:   sudo ./kvm_hlt
 */
#include "vmm.h"

#define HLT_OPCODE	0xf4

int main(void)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run = NULL;
	uint8_t *mem = MAP_FAILED;
	unsigned int exit_reason = KVM_EXIT_UNKNOWN;
	int kvm, vm = -1, vcpu = -1, api, mmap_size = 0;
	uint64_t start, end = 0;
	int ret = 1;

	(void)region;
	(void)sregs;
	(void)mmap_size;

	/* 1. Open /dev/kvm and check the API version (always 12). */
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "open /dev/kvm failed: %s\n", strerror(errno));
		return errno == ENOENT ? EXIT_SKIP : 1;
	}
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "KVM_GET_API_VERSION failed: got %d, expected %d\n", api, KVM_API_VERSION);
		goto cleanup;
	}
	if (arm_watchdog(WATCHDOG_SECONDS) < 0)
		goto cleanup;
	start = now_ns();

	// LAB:BEGIN 2. create the VM (KVM_CREATE_VM on the /dev/kvm fd), mmap GUEST_MEM_SIZE bytes (MAP_SHARED|MAP_ANONYMOUS) into mem, and hand them to the VM with KVM_SET_USER_MEMORY_REGION (slot 0, guest_phys_addr 0); on failure print "<ioctl> failed: %s" with strerror(errno) and goto cleanup
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "KVM_CREATE_VM failed: %s\n", strerror(errno));
		goto cleanup;
	}
	mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "mmap guest memory failed: %s\n", strerror(errno));
		goto cleanup;
	}
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fprintf(stderr, "KVM_SET_USER_MEMORY_REGION failed: %s\n", strerror(errno));
		goto cleanup;
	}
	// LAB:STARTER
	// vm = ioctl(kvm, KVM_CREATE_VM, 0);
	// LAB:END

	// LAB:BEGIN 3. write the guest's only instruction, HLT_OPCODE, at mem[GUEST_ENTRY]
	mem[GUEST_ENTRY] = HLT_OPCODE;
	// LAB:END

	// LAB:BEGIN 4. create vCPU 0 (KVM_CREATE_VCPU on the VM fd), get the size of its shared struct kvm_run (KVM_GET_VCPU_MMAP_SIZE on the /dev/kvm fd) and mmap it from the vCPU fd into run
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "KVM_CREATE_VCPU failed: %s\n", strerror(errno));
		goto cleanup;
	}
	mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(*run)) {
		fprintf(stderr, "KVM_GET_VCPU_MMAP_SIZE failed: %s\n", strerror(errno));
		goto cleanup;
	}
	run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		run = NULL;
		fprintf(stderr, "mmap kvm_run failed: %s\n", strerror(errno));
		goto cleanup;
	}
	// LAB:END

	// LAB:BEGIN 5. real mode: KVM_GET_SREGS, set cs.base and cs.selector to 0, KVM_SET_SREGS; then KVM_SET_REGS with rip = GUEST_ENTRY and rflags = 0x2 (bit 1 is reserved, must be 1)
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_GET_SREGS failed: %s\n", strerror(errno));
		goto cleanup;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_SET_SREGS failed: %s\n", strerror(errno));
		goto cleanup;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_ENTRY;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_SET_REGS failed: %s\n", strerror(errno));
		goto cleanup;
	}
	// LAB:END

	// LAB:BEGIN 6. run the vCPU with KVM_RUN (on failure print "KVM_RUN failed: %s" and goto cleanup), then set exit_reason from run->exit_reason
	if (ioctl(vcpu, KVM_RUN, 0) < 0) {
		fprintf(stderr, "KVM_RUN failed: %s\n", strerror(errno));
		goto cleanup;
	}
	exit_reason = run->exit_reason;
	// LAB:END
	end = now_ns();

	/* 7. Report: where the guest stopped, and why. */
	memset(&regs, 0, sizeof(regs));
	if (vcpu >= 0 && ioctl(vcpu, KVM_GET_REGS, &regs) < 0)
		fprintf(stderr, "KVM_GET_REGS failed: %s\n", strerror(errno));
	printf("exit_reason=%s code=%u rip=0x%llx create_to_hlt_ns=%llu\n", exit_reason_name(exit_reason),
	       exit_reason, (unsigned long long)regs.rip, (unsigned long long)(end ? end - start : 0));
	if (exit_reason != KVM_EXIT_HLT) {
		if (run)
			report_exit(run);
		else
			fprintf(stderr, "no kvm_run mapped: the vCPU never ran\n");
		goto cleanup;
	}
	ret = 0;

cleanup:
	alarm(0);
	if (run)
		munmap(run, (size_t)mmap_size);
	if (mem != MAP_FAILED)
		munmap(mem, GUEST_MEM_SIZE);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return ret;
}
