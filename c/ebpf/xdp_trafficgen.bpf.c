// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_trafficgen.bpf.c: the BPF half of the lab's in-kernel traffic
 * generator (the harness's program, not a student file). Run by
 * xdp_trafficgen.c with BPF_PROG_TEST_RUN in live-frames mode, it sends
 * every frame it is given out of one interface: bpf_redirect() to the
 * ifindex user space wrote into gen_cfg[0].
 *
 * The frame itself is never touched, so the kernel's page pool hands the
 * same prebuilt bytes to every repetition.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gen_cfg SEC(".maps");

SEC("xdp")
int xdp_gen_redirect(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *ifindex = bpf_map_lookup_elem(&gen_cfg, &key);

	if (!ifindex || !*ifindex)
		return XDP_ABORTED;
	return bpf_redirect(*ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
