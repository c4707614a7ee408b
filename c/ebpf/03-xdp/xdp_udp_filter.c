// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_udp_filter: a firewall rule at the driver: IPv4 UDP to port
 * DROP_PORT is dropped, everything else (ICMP, other ports, ARP) passes.
 * Packets are counted per action in xdp_stats like xdp_counter.
 *
 * Build: clang -O2 -g -Wall -target bpf -c xdp_udp_filter.c -o xdp_udp_filter.o
 * Load:  ip link set dev <if> xdp obj xdp_udp_filter.o sec xdp
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define DROP_PORT 7777
#define XDP_ACTIONS (XDP_REDIRECT + 1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDP_ACTIONS);
	__type(key, __u32);
	__type(value, __u64);
} xdp_stats SEC(".maps");

/* Count this verdict in xdp_stats and return it. */
static __always_inline __u32 count(__u32 action)
{
	// LAB:BEGIN count `action` in its xdp_stats slot, as xdp_counter.c does (the same rules hold here: several CPUs, a lookup that may find nothing)
	__u64 *slot = bpf_map_lookup_elem(&xdp_stats, &action);

	if (slot)
		__sync_fetch_and_add(slot, 1);
	// LAB:END
	return action;
}

SEC("xdp")
int xdp_udp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;

	/* Every read of the packet must be bounds-checked against data_end, or the verifier rejects the program. */
	if ((void *)(eth + 1) > data_end)
		return count(XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return count(XDP_PASS);

	// LAB:BEGIN drop IPv4 UDP datagrams to DROP_PORT and pass everything else, each verdict counted like the ones above: the UDP header follows an IPv4 header of variable length (its length field counts 32-bit words: include/uapi/linux/ip.h), ports are in network byte order, and every read of the packet needs the bounds check described above
	if (ip->protocol != IPPROTO_UDP)
		return count(XDP_PASS);
	if (ip->ihl < 5)
		return count(XDP_PASS);
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return count(XDP_PASS);
	if (udp->dest == bpf_htons(DROP_PORT))
		return count(XDP_DROP);
	// LAB:STARTER
	// udp = 0;
	// LAB:END
	return count(XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
