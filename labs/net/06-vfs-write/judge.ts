/**
 * Net Lab 5.6's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `VfsWrite`: per run the links the kernel listed, the
 * loader's records, the write(2) calls of the syscall tracepoints, the files)
 * to what each test compares — `got` against `want` — with the message that
 * shows the evidence. Unit-tested on made-up evidence in
 * tests/lab-units/net/06-vfs-write/judge.test.ts.
 */
import type { Verdict } from '../../../helpers/harness/verdict.js';
import { sectionExit as exitOf } from '../../../helpers/kernel/module.js';
import type { Fs, Run, VfsWrite } from './experiment.js';
import { EBADF, MAX_RW_COUNT, expectedChain, ofPid, showChain, type ChainRecord } from './vfs-chain.js';

export type { Verdict };

/** The writer's fds (c/net/vfs_writer.c) and the number of writes its child adds. */
export const LAB_FD = 7;
export const DECOY_FD = 8;
export const CHILD_WRITES = 3;
/**
 * One more write(2) on the lab's file in the first run, from a process named kl_vfs_ro whose
 * fd 1 is the file opened read-only: vfs_write refuses it (-EBADF) before it
 * calls the file system, so the chain is vfs_write → return -9, no write_iter.
 */
export const RO_COMM = 'kl_vfs_ro';
export const RO_FD = 1;
/** What `stat -f -c %T` calls each file system. */
export const FS_TYPE: Record<Fs, string> = { tmpfs: 'tmpfs', ext4: 'ext2/ext3' };

/** A run's name in messages: "run 1 (ext4, ext4_file_write_iter)". */
export const runName = (r: Run) => `run ${r.n} (${r.fs}, ${r.writeIter})`;
/** One value per run, keyed by its name, for comparisons. */
export const perRun = <T>(runs: readonly Run[], f: (r: Run) => T): Record<string, T> => Object.fromEntries(runs.map((r) => [runName(r), f(r)]));

/** The `exit=<n>` a section printed (NaN when none). */
/** The processes that wrote the lab's file, in order of their first write. */
const writerPids = (r: Run) => [...new Set(r.labCalls.map((c) => c.pid))];

/** The guest, its mounts, each run's target, workload, files, loader and links, the script's tail: the end of every message. */
export function evidence(x: VfsWrite): string {
  const s = x.sections;
  return `guest (${x.guest.boot.accel}, ${x.guest.boot.seconds.toFixed(1)} s, script exit ${x.guest.exitCode}); mounts:\n${s.mounts ?? '(no section)'}\n` +
    x.runs.map((r) => `${runName(r)}: ${r.sections.target || '(no target section)'}\n` +
      `  workload: seed ${r.seed}, ${r.writes} writes + ${CHILD_WRITES} by the child${r.n === 1 ? ` + 1 refused (${RO_COMM}, read-only fd)` : ''}; ` +
      `lab's file ${x.labDir}/${x.fileName}, decoy ${x.decoyDir}/${x.fileName} (${r.padding} other files first); inode and size ${JSON.stringify(r.files)}\n` +
      `  loader: ${r.sections.loader || '(no section)'}\n  links (kernel):\n${r.sections.links}`).join('\n') +
    `\nscript output (tail):\n${x.guest.output.split('\n').slice(-25).join('\n')}`;
}

/** Control: the syscall tracepoints saw the workload as given, per run (the harness, not the student's program). */
export function workload(x: VfsWrite) {
  const got = perRun(x.runs, (r) => {
    const short = r.labCalls.filter((c) => c.ret !== undefined && c.ret >= 0 && c.ret < c.count);
    return { writerExit: exitOf(r.sections.writer), labWrites: r.labCalls.length, decoyWrites: r.allCalls.filter((c) => c.fd === DECOY_FD).length,
      pids: new Set(r.labCalls.map((c) => c.pid)).size, short: short.length, shortAboveMaxRwCount: short.filter((c) => c.count > MAX_RW_COUNT).length,
      refused: r.labCalls.filter((c) => c.comm === RO_COMM && c.ret === -EBADF).length, fsOfFile: r.sections.target.match(/fs=(\S+)/)?.[1] ?? '?' };
  });
  const want = perRun(x.runs, (r) => ({ writerExit: 0, labWrites: r.writes + CHILD_WRITES + (r.n === 1 ? 1 : 0), decoyWrites: r.writes + CHILD_WRITES,
    pids: r.n === 1 ? 3 : 2, short: 1, shortAboveMaxRwCount: 1, refused: r.n === 1 ? 1 : 0, fsOfFile: FS_TYPE[r.fs] }));
  const message = x.runs.map((r) => `${runName(r)}: sys_enter_write/sys_exit_write of kl_vfs_* processes:\n${r.sections.trace.split('\n').slice(0, 40).join('\n')}\n` +
    `writer: ${r.sections.writer}`).join('\n') + `\nread-only: ${x.sections.readonly}\n${evidence(x)}`;
  return { got, want, message };
}

/** fentry and fexit links on vfs_write and a link on the run's own write_iter, as the kernel lists them while the loader ran. */
export function trampolines(x: VfsWrite) {
  const got = perRun(x.runs, (r) => {
    const on = (attach: string, target: string) => r.links.some((l) => l.attach === attach && l.target === target);
    return { loaderAttached: /^attached/m.test(r.sections.chain), fentryVfsWrite: on('fentry', 'vfs_write'), fexitVfsWrite: on('fexit', 'vfs_write'),
      onItsWriteIter: r.links.some((l) => l.target === r.writeIter && (l.attach === 'fentry' || l.attach === 'fexit')) };
  });
  const want = perRun(x.runs, () => ({ loaderAttached: true, fentryVfsWrite: true, fexitVfsWrite: true, onItsWriteIter: true }));
  const message = `links the kernel lists (bpf_links, while the loader ran), per run: the lab's file is on tmpfs in one run and on ext4 in the other, and the loader ` +
    'names that file system\'s write_iter (its f_op->write_iter) for the section that names no function ("fentry" or "fexit"); a section that names one ' +
    '(fentry/generic_file_write_iter) attaches there in both runs and misses the other file system\'s:\n' +
    x.runs.map((r) => `${runName(r)}:\n${r.sections.links || '(none)'}\nbpftool:\n${r.sections.bpftool}\nftrace enabled_functions:\n${r.sections.enabled || '(none)'}`).join('\n') +
    `\n${evidence(x)}`;
  return { got, want, message };
}

/** Per writing process, the vfs_write records' counts against the counts its write(2) calls asked for. */
export function vfsWriteCounts(x: VfsWrite) {
  const got = perRun(x.runs, (r) => Object.fromEntries(writerPids(r).map((p) => [p, ofPid(r.chain, p).filter((c) => c.step === 'vfs_write').map((c) => c.bytes)])));
  const want = perRun(x.runs, (r) => Object.fromEntries(writerPids(r).map((p) => [p, ofPid(r.labCalls, p).map((c) => c.count)])));
  const message = `vfs_write records per pid vs sys_enter_write counts per pid (fd ${LAB_FD}; fd ${RO_FD} of ${RO_COMM}, the lab's file read-only)\n` +
    x.runs.map((r) => `${runName(r)} records:\n${showChain(r.chain)}`).join('\n') + `\n${evidence(x)}`;
  return { got, want, message };
}

/** Per write: the three records in order; write_iter carries its bytes (the count its iov_iter holds), the return only its step. */
const shape = (list: readonly ChainRecord[], ino: number) => list.filter((r) => r.ino === ino).map((r) => (r.step === 'vfs_write_ret' ? 'vfs_write_ret' : `${r.step} ${r.bytes}`));

/**
 * Per writing process, the lab inode's records against one vfs_write → the file's write_iter → return per write(2)
 * (expectedChain: no write_iter for the refused write, the write_iter's count cut to MAX_RW_COUNT).
 */
export function writeIterInside(x: VfsWrite) {
  const got = perRun(x.runs, (r) => Object.fromEntries(writerPids(r).map((p) => [p, shape(ofPid(r.chain, p), r.labIno)])));
  const want = perRun(x.runs, (r) => Object.fromEntries(writerPids(r).map((p) => [p, shape(expectedChain(ofPid(r.labCalls, p), r.labIno), r.labIno)])));
  const huge = x.runs.flatMap((r) => r.labCalls.filter((c) => c.count > MAX_RW_COUNT).map((c) => `${runName(r)} pid ${c.pid}: write(2) of ${c.count} bytes`));
  const message = `records of the lab's inode per pid (return values left out here) vs one vfs_write → the file's write_iter → return per write(2), in each run; ` +
    `for the write of ${RO_COMM} on a read-only fd vfs_write returns -${EBADF} without calling the write_iter, so no write_iter record belongs there; ` +
    `the write_iter's bytes are what its iov_iter holds: vfs_write cuts a count above MAX_RW_COUNT (${MAX_RW_COUNT}) to that before it calls the file system ` +
    `(${huge.join('; ') || 'no such write'}), so a count carried over from vfs_write's argument is not it\n` +
    x.runs.map((r) => `${runName(r)}, lab inode ${r.labIno}, records:\n${showChain(r.chain)}`).join('\n') + `\n${evidence(x)}`;
  return { got, want, message };
}

/** Records at all, none of another inode, none of a process that did not write the lab's file. */
export function onlyTheLabFile(x: VfsWrite) {
  const got = perRun(x.runs, (r) => {
    const writers = new Set(r.labCalls.map((c) => c.pid));
    return { records: r.chain.length > 0, otherInodes: [...new Set(r.chain.filter((c) => c.ino !== r.labIno).map((c) => c.ino))],
      strayPids: [...new Set(r.chain.filter((c) => !writers.has(c.pid)).map((c) => c.pid))] };
  });
  const want = perRun(x.runs, () => ({ records: true, otherInodes: [], strayPids: [] }));
  const message = x.runs.map((r) => {
    const writers = new Set(r.labCalls.map((c) => c.pid));
    return `${runName(r)}: lab inode ${r.labIno}, decoy inode ${r.files.decoy?.ino}, processes that wrote the lab's file: ${[...writers].join(', ')}\n` +
      `records of other inodes (first 20):\n${showChain(r.chain.filter((c) => c.ino !== r.labIno).slice(0, 20))}\n` +
      `records of other processes (first 20):\n${showChain(r.chain.filter((c) => !writers.has(c.pid)).slice(0, 20))}`;
  }).join('\n') + `\n${evidence(x)}`;
  return { got, want, message };
}

/** Per writing process, vfs_write's returns against write(2)'s results, and the positive ones' sum against the file's size. */
export function returns(x: VfsWrite) {
  const rets = (r: Run, p: number) => ofPid(r.chain, p).filter((c) => c.step === 'vfs_write_ret' && c.ino === r.labIno).map((c) => c.bytes);
  const got = perRun(x.runs, (r) => {
    const perPid = Object.fromEntries(writerPids(r).map((p) => [p, rets(r, p)]));
    return { perPid, total: Object.values(perPid).flat().filter((n) => n > 0).reduce((a, b) => a + b, 0) };
  });
  const want = perRun(x.runs, (r) => ({ perPid: Object.fromEntries(writerPids(r).map((p) => [p, ofPid(r.labCalls, p).map((c) => c.ret)])), total: r.files.lab?.size }));
  const message = `vfs_write_ret records per pid vs sys_exit_write results (fd ${LAB_FD}; fd ${RO_FD} of ${RO_COMM}: -${EBADF}), and their sum vs the file's size\n` +
    x.runs.map((r) => `${runName(r)}: file size ${r.files.lab?.size}; write(2) calls: ${r.labCalls.map((c) => `${c.pid}:${c.count}->${c.ret}`).join(' ')}\nrecords:\n${showChain(r.chain)}`).join('\n') +
    `\n${evidence(x)}`;
  return { got, want, message, fileSize: x.runs[0]?.files.lab?.size ?? NaN };
}

/** Control: each loader exited 0 when stopped, nothing BPF is left in the guest, the script finished. */
export function cleanup(x: VfsWrite) {
  return {
    got: { loaderExit: perRun(x.runs, (r) => exitOf(r.sections.loader)), left: (x.sections.left ?? '').trim(), scriptFinished: x.guest.exitCode },
    want: { loaderExit: perRun(x.runs, () => 0), left: '', scriptFinished: 0 },
    message: `bpftool prog show and bpf_links after the loader exited:\n${x.sections.left || '(nothing)'}\n${evidence(x)}`,
  };
}
