// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_counter: drops every packet like xdp_dropper, and counts the packets
 * per XDP action in an array map, so that user space can read how many
 * packets the program saw (bpftool map dump name xdp_stats).
 *
 * Build: clang -O2 -g -Wall -target bpf -c xdp_counter.c -o xdp_counter.o
 * Load:  ip link set dev <if> xdp obj xdp_counter.o sec xdp
 * Read:  bpftool map dump name xdp_stats
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* One slot per action: XDP_ABORTED(0) XDP_DROP(1) XDP_PASS(2) XDP_TX(3) XDP_REDIRECT(4). */
#define XDP_ACTIONS (XDP_REDIRECT + 1)

/* The action this program takes for every packet. */
#define VERDICT XDP_DROP

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDP_ACTIONS);
	__type(key, __u32);
	__type(value, __u64);
} xdp_stats SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 action = VERDICT;
	__u64 *count;

	// LAB:BEGIN count this packet in the xdp_stats slot of `action`, so that bpftool map dump shows how many packets the program saw; several CPUs may run it at once, and the verifier rejects any use of a map value the lookup may not have found (man 7 bpf-helpers, the map helpers)
	count = bpf_map_lookup_elem(&xdp_stats, &action);
	/* The verifier insists: a lookup may return NULL. */
	if (count)
		__sync_fetch_and_add(count, 1);
	// LAB:STARTER
	// count = 0;
	// LAB:END
	return action;
}

char LICENSE[] SEC("license") = "GPL";
