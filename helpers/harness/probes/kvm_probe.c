// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_probe: is /dev/kvm really usable? Opens it and asks KVM_GET_API_VERSION,
 * then creates (and drops) a VM. Used by the capability probe, not a lab.
 *
 * Build: gcc -O2 -Wall -o kvm_probe kvm_probe.c
 * Output: one line "api=<n> create_vm=ok" ; exit 77 when /dev/kvm is absent,
 * 1 on any other failure (a misconfigured host is not a missing feature).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm, vm, api;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "open /dev/kvm failed: %s\n", strerror(errno));
		return errno == ENOENT ? 77 : 1;
	}
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "KVM_GET_API_VERSION returned %d, expected %d\n", api, KVM_API_VERSION);
		close(kvm);
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "probe: /dev/kvm answers but refuses a VM: %s\n", strerror(errno));
		close(kvm);
		return 1;
	}
	printf("api=%d create_vm=ok\n", api);
	close(vm);
	close(kvm);
	return 0;
}
