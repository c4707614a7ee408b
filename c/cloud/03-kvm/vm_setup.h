/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vm_setup.h: the set-up every VMM of Lab 3 needs (you write it once; kvm_hlt,
 * kvm_io and kvm_exits all call vm_init and vm_run): /dev/kvm, a VM with GUEST_MEM_SIZE
 * bytes of guest memory at guest physical 0, one vCPU whose struct kvm_run is
 * mapped into this process, in real mode at `entry`.
 *
 * vm_init returns 0; or prints "<ioctl> failed: <the reason for errno>" on stderr
 * and returns -1 (EXIT_SKIP when /dev/kvm is absent). The caller calls
 * vm_destroy() in both cases.
 *
 * vm_run runs the vCPU until the guest does something the kernel hands back
 * to this VMM (a VM exit to user space) and returns why: the exit reason
 * (KVM_EXIT_*), or -1 after printing "KVM_RUN failed: <the reason for errno>".
 *
 * Read: Documentation/virt/kvm/api.rst (4.2 KVM_GET_API_VERSION and on),
 * <linux/kvm.h>, ioctl(2), mmap(2).
 */
#ifndef LAB_VM_SETUP_H
#define LAB_VM_SETUP_H

#include "vmm.h"

static inline int vm_init(struct vm *v, uint64_t entry)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int api, mmap_size = 0;

	memset(v, 0, sizeof(*v));
	v->kvm = v->vm = v->vcpu = -1;
	v->mem = MAP_FAILED;
	v->run = MAP_FAILED;
	(void)region;
	(void)sregs;
	(void)regs;
	(void)mmap_size;
	(void)entry;

	/* 1. Open /dev/kvm and check the API version (always 12). */
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0) {
		fprintf(stderr, "open /dev/kvm failed: %s\n", strerror(errno));
		return errno == ENOENT ? EXIT_SKIP : -1;
	}
	api = ioctl(v->kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "KVM_GET_API_VERSION failed: got %d, expected %d\n", api, KVM_API_VERSION);
		return -1;
	}

	// LAB:BEGIN 2. A VM and its memory. The VM is a file descriptor you get from the /dev/kvm fd (api.rst 4.2, KVM_CREATE_VM). Guest RAM is ordinary memory of this process, GUEST_MEM_SIZE bytes in v->mem (mmap(2)), which the VM then sees at guest physical address 0 as memory slot 0 (api.rst 4.35). Each failing step prints "<ioctl name> failed: <the reason for errno>" and returns -1.
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0) {
		fprintf(stderr, "KVM_CREATE_VM failed: %s\n", strerror(errno));
		return -1;
	}
	v->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (v->mem == MAP_FAILED) {
		fprintf(stderr, "mmap guest memory failed: %s\n", strerror(errno));
		return -1;
	}
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)v->mem;
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fprintf(stderr, "KVM_SET_USER_MEMORY_REGION failed: %s\n", strerror(errno));
		return -1;
	}
	// LAB:END

	// LAB:BEGIN 4. A vCPU. It is a file descriptor you get from the VM fd (api.rst 4.7). Its struct kvm_run, where KVM_RUN reports why the guest stopped, is shared with the kernel: map it from the vCPU fd into v->run (mmap(2)); how many bytes (v->run_size) the /dev/kvm fd tells you (api.rst 4.5).
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0) {
		fprintf(stderr, "KVM_CREATE_VCPU failed: %s\n", strerror(errno));
		return -1;
	}
	mmap_size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		fprintf(stderr, "KVM_GET_VCPU_MMAP_SIZE failed: %s\n", strerror(errno));
		return -1;
	}
	v->run_size = (size_t)mmap_size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		fprintf(stderr, "mmap kvm_run failed: %s\n", strerror(errno));
		return -1;
	}
	// LAB:END

	// LAB:BEGIN 5. Real mode at `entry`. A new vCPU starts like a PC at reset: real mode, its code segment near the top of the first MiB, while this guest's code is at the bottom. Make the first instruction it runs the one at guest physical `entry` (in real mode an address is code segment base + instruction pointer; the data segments already start at 0): the code segment is among the special registers (api.rst 4.13, 4.14), the instruction pointer and rflags among the general ones (4.12; rflags bit 1 is reserved and must be 1). The spec expects the special registers set before the general ones.
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_GET_SREGS failed: %s\n", strerror(errno));
		return -1;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_SET_SREGS failed: %s\n", strerror(errno));
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rflags = 0x2;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_SET_REGS failed: %s\n", strerror(errno));
		return -1;
	}
	// LAB:END
	return 0;
}

static inline int vm_run(struct vm *v)
{
	// LAB:BEGIN 6. Run the vCPU (api.rst 4.10, KVM_RUN on the vCPU fd; on failure print "KVM_RUN failed: <the reason for errno>" and return -1). The call returns when the guest does something the kernel hands back to this VMM; why is in the shared struct kvm_run: return it.
	if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
		fprintf(stderr, "KVM_RUN failed: %s\n", strerror(errno));
		return -1;
	}
	return (int)v->run->exit_reason;
	// LAB:STARTER
	// (void)v;
	// return KVM_EXIT_UNKNOWN;
	// LAB:END
}

#endif /* LAB_VM_SETUP_H */
