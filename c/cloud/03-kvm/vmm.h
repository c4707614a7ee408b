/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmm.h: the pieces every tiny VMM of Lab 3 shares — the names of KVM exit
 * reasons, a watchdog that turns a guest that never exits into an EINTR from
 * KVM_RUN, a clock, and struct vm with its clean-up. Setting a VM up is
 * yours to write, once, in vm_setup.h.
 *
 * Header only; included by vm_setup.h.
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

/* Release what vm_init made (safe after a partial vm_init: unset fields are -1 / MAP_FAILED / NULL). */
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

#endif /* LAB_VMM_H */
