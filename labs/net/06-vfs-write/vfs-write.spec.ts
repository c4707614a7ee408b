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
 * link lister and bpftool go in as programs of its initramfs, the lab's file
 * is on a tmpfs mounted there (its write_iter in 6.1: generic_file_write_iter).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBpfObject, buildProgram } from '../../../helpers/harness/compile.js';
import { REFERENCE_SRC, labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { runInGuest, type GuestRunResult } from '../../../helpers/kernel/guest.js';
import { dynamicProgramFiles } from '../../../helpers/kernel/initramfs.js';
import { parseSections } from '../../../helpers/kernel/module.js';
import { EBADF, expectedChain, ofPid, parseChain, parseLinks, parseWriteCalls, showChain,
  type ChainRecord, type TracingLink, type WriteCall } from './vfs-chain.js';

const NEEDS = labRequires(import.meta.url);
/** The writer's fds (c/net/vfs_writer.c) and the number of writes its child adds. */
const LAB_FD = 7;
const DECOY_FD = 8;
const CHILD_WRITES = 3;
/** Random workload: a student's program cannot know the counts in advance. */
const SEED = 1 + Math.floor(Math.random() * 1_000_000);
const WRITES = 5 + Math.floor(Math.random() * 8);
/**
 * Random files: the lab's file and the decoy share one random name in two
 * directories, made in a random order after a random number of other files,
 * so that neither the name nor the inode number can be known in advance
 * (only target_ino, which the loader writes, tells the lab's file).
 */
const FILE_NAME = `kl${Math.random().toString(16).slice(2, 8)}.dat`;
const PADDING = 1 + Math.floor(Math.random() * 24);
const [LAB_DIR, DECOY_DIR] = Math.random() < 0.5 ? ['p', 'q'] : ['q', 'p'];
const LAB_FIRST = Math.random() < 0.5;
/**
 * One more write(2) on the lab's file, from a process named kl_vfs_ro whose
 * fd 1 is the file opened read-only: vfs_write refuses it (-EBADF) before it
 * calls the file system, so the chain is vfs_write → return -9, no write_iter.
 */
const RO_COMM = 'kl_vfs_ro';
const RO_FD = 1;

/**
 * The guest's steps (busybox sh). The lab's file and a decoy on a fresh
 * tmpfs; the loader started and waited for ("attached"); the kernel's view
 * of the links; the workload with the syscall tracepoints on; the loader
 * stopped; the records, the trace, the files, what is left loaded.
 */
const SCRIPT = `
D=/mnt/kl_vfs
mkdir -p $D && mount -t tmpfs -o size=64m tmpfs $D
mkdir $D/p $D/q
i=0; while [ $i -lt ${PADDING} ]; do : > $D/pad$i; i=$((i+1)); done
LAB=$D/${LAB_DIR}/${FILE_NAME}; DECOY=$D/${DECOY_DIR}/${FILE_NAME}
${LAB_FIRST ? ': > $LAB; : > $DECOY' : ': > $DECOY; : > $LAB'}
WI=generic_file_write_iter
grep -q ' shmem_file_write_iter$' /proc/kallsyms && WI=shmem_file_write_iter
echo "KL_SECTION target"; echo "release=$(uname -r) fs=$(stat -f -c %T $D) write_iter=$WI"
T=/sys/kernel/tracing/instances/kl_vfs
mkdir $T
echo 1 > $T/events/syscalls/sys_enter_write/enable
echo 1 > $T/events/syscalls/sys_exit_write/enable
/lab/vfs_chain_load /lab/vfs_chain.bpf.o $LAB $WI > /tmp/chain.txt 2> /tmp/chain.err &
LP=$!
i=0; while [ $i -lt 300 ] && ! grep -q '^attached' /tmp/chain.txt && kill -0 $LP 2>/dev/null; do usleep 50000; i=$((i+1)); done
echo "KL_SECTION links"; /lab/bpf_links; echo "exit=$?"
echo "KL_SECTION bpftool"; /lab/bpftool link show; /lab/bpftool prog show
echo "KL_SECTION enabled"; cat /sys/kernel/tracing/enabled_functions
echo "KL_SECTION writer"; /lab/vfs_writer $LAB $DECOY ${SEED} ${WRITES} 2>&1; echo "exit=$?"
ln -s /bin/busybox /tmp/${RO_COMM}
echo "KL_SECTION readonly"; (exec -a sh /tmp/${RO_COMM} -c 'exec ${RO_FD}<"$0" 2>/dev/null; echo kl' $LAB); echo "exit=$?"
echo 0 > $T/tracing_on
kill -TERM $LP 2>/dev/null; wait $LP; S=$?
echo "KL_SECTION loader"; echo "exit=$S"; cat /tmp/chain.err
echo "KL_SECTION chain"; cat /tmp/chain.txt
echo "KL_SECTION trace"; grep -E '^ *kl_vfs_' $T/trace
echo "KL_SECTION files"; echo "lab $(stat -c '%i %s' $LAB)"; echo "decoy $(stat -c '%i %s' $DECOY)"
echo "KL_SECTION left"; /lab/bpftool prog show; /lab/bpf_links
echo 0 > $T/events/syscalls/sys_enter_write/enable; echo 0 > $T/events/syscalls/sys_exit_write/enable; rmdir $T
`;

const exitOf = (section = '') => Number(section.match(/exit=(\d+)/)?.[1] ?? NaN);

describe('Net Lab 5.6 — open and write through the VFS (追踪 open/write 系统调用)', () => {
  requires(...NEEDS);

  let guest: GuestRunResult;
  let s: Record<string, string> = {};
  let writeIter = '';
  let links: TracingLink[] = [];
  let chain: ChainRecord[] = [];
  let labCalls: WriteCall[] = [];
  let allCalls: WriteCall[] = [];
  let files: Record<string, { ino: number; size: number }> = {};
  let labIno = NaN;
  let evidence = '';

  beforeAll(async () => {
    if (await unmet([...NEEDS])) return;
    const [object, loader, writer, lister] = await Promise.all([
      buildBpfObject({ src: labSource('net/06-vfs-write/vfs_chain.bpf.c'), vmlinux: true }),
      buildProgram({ src: join(REFERENCE_SRC, 'net/vfs_chain_load.c'), ldlibs: ['-lbpf', '-lelf', '-lz'], static: true }),
      buildProgram({ src: join(REFERENCE_SRC, 'net/vfs_writer.c'), static: true }),
      buildProgram({ src: join(REFERENCE_SRC, 'net/bpf_links.c'), ldlibs: ['-lbpf', '-lelf', '-lz'], static: true }),
    ]);
    const bpftool = execFileSync('which', ['bpftool']).toString().trim();
    guest = await runInGuest({
      script: SCRIPT,
      tracefs: true,
      memoryMb: 512,
      timeoutMs: 120_000,
      programs: [{ name: 'vfs_chain_load', path: loader.path }, { name: 'vfs_writer', path: writer.path }, { name: 'bpf_links', path: lister.path }],
      files: [
        { path: 'lab/vfs_chain.bpf.o', data: readFileSync(object.path) },
        ...dynamicProgramFiles(bpftool, 'bpftool', execFileSync('ldd', [bpftool]).toString()),
      ],
    });
    s = parseSections(guest.output);
    writeIter = s.target?.match(/write_iter=(\S+)/)?.[1] ?? '?';
    links = parseLinks(s.links ?? '');
    chain = parseChain(s.chain ?? '');
    allCalls = parseWriteCalls(s.trace ?? '');
    labCalls = allCalls.filter((c) => c.fd === LAB_FD || (c.comm === RO_COMM && c.fd === RO_FD));
    for (const line of (s.files ?? '').split('\n')) {
      const m = line.match(/^(lab|decoy) (\d+) (\d+)$/);
      if (m) files[m[1]!] = { ino: Number(m[2]), size: Number(m[3]) };
    }
    labIno = files.lab?.ino ?? NaN;
    evidence = `guest (${guest.boot.accel}, ${guest.boot.seconds.toFixed(1)} s, script exit ${guest.exitCode}): ${s.target ?? '(no target section)'}\n` +
      `workload: seed ${SEED}, ${WRITES} writes + ${CHILD_WRITES} by the child + 1 refused (${RO_COMM}, read-only fd); ` +
      `lab's file ${LAB_DIR}/${FILE_NAME}, decoy ${DECOY_DIR}/${FILE_NAME} (${PADDING} other files first); inode and size ${JSON.stringify(files)}\n` +
      `loader: ${s.loader ?? '(no section)'}\nlinks (kernel):\n${s.links ?? ''}\nscript output (tail):\n${guest.output.split('\n').slice(-25).join('\n')}`;
  }, 400_000);

  it('control: the syscall tracepoints see every write(2) of the workload, the short one and the refused one included', async (ctx) => {
    await adapted(ctx, 'fentry/fexit refused by this kernel (EPERM) and no kprobes: the kernel side runs in a QEMU guest of Debian\'s kernel');
    recordMetric(ctx, { name: `guest boot and lab steps (${guest.boot.accel})`, value: guest.boot.seconds, unit: 's', group: 'vfs write' });
    const decoys = allCalls.filter((c) => c.fd === DECOY_FD);
    const short = labCalls.filter((c) => c.ret !== undefined && c.ret >= 0 && c.ret < c.count);
    const refused = labCalls.filter((c) => c.comm === RO_COMM && c.ret === -EBADF);
    expect({ writerExit: exitOf(s.writer), labWrites: labCalls.length, decoyWrites: decoys.length, pids: new Set(labCalls.map((c) => c.pid)).size, short: short.length,
      refused: refused.length, fsOfFile: /fs=tmpfs/.test(s.target ?? '') },
      `sys_enter_write/sys_exit_write of kl_vfs_* processes:\n${(s.trace ?? '').split('\n').slice(0, 60).join('\n')}\nwriter: ${s.writer}\nread-only: ${s.readonly}\n${evidence}`)
      .toEqual({ writerExit: 0, labWrites: WRITES + CHILD_WRITES + 1, decoyWrites: WRITES + CHILD_WRITES, pids: 3, short: 1, refused: 1, fsOfFile: true });
  });

  it('attaches with BPF trampolines: the kernel lists fentry and fexit links on vfs_write and a link on the file system\'s write_iter', () => {
    const on = (attach: string, target: string) => links.some((l) => l.attach === attach && l.target === target);
    expect({ loaderAttached: /^attached/m.test(s.chain ?? ''), fentryVfsWrite: on('fentry', 'vfs_write'), fexitVfsWrite: on('fexit', 'vfs_write'),
      onWriteIter: links.some((l) => l.target === writeIter && (l.attach === 'fentry' || l.attach === 'fexit')) },
    `links the kernel lists (bpf_links, while the loader ran):\n${s.links || '(none)'}\nbpftool:\n${s.bpftool ?? ''}\nftrace enabled_functions:\n${s.enabled || '(none)'}\n${evidence}`)
      .toEqual({ loaderAttached: true, fentryVfsWrite: true, fexitVfsWrite: true, onWriteIter: true });
  });

  it('reports one vfs_write per write(2) to the lab\'s file, in each process, with the count the syscall asked for', () => {
    const pids = [...new Set(labCalls.map((c) => c.pid))];
    const got = Object.fromEntries(pids.map((p) => [p, ofPid(chain, p).filter((r) => r.step === 'vfs_write').map((r) => r.bytes)]));
    const want = Object.fromEntries(pids.map((p) => [p, ofPid(labCalls, p).map((c) => c.count)]));
    expect(got, `vfs_write records per pid vs sys_enter_write counts per pid (fd ${LAB_FD}; fd ${RO_FD} of ${RO_COMM}, the lab's file read-only)\nrecords:\n${showChain(chain)}\n${evidence}`).toEqual(want);
  });

  it('the file system\'s write_iter runs inside each of those vfs_write calls (after its entry, before its return) with the same byte count', () => {
    const pids = [...new Set(labCalls.map((c) => c.pid))];
    // Per write: the three records in order; write_iter carries the count (its iov_iter holds the whole buffer).
    const shape = (list: ChainRecord[]) => list.filter((r) => r.ino === labIno).map((r) => (r.step === 'vfs_write_ret' ? 'vfs_write_ret' : `${r.step} ${r.bytes}`));
    const got = Object.fromEntries(pids.map((p) => [p, shape(ofPid(chain, p))]));
    const want = Object.fromEntries(pids.map((p) => [p, shape(expectedChain(ofPid(labCalls, p), labIno))]));
    expect(got, `records of the lab's inode ${labIno} per pid (return values left out here) vs one vfs_write → ${writeIter} → return per write(2); ` +
      `for the write of ${RO_COMM} on a read-only fd vfs_write returns -${EBADF} without calling ${writeIter}, so no write_iter record belongs there\n` +
      `records:\n${showChain(chain)}\n${evidence}`).toEqual(want);
  });

  it('reports only the lab\'s file: every record carries its inode, none the decoy\'s or another file\'s, none from a process that did not write it', () => {
    const others = chain.filter((r) => r.ino !== labIno);
    const writers = new Set(labCalls.map((c) => c.pid));
    const strays = chain.filter((r) => !writers.has(r.pid));
    expect({ records: chain.length > 0, otherInodes: [...new Set(others.map((r) => r.ino))], strayPids: [...new Set(strays.map((r) => r.pid))] },
      `lab inode ${labIno}, decoy inode ${files.decoy?.ino}, processes that wrote the lab's file: ${[...writers].join(', ')}\n` +
      `records of other inodes (first 20):\n${showChain(others.slice(0, 20))}\nrecords of other processes (first 20):\n${showChain(strays.slice(0, 20))}\n${evidence}`)
      .toEqual({ records: true, otherInodes: [], strayPids: [] });
  });

  it('vfs_write returns what each write(2) returned, the short and the refused write included, and the bytes add up to the file\'s size', (ctx) => {
    const pids = [...new Set(labCalls.map((c) => c.pid))];
    const rets = (list: ChainRecord[]) => list.filter((r) => r.step === 'vfs_write_ret' && r.ino === labIno).map((r) => r.bytes);
    const got = Object.fromEntries(pids.map((p) => [p, rets(ofPid(chain, p))]));
    const want = Object.fromEntries(pids.map((p) => [p, ofPid(labCalls, p).map((c) => c.ret)]));
    const total = Object.values(got).flat().filter((n) => n > 0).reduce((a, b) => a + b, 0);
    recordMetric(ctx, { name: 'bytes written to the lab file', value: files.lab?.size ?? NaN, unit: 'B', group: 'vfs write' });
    expect({ perPid: got, total }, `vfs_write_ret records per pid vs sys_exit_write results (fd ${LAB_FD}; fd ${RO_FD} of ${RO_COMM}: -${EBADF}); file size ${files.lab?.size}\n` +
      `write(2) calls: ${labCalls.map((c) => `${c.pid}:${c.count}->${c.ret}`).join(' ')}\nrecords:\n${showChain(chain)}\n${evidence}`)
      .toEqual({ perPid: want, total: files.lab?.size });
  });

  it('control: the loader detaches when stopped and the guest kernel has no BPF program or link left', () => {
    expect({ loaderExit: exitOf(s.loader), left: (s.left ?? '').trim(), scriptFinished: guest.exitCode },
      `bpftool prog show and bpf_links after the loader exited:\n${s.left || '(nothing)'}\n${evidence}`)
      .toEqual({ loaderExit: 0, left: '', scriptFinished: 0 });
  });
});
