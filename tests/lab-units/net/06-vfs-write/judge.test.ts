/** Net Lab 5.6's verdicts (labs/net/06-vfs-write/judge.ts) on made-up guest output: each test's facts and the messages that explain them. */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseRun, type Fs, type VfsWrite } from '../../../../labs/net/06-vfs-write/experiment.js';
import {
  cleanup, evidence, onlyTheLabFile, returns, trampolines, vfsWriteCounts, workload, writeIterInside, type Verdict,
} from '../../../../labs/net/06-vfs-write/judge.js';
import { MAX_RW_COUNT } from '../../../../labs/net/06-vfs-write/vfs-chain.js';
import { parseSections } from '../../../../helpers/kernel/module.js';

/** One write(2) as the workload makes it. */
interface Call { comm: string; pid: number; fd: number; count: number; ret: number }

const HUGE = 0x80000b3c;
const holds = (v: Verdict) => isDeepStrictEqual(v.got, v.want);

/** The writer (fd 7 the lab's file, fd 8 the decoy; its first write asks for more than MAX_RW_COUNT and comes back short), its child (3 + 3), the read-only one. */
function calls(n: 1 | 2, writes: number, pid: number): Call[] {
  const out: Call[] = [];
  for (let i = 0; i < writes; i++) {
    out.push(i === 0 ? { comm: 'kl_vfs_writer', pid, fd: 7, count: HUGE, ret: 2876 } : { comm: 'kl_vfs_writer', pid, fd: 7, count: 100 + i, ret: 100 + i });
    out.push({ comm: 'kl_vfs_writer', pid, fd: 8, count: 50 + i, ret: 50 + i });
  }
  for (let i = 0; i < 3; i++) {
    out.push({ comm: 'kl_vfs_child', pid: pid + 1, fd: 7, count: 10 + i, ret: 10 + i });
    out.push({ comm: 'kl_vfs_child', pid: pid + 1, fd: 8, count: 20 + i, ret: 20 + i });
  }
  if (n === 1) out.push({ comm: 'kl_vfs_ro', pid: pid + 2, fd: 1, count: 3, ret: -9 });
  return out;
}

/** The syscall tracepoints' lines (the kernel prints the result as unsigned hex). */
const trace = (cs: readonly Call[]) => cs.flatMap((c, i) => [
  `   ${c.comm}-${c.pid}     [000] ...1.     3.${300000 + 2 * i}: sys_write(fd: ${c.fd.toString(16)}, buf: 7f42e352e000, count: ${c.count.toString(16)})`,
  `   ${c.comm}-${c.pid}     [000] .N.1.     3.${300001 + 2 * i}: sys_write -> 0x${BigInt.asUintN(64, BigInt(c.ret)).toString(16)}`,
]).join('\n');

/** A correct program's records: vfs_write with the count, write_iter with what its iov_iter holds (none for the refused write), the return. */
const chain = (cs: readonly Call[], ino: number) => ['attached progs=3 ino=' + ino, ...cs.filter((c) => c.fd === 7 || c.comm === 'kl_vfs_ro').flatMap((c) => [
  `vfs_write pid=${c.pid} ino=${ino} bytes=${c.count}`,
  ...(c.ret === -9 ? [] : [`write_iter pid=${c.pid} ino=${ino} bytes=${Math.min(c.count, MAX_RW_COUNT)}`]),
  `vfs_write_ret pid=${c.pid} ino=${ino} bytes=${c.ret}`,
]), 'stopped'].join('\n');

const labSize = (cs: readonly Call[]) => cs.filter((c) => c.fd === 7 && c.ret > 0).reduce((a, c) => a + c.ret, 0);

interface RunParts { fs: Fs; writeIter: string; calls: Call[]; ino: number; decoyIno: number; links: string; chain: string; loader: string }

function runParts(n: 1 | 2, fs: Fs, writes: number, over: Partial<RunParts> = {}): RunParts {
  const writeIter = fs === 'tmpfs' ? 'generic_file_write_iter' : 'ext4_file_write_iter';
  const cs = calls(n, writes, 100 * n + 11);
  const ino = 20 + n, decoyIno = 30 + n;
  const links = [`link=${n}1 prog=7 name=vfs_write_enter type=tracing attach=fentry target=vfs_write`,
    `link=${n}2 prog=8 name=vfs_write_exit type=tracing attach=fexit target=vfs_write`,
    `link=${n}3 prog=9 name=write_iter_enter type=tracing attach=fentry target=${writeIter}`].join('\n');
  return { fs, writeIter, calls: cs, ino, decoyIno, links, chain: chain(cs, ino), loader: 'exit=0', ...over };
}

/** The guest's output for two runs, sectioned as its script prints it. */
function output(runs: readonly RunParts[], left = ''): string {
  const sec = (name: string, text: string) => `KL_SECTION ${name}\n${text}`;
  return [
    sec('mounts', 'tmpfs /mnt/kl_vfs_tmpfs tmpfs rw 0 0\n/dev/ram0 /mnt/kl_vfs_ext4 ext4 rw 0 0'),
    ...runs.flatMap((r, i) => {
      const n = i + 1;
      return [
        sec(`target${n}`, `release=6.1.0-28-amd64 fs=${r.fs === 'tmpfs' ? 'tmpfs' : 'ext2/ext3'} write_iter=${r.writeIter}`),
        sec(`links${n}`, `${r.links}\nexit=0`), sec(`bpftool${n}`, '7: tracing name vfs_write_enter'), sec(`enabled${n}`, ''),
        sec(`writer${n}`, 'exit=0'), ...(n === 1 ? [sec('readonly', 'kl\nexit=0')] : []),
        sec(`loader${n}`, r.loader), sec(`chain${n}`, r.chain), sec(`trace${n}`, trace(r.calls)),
        sec(`files${n}`, `lab ${r.ino} ${labSize(r.calls)}\ndecoy ${r.decoyIno} 4096`),
      ];
    }),
    sec('left', left),
  ].join('\n');
}

function evidenceOf(runs: readonly RunParts[], left = '', finished = true): VfsWrite {
  const text = output(runs, left);
  const sections = parseSections(text);
  const workloads = [{ seed: 4242, writes: 4, padding: 3 }, { seed: 777, writes: 2, padding: 9 }];
  return {
    guest: { output: text, exitCode: finished ? 0 : undefined, boot: { accel: 'tcg', accelNote: '', lines: [], output: '', exitedByItself: true, exitCode: 0, seconds: 9.5, command: 'qemu-system-x86_64' } },
    sections, fileName: 'kl1a2b3c.dat', labDir: 'p', decoyDir: 'q',
    runs: runs.map((r, i) => parseRun(sections, (i + 1) as 1 | 2, r.fs, workloads[i]!)),
  };
}

const good = () => [runParts(1, 'ext4', 4), runParts(2, 'tmpfs', 2)];

describe('vfs-write judge', () => {
  it('parses each run\'s sections: the lab\'s write(2) calls are fd 7 and fd 1 of kl_vfs_ro only, the files, the write_iter named', () => {
    const x = evidenceOf(good());
    const [r1, r2] = x.runs;
    expect(r1!.labCalls.map((c) => `${c.comm} ${c.fd} ${c.count} ${c.ret}`)).toEqual([
      `kl_vfs_writer 7 ${HUGE} 2876`, 'kl_vfs_writer 7 101 101', 'kl_vfs_writer 7 102 102', 'kl_vfs_writer 7 103 103',
      'kl_vfs_child 7 10 10', 'kl_vfs_child 7 11 11', 'kl_vfs_child 7 12 12', 'kl_vfs_ro 1 3 -9',
    ]);
    expect(r1!.allCalls).toHaveLength(15);
    expect({ ino: r1!.labIno, files: r1!.files, writeIter: r1!.writeIter, links: r1!.links.length })
      .toEqual({ ino: 21, files: { lab: { ino: 21, size: 2876 + 101 + 102 + 103 + 10 + 11 + 12 }, decoy: { ino: 31, size: 4096 } }, writeIter: 'ext4_file_write_iter', links: 3 });
    expect(r2!.labCalls.some((c) => c.comm === 'kl_vfs_ro')).toBe(false);
    expect(r2!.sections.writer).toBe('exit=0');
  });

  it('a correct program\'s evidence holds every verdict', () => {
    const x = evidenceOf(good());
    for (const v of [workload(x), trampolines(x), vfsWriteCounts(x), writeIterInside(x), onlyTheLabFile(x), returns(x), cleanup(x)]) {
      expect(v.got, v.message).toEqual(v.want);
    }
    expect(returns(x).fileSize).toBe(x.runs[0]!.files.lab!.size);
  });

  it('the control fails when the workload is not what was asked: the refused write missing, the file on another file system', () => {
    const [a, b] = good();
    const x = evidenceOf([{ ...a!, calls: a!.calls.filter((c) => c.comm !== 'kl_vfs_ro') }, { ...b!, fs: 'ext4' }]);
    const v = workload(x);
    expect(holds(v)).toBe(false);
    expect(v.got['run 1 (ext4, ext4_file_write_iter)']).toMatchObject({ refused: 0, pids: 2 });
    expect(v.message).toContain('read-only: kl\nexit=0');
    expect(v.message).toContain('sys_enter_write/sys_exit_write of kl_vfs_* processes:\nkl_vfs_writer-111     [000]');
  });

  it('a program on one named function (fentry/generic_file_write_iter) misses the ext4 run\'s write_iter, and the message shows the links', () => {
    const [a, b] = good();
    const links = a!.links.replace('ext4_file_write_iter', 'generic_file_write_iter');
    const v = trampolines(evidenceOf([{ ...a!, links }, b!]));
    expect(v.got).toEqual({
      'run 1 (ext4, ext4_file_write_iter)': { loaderAttached: true, fentryVfsWrite: true, fexitVfsWrite: true, onItsWriteIter: false },
      'run 2 (tmpfs, generic_file_write_iter)': { loaderAttached: true, fentryVfsWrite: true, fexitVfsWrite: true, onItsWriteIter: true },
    });
    expect(v.message).toContain('attach=fentry target=generic_file_write_iter');
    expect(holds(v)).toBe(false);
  });

  it('a write_iter count carried over from vfs_write\'s argument is caught on the write above MAX_RW_COUNT', () => {
    const [a, b] = good();
    const wrong = a!.chain.replace(`write_iter pid=111 ino=21 bytes=${MAX_RW_COUNT}`, `write_iter pid=111 ino=21 bytes=${HUGE}`);
    const x = evidenceOf([{ ...a!, chain: wrong }, b!]);
    const v = writeIterInside(x);
    expect(holds(v)).toBe(false);
    expect((v.got['run 1 (ext4, ext4_file_write_iter)'] as Record<number, string[]>)[111]![1]).toBe(`write_iter ${HUGE}`);
    expect(v.message).toContain(`run 1 (ext4, ext4_file_write_iter) pid 111: write(2) of ${HUGE} bytes`);
    expect(holds(vfsWriteCounts(x))).toBe(true);
  });

  it('a write_iter record for the refused write (no file system call happened) fails the chain', () => {
    const [a, b] = good();
    const wrong = a!.chain.replace('vfs_write_ret pid=113 ino=21 bytes=-9', 'write_iter pid=113 ino=21 bytes=3\nvfs_write_ret pid=113 ino=21 bytes=-9');
    const v = writeIterInside(evidenceOf([{ ...a!, chain: wrong }, b!]));
    expect(holds(v)).toBe(false);
    expect(v.message).toContain('returns -9 without calling the write_iter');
  });

  it('a missing vfs_write record shows per pid against the syscall\'s counts', () => {
    const [a, b] = good();
    const v = vfsWriteCounts(evidenceOf([a!, { ...b!, chain: b!.chain.replace(/^vfs_write pid=212 ino=22 bytes=10$/m, '') }]));
    expect(v.got['run 2 (tmpfs, generic_file_write_iter)']).toEqual({ 211: [HUGE, 101], 212: [11, 12] });
    expect(v.want['run 2 (tmpfs, generic_file_write_iter)']).toEqual({ 211: [HUGE, 101], 212: [10, 11, 12] });
  });

  it('records of the decoy\'s inode or of another process are named; no records at all fails too', () => {
    const [a, b] = good();
    const stray = `${a!.chain}\nvfs_write pid=111 ino=31 bytes=50\nvfs_write pid=999 ino=21 bytes=5`;
    const v = onlyTheLabFile(evidenceOf([{ ...a!, chain: stray }, { ...b!, chain: 'attached progs=3 ino=22\nstopped' }]));
    expect(v.got).toEqual({
      'run 1 (ext4, ext4_file_write_iter)': { records: true, otherInodes: [31], strayPids: [999] },
      'run 2 (tmpfs, generic_file_write_iter)': { records: false, otherInodes: [], strayPids: [] },
    });
    expect(v.message).toContain('lab inode 21, decoy inode 31, processes that wrote the lab\'s file: 111, 112, 113');
    expect(v.message).toContain('records of other processes (first 20):\nvfs_write pid=999 ino=21 bytes=5');
  });

  it('a return carrying the asked count instead of the short result fails, and the bytes no longer add up to the size', () => {
    const [a, b] = good();
    const v = returns(evidenceOf([{ ...a!, chain: a!.chain.replace('vfs_write_ret pid=111 ino=21 bytes=2876', `vfs_write_ret pid=111 ino=21 bytes=${HUGE}`) }, b!]));
    const got = v.got['run 1 (ext4, ext4_file_write_iter)'] as { total: number }, want = v.want['run 1 (ext4, ext4_file_write_iter)'] as { total: number };
    expect(got.total - want.total).toBe(HUGE - 2876);
    expect(v.message).toContain(`write(2) calls: 111:${HUGE}->2876 111:101->101`);
  });

  it('the cleanup control fails on a program left loaded, a loader that did not exit 0 or a script that never finished', () => {
    const [a, b] = good();
    const v = cleanup(evidenceOf([{ ...a!, loader: 'exit=1\nlibbpf: failed' }, b!], '12: tracing name vfs_write_enter', false));
    expect(v.got).toEqual({ loaderExit: { 'run 1 (ext4, ext4_file_write_iter)': 1, 'run 2 (tmpfs, generic_file_write_iter)': 0 }, left: '12: tracing name vfs_write_enter', scriptFinished: undefined });
    expect(v.message).toMatch(/^bpftool prog show and bpf_links after the loader exited:\n12: tracing name vfs_write_enter\nguest \(tcg, 9\.5 s, script exit undefined\)/);
  });

  it('the evidence names the guest, each run\'s workload and files, and says which sections are missing', () => {
    const x = evidenceOf(good());
    const text = evidence(x);
    expect(text).toContain('run 1 (ext4, ext4_file_write_iter): release=6.1.0-28-amd64 fs=ext2/ext3 write_iter=ext4_file_write_iter\n' +
      '  workload: seed 4242, 4 writes + 3 by the child + 1 refused (kl_vfs_ro, read-only fd); lab\'s file p/kl1a2b3c.dat, decoy q/kl1a2b3c.dat (3 other files first)');
    expect(text).toContain('  workload: seed 777, 2 writes + 3 by the child; ');
    const bare = evidenceOf([]);
    expect(evidence({ ...bare, runs: [parseRun({}, 1, 'tmpfs', { seed: 1, writes: 1, padding: 1 })] }))
      .toContain('run 1 (tmpfs, ?): (no target section)\n');
    expect(workload({ ...bare, runs: [parseRun({}, 1, 'tmpfs', { seed: 1, writes: 1, padding: 1 })] }).got).toEqual({
      'run 1 (tmpfs, ?)': { writerExit: NaN, labWrites: 0, decoyWrites: 0, pids: 0, short: 0, shortAboveMaxRwCount: 0, refused: 0, fsOfFile: '?' },
    });
  });
});
