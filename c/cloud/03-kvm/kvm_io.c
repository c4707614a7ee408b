// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_io: what happens when a guest does I/O (Lab 3, 思考). The VMM loads a
 * guest image (a file: real-mode code, loaded at GUEST_ENTRY) and runs it.
 * The guest writes its text to port 0xE9, one OUT per byte (outsb: the byte
 * comes from guest memory), then four bytes of its time-stamp counter, then
 * halts. Each OUT leaves the guest (a VM exit) and, because no device in the
 * kernel claims the port, KVM_RUN returns to this VMM with KVM_EXIT_IO: this
 * program is the device. It prints what the guest wrote:
 *
 *     exit_reason=KVM_EXIT_HLT io_exits=<n> port=0xe9 text=<what the guest wrote>
 *
 * Exit 0 when the guest halted after its output; 77 without /dev/kvm; 1 otherwise.
 *
 * Build: gcc -O2 -Wall -o kvm_io kvm_io.c
 * Run:   sh make_guest.sh "Hello from the guest" > guest.bin && sudo ./kvm_io guest.bin
 */
#include <stdlib.h>
#include "vm_setup.h"

#define DEBUG_PORT	0xe9		/* the port QEMU and Bochs use for debug output */
#define IMAGE_MAX	(GUEST_MEM_SIZE - GUEST_ENTRY)
#define OUT_MAX		4096

/* Copy the guest image file into guest memory at GUEST_ENTRY; returns its size or -1. */
static long load_image(const char *path, uint8_t *mem)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "open %s failed: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(mem + GUEST_ENTRY, 1, IMAGE_MAX, f);
	if (ferror(f) || !feof(f) || n == 0) {
		fprintf(stderr, "read %s failed: %s\n", path, n == 0 ? "empty" : ferror(f) ? strerror(errno) : "larger than guest memory");
		fclose(f);
		return -1;
	}
	fclose(f);
	return (long)n;
}

int main(int argc, char **argv)
{
	char out[OUT_MAX + 1];
	size_t out_len = 0;
	unsigned long io_exits = 0;
	struct vm v;
	int ret = 1, err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <guest image> (sh make_guest.sh <text> > guest.bin)\n", argv[0]);
		return 2;
	}

	/* VM, memory, vCPU in real mode at GUEST_ENTRY (see vmm.h). */
	err = vm_init(&v, GUEST_ENTRY);
	if (err) {
		vm_destroy(&v);
		return err == EXIT_SKIP ? EXIT_SKIP : 1;
	}
	if (load_image(argv[1], v.mem) < 0)
		goto cleanup;
	if (arm_watchdog(WATCHDOG_SECONDS) < 0)
		goto cleanup;

	// LAB:BEGIN The VMM's run loop and its device. Run the guest (vm_run) until it halts. Every OUT the guest makes comes back here first: accept only an OUT to DEBUG_PORT (any other exit: report_exit() and goto cleanup), count it in io_exits and append the bytes it carries to out[] (out_len, never more than OUT_MAX). How the kernel describes the access, and where in the shared kvm_run page it left the data, is in api.rst 5, "KVM_EXIT_IO".
	for (;;) {
		int why = vm_run(&v);

		if (why < 0)
			goto cleanup;
		if (why == KVM_EXIT_HLT)
			break;
		if (why != KVM_EXIT_IO || v.run->io.direction != KVM_EXIT_IO_OUT || v.run->io.port != DEBUG_PORT) {
			report_exit(v.run);
			goto cleanup;
		}
		io_exits++;
		{
			const uint8_t *data = (const uint8_t *)v.run + v.run->io.data_offset;
			size_t n = (size_t)v.run->io.size * v.run->io.count;

			if (out_len + n > OUT_MAX)
				n = OUT_MAX - out_len;
			memcpy(out + out_len, data, n);
			out_len += n;
		}
	}
	// LAB:END
	out[out_len] = '\0';
	printf("exit_reason=%s io_exits=%lu port=0x%x text=%s\n", exit_reason_name(v.run->exit_reason),
	       io_exits, DEBUG_PORT, out);
	ret = 0;

cleanup:
	alarm(0);
	vm_destroy(&v);
	return ret;
}
