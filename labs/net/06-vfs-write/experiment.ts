/**
 * Net Lab 5.6's experiment: the student's BPF object (vfs_chain.bpf.c:
 * fentry/fexit programs on vfs_write and on the file system's write_iter,
 * filtered by the lab file's inode number), the harness loader
 * (c/net/vfs_chain_load.c, which prints the ring buffer's records), the
 * workload (c/net/vfs_writer.c) and the link lister (c/net/bpf_links.c) go
 * into one QEMU guest of Debian's 6.1 kernel with bpftool and the ext4
 * modules: this host's kernel refuses BPF trampoline programs (EPERM,
 * measured) and has no kprobes. There the loader runs twice, in a random
 * order: the lab's file on a tmpfs (its write_iter in 6.1:
 * generic_file_write_iter) and on ext4 (ext4_file_write_iter, an ext2 image
 * on a RAM disk), with the syscall tracepoints sys_enter_write/sys_exit_write
 * of a private tracefs instance on. It returns the evidence (`VfsWrite`): per
 * run the links the kernel lists, the loader's records, the write(2) calls
 * the tracepoints saw, the files' inodes and sizes (vfs-chain.ts reads the
 * lines). No verdicts here: judge.ts and the spec decide.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildBpfObject, buildProgram } from '../../../helpers/harness/compile.js';
import { REFERENCE_SRC, labSource } from '../../../helpers/harness/paths.js';
import { LabError } from '../../../helpers/harness/errors.js';
import { runInGuest, type GuestRunResult } from '../../../helpers/kernel/guest.js';
import { debianKernel } from '../../../helpers/kernel/qemu.js';
import { dynamicProgramFiles } from '../../../helpers/kernel/initramfs.js';
import { parseSections } from '../../../helpers/kernel/module.js';
import { parseChain, parseLinks, parseWriteCalls, type ChainRecord, type TracingLink, type WriteCall } from './vfs-chain.js';
import { LAB_FD, RO_COMM, RO_FD } from './judge.js';

/**
 * Two runs of the loader in one boot, one file system each, in a random order: tmpfs (its write_iter in 6.1:
 * generic_file_write_iter) and ext4 (ext4_file_write_iter, in the ext4 module: an ext2 file system on a RAM disk,
 * mounted by the ext4 driver). A program must follow the file's own f_op->write_iter, the one the loader names:
 * a section that names one function (fentry/generic_file_write_iter) is wrong on one of the two.
 */
export type Fs = 'tmpfs' | 'ext4';
const FS_ORDER: readonly Fs[] = Math.random() < 0.5 ? ['tmpfs', 'ext4'] : ['ext4', 'tmpfs'];
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
 * One more write(2) on the lab's file in the first run, from a process named RO_COMM whose
 * fd RO_FD is the file opened read-only: vfs_write refuses it (-EBADF) before it
 * calls the file system, so the chain is vfs_write → return -9, no write_iter.
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

/** The sections each run of the loader prints (suffixed with its number in the guest's output). */
export const RUN_SECTIONS = ['target', 'links', 'bpftool', 'enabled', 'writer', 'loader', 'chain', 'trace', 'files'] as const;
export type RunSection = (typeof RUN_SECTIONS)[number];

/** One run of the loader, parsed. */
export interface Run {
  readonly n: 1 | 2;
  readonly fs: Fs;
  /** The workload's seed and writes (vfs_writer's arguments), and the files made before the lab's two. */
  readonly seed: number;
  readonly writes: number;
  readonly padding: number;
  /** The write_iter the loader was given (the file system's f_op->write_iter). */
  readonly writeIter: string;
  readonly links: TracingLink[];
  readonly chain: ChainRecord[];
  /** The write(2) calls on the lab's file: fd LAB_FD of the writer and its child, fd RO_FD of RO_COMM. */
  readonly labCalls: WriteCall[];
  readonly allCalls: WriteCall[];
  readonly files: Record<string, { ino: number; size: number }>;
  readonly labIno: number;
  /** The run's sections of the guest's output, as printed ('' when missing). */
  readonly sections: Readonly<Record<RunSection, string>>;
}

/** The evidence of the guest's two runs. */
export interface VfsWrite {
  readonly guest: GuestRunResult;
  /** Every section of the guest's output (mounts, readonly, left and the runs' own, suffixed). */
  readonly sections: Readonly<Record<string, string>>;
  readonly runs: readonly Run[];
  /** The two files' shared name and their directories. */
  readonly fileName: string;
  readonly labDir: string;
  readonly decoyDir: string;
}

/** One run's sections of the guest's output, parsed (pure). */
export function parseRun(s: Readonly<Record<string, string>>, n: 1 | 2, fs: Fs, workload: { seed: number; writes: number; padding: number }): Run {
  const sections = Object.fromEntries(RUN_SECTIONS.map((name) => [name, s[`${name}${n}`] ?? ''])) as Record<RunSection, string>;
  const allCalls = parseWriteCalls(sections.trace);
  const files: Record<string, { ino: number; size: number }> = {};
  for (const line of sections.files.split('\n')) {
    const m = line.match(/^(lab|decoy) (\d+) (\d+)$/);
    if (m) files[m[1]!] = { ino: Number(m[2]), size: Number(m[3]) };
  }
  return {
    n, fs, ...workload, sections, files, allCalls,
    writeIter: sections.target.match(/write_iter=(\S+)/)?.[1] ?? '?',
    links: parseLinks(sections.links),
    chain: parseChain(sections.chain),
    labCalls: allCalls.filter((c) => c.fd === LAB_FD || (c.comm === RO_COMM && c.fd === RO_FD)),
    labIno: files.lab?.ino ?? NaN,
  };
}

/**
 * Builds the student's object and the harness programs, boots the guest with them and runs the two runs.
 * Throws only for the harness (a missing module of the guest kernel, a build or boot failure).
 */
export async function traceWrites(): Promise<VfsWrite> {
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
  const guest = await runInGuest({
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
  const sections = parseSections(guest.output);
  return {
    guest, sections, fileName: FILE_NAME, labDir: LAB_DIR, decoyDir: DECOY_DIR,
    runs: [
      parseRun(sections, 1, FS_ORDER[0]!, { seed: SEED, writes: WRITES, padding: PADDING }),
      parseRun(sections, 2, FS_ORDER[1]!, { seed: SEED2, writes: WRITES2, padding: PADDING2 }),
    ],
  };
}
