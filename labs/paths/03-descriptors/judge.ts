/**
 * Paths Lab 3's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`, `DescriptorsSetup`) to the facts each test asserts,
 * with the message that shows the kernel's evidence (statfs, dumpe2fs,
 * /proc/<pid>/fd and fdinfo, kcmp, du, the trace). Unit-tested on made-up
 * runs in tests/lab-units/paths/03-descriptors/judge.test.ts.
 */
import type { TraceEvent } from '../../../helpers/kernel/tracefs.js';
import type { DescriptorsSetup, DfAsk, FdView, Fs, Run } from './experiment.js';

const usedOf = (s: Fs) => (s.blocks - s.bfree) * s.bsize;
const showFs = (s: Fs) => `f_bsize ${s.bsize}, f_blocks ${s.blocks}, f_bfree ${s.bfree}, f_bavail ${s.bavail} → size ${s.blocks * s.bsize}, used ${usedOf(s)}, available ${s.bavail * s.bsize} bytes`;
const tail = (r: Run) => `${r.stuck ? `\n${r.stuck}` : ''}\nstdout+stderr: ${r.output.trim().slice(-300) || '(none)'}`;

/** "<size> <used> <available>" → three numbers, or undefined. */
export function parseDf(line?: string): { size: number; used: number; avail: number } | undefined {
  const m = /^(\d+)\s+(\d+)\s+(\d+)$/.exec(line?.trim() ?? '');
  return m ? { size: Number(m[1]), used: Number(m[2]), avail: Number(m[3]) } : undefined;
}

/** The figures df computes from one statfs. */
export const dfOf = (s: Fs) => ({ size: s.blocks * s.bsize, used: usedOf(s), avail: s.bavail * s.bsize });

/** Does the program's answer equal statfs read just before or just after it (the file system is quiet)? */
export function dfMatches(a: DfAsk): boolean {
  const got = parseDf(a.line);
  if (!got) return false;
  return [a.before, a.after].some((s) => { const w = dfOf(s); return w.size === got.size && w.used === got.used && w.avail === got.avail; });
}

/** df on the fresh file system: statfs's figures, and available = free − reserved as dumpe2fs -h (and ext4's own reserve) say. */
export function dfFresh(r: Run, s: DescriptorsSetup) {
  const a = r.df1;
  const got = parseDf(a?.line);
  const d = s.dumpe2fs;
  const bs = d?.blockSize;
  const known = (x?: number) => x !== undefined && bs !== undefined;
  // dumpe2fs: the data blocks are the block count less the overhead (bitmaps, inode tables, journal), as ext4's statfs counts them.
  const wantSize = known(d?.blockCount) && d?.overhead !== undefined ? (d.blockCount! - d.overhead) * bs! : undefined;
  const wantFree = known(d?.free) ? d!.free! * bs! : undefined;
  const wantReserved = known(d?.reserved) && s.reservedClusters !== undefined ? (d!.reserved! + s.reservedClusters) * bs! : undefined;
  const reported = got ? { size: got.size, free: got.size - got.used, reserved: got.size - got.used - got.avail } : undefined;
  return {
    facts: { answered: Boolean(got), statfs: a && dfMatches(a) ? 'equal' : 'differs', ...(reported ?? { size: -1, free: -1, reserved: -1 }) },
    expected: { answered: true, statfs: 'equal', size: wantSize ?? reported?.size ?? 0, free: wantFree ?? reported?.free ?? 0, reserved: wantReserved ?? reported?.reserved ?? 0 },
    message: `'df ${s.mnt}' on a fresh ${s.plan.imageMiB} MiB ext4 image (mkfs.ext4 -m ${s.plan.reservePct}, ${s.device ?? 'loop device'}) answered ` +
      `${a?.line === undefined ? '(no line)' : `'${a.line}'`}; expected "<size> <used> <available>" in bytes as df computes them.\n` +
      `statfs before: ${a ? showFs(a.before) : '?'}\nstatfs after:  ${a ? showFs(a.after) : '?'}\n` +
      `dumpe2fs -h: Block size ${d?.blockSize ?? '?'}, Block count ${d?.blockCount ?? '?'}, Overhead clusters ${d?.overhead ?? '? (not printed: size not checked against it)'}, ` +
      `Free blocks ${d?.free ?? '?'}, Reserved block count ${d?.reserved ?? '?'} (${s.plan.reservePct} %) + ext4's reserve pool ${s.reservedClusters ?? '?'} blocks ` +
      `(/sys/fs/ext4/<dev>/reserved_clusters): available = free − both reserves.\n` +
      `from the answer: size ${reported?.size ?? '?'}, free = size − used ${reported?.free ?? '?'}, reserved = free − available ${reported?.reserved ?? '?'}; ` +
      `from the kernel: size ${wantSize ?? '?'}, free ${wantFree ?? '?'}, reserved ${wantReserved ?? '?'}${tail(r)}`,
  };
}

/** The program's own statfs/fstatfs calls, and every exec by it or by what it forked. */
export function mechanism(r: Run) {
  const calls = r.events.filter((e) => (e.event === 'sys_statfs' || e.event === 'sys_fstatfs') && (e.tgid ?? e.pid) === r.pid);
  const execs = r.events.filter((e) => e.event === 'sched_process_exec');
  const show = (e: TraceEvent) => `pid ${e.pid}: ${e.body}`;
  return {
    facts: { statfsCalls: calls.length > 0, execs: execs.map(show) },
    expected: { statfsCalls: true, execs: [] as string[] },
    message: `the kernel's record of program ${r.pid} and every process it forked (syscalls:sys_enter_statfs/sys_enter_fstatfs, sched:sched_process_exec, ` +
      `a private tracefs instance with event-fork${r.lost ? '; events were lost' : ''}): ${calls.length} statfs/fstatfs calls by the program's own threads ` +
      `(${calls.slice(0, 3).map((e) => `${e.event}${e.body}`).join(', ') || 'none'}); ${execs.length} exec${execs.length === 1 ? '' : 's'}` +
      `${execs.length ? `: ${execs.slice(0, 4).map(show).join('; ')} — the figures must come from statfs(2) called by the program, not from a df or stat -f it starts` : ''}${tail(r)}`,
  };
}

const showView = (v?: FdView) => (v === undefined ? '?' : v.target === undefined ? `${v.pid}/fd/${v.fd}: no such descriptor`
  : `${v.pid}/fd/${v.fd} → ${v.target} (pos ${v.pos ?? '?'}, flags ${v.flags ?? '?'})`);

function shareHeader(r: Run): string {
  const s = r.share;
  const p = r.plan;
  if (!s) return `'share' was never asked${tail(r)}`;
  return `'share ${s.path} ${p.k}' answered ${s.line === undefined ? '(no line)' : `'${s.line}'`} (expected "<fd> <dup> <again> <child pid>").\n` +
    `program ${r.pid}: ${s.views.map(showView).join('; ') || '—'}\n` +
    `child ${s.child ?? '?'} (ppid ${s.childParent ?? '?'}, rchar ${s.childRchar ?? '?'}): ${s.childFds.map(showView).join('; ') || 'no descriptor of the file'}\n` +
    `kcmp(KCMP_FILE) with the program's fd ${s.fd ?? '?'}: dup ${s.kcmp.dup}, child's fd ${s.childFd ?? '?'} ${s.kcmp.child}, again ${s.kcmp.again} (0 = one struct file)\n` +
    `the spec's seek to ${p.seekX} through ${r.pid}/fd/${s.fd ?? '?'} (pidfd_getfd: ${s.afterSeekX?.through ?? 'not done'}): dup pos ${s.afterSeekX?.dup ?? '?'}, child pos ${s.afterSeekX?.child ?? '?'}, again pos ${s.afterSeekX?.again ?? '?'}\n` +
    `the spec's seek to ${p.seekY} through the child's fd (${s.afterSeekY?.through ?? 'not done'}): fd pos ${s.afterSeekY?.fd ?? '?'}, dup pos ${s.afterSeekY?.dup ?? '?'}, again pos ${s.afterSeekY?.again ?? '?'}`;
}

/** The child's lseek calls (syscalls:sys_enter_lseek, its thread group): the offset must move by its reads. */
export function childSeeks(r: Run): TraceEvent[] {
  const c = r.share?.child;
  return c ? r.events.filter((e) => e.event === 'sys_lseek' && (e.tgid ?? e.pid) === c) : [];
}

/** dup and fork: one struct file, one offset. */
export function shared(r: Run) {
  const s = r.share;
  const p = r.plan;
  const [vf, vd] = s?.views ?? [];
  const vc = s?.childFds.find((c) => c.fd === s.childFd);
  return {
    facts: {
      answered: s?.fd !== undefined,
      targets: [vf?.target, vd?.target, vc?.target].map((t) => t === s?.path),
      childOfTheProgram: s?.childParent === r.pid,
      sameFile: { dup: s?.kcmp.dup, child: s?.kcmp.child },
      childRead: { fd: vf?.pos, dup: vd?.pos, child: vc?.pos, childReadAtLeastK: (s?.childRchar ?? 0) >= p.k },
      seekX: { dup: s?.afterSeekX?.dup, child: s?.afterSeekX?.child },
      seekY: { fd: s?.afterSeekY?.fd, dup: s?.afterSeekY?.dup },
      childSeeks: childSeeks(r).length,
    },
    expected: {
      answered: true, targets: [true, true, true], childOfTheProgram: true, sameFile: { dup: '0', child: '0' },
      childRead: { fd: p.k, dup: p.k, child: p.k, childReadAtLeastK: true }, seekX: { dup: p.seekX, child: p.seekX }, seekY: { fd: p.seekY, dup: p.seekY }, childSeeks: 0,
    },
    message: `${shareHeader(r)}\nexpected: fd, dup and the child's inherited descriptor are one open file — kcmp 0, the child's read of ${p.k} bytes ` +
      `(its rchar) leaves every one at pos ${p.k}, and the spec's seeks show through all of them; the child moves the offset by reading, not by lseek ` +
      `(its lseek calls: ${childSeeks(r).slice(0, 3).map((e) => `${e.event}${e.body}`).join(', ') || 'none'})${tail(r)}`,
  };
}

/** The second open: a struct file of its own, whose offset the shared one's moves leave alone. */
export function separate(r: Run) {
  const s = r.share;
  const va = s?.views[2];
  const k = s?.kcmp.again;
  return {
    facts: { answered: s?.again !== undefined, target: va?.target === s?.path, ownFile: k !== undefined && /^[123]$/.test(k), pos: [va?.pos, s?.afterSeekX?.again, s?.afterSeekY?.again] },
    expected: { answered: true, target: true, ownFile: true, pos: [0, 0, 0] },
    message: `${shareHeader(r)}\nexpected: 'again' points to the same path but is another open file — kcmp 1, 2 or 3 (not 0), its pos 0 throughout, ` +
      `whatever the shared offset does${tail(r)}`,
  };
}

function deletedHeader(r: Run): string {
  const d = r.deleted;
  if (!d) return `'unlinked' was never asked${tail(r)}`;
  const h = d.held;
  return `'unlinked ${d.path} ${r.plan.deletedBytes}' answered ${d.line === undefined ? '(no line)' : `'${d.line}'`} (expected the descriptor).\n` +
    `while held: /proc/${r.pid}/fd/${d.fd ?? '?'} → ${h?.target ?? '(no such descriptor)'}; stat through it: nlink ${h?.nlink ?? '?'}, size ${h?.size ?? '?'}, ` +
    `st_blocks ${h?.blocks512 ?? '?'} (× 512 = ${h?.blocks512 === undefined ? '?' : h.blocks512 * 512} bytes); the name ${h === undefined ? '?' : h.nameExists ? 'still exists' : 'is gone'}\n` +
    `statfs before: ${showFs(d.before.fs)}; du ${d.before.du ?? '?'}\n` +
    `statfs held:   ${h ? showFs(h.fs) : '?'}; du ${h?.du ?? '?'}\n` +
    `statfs after 'close' (${d.after?.line ?? 'no answer'}): ${d.after ? showFs(d.after.fs) : '?'}; du ${d.after?.du ?? '?'}; the fd link ${d.after?.target ?? 'gone'}` +
    `${d.after?.stillHeldBy.length ? `; still open in ${d.after.stillHeldBy.join(', ')}` : ''}`;
}

/** An unlinked open file: no name, every byte allocated, its blocks still counted. */
export function deletedHeld(r: Run) {
  const d = r.deleted;
  const h = d?.held;
  const n = r.plan.deletedBytes;
  const bytes = h?.blocks512 === undefined ? 0 : h.blocks512 * 512;
  const growth = h && d ? usedOf(h.fs) - usedOf(d.before.fs) : undefined;
  return {
    facts: {
      answered: d?.fd !== undefined, link: h?.target, nlink: h?.nlink, size: h?.size, nameExists: h?.nameExists ?? true,
      noHoles: bytes >= n, unwrittenExtents: h?.unwritten ?? '?', statfsCountsIt: growth !== undefined && bytes > 0 && growth >= bytes,
    },
    expected: { answered: true, link: `${d?.path} (deleted)`, nlink: 0, size: n, nameExists: false, noHoles: true, unwrittenExtents: 'none', statfsCountsIt: true },
    message: `${deletedHeader(r)}\nexpected: the descriptor's link "<path> (deleted)", nlink 0 (no name anywhere: not a rename), size ${n}, ` +
      `st_blocks × 512 ≥ ${n} (every byte written: no holes, and no unwritten extents — fallocate allocates blocks but writes no data; FIEMAP of the held file: ${h?.unwritten ?? '?'}), and statfs's used grown by at least those blocks (${growth ?? '?'} bytes)${tail(r)}`,
  };
}

/** du vs df: the gap grows by exactly the deleted file's blocks; the program's own df counts them. */
export function duVsDf(r: Run) {
  const d = r.deleted;
  const h = d?.held;
  const bytes = h?.blocks512 === undefined ? undefined : h.blocks512 * 512;
  const gap = (fs: Fs, du?: number) => (du === undefined ? undefined : usedOf(fs) - du);
  const before = d ? gap(d.before.fs, d.before.du) : undefined;
  const held = h ? gap(h.fs, h.du) : undefined;
  const growth = before === undefined || held === undefined ? undefined : held - before;
  return {
    facts: { gapGrowth: growth, programDfIsStatfs: d?.df ? dfMatches(d.df) : false },
    expected: { gapGrowth: bytes ?? 'the deleted file\'s st_blocks × 512', programDfIsStatfs: true },
    message: `${deletedHeader(r)}\ndf used − du: before ${before ?? '?'}, while held ${held ?? '?'} (grew by ${growth ?? '?'}); the deleted file's blocks: ${bytes ?? '?'} bytes\n` +
      `the program's 'df' while held: ${d?.df?.line === undefined ? '(no line)' : `'${d.df.line}'`}; statfs then: ${d?.df ? showFs(d.df.before) : '?'}${tail(r)}`,
  };
}

/** The blocks come back at the last close, and nothing of the program holds the inode any more. */
export function lastClose(r: Run) {
  const d = r.deleted;
  const h = d?.held;
  const bytes = h?.blocks512 === undefined ? undefined : h.blocks512 * 512;
  const freed = h && d?.after ? usedOf(h.fs) - usedOf(d.after.fs) : undefined;
  return {
    facts: { closed: d?.after !== undefined && d.after.target === undefined, stillHeldBy: d?.after?.stillHeldBy ?? ['?'], freed },
    expected: { closed: true, stillHeldBy: [] as string[], freed: bytes ?? 'the deleted file\'s st_blocks × 512' },
    message: `${deletedHeader(r)}\nexpected: after 'close' no descriptor of the program or its child on the inode, and statfs's used back down by the file's ` +
      `${bytes ?? '?'} bytes (freed: ${freed ?? '?'})${tail(r)}`,
  };
}

/** End of input: the child ends and the program exits 0. */
export function ending(r: Run) {
  const e = r.exit;
  const how = e === undefined ? 'still running' : e.reason === 'exited' ? `exit ${e.exitCode}` : `${e.reason}${e.signal ? ` (${e.signal})` : ''}`;
  return {
    facts: { exit: how, childLeft: r.childLeft },
    expected: { exit: 'exit 0', childLeft: false },
    message: `after its input closed program ${r.pid} ${how === 'still running' ? 'was still running' : `ended: ${how}`}; its child ${r.share?.child ?? '?'} ` +
      `${r.childLeft ? 'was left running' : 'ended'}${tail(r)}`,
  };
}
