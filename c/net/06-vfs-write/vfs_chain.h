/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vfs_chain.h: what the BPF side of Net Lab 5.6 reports for each step of a
 * write(2) on the lab's file, one record per step through the ring buffer
 * "events". Shared by vfs_chain.bpf.c (the student's) and the harness loader
 * c/net/vfs_chain_load.c, which prints one line per record.
 * The includer provides __u32/__u64/__s64 (vmlinux.h or <linux/types.h>).
 */
#ifndef VFS_CHAIN_H
#define VFS_CHAIN_H

enum vfs_step {
	VFS_WRITE_ENTER = 1,	/* vfs_write() called: bytes = its count argument */
	WRITE_ITER = 2,		/* the file system's ->write_iter() called: bytes = what its iov_iter holds */
	VFS_WRITE_EXIT = 3,	/* vfs_write() returned: bytes = its return value (written, or -errno) */
};

struct vfs_event {
	__u32 pid;	/* the writing process (tgid) */
	__u32 step;	/* enum vfs_step */
	__u64 ino;	/* inode number of the file written */
	__s64 bytes;
};

#endif /* VFS_CHAIN_H */
