// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_io: what happens when a guest does I/O (Lab 3, 思考). The guest is a
 * real-mode loop that writes a NUL-terminated string, one `out dx, al` per
 * byte, to port 0xE9 and then halts. Each OUT leaves the guest (a VM exit)
 * and, because no device in the kernel claims the port, KVM_RUN returns to
 * this VMM with KVM_EXIT_IO: this program is the device. It prints
 *
 *     exit_reason=KVM_EXIT_HLT io_exits=<n> port=0xe9 text=<what the guest wrote>
 *
 * Exit 0 when the guest halted after its output; 77 without /dev/kvm; 1 otherwise.
 *
 * Build: gcc -O2 -Wall -o kvm_io kvm_io.c
 * Run:   sudo ./kvm_io "Hello from the guest"
 */
#include <stdlib.h>
#include "vmm.h"

#define DEBUG_PORT	0xe9		/* the port QEMU and Bochs use for debug output */
#define MSG_ADDR	0x2000		/* guest physical address of the string */
#define MSG_MAX		(GUEST_MEM_SIZE - MSG_ADDR - 1)
#define OUT_MAX		4096

/*
 * The guest, 16-bit real mode, loaded at GUEST_ENTRY:
 *	mov si, MSG_ADDR	; BE 00 20
 *	mov dx, DEBUG_PORT	; BA E9 00
 * next:	lodsb			; AC         al = [ds:si++]
 *	test al, al		; 84 C0
 *	jz done			; 74 03
 *	out dx, al		; EE         -> KVM_EXIT_IO
 *	jmp next		; EB F8
 * done:	hlt			; F4         -> KVM_EXIT_HLT
 */
static const uint8_t guest_code[] = {
	0xbe, MSG_ADDR & 0xff, MSG_ADDR >> 8,
	0xba, DEBUG_PORT & 0xff, DEBUG_PORT >> 8,
	0xac,
	0x84, 0xc0,
	0x74, 0x03,
	0xee,
	0xeb, 0xf8,
	0xf4,
};

int main(int argc, char **argv)
{
	char out[OUT_MAX + 1];
	size_t out_len = 0, msg_len;
	unsigned long io_exits = 0;
	struct vm v;
	int ret = 1, err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <text the guest writes>\n", argv[0]);
		return 2;
	}
	msg_len = strlen(argv[1]);
	if (msg_len > MSG_MAX || msg_len > OUT_MAX) {
		fprintf(stderr, "text too long (%zu bytes, at most %d)\n", msg_len, OUT_MAX);
		return 2;
	}

	/* VM, memory, vCPU in real mode at GUEST_ENTRY (see vmm.h). */
	err = vm_init(&v, GUEST_ENTRY);
	if (err) {
		vm_destroy(&v);
		return err == EXIT_SKIP ? EXIT_SKIP : 1;
	}
	memcpy(v.mem + GUEST_ENTRY, guest_code, sizeof(guest_code));
	memcpy(v.mem + MSG_ADDR, argv[1], msg_len + 1);
	if (arm_watchdog(WATCHDOG_SECONDS) < 0)
		goto cleanup;

	/* Run until the guest halts; every OUT comes back here first. */
	for (;;) {
		if (ioctl(v.vcpu, KVM_RUN, 0) < 0) {
			fprintf(stderr, "KVM_RUN failed: %s\n", strerror(errno));
			goto cleanup;
		}
		if (v.run->exit_reason == KVM_EXIT_HLT)
			break;
		if (v.run->exit_reason != KVM_EXIT_IO) {
			report_exit(v.run);
			goto cleanup;
		}
		io_exits++;
		// LAB:BEGIN handle the guest's OUT: check run->io.direction == KVM_EXIT_IO_OUT and run->io.port == DEBUG_PORT (else report_exit() and goto cleanup); the bytes are at (uint8_t *)v.run + v.run->io.data_offset, io.count items of io.size bytes each: append them to out[] (out_len, at most OUT_MAX)
		if (v.run->io.direction != KVM_EXIT_IO_OUT || v.run->io.port != DEBUG_PORT) {
			report_exit(v.run);
			goto cleanup;
		}
		{
			const uint8_t *data = (const uint8_t *)v.run + v.run->io.data_offset;
			size_t n = (size_t)v.run->io.size * v.run->io.count;

			if (out_len + n > OUT_MAX)
				n = OUT_MAX - out_len;
			memcpy(out + out_len, data, n);
			out_len += n;
		}
		// LAB:END
	}
	out[out_len] = '\0';
	printf("exit_reason=%s io_exits=%lu port=0x%x text=%s\n", exit_reason_name(v.run->exit_reason),
	       io_exits, DEBUG_PORT, out);
	ret = 0;

cleanup:
	alarm(0);
	vm_destroy(&v);
	return ret;
}
