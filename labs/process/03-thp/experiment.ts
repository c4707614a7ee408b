/**
 * Process Lab 3's experiment: build the student's `thp` and the harness
 * preload (misalign.so), run `thp <MIB>` once through its three stops and
 * collect what the kernel shows: the process's mmap(2) calls between stops 1
 * and 2 (syscalls:sys_enter_mmap/sys_exit_mmap), the VMAs advised
 * MADV_HUGEPAGE in /proc/<pid>/smaps at stop 2 and the same range at stop 3,
 * minflt at stops 2 and 3, the exceptions:page_fault_user events between them,
 * thp_fault_alloc/thp_fault_fallback in /proc/vmstat, VmSize at stops 1 and 2.
 * Never throws once built: a program that does not stop ends the walk early
 * with `stuck`, and judge.ts and the spec decide.
 */
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { startBackground } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { makeTraceInstance, pairSyscalls, type TraceEvent, type TracedSyscall } from '../../../helpers/kernel/tracefs.js';
import { listTasks, readMaps, readStat, readStatus, vmaContaining, type ProcStat, type Vma } from '../../../helpers/kernel/procfs.js';
import { continueToStop } from '../stops.js';
import { HUGE } from './judge.js';

/** Random size per run: 4 to 32 huge pages. */
export const MIB = 2 * (4 + Math.floor(Math.random() * 29));
const STOP_MS = 10_000;

/**
 * Where the preload asks the kernel to put a large anonymous mmap(NULL, …): the k-th at BASE + k GiB + P × 4 KiB
 * (KL_MISALIGN_BASE, KL_MISALIGN_PAGES), BASE random per run in 0x7e00_0000_0000 + 0…192 GiB, 2 MiB-aligned, and
 * P random per run, 2–511 pages (never the single page it once was): no constant added to what mmap returns lands
 * on a 2 MiB boundary but by a 1-in-510 chance.
 */
const MISALIGN_BASE = 0x7e0000000000n + BigInt(Math.floor(Math.random() * 192 * 512)) * BigInt(HUGE);
const MISALIGN_PAGES = 2 + Math.floor(Math.random() * 510);
export const PRELOAD_HINTS: ReadonlySet<bigint> = new Set(Array.from({ length: 64 }, (_, k) => MISALIGN_BASE + BigInt(k) * (1n << 30n) + BigInt(MISALIGN_PAGES) * 4096n));

const vmstat = (key: string) => Number(readFileSync('/proc/vmstat', 'utf8').match(new RegExp(`^${key} (\\d+)$`, 'm'))?.[1] ?? NaN);
/** The THP mode in /sys/kernel/mm/transparent_hugepage/enabled ("madvise", "always", "never"). */
export const thpMode = () => readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').match(/\[(\w+)\]/)?.[1] ?? '?';

/** The student's program and the preload that takes the kernel's automatic 2 MiB placement away (c/process/03-thp/misalign.c). */
export interface ThpSetup {
  readonly program: string;
  readonly misalign: string;
}

/** The evidence of one run of `thp MIB`. */
export interface Walk {
  readonly pid: number;
  /** This kernel's release (the messages name it). */
  readonly kernel: string;
  readonly stuck?: string;
  /** The VMA advised MADV_HUGEPAGE (VmFlags "hg") at stop 2, and the same range at stop 3. */
  readonly vma?: Vma;
  readonly after?: Vma;
  readonly hgVmas: Vma[];
  /** /proc/<pid>/stat at stops 2 and 3 (as reached). */
  readonly stats: ProcStat[];
  readonly faults: TraceEvent[];
  readonly faultLines: string[];
  readonly thpAlloc: number;
  readonly thpFallback: number;
  /** VmSize at stops 1 and 2 (kB). */
  readonly vmSizeKb: number[];
  /** The mmap(2) calls of the process between stops 1 and 2 (syscalls:sys_enter_mmap/sys_exit_mmap), when traced. */
  readonly mmaps?: TracedSyscall[];
}

/** Build the student's thp.c and the harness preload. */
export async function prepareThp(): Promise<ThpSetup> {
  const program = (await buildProgram({ src: labSource('process/03-thp/thp.c'), ldlibs: ['-lpthread'] })).path;
  const misalign = (await buildProgram({ src: `${REFERENCE_SRC}/process/03-thp/misalign.c`, cflags: ['-shared', '-fPIC'], name: 'misalign.so' })).path;
  return { program, misalign };
}

/** Run `thp MIB` under the preload through its stops and collect the evidence. */
export async function walkThp({ program, misalign }: ThpSetup): Promise<Walk> {
  const prog = startBackground(program, [String(MIB)], { timeoutMs: 60_000, env: { LD_PRELOAD: misalign, KL_MISALIGN_BASE: MISALIGN_BASE.toString(16), KL_MISALIGN_PAGES: String(MISALIGN_PAGES), KL_MISALIGN_PROGRAM: realpathSync(program) } });
  const pid = prog.pid;
  const out = () => prog.output();
  const stats: ProcStat[] = [];
  const empty = { pid, kernel: release(), hgVmas: [] as Vma[], stats, faults: [] as TraceEvent[], faultLines: [] as string[], thpAlloc: 0, thpFallback: 0, vmSizeKb: [] as number[] };
  const vmSize = () => Number(readStatus(pid)?.fields.get('VmSize')?.match(/\d+/)?.[0] ?? NaN);
  let stuck = await continueToStop(pid, 1, true, STOP_MS, out);
  if (stuck) return { ...empty, stuck };
  empty.vmSizeKb.push(vmSize());
  // Stop 1 → 2, traced: which mmap(2) calls made the region, and who chose their addresses.
  const calls = makeTraceInstance(['syscalls/sys_enter_mmap', 'syscalls/sys_exit_mmap'], { tag: 'mmap', enable: false, recordTgid: true });
  if (!calls) return { ...empty, stuck: 'no tracefs instance with syscalls:sys_enter_mmap/sys_exit_mmap' };
  writeFileSync(calls.pidFile, listTasks(pid).join(' ') || String(pid));
  writeFileSync(join(calls.dir, 'options', 'event-fork'), '1');
  calls.setEnabled(true);
  stuck = await continueToStop(pid, 2, false, STOP_MS, out);
  calls.setEnabled(false);
  const mmaps = pairSyscalls(calls.read().lines, ['mmap']).filter((c) => (c.tgid ?? c.pid) === pid || listTasks(pid).includes(c.pid));
  await calls.release();
  if (stuck) return { ...empty, mmaps, stuck };
  empty.vmSizeKb.push(vmSize());
  const smaps2 = readMaps(pid, true) ?? [];
  const hgVmas = smaps2.filter((v) => v.vmFlags.includes('hg'));
  const vma = hgVmas.sort((a, b) => Number(b.end - b.start - (a.end - a.start)))[0];
  stats.push(readStat(pid)!);
  const trace = makeTraceInstance(['exceptions/page_fault_user'], { tag: 'thp', enable: false, bufferKb: 4096 });
  if (!trace) return { ...empty, hgVmas, vma, mmaps, stuck: 'no tracefs instance with exceptions:page_fault_user' };
  // The process, not one thread: every task of it now and (event-fork) any it starts while it writes.
  writeFileSync(trace.pidFile, listTasks(pid).join(' ') || String(pid));
  writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  const alloc0 = vmstat('thp_fault_alloc');
  const fallback0 = vmstat('thp_fault_fallback');
  trace.setEnabled(true);
  stuck = await continueToStop(pid, 3, false, STOP_MS, out);
  trace.setEnabled(false);
  const thpAlloc = vmstat('thp_fault_alloc') - alloc0;
  const thpFallback = vmstat('thp_fault_fallback') - fallback0;
  const rec = trace.read();
  await trace.release();
  const after = vma ? vmaContaining(readMaps(pid, true) ?? [], vma.start) : undefined;
  const st = readStat(pid);
  if (st) stats.push(st);
  try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
  await Promise.race([prog.exited, new Promise((r) => setTimeout(r, 5_000))]);
  return { ...empty, stuck, vma, after, hgVmas, faults: rec.events.filter((e) => e.event === 'page_fault_user'), faultLines: rec.lines, thpAlloc, thpFallback, mmaps };
}
