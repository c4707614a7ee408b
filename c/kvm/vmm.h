/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmm.h: the pieces every tiny VMM of Lab 3 shares — the names of KVM exit
 * reasons, a watchdog that turns a guest that never exits into an EINTR from
 * KVM_RUN, and (for kvm_io.c and kvm_exits.c) the whole set-up that
 * kvm_hlt.c does by hand: /dev/kvm, a VM with MEM_SIZE bytes of guest memory
 * at guest physical 0, one vCPU in real mode at a given entry point.
 *
 * Header only; included by kvm_hlt.c, kvm_io.c, kvm_exits.c.
 */
#ifndef LAB_VMM_H
#define LAB_VMM_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_MEM_SIZE	0x10000		/* 64 KiB: one real-mode segment */
#define GUEST_ENTRY	0x1000		/* guest physical address of the first instruction */
#define EXIT_SKIP	77		/* the host lacks /dev/kvm */
#define WATCHDOG_SECONDS 10		/* a guest that never exits is stopped after this */

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "KVM_EXIT_UNKNOWN",
	[KVM_EXIT_EXCEPTION] = "KVM_EXIT_EXCEPTION",
	[KVM_EXIT_IO] = "KVM_EXIT_IO",
	[KVM_EXIT_HYPERCALL] = "KVM_EXIT_HYPERCALL",
	[KVM_EXIT_DEBUG] = "KVM_EXIT_DEBUG",
	[KVM_EXIT_HLT] = "KVM_EXIT_HLT",
	[KVM_EXIT_MMIO] = "KVM_EXIT_MMIO",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "KVM_EXIT_IRQ_WINDOW_OPEN",
	[KVM_EXIT_SHUTDOWN] = "KVM_EXIT_SHUTDOWN",
	[KVM_EXIT_FAIL_ENTRY] = "KVM_EXIT_FAIL_ENTRY",
	[KVM_EXIT_INTR] = "KVM_EXIT_INTR",
	[KVM_EXIT_INTERNAL_ERROR] = "KVM_EXIT_INTERNAL_ERROR",
	[KVM_EXIT_SYSTEM_EVENT] = "KVM_EXIT_SYSTEM_EVENT",
};

static inline const char *exit_reason_name(unsigned int reason)
{
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	return "KVM_EXIT_OTHER";
}

/* Describe an unexpected exit on stderr (what a student needs to debug it). */
static inline void report_exit(const struct kvm_run *run)
{
	fprintf(stderr, "unexpected exit: %s (%u)", exit_reason_name(run->exit_reason), run->exit_reason);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		fprintf(stderr, " suberror=%u", run->internal.suberror);
	if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		fprintf(stderr, " hardware_entry_failure_reason=0x%llx",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	if (run->exit_reason == KVM_EXIT_MMIO)
		fprintf(stderr, " mmio phys_addr=0x%llx", (unsigned long long)run->mmio.phys_addr);
	if (run->exit_reason == KVM_EXIT_IO)
		fprintf(stderr, " io port=0x%x direction=%s", run->io.port,
			run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in");
	fputc('\n', stderr);
}

static void watchdog_fired(int sig)
{
	(void)sig;	/* only interrupts KVM_RUN, which then fails with EINTR */
}

/* After `seconds`, a KVM_RUN in progress returns -1/EINTR instead of hanging. */
static inline int arm_watchdog(unsigned int seconds)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watchdog_fired;	/* no SA_RESTART: KVM_RUN must return */
	if (sigaction(SIGALRM, &sa, NULL) < 0) {
		fprintf(stderr, "sigaction failed: %s\n", strerror(errno));
		return -1;
	}
	alarm(seconds);
	return 0;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct vm {
	int kvm;
	int vm;
	int vcpu;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_size;
};

static inline void vm_destroy(struct vm *v)
{
	if (v->run && v->run != MAP_FAILED)
		munmap(v->run, v->run_size);
	if (v->mem && v->mem != MAP_FAILED)
		munmap(v->mem, GUEST_MEM_SIZE);
	if (v->vcpu >= 0)
		close(v->vcpu);
	if (v->vm >= 0)
		close(v->vm);
	if (v->kvm >= 0)
		close(v->kvm);
}

/*
 * The whole set-up of kvm_hlt.c in one call: returns 0, or prints
 * "<ioctl> failed: <errno>" and returns -1 (EXIT_SKIP when /dev/kvm is absent).
 */
static inline int vm_init(struct vm *v, uint64_t entry)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int api, mmap_size;

	memset(v, 0, sizeof(*v));
	v->kvm = v->vm = v->vcpu = -1;

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
	/* Real mode: code and data segments at base 0, so guest addresses are physical. */
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_GET_SREGS failed: %s\n", strerror(errno));
		return -1;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	sregs.es.base = 0;
	sregs.es.selector = 0;
	sregs.ss.base = 0;
	sregs.ss.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_SET_SREGS failed: %s\n", strerror(errno));
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rflags = 0x2;	/* bit 1 is reserved and must be set */
	regs.rsp = GUEST_MEM_SIZE - 0x10;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_SET_REGS failed: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

#endif /* LAB_VMM_H */
