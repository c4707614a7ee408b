// SPDX-License-Identifier: GPL-2.0
/*
 * vfs_chain: follow write(2) on one file from the VFS into its file system
 * (Linux 内核之旅(十一):追踪 open/write 系统调用).
 *
 * write(2) -> ksys_write() -> vfs_write(file, buf, count, pos)
 *          -> file->f_op->write_iter(iocb, from)   (the file system's: tmpfs,
 *             ext4_file_write_iter, ...) -> back in vfs_write, which returns
 *             the bytes written (or -errno).
 *
 * Three BPF trampoline programs (fentry/fexit: no kprobes needed, the kernel
 * calls them from the function's ftrace entry) report each step for the lab's
 * file only, chosen by inode number, through the ring buffer "events":
 *   VFS_WRITE_ENTER  fentry on vfs_write        bytes = count
 *   WRITE_ITER       fentry on the fs's write_iter  bytes = iov_iter count
 *   VFS_WRITE_EXIT   fexit on vfs_write         bytes = return value
 * The write_iter program's section names its attach type but no function:
 * the loader points it at the file system's write_iter
 * (bpf_program__set_attach_target).
 *
 * Build: clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -I<dir of vmlinux.h> -c vfs_chain.bpf.c -o vfs_chain.bpf.o
 *        (vmlinux.h: bpftool btf dump file /sys/kernel/btf/vmlinux format c)
 * Run:   vfs_chain_load vfs_chain.bpf.o <file> <write_iter function>
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "vfs_chain.h"

char LICENSE[] SEC("license") = "GPL";

/* Room for many records while user space sleeps between polls. */
#define RINGBUF_BYTES (256 * 1024)

/* The lab file's inode number: the loader writes it into .rodata before loading. */
const volatile __u64 target_ino = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

/* One record into the ring buffer; dropped (not blocked on) when it is full. */
static __always_inline void report(__u32 step, __u64 ino, __s64 bytes)
{
	struct vfs_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->step = step;
	e->ino = ino;
	e->bytes = bytes;
	bpf_ringbuf_submit(e, 0);
}

// LAB:BEGIN three programs, one per step of the table above, each reporting the bytes it names: at the entry and at the exit of vfs_write, and at the entry of the file system's write_iter from a section that names no function (the loader completes it; libbpf's program types: Documentation/bpf/libbpf/program_types.rst). Each reports only for the file whose inode number is target_ino, found from the traced function's own arguments, typed from BTF (vmlinux.h)
SEC("fentry/vfs_write")
int BPF_PROG(vfs_write_enter, struct file *file, const char *buf, size_t count, loff_t *pos)
{
	/* BTF-typed arguments: the verifier lets us follow the pointers directly. */
	__u64 ino = file->f_inode->i_ino;

	if (ino != target_ino)
		return 0;
	report(VFS_WRITE_ENTER, ino, count);
	return 0;
}

SEC("fentry")
int BPF_PROG(write_iter_enter, struct kiocb *iocb, struct iov_iter *from)
{
	__u64 ino = iocb->ki_filp->f_inode->i_ino;

	if (ino != target_ino)
		return 0;
	report(WRITE_ITER, ino, from->count);
	return 0;
}

SEC("fexit/vfs_write")
int BPF_PROG(vfs_write_exit, struct file *file, const char *buf, size_t count, loff_t *pos, ssize_t ret)
{
	__u64 ino = file->f_inode->i_ino;

	if (ino != target_ino)
		return 0;
	report(VFS_WRITE_EXIT, ino, ret);
	return 0;
}
// LAB:STARTER
// SEC("fentry/vfs_write")
// int BPF_PROG(vfs_write_enter, struct file *file, const char *buf, size_t count, loff_t *pos)
// {
// 	return 0;
// }
// LAB:END
