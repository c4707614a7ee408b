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
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBpfObject, buildProgram } from '../../../helpers/harness/compile.js';
import { REFERENCE_SRC, labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { LabError } from '../../../helpers/harness/errors.js';
import { runInGuest, type GuestRunResult } from '../../../helpers/kernel/guest.js';
import { debianKernel } from '../../../helpers/kernel/qemu.js';
import { dynamicProgramFiles } from '../../../helpers/kernel/initramfs.js';
import { parseSections } from '../../../helpers/kernel/module.js';
import { EBADF, MAX_RW_COUNT, expectedChain, ofPid, parseChain, parseLinks, parseWriteCalls, showChain,
  type ChainRecord, type TracingLink, type WriteCall } from './vfs-chain.js';

const NEEDS = labRequires(import.meta.url);
/** The writer's fds (c/net/vfs_writer.c) and the number of writes its child adds. */
const LAB_FD = 7;
const DECOY_FD = 8;
const CHILD_WRITES = 3;
/**
 * Two runs of the loader in one boot, one file system each, in a random order: tmpfs (its write_iter in 6.1:
 * generic_file_write_iter) and ext4 (ext4_file_write_iter, in the ext4 module: an ext2 file system on a RAM disk,
 * mounted by the ext4 driver). A program must follow the file's own f_op->write_iter, the one the loader names:
 * a section that names one function (fentry/generic_file_write_iter) is wrong on one of the two.
 */
type Fs = 'tmpfs' | 'ext4';
const FS_ORDER: readonly Fs[] = Math.random() < 0.5 ? ['tmpfs', 'ext4'] : ['ext4', 'tmpfs'];
/** What `stat -f -c %T` calls each. */
const FS_TYPE: Record<Fs, string> = { tmpfs: 'tmpfs', ext4: 'ext2/ext3' };
/** The guest kernel's modules for ext4 (its mount asks the crypto API for crc32c) and the RAM disk, in dependency order (under /lib/modules/<release>/kernel/). */
const EXT4_MODULES = ['crypto/crc32c_generic.ko', 'lib/crc16.ko', 'fs/mbcache.ko', 'fs/jbd2/jbd2.ko', 'fs/ext4/ext4.ko', 'drivers/block/brd.ko'];
/** Random workload: a student's program cannot know the counts in advance. */
const SEED = 1 + Math.floor(Math.random() * 1_000_000);
const WRITES = 5 + Math.floor(Math.random() * 8);
/** The second run's writes (its own seed). */
const SEED2 = 1 + Math.floor(Math.random() * 1_000_000);
const WRITES2 = 2 + Math.floor(Math.random() * 4);
/**
 * Random files: the lab's file and the decoy share one random name in two
 * directories, made in a random order after a random number of other files,
 * so that neither the name nor the inode number can be known in advance
 * (only target_ino, which the loader writes, tells the lab's file).
 */
const FILE_NAME = `kl${Math.random().toString(16).slice(2, 8)}.dat`;
const PADDING = 1 + Math.floor(Math.random() * 24);
const PADDING2 = 1 + Math.floor(Math.random() * 24);
const [LAB_DIR, DECOY_DIR] = Math.random() < 0.5 ? ['p', 'q'] : ['q', 'p'];
const LAB_FIRST = Math.random() < 0.5;
/**
 * One more write(2) on the lab's file in the first run, from a process named kl_vfs_ro whose
 * fd 1 is the file opened read-only: vfs_write refuses it (-EBADF) before it
 * calls the file system, so the chain is vfs_write → return -9, no write_iter.
 */
const RO_COMM = 'kl_vfs_ro';
const RO_FD = 1;

/** One run's files on a mounted file system $M (busybox sh): the lab's file and the decoy, made after padding. */
const makeFiles = (mnt: string, padding: number) => `
mkdir $${mnt}/p $${mnt}/q
i=0; while [ $i -lt ${padding} ]; do : > $${mnt}/pad$i; i=$((i+1)); done
LAB=$${mnt}/${LAB_DIR}/${FILE_NAME}; DECOY=$${mnt}/${DECOY_DIR}/${FILE_NAME}
${LAB_FIRST ? ': > $LAB; : > $DECOY' : ': > $DECOY; : > $LAB'}`;

/** The write_iter of each file system in this kernel (tmpfs: shmem_file_write_iter from 6.6 on). */
const WRITE_ITER_OF = `
WI_tmpfs=generic_file_write_iter
grep -q ' shmem_file_write_iter$' /proc/kallsyms && WI_tmpfs=shmem_file_write_iter
WI_ext4=ext4_file_write_iter`;

/**
 * One run (sections suffixed with n): the loader started on the lab's file with its file system's write_iter
 * and waited for ("attached"); the kernel's view of the links; the workload with the syscall tracepoints on;
 * the loader stopped; the records, the trace, the files.
 */
const runScript = (n: 1 | 2, fs: Fs, seed: number, writes: number) => `
${makeFiles(fs === 'tmpfs' ? 'TM' : 'EM', n === 1 ? PADDING : PADDING2)}
WI=$WI_${fs}
echo "KL_SECTION target${n}"; echo "release=$(uname -r) fs=$(stat -f -c %T $LAB) write_iter=$WI"
echo > $T/trace; echo 1 > $T/tracing_on
/lab/vfs_chain_load /lab/vfs_chain.bpf.o $LAB $WI > /tmp/chain${n}.txt 2> /tmp/chain${n}.err &
LP=$!
i=0; while [ $i -lt 300 ] && ! grep -q '^attached' /tmp/chain${n}.txt && kill -0 $LP 2>/dev/null; do usleep 50000; i=$((i+1)); done
echo "KL_SECTION links${n}"; /lab/bpf_links; echo "exit=$?"
echo "KL_SECTION bpftool${n}"; /lab/bpftool link show; /lab/bpftool prog show
echo "KL_SECTION enabled${n}"; cat /sys/kernel/tracing/enabled_functions
echo "KL_SECTION writer${n}"; /lab/vfs_writer $LAB $DECOY ${seed} ${writes} 2>&1; echo "exit=$?"
${n === 1 ? `ln -s /bin/busybox /tmp/${RO_COMM}
echo "KL_SECTION readonly"; (exec -a sh /tmp/${RO_COMM} -c 'exec ${RO_FD}<"$0" 2>/dev/null; echo kl' $LAB); echo "exit=$?"` : ''}
echo 0 > $T/tracing_on
kill -TERM $LP 2>/dev/null; wait $LP; S=$?
echo "KL_SECTION loader${n}"; echo "exit=$S"; cat /tmp/chain${n}.err
echo "KL_SECTION chain${n}"; cat /tmp/chain${n}.txt
echo "KL_SECTION trace${n}"; grep -E '^ *kl_vfs_' $T/trace
echo "KL_SECTION files${n}"; echo "lab $(stat -c '%i %s' $LAB)"; echo "decoy $(stat -c '%i %s' $DECOY)"`;

/**
 * The guest's steps (busybox sh): a tmpfs and an ext4 file system, a private tracefs instance with
 * sys_enter_write/sys_exit_write, the two runs, then what is left loaded.
 */
const SCRIPT = `
echo "KL_SECTION mounts"
for m in ${EXT4_MODULES.map((m) => `/lab/mod/${m.split('/').pop()}`).join(' ')}; do
  case $m in *brd.ko) insmod $m rd_nr=1 rd_size=16384 ;; *) insmod $m ;; esac || echo "insmod $m failed"
done
[ -b /dev/ram0 ] || mknod /dev/ram0 b 1 0
TM=/mnt/kl_vfs_tmpfs; EM=/mnt/kl_vfs_ext4
mkdir -p $TM $EM && mount -t tmpfs -o size=64m tmpfs $TM
mke2fs -F /dev/ram0 >/dev/null 2>&1 || echo "mke2fs /dev/ram0 failed"
mount -t ext4 /dev/ram0 $EM || echo "mount ext4 failed"
grep kl_vfs /proc/mounts
${WRITE_ITER_OF}
T=/sys/kernel/tracing/instances/kl_vfs
mkdir $T
echo 1 > $T/events/syscalls/sys_enter_write/enable
echo 1 > $T/events/syscalls/sys_exit_write/enable
${runScript(1, FS_ORDER[0]!, SEED, WRITES)}
${runScript(2, FS_ORDER[1]!, SEED2, WRITES2)}
echo "KL_SECTION left"; /lab/bpftool prog show; /lab/bpf_links
echo 0 > $T/events/syscalls/sys_enter_write/enable; echo 0 > $T/events/syscalls/sys_exit_write/enable; rmdir $T
umount $EM 2>/dev/null; umount $TM 2>/dev/null
`;

/** One run of the loader, parsed. */
interface Run {
  readonly n: 1 | 2;
  readonly fs: Fs;
  readonly writes: number;
  readonly writeIter: string;
  readonly links: TracingLink[];
  readonly chain: ChainRecord[];
  readonly labCalls: WriteCall[];
  readonly allCalls: WriteCall[];
  readonly files: Record<string, { ino: number; size: number }>;
  readonly labIno: number;
  readonly sec: (name: string) => string;
}

function parseRun(s: Record<string, string>, n: 1 | 2, fs: Fs, writes: number): Run {
  const sec = (name: string) => s[`${name}${n}`] ?? '';
  const allCalls = parseWriteCalls(sec('trace'));
  const files: Record<string, { ino: number; size: number }> = {};
  for (const line of sec('files').split('\n')) {
    const m = line.match(/^(lab|decoy) (\d+) (\d+)$/);
    if (m) files[m[1]!] = { ino: Number(m[2]), size: Number(m[3]) };
  }
  return {
    n, fs, writes, sec, files, allCalls,
    writeIter: sec('target').match(/write_iter=(\S+)/)?.[1] ?? '?',
    links: parseLinks(sec('links')),
    chain: parseChain(sec('chain')),
    labCalls: allCalls.filter((c) => c.fd === LAB_FD || (c.comm === RO_COMM && c.fd === RO_FD)),
    labIno: files.lab?.ino ?? NaN,
  };
}

/** A run's name in messages: "run 1 (ext4, ext4_file_write_iter)". */
const runName = (r: Run) => `run ${r.n} (${r.fs}, ${r.writeIter})`;
/** One value per run, keyed by its name, for comparisons. */
const perRun = <T>(runs: readonly Run[], f: (r: Run) => T): Record<string, T> => Object.fromEntries(runs.map((r) => [runName(r), f(r)]));

const exitOf = (section = '') => Number(section.match(/exit=(\d+)/)?.[1] ?? NaN);

describe('Net Lab 5.6 — open and write through the VFS (追踪 open/write 系统调用)', () => {
  requires(...NEEDS);

  let guest: GuestRunResult;
  let s: Record<string, string> = {};
  let runs: Run[] = [];
  let evidence = '';

  beforeAll(async () => {
    if (await unmet([...NEEDS])) return;
    const kernel = debianKernel();
    const modules = EXT4_MODULES.map((m) => join('/lib/modules', kernel?.release ?? '?', 'kernel', m));
    const missing = modules.filter((m) => !existsSync(m));
    if (missing.length) {
      throw new LabError(`the guest kernel's modules for ext4 and the RAM disk are missing: ${missing.join(', ')} — fix: apt-get install linux-image-amd64 (its /lib/modules)`, { code: 'E_SOURCE' });
    }
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
      timeoutMs: 180_000,
      programs: [{ name: 'vfs_chain_load', path: loader.path }, { name: 'vfs_writer', path: writer.path }, { name: 'bpf_links', path: lister.path }],
      files: [
        { path: 'lab/vfs_chain.bpf.o', data: readFileSync(object.path) },
        ...modules.map((m) => ({ path: `lab/mod/${basename(m)}`, data: readFileSync(m) })),
        ...dynamicProgramFiles(bpftool, 'bpftool', execFileSync('ldd', [bpftool]).toString()),
      ],
    });
    s = parseSections(guest.output);
    runs = [parseRun(s, 1, FS_ORDER[0]!, WRITES), parseRun(s, 2, FS_ORDER[1]!, WRITES2)];
    evidence = `guest (${guest.boot.accel}, ${guest.boot.seconds.toFixed(1)} s, script exit ${guest.exitCode}); mounts:\n${s.mounts ?? '(no section)'}\n` +
      runs.map((r) => `${runName(r)}: ${r.sec('target') || '(no target section)'}\n` +
        `  workload: seed ${r.n === 1 ? SEED : SEED2}, ${r.writes} writes + ${CHILD_WRITES} by the child${r.n === 1 ? ` + 1 refused (${RO_COMM}, read-only fd)` : ''}; ` +
        `lab's file ${LAB_DIR}/${FILE_NAME}, decoy ${DECOY_DIR}/${FILE_NAME} (${r.n === 1 ? PADDING : PADDING2} other files first); inode and size ${JSON.stringify(r.files)}\n` +
        `  loader: ${r.sec('loader') || '(no section)'}\n  links (kernel):\n${r.sec('links')}`).join('\n') +
      `\nscript output (tail):\n${guest.output.split('\n').slice(-25).join('\n')}`;
  }, 400_000);

  it('control: the syscall tracepoints see every write(2) of the workload, the short one and the refused one included', async (ctx) => {
    await adapted(ctx, 'fentry/fexit refused by this kernel (EPERM) and no kprobes: the kernel side runs in a QEMU guest of Debian\'s kernel');
    recordMetric(ctx, { name: `guest boot and lab steps (${guest.boot.accel})`, value: guest.boot.seconds, unit: 's', group: 'vfs write' });
    const got = perRun(runs, (r) => {
      const short = r.labCalls.filter((c) => c.ret !== undefined && c.ret >= 0 && c.ret < c.count);
      return { writerExit: exitOf(r.sec('writer')), labWrites: r.labCalls.length, decoyWrites: r.allCalls.filter((c) => c.fd === DECOY_FD).length,
        pids: new Set(r.labCalls.map((c) => c.pid)).size, short: short.length, shortAboveMaxRwCount: short.filter((c) => c.count > MAX_RW_COUNT).length,
        refused: r.labCalls.filter((c) => c.comm === RO_COMM && c.ret === -EBADF).length, fsOfFile: r.sec('target').match(/fs=(\S+)/)?.[1] ?? '?' };
    });
    const want = perRun(runs, (r) => ({ writerExit: 0, labWrites: r.writes + CHILD_WRITES + (r.n === 1 ? 1 : 0), decoyWrites: r.writes + CHILD_WRITES,
      pids: r.n === 1 ? 3 : 2, short: 1, shortAboveMaxRwCount: 1, refused: r.n === 1 ? 1 : 0, fsOfFile: FS_TYPE[r.fs] }));
    expect(got, runs.map((r) => `${runName(r)}: sys_enter_write/sys_exit_write of kl_vfs_* processes:\n${r.sec('trace').split('\n').slice(0, 40).join('\n')}\n` +
      `writer: ${r.sec('writer')}`).join('\n') + `\nread-only: ${s.readonly}\n${evidence}`).toEqual(want);
  });

  it('attaches with BPF trampolines: the kernel lists fentry and fexit links on vfs_write and a link on the file system\'s write_iter', () => {
    const got = perRun(runs, (r) => {
      const on = (attach: string, target: string) => r.links.some((l) => l.attach === attach && l.target === target);
      return { loaderAttached: /^attached/m.test(r.sec('chain')), fentryVfsWrite: on('fentry', 'vfs_write'), fexitVfsWrite: on('fexit', 'vfs_write'),
        onItsWriteIter: r.links.some((l) => l.target === r.writeIter && (l.attach === 'fentry' || l.attach === 'fexit')) };
    });
    const want = perRun(runs, () => ({ loaderAttached: true, fentryVfsWrite: true, fexitVfsWrite: true, onItsWriteIter: true }));
    expect(got, `links the kernel lists (bpf_links, while the loader ran), per run: the lab's file is on tmpfs in one run and on ext4 in the other, and the loader ` +
      'names that file system\'s write_iter (its f_op->write_iter) for the section that names no function ("fentry" or "fexit"); a section that names one ' +
      '(fentry/generic_file_write_iter) attaches there in both runs and misses the other file system\'s:\n' +
      runs.map((r) => `${runName(r)}:\n${r.sec('links') || '(none)'}\nbpftool:\n${r.sec('bpftool')}\nftrace enabled_functions:\n${r.sec('enabled') || '(none)'}`).join('\n') +
      `\n${evidence}`).toEqual(want);
  });

  it('reports one vfs_write per write(2) to the lab\'s file, in each process, with the count the syscall asked for', () => {
    const pids = (r: Run) => [...new Set(r.labCalls.map((c) => c.pid))];
    const got = perRun(runs, (r) => Object.fromEntries(pids(r).map((p) => [p, ofPid(r.chain, p).filter((c) => c.step === 'vfs_write').map((c) => c.bytes)])));
    const want = perRun(runs, (r) => Object.fromEntries(pids(r).map((p) => [p, ofPid(r.labCalls, p).map((c) => c.count)])));
    expect(got, `vfs_write records per pid vs sys_enter_write counts per pid (fd ${LAB_FD}; fd ${RO_FD} of ${RO_COMM}, the lab's file read-only)\n` +
      runs.map((r) => `${runName(r)} records:\n${showChain(r.chain)}`).join('\n') + `\n${evidence}`).toEqual(want);
  });

  it('the file system\'s write_iter runs inside each of those vfs_write calls (after its entry, before its return) with the byte count its iov_iter holds', () => {
    // Per write: the three records in order; write_iter carries the count its iov_iter holds (the whole buffer, cut to MAX_RW_COUNT).
    const shape = (list: ChainRecord[], ino: number) => list.filter((r) => r.ino === ino).map((r) => (r.step === 'vfs_write_ret' ? 'vfs_write_ret' : `${r.step} ${r.bytes}`));
    const pids = (r: Run) => [...new Set(r.labCalls.map((c) => c.pid))];
    const got = perRun(runs, (r) => Object.fromEntries(pids(r).map((p) => [p, shape(ofPid(r.chain, p), r.labIno)])));
    const want = perRun(runs, (r) => Object.fromEntries(pids(r).map((p) => [p, shape(expectedChain(ofPid(r.labCalls, p), r.labIno), r.labIno)])));
    const huge = runs.flatMap((r) => r.labCalls.filter((c) => c.count > MAX_RW_COUNT).map((c) => `${runName(r)} pid ${c.pid}: write(2) of ${c.count} bytes`));
    expect(got, `records of the lab's inode per pid (return values left out here) vs one vfs_write → the file's write_iter → return per write(2), in each run; ` +
      `for the write of ${RO_COMM} on a read-only fd vfs_write returns -${EBADF} without calling the write_iter, so no write_iter record belongs there; ` +
      `the write_iter's bytes are what its iov_iter holds: vfs_write cuts a count above MAX_RW_COUNT (${MAX_RW_COUNT}) to that before it calls the file system ` +
      `(${huge.join('; ') || 'no such write'}), so a count carried over from vfs_write's argument is not it\n` +
      runs.map((r) => `${runName(r)}, lab inode ${r.labIno}, records:\n${showChain(r.chain)}`).join('\n') + `\n${evidence}`).toEqual(want);
  });

  it('reports only the lab\'s file: every record carries its inode, none the decoy\'s or another file\'s, none from a process that did not write it', () => {
    const got = perRun(runs, (r) => {
      const writers = new Set(r.labCalls.map((c) => c.pid));
      return { records: r.chain.length > 0, otherInodes: [...new Set(r.chain.filter((c) => c.ino !== r.labIno).map((c) => c.ino))],
        strayPids: [...new Set(r.chain.filter((c) => !writers.has(c.pid)).map((c) => c.pid))] };
    });
    const want = perRun(runs, () => ({ records: true, otherInodes: [], strayPids: [] }));
    expect(got, runs.map((r) => {
      const writers = new Set(r.labCalls.map((c) => c.pid));
      return `${runName(r)}: lab inode ${r.labIno}, decoy inode ${r.files.decoy?.ino}, processes that wrote the lab's file: ${[...writers].join(', ')}\n` +
        `records of other inodes (first 20):\n${showChain(r.chain.filter((c) => c.ino !== r.labIno).slice(0, 20))}\n` +
        `records of other processes (first 20):\n${showChain(r.chain.filter((c) => !writers.has(c.pid)).slice(0, 20))}`;
    }).join('\n') + `\n${evidence}`).toEqual(want);
  });

  it('vfs_write returns what each write(2) returned, the short and the refused write included, and the bytes add up to the file\'s size', (ctx) => {
    const pids = (r: Run) => [...new Set(r.labCalls.map((c) => c.pid))];
    const rets = (r: Run, p: number) => ofPid(r.chain, p).filter((c) => c.step === 'vfs_write_ret' && c.ino === r.labIno).map((c) => c.bytes);
    const got = perRun(runs, (r) => {
      const perPid = Object.fromEntries(pids(r).map((p) => [p, rets(r, p)]));
      return { perPid, total: Object.values(perPid).flat().filter((n) => n > 0).reduce((a, b) => a + b, 0) };
    });
    const want = perRun(runs, (r) => ({ perPid: Object.fromEntries(pids(r).map((p) => [p, ofPid(r.labCalls, p).map((c) => c.ret)])), total: r.files.lab?.size }));
    recordMetric(ctx, { name: 'bytes written to the lab file', value: runs[0]?.files.lab?.size ?? NaN, unit: 'B', group: 'vfs write' });
    expect(got, `vfs_write_ret records per pid vs sys_exit_write results (fd ${LAB_FD}; fd ${RO_FD} of ${RO_COMM}: -${EBADF}), and their sum vs the file's size\n` +
      runs.map((r) => `${runName(r)}: file size ${r.files.lab?.size}; write(2) calls: ${r.labCalls.map((c) => `${c.pid}:${c.count}->${c.ret}`).join(' ')}\nrecords:\n${showChain(r.chain)}`).join('\n') +
      `\n${evidence}`).toEqual(want);
  });

  it('control: the loader detaches when stopped and the guest kernel has no BPF program or link left', () => {
    expect({ loaderExit: perRun(runs, (r) => exitOf(r.sec('loader'))), left: (s.left ?? '').trim(), scriptFinished: guest.exitCode },
      `bpftool prog show and bpf_links after the loader exited:\n${s.left || '(nothing)'}\n${evidence}`)
      .toEqual({ loaderExit: perRun(runs, () => 0), left: '', scriptFinished: 0 });
  });
});
