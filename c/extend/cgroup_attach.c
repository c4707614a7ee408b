// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup_attach: load a BPF object with libbpf and attach its program to a
 * cgroup v2 directory with bpf_prog_attach(BPF_F_ALLOW_OVERRIDE), as the
 * kernel selftest test_sysctl.c does. It prints "attached prog_id=<id>"
 * and stays attached until SIGTERM or SIGINT, then detaches and exits 0.
 * (If it is killed with SIGKILL the attachment stays until the cgroup is
 * removed: rmdir of a cgroup releases the programs attached to it.)
 *
 * The lab's harness program; the student writes the BPF side.
 * Build: gcc -O2 -g -Wall cgroup_attach.c -o cgroup_attach -lbpf
 * Usage: cgroup_attach <object.o> <cgroup2 directory>
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	enum bpf_attach_type type;
	int cg_fd = -1, prog_fd, err, ret = 1;
	sigset_t mask, old;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <object.o> <cgroup2 directory>\n", argv[0]);
		return 2;
	}
	/* Block the stop signals until we wait for them, so none is lost. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, &old);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	/* Open and load the object: the verifier runs here. */
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "bpf_object__open_file %s failed: %s\n", argv[1], strerror(errno));
		goto cleanup;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_object__load %s failed: %s\n", argv[1], strerror(-err));
		goto cleanup;
	}
	prog = bpf_object__next_program(obj, NULL);
	if (!prog) {
		fprintf(stderr, "%s holds no BPF program\n", argv[1]);
		goto cleanup;
	}
	prog_fd = bpf_program__fd(prog);
	/* SEC("cgroup/sysctl") sets the expected attach type BPF_CGROUP_SYSCTL. */
	type = bpf_program__expected_attach_type(prog);

	/* The cgroup is named by an open directory fd of the cgroup2 file system. */
	cg_fd = open(argv[2], O_RDONLY | O_DIRECTORY);
	if (cg_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", argv[2], strerror(errno));
		goto cleanup;
	}
	err = bpf_prog_attach(prog_fd, cg_fd, type, BPF_F_ALLOW_OVERRIDE);
	if (err) {
		fprintf(stderr, "bpf_prog_attach to %s failed: %s\n", argv[2], strerror(errno));
		goto cleanup;
	}
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &info_len) == 0)
		printf("attached prog_id=%u name=%s\n", info.id, info.name);
	else
		printf("attached\n");
	fflush(stdout);

	/* Wait for SIGTERM/SIGINT, then detach. */
	while (!stop)
		sigsuspend(&old);
	err = bpf_prog_detach2(prog_fd, cg_fd, type);
	if (err) {
		fprintf(stderr, "bpf_prog_detach2 from %s failed: %s\n", argv[2], strerror(errno));
		goto cleanup;
	}
	printf("detached\n");
	ret = 0;
cleanup:
	if (cg_fd >= 0)
		close(cg_fd);
	bpf_object__close(obj);
	return ret;
}
