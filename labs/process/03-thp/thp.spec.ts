/**
 * Process Lab 3 — 大页 (seed 001 §2.1: "it supports huge pages").
 * The student's `thp <MiB>` maps a 2 MiB-aligned region advised
 * MADV_HUGEPAGE and writes every 4 KiB page of it, stopping itself before
 * and after (labs/process/stops.ts). The kernel's evidence: the VMA's VmFlags
 * and AnonHugePages in /proc/<pid>/smaps, the exceptions:page_fault_user
 * events in that VMA (one per 2 MiB instead of one per 4 KiB), minflt, and
 * thp_fault_alloc in /proc/vmstat. The size is random per run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { startBackground, type Background } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { makeTraceInstance, type TraceEvent } from '../../../helpers/kernel/tracefs.js';
import { formatVma, listTasks, readMaps, readStat, readStatus, type ProcStat, type Vma } from '../../../helpers/kernel/procfs.js';
import { continueToStop } from '../stops.js';

const HUGE = 2 * 1024 * 1024;
/** Random size per run: 4 to 32 huge pages. */
const MIB = 2 * (4 + Math.floor(Math.random() * 29));
const HUGE_PAGES = MIB / 2;
const STOP_MS = 10_000;
/** minflt counts the program's other faults too (raise, the stack): a few. */
const MINFLT_SLACK = 32;

let program = '';
/** The harness preload that takes the kernel's automatic 2 MiB placement away (c/process/03-thp/misalign.c). */
let misalign = '';

const vmstat = (key: string) => Number(readFileSync('/proc/vmstat', 'utf8').match(new RegExp(`^${key} (\\d+)$`, 'm'))?.[1] ?? NaN);
const thpMode = () => readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').match(/\[(\w+)\]/)?.[1] ?? '?';
const hex = (a: bigint) => `0x${a.toString(16)}`;

interface Walk {
  readonly prog: Background;
  readonly stuck?: string;
  /** The VMA advised MADV_HUGEPAGE (VmFlags "hg") at stop 2, and the same range at stop 3. */
  readonly vma?: Vma;
  readonly after?: Vma;
  readonly hgVmas: Vma[];
  readonly stats: ProcStat[];
  readonly faults: TraceEvent[];
  readonly faultLines: string[];
  readonly thpAlloc: number;
  readonly thpFallback: number;
  /** VmSize at stops 1 and 2 (kB). */
  readonly vmSizeKb: number[];
}

let walked: Promise<Walk> | undefined;

function walk(): Promise<Walk> {
  walked ??= (async () => {
    const prog = startBackground(program, [String(MIB)], { timeoutMs: 60_000, env: { LD_PRELOAD: misalign } });
    const pid = prog.pid;
    const out = () => prog.output();
    const stats: ProcStat[] = [];
    const empty = { prog, hgVmas: [] as Vma[], stats, faults: [] as TraceEvent[], faultLines: [] as string[], thpAlloc: 0, thpFallback: 0, vmSizeKb: [] as number[] };
    const vmSize = () => Number(readStatus(pid)?.fields.get('VmSize')?.match(/\d+/)?.[0] ?? NaN);
    let stuck = await continueToStop(pid, 1, true, STOP_MS, out);
    if (stuck) return { ...empty, stuck };
    empty.vmSizeKb.push(vmSize());
    if ((stuck = await continueToStop(pid, 2, false, STOP_MS, out))) return { ...empty, stuck };
    empty.vmSizeKb.push(vmSize());
    const smaps2 = readMaps(pid, true) ?? [];
    const hgVmas = smaps2.filter((v) => v.vmFlags.includes('hg'));
    const vma = hgVmas.sort((a, b) => Number(b.end - b.start - (a.end - a.start)))[0];
    stats.push(readStat(pid)!);
    const trace = makeTraceInstance(['exceptions/page_fault_user'], { tag: 'thp', enable: false, bufferKb: 4096 });
    if (!trace) return { ...empty, hgVmas, vma, stuck: 'no tracefs instance with exceptions:page_fault_user' };
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
    const after = vma ? (readMaps(pid, true) ?? []).find((v) => v.start <= vma.start && vma.start < v.end) : undefined;
    const st = readStat(pid);
    if (st) stats.push(st);
    try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    await Promise.race([prog.exited, new Promise((r) => setTimeout(r, 5_000))]);
    return { prog, stuck, vma, after, hgVmas, stats, faults: rec.events.filter((e) => e.event === 'page_fault_user'), faultLines: rec.lines, thpAlloc, thpFallback, vmSizeKb: empty.vmSizeKb };
  })();
  return walked;
}

/** THP must be "madvise" or "always" (not "never"): skip with the fix otherwise. */
function needThp(ctx: TestContext): void {
  const mode = thpMode();
  if (!['madvise', 'always'].includes(mode)) skipOrFail(ctx, `transparent huge pages are "${mode}": the lab needs "madvise" or "always" (echo madvise > /sys/kernel/mm/transparent_hugepage/enabled)`);
}

function expectVma(w: Walk): Vma {
  expect(w.stats.length, w.stuck).toBeGreaterThanOrEqual(1);
  expect(w.vma, `expected a VMA with VmFlags "hg" (madvise MADV_HUGEPAGE) in /proc/${w.prog.pid}/smaps at stop 2; found none. ${w.stuck ?? ''}`).toBeDefined();
  return w.vma!;
}

describe('Process Lab 3 — transparent huge pages (大页)', () => {
  requires('root', 'cc', 'tracefs');

  beforeAll(async () => {
    program = (await buildProgram({ src: labSource('process/03-thp/thp.c'), ldlibs: ['-lpthread'] })).path;
    misalign = (await buildProgram({ src: `${REFERENCE_SRC}/process/03-thp/misalign.c`, cflags: ['-shared', '-fPIC'], name: 'misalign.so' })).path;
  });

  it('the region is M MiB (M random, 8–64), starts on a 2 MiB boundary and is advised MADV_HUGEPAGE (VmFlags hg in smaps)', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const v = expectVma(w);
    expect({ aligned: v.start % BigInt(HUGE) === 0n, mib: Number(v.end - v.start) / 2 ** 20 },
      `VMA advised MADV_HUGEPAGE: ${formatVma(v)} (VmFlags ${v.vmFlags.join(' ')}). The program runs with a preload (misalign.so) that, like kernels before 6.7, ` +
      `does not place a large anonymous mapping on a 2 MiB boundary by itself: align the region yourself`).toEqual({ aligned: true, mib: MIB });
    // What a larger mapping had around the region may stay mapped (posix_memalign keeps it too): untouched, it costs no memory.
    recordMetric(ctx, { name: 'VmSize growth stop 1 → 2', value: w.vmSizeKb.length === 2 ? w.vmSizeKb[1]! - w.vmSizeKb[0]! : NaN, unit: `kB (region: ${MIB * 1024})`, group: 'huge pages' });
    recordMetric(ctx, { name: 'region', value: MIB, unit: 'MiB', group: 'huge pages' });
  });

  it('after every 4 KiB page is written, the whole VMA is backed by huge pages (AnonHugePages = its size in smaps)', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const v = expectVma(w);
    expect(w.after, w.stuck).toBeDefined();
    const huge = w.after!.kb.get('AnonHugePages') ?? 0;
    recordMetric(ctx, { name: 'AnonHugePages of the region', value: huge, unit: 'kB', group: 'huge pages' });
    expect(huge, `AnonHugePages of ${formatVma(w.after!)}: ${huge} kB; expected ${MIB * 1024} kB (Rss ${w.after!.kb.get('Rss')} kB, thp_fault_fallback +${w.thpFallback})`)
      .toBe(Number(v.end - v.start) / 1024);
  });

  it('page faults fall 512-fold: one exceptions:page_fault_user event per 2 MiB in the VMA, minflt grew by about that, thp_fault_alloc by at least that', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const v = expectVma(w);
    expect(w.stats.length, w.stuck).toBe(2);
    const addr = (e: TraceEvent) => BigInt(e.body.match(/address=(0x[0-9a-f]+)/)?.[1] ?? '0');
    const inside = w.faults.filter((e) => { const a = addr(e); return a >= v.start && a < v.end; });
    const minflt = w.stats[1]!.minflt - w.stats[0]!.minflt;
    recordMetric(ctx, { name: 'page faults for the region', value: inside.length, unit: `faults (4 KiB pages: ${MIB * 256})`, group: 'huge pages' });
    expect(inside.length, `expected ${HUGE_PAGES} page_fault_user events in ${hex(v.start)}-${hex(v.end)} (one per 2 MiB; ${MIB * 256} with 4 KiB pages); got ${inside.length} (${w.faults.length} in all). Sample:\n  ${w.faultLines.slice(0, 3).join('\n  ')}`)
      .toBe(HUGE_PAGES);
    expect(minflt, `minflt (field 10 of /proc/${w.prog.pid}/stat) grew by ${minflt}; expected ${HUGE_PAGES}..${HUGE_PAGES + MINFLT_SLACK}`).toBeLessThanOrEqual(HUGE_PAGES + MINFLT_SLACK);
    // /proc/vmstat is machine-wide: other processes may add huge page faults, never take ours away.
    expect(w.thpAlloc, `thp_fault_alloc in /proc/vmstat grew by ${w.thpAlloc} while the region was written (machine-wide counter); expected ≥ ${HUGE_PAGES}`).toBeGreaterThanOrEqual(HUGE_PAGES);
  });
});
