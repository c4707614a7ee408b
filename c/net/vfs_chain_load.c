// SPDX-License-Identifier: GPL-2.0
/*
 * vfs_chain_load: the harness loader of Net Lab 5.6. It opens the student's
 * BPF object with libbpf, writes the lab file's inode number into the
 * object's .rodata variable target_ino, points every program whose section
 * is a bare "fentry" or "fexit" at the file system's write_iter function,
 * loads and attaches everything, prints "attached progs=<n> ino=<ino>", then
 * one line per record of the ring buffer "events" (struct vfs_event):
 *
 *   vfs_write pid=<pid> ino=<ino> bytes=<count>
 *   write_iter pid=<pid> ino=<ino> bytes=<iov_iter count>
 *   vfs_write_ret pid=<pid> ino=<ino> bytes=<return value>
 *
 * until SIGTERM or SIGINT; then it drains the ring buffer and exits 0.
 * The record lines are kept in memory and written when it stops: printing
 * each at once would be a write(2) of its own, which a program that does not
 * filter by file would report, whose record would be printed, and so on.
 *
 * Build: gcc -O2 -g -Wall -static vfs_chain_load.c -o vfs_chain_load -lbpf -lelf -lz
 * Usage: vfs_chain_load <object.o> <file> <write_iter function>
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "06-vfs-write/vfs_chain.h"

#define POLL_MS 100
#define MAX_LINKS 16
/* Room for the record lines (about 40 bytes each); beyond it they are counted, not kept. */
#define OUT_MAX (8 * 1024 * 1024)
/* The student's .rodata is a few variables; a copy is edited then set back. */
#define RODATA_MAX 4096

static volatile sig_atomic_t stop;
static char out[OUT_MAX];
static size_t out_len;
static unsigned long records, dropped;

static void on_signal(int sig)
{
	stop = 1;
}

static const char *step_name(__u32 step)
{
	switch (step) {
	case VFS_WRITE_ENTER: return "vfs_write";
	case WRITE_ITER: return "write_iter";
	case VFS_WRITE_EXIT: return "vfs_write_ret";
	default: return "unknown_step";
	}
}

static int print_event(void *ctx, void *data, size_t size)
{
	const struct vfs_event *e = data;
	size_t room = sizeof(out) - out_len;
	int n;

	records++;
	if (size < sizeof(*e))
		n = snprintf(out + out_len, room, "short_record size=%zu\n", size);
	else
		n = snprintf(out + out_len, room, "%s pid=%u ino=%llu bytes=%lld\n", step_name(e->step), e->pid,
			     (unsigned long long)e->ino, (long long)e->bytes);
	if (n < 0 || (size_t)n >= room) {
		out[out_len] = '\0';
		dropped++;
		return 0;
	}
	out_len += n;
	return 0;
}

/* Write value into the .rodata variable name (found through the object's BTF) before loading. */
static int set_rodata_u64(struct bpf_object *obj, const char *name, __u64 value)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, ".rodata");
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	const void *init;
	char data[RODATA_MAX];
	size_t size;
	int id, i;

	if (!map || !btf)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	init = bpf_map__initial_value(map, &size);
	if (id < 0 || !init)
		return -ENOENT;
	if (size > sizeof(data))
		return -E2BIG;
	memcpy(data, init, size);
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != sizeof(value) || vs->offset + sizeof(value) > size)
			return -EINVAL;
		memcpy(data + vs->offset, &value, sizeof(value));
		return bpf_map__set_initial_value(map, data, size);
	}
	return -ENOENT;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[MAX_LINKS] = {};
	struct ring_buffer *rb = NULL;
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bpf_map *events;
	int nlinks = 0, err, i, ret = 1;
	struct stat st;

	if (argc != 4) {
		fprintf(stderr, "usage: %s <object.o> <file> <write_iter function>\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	/* The lab's file: its inode number is the filter. */
	if (stat(argv[2], &st)) {
		fprintf(stderr, "stat %s failed: %s\n", argv[2], strerror(errno));
		return 1;
	}

	/* Open, set target_ino, aim the bare fentry/fexit programs at write_iter. */
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "bpf_object__open_file %s failed: %s\n", argv[1], strerror(errno));
		return 1;
	}
	err = set_rodata_u64(obj, "target_ino", st.st_ino);
	if (err) {
		fprintf(stderr, "%s has no 8-byte .rodata variable target_ino: %s\n", argv[1], strerror(-err));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *sec = bpf_program__section_name(prog);

		if (strcmp(sec, "fentry") && strcmp(sec, "fexit"))
			continue;
		err = bpf_program__set_attach_target(prog, 0, argv[3]);
		if (err) {
			fprintf(stderr, "bpf_program__set_attach_target %s -> %s failed: %s\n",
				bpf_program__name(prog), argv[3], strerror(-err));
			goto cleanup;
		}
	}

	/* Load (the verifier runs here) and attach every program. */
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_object__load %s failed: %s\n", argv[1], strerror(-err));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, obj) {
		if (nlinks == MAX_LINKS) {
			fprintf(stderr, "more than %d programs\n", MAX_LINKS);
			goto cleanup;
		}
		links[nlinks] = bpf_program__attach(prog);
		if (!links[nlinks]) {
			fprintf(stderr, "attaching %s (%s) failed: %s\n", bpf_program__name(prog),
				bpf_program__section_name(prog), strerror(errno));
			goto cleanup;
		}
		nlinks++;
	}
	events = bpf_object__find_map_by_name(obj, "events");
	if (!events || bpf_map__type(events) != BPF_MAP_TYPE_RINGBUF) {
		fprintf(stderr, "%s has no ring buffer map named events\n", argv[1]);
		goto cleanup;
	}
	rb = ring_buffer__new(bpf_map__fd(events), print_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new failed: %s\n", strerror(errno));
		goto cleanup;
	}
	printf("attached progs=%d ino=%llu\n", nlinks, (unsigned long long)st.st_ino);

	/* Print records until told to stop, then whatever is left. */
	while (!stop) {
		err = ring_buffer__poll(rb, POLL_MS);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "ring_buffer__poll failed: %s\n", strerror(-err));
			goto cleanup;
		}
	}
	ring_buffer__consume(rb);
	fwrite(out, 1, out_len, stdout);
	printf("stopped records=%lu dropped=%lu\n", records, dropped);
	ret = 0;
cleanup:
	ring_buffer__free(rb);
	for (i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	bpf_object__close(obj);
	return ret;
}
