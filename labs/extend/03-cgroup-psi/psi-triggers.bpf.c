// SPDX-License-Identifier: GPL-2.0
/*
 * psi-triggers: a BPF iterator (iter/task_file) that prints, for every open
 * memory pressure file of every process, whether that open file holds a PSI
 * trigger and the trigger as the kernel keeps it (struct psi_trigger,
 * kernel/sched/psi.c). A harness program of Lab 6.3's spec, which pins it in
 * bpffs and reads the pin: each read runs the iterator once.
 *
 *   <tgid> <fd> cgroup|proc none
 *   <tgid> <fd> cgroup|proc trigger <address> some|full|other <threshold ns> <window ns> <event> <last event ns> <pending>
 *
 * <event> is 1 from the moment the kernel signals the trigger until a poll on
 * the file consumes it (psi_trigger_poll); <last event ns> is the time of the
 * trigger's last firing (0: none yet); it changes with every firing, at most
 * once per window.
 *
 * The file: a cgroup2 memory.pressure (kernfs: file->private_data is the
 * seq_file, whose private is the kernfs_open_file, whose priv is the
 * cgroup_file_ctx holding the trigger) or /proc/pressure/memory (the seq_file's
 * private is the trigger).
 * Build: clang -O2 -g -target bpf -I<dir of vmlinux.h> -c psi-triggers.bpf.c
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

static __always_inline int same(const char *a, const char *b, int n)
{
	for (int i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

SEC("iter/task_file")
int psi_triggers(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	char name[24] = {}, parent[16] = {};
	struct seq_file *sf;
	struct psi_trigger *t;
	const char *kind, *state_name;
	int state;

	if (!task || !file)
		return 0;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	sf = BPF_CORE_READ(file, private_data);
	if (same(name, "memory.pressure", 16)) {
		struct kernfs_open_file *of = BPF_CORE_READ(sf, private);
		struct cgroup_file_ctx *cctx = BPF_CORE_READ(of, priv);

		t = BPF_CORE_READ(cctx, psi.trigger);
		kind = "cgroup";
	} else if (same(name, "memory", 7)) {
		bpf_probe_read_kernel_str(parent, sizeof(parent), BPF_CORE_READ(file, f_path.dentry, d_parent, d_name.name));
		if (!same(parent, "pressure", 9))
			return 0;
		t = BPF_CORE_READ(sf, private);
		kind = "proc";
	} else {
		return 0;
	}
	if (!t) {
		BPF_SEQ_PRINTF(seq, "%d %u %s none\n", task->tgid, ctx->fd, kind);
		return 0;
	}
	state = BPF_CORE_READ(t, state);
	state_name = state == bpf_core_enum_value(enum psi_states, PSI_MEM_SOME) ? "some"
		: state == bpf_core_enum_value(enum psi_states, PSI_MEM_FULL) ? "full" : "other";
	BPF_SEQ_PRINTF(seq, "%d %u %s trigger %lx %s %llu", task->tgid, ctx->fd, kind, (unsigned long)t, state_name,
		       BPF_CORE_READ(t, threshold));
	BPF_SEQ_PRINTF(seq, " %llu %d %llu %d\n", BPF_CORE_READ(t, win.size), BPF_CORE_READ(t, event),
		       BPF_CORE_READ(t, last_event_time), (int)BPF_CORE_READ(t, pending_event));
	return 0;
}
