// SPDX-License-Identifier: GPL-2.0
/*
 * sysctl_guard: a BPF_PROG_TYPE_CGROUP_SYSCTL program (参数防篡改). Attached
 * to a cgroup, it runs on every read and write of a /proc/sys file by a
 * process of that cgroup. It refuses writes to one sysctl, GUARDED, and
 * counts each refusal in the map denied_writes (key 0); every read and every
 * write to another sysctl is allowed.
 *
 * Return 1 to let the access proceed, 0 to refuse it: the write(2) then
 * fails with EPERM and the value stays as it was.
 * (Documentation/bpf/prog_cgroup_sysctl.rst)
 *
 * Build: clang -O2 -g -Wall -target bpf -c sysctl_guard.c -o sysctl_guard.o
 * Attach: cgroup_attach sysctl_guard.o /sys/fs/cgroup/unified/<cgroup>
 * Read:  bpftool map dump name denied_writes
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The sysctl this program protects, as the kernel names it: the path under /proc/sys. */
#define GUARDED "net/ipv4/ip_forward"
/* Room for the longest name we compare against, plus its NUL. */
#define NAME_BUF 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} denied_writes SEC(".maps");

/* 1 when the sysctl being accessed is GUARDED, else 0. */
static __always_inline int is_guarded(struct bpf_sysctl *ctx)
{
	const char want[] = GUARDED;
	char name[NAME_BUF] = {};
	long len;

	// LAB:BEGIN return 1 only when the sysctl being accessed is GUARDED, compared by its full name ("net/ipv4/…"), not only its last component: the helper that gives a cgroup/sysctl program the name, and what it returns, are in man 7 bpf-helpers and Documentation/bpf/prog_cgroup_sysctl.rst. The verifier accepts only loops whose bound it can see
	len = bpf_sysctl_get_name(ctx, name, sizeof(name), 0);
	if (len != sizeof(want) - 1)
		return 0;
	/* A loop with a constant bound: clang unrolls it, the verifier accepts it. */
	for (int i = 0; i < sizeof(want) - 1; i++)
		if (name[i] != want[i])
			return 0;
	return 1;
	// LAB:STARTER
	// return 0;
	// LAB:END
}

SEC("cgroup/sysctl")
int guard_sysctl(struct bpf_sysctl *ctx)
{
	__u32 key = 0;
	__u64 *count;

	// LAB:BEGIN the verdict of the header: reads, and writes to other sysctls, proceed; a write to GUARDED is refused and counted in denied_writes (key 0), correctly even when several processes write at once. Whether this access is a write is in struct bpf_sysctl (include/uapi/linux/bpf.h)
	if (!ctx->write || !is_guarded(ctx))
		return 1;
	count = bpf_map_lookup_elem(&denied_writes, &key);
	/* The verifier insists: a lookup may return NULL. */
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
	// LAB:STARTER
	// return 1;
	// LAB:END
}

char LICENSE[] SEC("license") = "GPL";
