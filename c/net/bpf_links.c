// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_links: the BPF links of the running kernel with the function each
 * tracing link is attached to, one line per link:
 *
 *   link=<id> prog=<prog id> name=<prog name> type=<link type> attach=<attach type> target=<function>
 *
 * The kernel reports a tracing link's target as a BTF type id of an object
 * (bpf_link_info.tracing.target_obj_id/target_btf_id, Linux 5.13+); the name
 * comes from the kernel's BTF: vmlinux's, or for a function of a module (ext4's
 * ext4_file_write_iter) the module's BTF object, split on vmlinux's. bpftool
 * 7.1 shows these links without their targets, hence this program (the lab's
 * harness; the student never edits it).
 *
 * Build: gcc -O2 -g -Wall -static bpf_links.c -o bpf_links -lbpf -lelf -lz
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* The name of type id in BTF object obj_id: vmlinux's, or a module's (loaded split on vmlinux, freed by the caller). */
static const char *btf_name(struct btf *vmlinux, __u32 obj_id, __u32 type_id, struct btf **module)
{
	struct bpf_btf_info info = {};
	__u32 len = sizeof(info);
	const struct btf_type *t;
	struct btf *btf = vmlinux;
	char name[64] = "";
	int fd;

	*module = NULL;
	if (!vmlinux || !type_id)
		return NULL;
	fd = obj_id ? bpf_btf_get_fd_by_id(obj_id) : -1;
	if (fd >= 0) {
		info.name = (__u64)(unsigned long)name;
		info.name_len = sizeof(name);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.kernel_btf && strcmp(name, "vmlinux")) {
			*module = btf__load_from_kernel_by_id_split(obj_id, vmlinux);
			btf = *module;
		}
		close(fd);
	}
	t = btf ? btf__type_by_id(btf, type_id) : NULL;
	return t ? btf__name_by_offset(btf, t->name_off) : NULL;
}

static const char *attach_name(__u32 type)
{
	switch (type) {
	case BPF_TRACE_FENTRY: return "fentry";
	case BPF_TRACE_FEXIT: return "fexit";
	case BPF_MODIFY_RETURN: return "fmod_ret";
	case BPF_TRACE_RAW_TP: return "raw_tp";
	case BPF_LSM_MAC: return "lsm";
	default: return "other";
	}
}

int main(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	__u32 id = 0;
	int ret = 0;

	if (!vmlinux)
		fprintf(stderr, "btf__load_vmlinux_btf failed: %s\n", strerror(errno));
	/* Walk every link id the kernel knows. */
	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info link = {};
		struct bpf_prog_info prog = {};
		__u32 len = sizeof(link);
		const char *target = "-";
		int fd, pfd;

		fd = bpf_link_get_fd_by_id(id);
		if (fd < 0)
			continue;	/* gone meanwhile */
		if (bpf_obj_get_info_by_fd(fd, &link, &len)) {
			fprintf(stderr, "link %u: bpf_obj_get_info_by_fd failed: %s\n", id, strerror(errno));
			ret = 1;
			close(fd);
			continue;
		}
		len = sizeof(prog);
		pfd = bpf_prog_get_fd_by_id(link.prog_id);
		if (pfd >= 0) {
			bpf_obj_get_info_by_fd(pfd, &prog, &len);
			close(pfd);
		}
		if (link.type == BPF_LINK_TYPE_TRACING) {
			struct btf *module;
			const char *name = btf_name(vmlinux, link.tracing.target_obj_id, link.tracing.target_btf_id, &module);

			if (name)
				target = name;
			printf("link=%u prog=%u name=%s type=tracing attach=%s target=%s target_obj=%u target_btf=%u\n",
			       id, link.prog_id, prog.name[0] ? prog.name : "-", attach_name(link.tracing.attach_type),
			       target, link.tracing.target_obj_id, link.tracing.target_btf_id);
			btf__free(module);
		} else {
			printf("link=%u prog=%u name=%s type=%u attach=- target=-\n",
			       id, link.prog_id, prog.name[0] ? prog.name : "-", link.type);
		}
		close(fd);
	}
	btf__free(vmlinux);
	return ret;
}
