/**
 * Net Lab 5.6 — 追踪 open/write 系统调用: a write(2) followed from the VFS
 * into the file system, for the lab's file only.
 *
 * The student's BPF object (vfs_chain.bpf.c) puts fentry/fexit programs
 * (BPF trampolines, found through the kernel's BTF) on vfs_write and on the
 * file system's write_iter, filtered by the lab file's inode number, and
 * reports each step through a ring buffer; the harness loader
 * (c/net/vfs_chain_load.c) prints the records. The kernel judges them: the
 * links it lists with their targets (c/net/bpf_links.c, bpftool), the
 * syscall tracepoints sys_enter_write/sys_exit_write of a private tracefs
 * instance (fd, count, result of every write(2) of the workload), and the
 * file's size and inode.
 *
 * Where: this host's kernel refuses BPF trampoline programs (load fails with
 * EPERM, measured) and has no kprobes, so the kernel side runs in one QEMU
 * guest of Debian's 6.1 kernel, which has both: the loader, the workload, the
 * link lister and bpftool go in as programs of its initramfs. The loader runs
 * twice, in a random order: the lab's file on a tmpfs (its write_iter in 6.1:
 * generic_file_write_iter) and on ext4 (ext4_file_write_iter, from Debian's
 * ext4 module, an ext2 image on a RAM disk), so a program must follow the
 * file's own f_op->write_iter; the workload's short write asks for more than
 * MAX_RW_COUNT, which vfs_write cuts before it calls the file system, so the
 * write_iter's count must come from its own iov_iter.
 *
 * The lab's anatomy: experiment.ts runs the guest and collects the evidence
 * (`VfsWrite`), vfs-chain.ts reads the loader's, the tracepoints' and the link
 * lister's lines, judge.ts turns the evidence into facts and messages, this
 * file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { traceWrites, type VfsWrite } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

const NEEDS = labRequires(import.meta.url);

describe('Net Lab 5.6 — open and write through the VFS (追踪 open/write 系统调用)', () => {
  requires(...NEEDS);
  let x: VfsWrite;

  beforeAll(async () => {
    if (await unmet([...NEEDS])) return;
    x = await traceWrites();
  }, 400_000);

  it('control: the syscall tracepoints see every write(2) of the workload, the short one and the refused one included', async (ctx) => {
    await adapted(ctx, 'fentry/fexit refused by this kernel (EPERM) and no kprobes: the kernel side runs in a QEMU guest of Debian\'s kernel');
    recordMetric(ctx, { name: `guest boot and lab steps (${x.guest.boot.accel})`, value: x.guest.boot.seconds, unit: 's', group: 'vfs write' });
    holds(judge.workload(x));
  });

  it('attaches with BPF trampolines: the kernel lists fentry and fexit links on vfs_write and a link on the file system\'s write_iter', () => {
    holds(judge.trampolines(x));
  });

  it('reports one vfs_write per write(2) to the lab\'s file, in each process, with the count the syscall asked for', () => {
    holds(judge.vfsWriteCounts(x));
  });

  it('the file system\'s write_iter runs inside each of those vfs_write calls (after its entry, before its return) with the byte count its iov_iter holds', () => {
    holds(judge.writeIterInside(x));
  });

  it('reports only the lab\'s file: every record carries its inode, none the decoy\'s or another file\'s, none from a process that did not write it', () => {
    holds(judge.onlyTheLabFile(x));
  });

  it('vfs_write returns what each write(2) returned, the short and the refused write included, and the bytes add up to the file\'s size', (ctx) => {
    const v = judge.returns(x);
    recordMetric(ctx, { name: 'bytes written to the lab file', value: v.fileSize, unit: 'B', group: 'vfs write' });
    holds(v);
  });

  it('control: the loader detaches when stopped and the guest kernel has no BPF program or link left', () => {
    holds(judge.cleanup(x));
  });
});
