/**
 * Process Lab 3 — 大页 (seed 001 §2.1: "it supports huge pages").
 * The student's `thp <MiB>` maps a 2 MiB-aligned region advised
 * MADV_HUGEPAGE and writes every 4 KiB page of it, stopping itself before
 * and after (labs/process/stops.ts). The kernel's evidence: the VMA's VmFlags
 * and AnonHugePages in /proc/<pid>/smaps, the exceptions:page_fault_user
 * events in that VMA (one per 2 MiB instead of one per 4 KiB), minflt, and
 * thp_fault_alloc in /proc/vmstat; and who chose the region's address: the
 * mmap(2) calls between stops 1 and 2 (syscalls:sys_enter_mmap/sys_exit_mmap)
 * must show it inside memory the kernel placed, at its first 2 MiB boundary.
 * The size and the preload's hints are random per run.
 */
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { startBackground, type Background } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { labRequires, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { makeTraceInstance, pairSyscalls, type TraceEvent, type TracedSyscall } from '../../../helpers/kernel/tracefs.js';
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
/**
 * Where the preload asks the kernel to put a large anonymous mmap(NULL, …): the k-th at BASE + k GiB + P × 4 KiB
 * (KL_MISALIGN_BASE, KL_MISALIGN_PAGES), BASE random per run in 0x7e00_0000_0000 + 0…192 GiB, 2 MiB-aligned, and
 * P random per run, 2–511 pages (never the single page it once was): no constant added to what mmap returns lands
 * on a 2 MiB boundary but by a 1-in-510 chance.
 */
const MISALIGN_BASE = 0x7e0000000000n + BigInt(Math.floor(Math.random() * 192 * 512)) * BigInt(HUGE);
const MISALIGN_PAGES = 2 + Math.floor(Math.random() * 510);
const preloadHints = new Set(Array.from({ length: 64 }, (_, k) => MISALIGN_BASE + BigInt(k) * (1n << 30n) + BigInt(MISALIGN_PAGES) * 4096n));
/** MAP_FIXED, MAP_FIXED_NOREPLACE: the address is the program's, not the kernel's. */
const FIXED_FLAGS = 0x10n | 0x100000n;
const MAP_ANONYMOUS = 0x20n;

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
  /** The mmap(2) calls of the process between stops 1 and 2 (syscalls:sys_enter_mmap/sys_exit_mmap), when traced. */
  readonly mmaps?: TracedSyscall[];
}

let walked: Promise<Walk> | undefined;

function walk(): Promise<Walk> {
  walked ??= (async () => {
    const prog = startBackground(program, [String(MIB)], { timeoutMs: 60_000, env: { LD_PRELOAD: misalign, KL_MISALIGN_BASE: MISALIGN_BASE.toString(16), KL_MISALIGN_PAGES: String(MISALIGN_PAGES), KL_MISALIGN_PROGRAM: realpathSync(program) } });
    const pid = prog.pid;
    const out = () => prog.output();
    const stats: ProcStat[] = [];
    const empty = { prog, hgVmas: [] as Vma[], stats, faults: [] as TraceEvent[], faultLines: [] as string[], thpAlloc: 0, thpFallback: 0, vmSizeKb: [] as number[] };
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
    const after = vma ? (readMaps(pid, true) ?? []).find((v) => v.start <= vma.start && vma.start < v.end) : undefined;
    const st = readStat(pid);
    if (st) stats.push(st);
    try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    await Promise.race([prog.exited, new Promise((r) => setTimeout(r, 5_000))]);
    return { prog, stuck, vma, after, hgVmas, stats, faults: rec.events.filter((e) => e.event === 'page_fault_user'), faultLines: rec.lines, thpAlloc, thpFallback, vmSizeKb: empty.vmSizeKb, mmaps };
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
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    program = (await buildProgram({ src: labSource('process/03-thp/thp.c'), ldlibs: ['-lpthread'] })).path;
    misalign = (await buildProgram({ src: `${REFERENCE_SRC}/process/03-thp/misalign.c`, cflags: ['-shared', '-fPIC'], name: 'misalign.so' })).path;
  });

  it('the region is M MiB (M random, 8–64), starts on the first 2 MiB boundary of memory whose address the kernel chose (not one the program picked), and is advised MADV_HUGEPAGE (VmFlags hg in smaps)', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const v = expectVma(w);
    expect({ aligned: v.start % BigInt(HUGE) === 0n, mib: Number(v.end - v.start) / 2 ** 20 },
      `VMA advised MADV_HUGEPAGE: ${formatVma(v)} (VmFlags ${v.vmFlags.join(' ')}). The program runs with a preload (misalign.so) that, like kernels before 6.7, ` +
      `does not place a large anonymous mapping on a 2 MiB boundary by itself: align the region yourself`).toEqual({ aligned: true, mib: MIB });
    // Who chose the address: the region must lie in what an mmap without an address of the program's own returned
    // (NULL, or the preload's random hint), at its first 2 MiB boundary. A constant address (MAP_FIXED, or a hint
    // the kernel honours because that range happens to be free) is a hard-coded answer.
    const mmaps = w.mmaps ?? [];
    const arg = (c: TracedSyscall, k: string) => c.args.get(k) ?? 0n;
    const kernelChose = (c: TracedSyscall) => (arg(c, 'flags') & FIXED_FLAGS) === 0n && (arg(c, 'flags') & MAP_ANONYMOUS) !== 0n && (arg(c, 'addr') === 0n || preloadHints.has(arg(c, 'addr')));
    const holds = (c: TracedSyscall) => c.ret !== undefined && c.ret >= 0n && c.ret <= v.start && v.end <= c.ret + arg(c, 'len');
    // Anonymous memory from a file mapping (a private mapping of /dev/zero): the preload, which handles MAP_ANONYMOUS
    // mappings only, never sees it, and the kernel places /dev/zero's private mappings on a 2 MiB boundary by itself
    // (get_unmapped_area_zero → thp_get_unmapped_area): the program never had to align.
    const ofFile = mmaps.find((c) => holds(c) && (arg(c, 'flags') & MAP_ANONYMOUS) === 0n);
    expect(ofFile === undefined, `the region ${hex(v.start)}-${hex(v.end)} lies in mmap(${ofFile ? `${hex(arg(ofFile, 'addr'))}, ${Number(arg(ofFile, 'len')) / 2 ** 20} MiB, flags ${hex(arg(ofFile, 'flags'))}, fd ${BigInt.asIntN(64, arg(ofFile, 'fd'))}) = ${hex(ofFile.ret!)}` : ''}, ` +
      `a mapping of a file (fd ${ofFile ? BigInt.asIntN(64, arg(ofFile, 'fd')) : '?'}), not MAP_ANONYMOUS (syscalls:sys_enter_mmap): the spec's preload, which makes mmap hand out unaligned addresses as kernels before 6.7 do, ` +
      `handles anonymous mappings only, and this ${release()} kernel places a private mapping of /dev/zero on a 2 MiB boundary by itself (thp_get_unmapped_area), so nothing shows that your program aligns: ` +
      `map anonymous memory (MAP_PRIVATE|MAP_ANONYMOUS, fd -1) through libc, more than M MiB, and align inside what comes back yourself`).toBe(true);
    const ok = mmaps.filter((c) => holds(c) && kernelChose(c)).some((c) => v.start - c.ret! <= BigInt(HUGE));
    // An mmap(NULL) the preload never saw (syscall(2) straight to the kernel) whose length is a multiple of 2 MiB: the
    // 6.7+ kernel placed it on a 2 MiB boundary by itself (thp_get_unmapped_area), older kernels do not — whatever the
    // program did with the result, it never had to align. (glibc's own mmap for posix_memalign asks for a length that
    // is not a multiple of 2 MiB: the kernel does not align that one, glibc does.)
    const kernelAligned = mmaps.find((c) => holds(c) && arg(c, 'addr') === 0n && (arg(c, 'flags') & FIXED_FLAGS) === 0n &&
      arg(c, 'len') % BigInt(HUGE) === 0n && c.ret! % BigInt(HUGE) === 0n);
    expect(Boolean(kernelAligned), `the region ${hex(v.start)}-${hex(v.end)} lies in mmap(NULL, ${kernelAligned ? Number(arg(kernelAligned, 'len')) / 2 ** 20 : '?'} MiB) = ${kernelAligned ? hex(kernelAligned.ret!) : '?'}, ` +
      `a mapping this ${release()} kernel placed on a 2 MiB boundary by itself: since 6.7 Linux aligns an anonymous mmap(NULL) whose length is a multiple of 2 MiB; ` +
      `kernels before 6.7 (Debian 12's 6.1, Ubuntu 22.04's 5.15) do not. The spec's preload, which makes mmap hand out unaligned addresses as they do, did not see this call ` +
      `(syscall(2) straight to the kernel?), so nothing shows that your program aligns: call mmap(2) through libc, map more than M MiB and align inside what comes back yourself`).toBe(false);
    const flagNames = (f: bigint) => [[0x10n, 'MAP_FIXED'], [0x100000n, 'MAP_FIXED_NOREPLACE'], [0x20n, 'MAP_ANONYMOUS']].filter(([b]) => (f & (b as bigint)) !== 0n).map(([, n]) => n).join('|');
    const list = mmaps.map((c) => `mmap(${hex(arg(c, 'addr'))}${preloadHints.has(arg(c, 'addr')) ? ' (the preload\'s hint)' : ''}, ${Number(arg(c, 'len')) / 2 ** 20} MiB, ${flagNames(arg(c, 'flags')) || hex(arg(c, 'flags'))}) = ${c.ret === undefined ? '?' : c.ret < 0n ? c.ret : hex(c.ret)}`);
    expect(ok, `the region ${hex(v.start)}-${hex(v.end)} is not the first 2 MiB boundary inside memory whose address the kernel chose; the process's mmap(2) calls between stops 1 and 2 ` +
      `(syscalls:sys_enter_mmap/sys_exit_mmap):\n  ${list.join('\n  ') || '(none)'}\nAsk mmap for more than M MiB without an address (NULL) and align inside what it returns: ` +
      `an address of your own (MAP_FIXED or a hint) is a hard-coded answer, right only where that range happens to be free`).toBe(true);
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
