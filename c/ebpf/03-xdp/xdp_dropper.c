// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_dropper: the smallest useful XDP program. It runs for every packet
 * the interface receives, before the kernel allocates an sk_buff, and
 * tells the driver to drop it.
 *
 * Build: clang -O2 -g -Wall -target bpf -c xdp_dropper.c -o xdp_dropper.o
 * Load:  ip link set dev <if> xdp obj xdp_dropper.o sec xdp
 * Off:   ip link set dev <if> xdp off
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	// LAB:BEGIN return the verdict that drops every packet (the actions are the enum xdp_action of <linux/bpf.h>)
	return XDP_DROP;
	// LAB:STARTER
	// return XDP_PASS;
	// LAB:END
}

char LICENSE[] SEC("license") = "GPL";
