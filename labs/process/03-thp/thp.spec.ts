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
 *
 * The lab's anatomy: experiment.ts runs the program and collects the evidence
 * (`Walk`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import type { Vma } from '../../../helpers/kernel/procfs.js';
import { MIB, PRELOAD_HINTS, prepareThp, thpMode, walkThp, type ThpSetup, type Walk } from './experiment.js';
import * as judge from './judge.js';

let setup: ThpSetup;
let walked: Promise<Walk> | undefined;
/** The program's one run, shared by the tests (the first test to ask starts it). */
const walk = () => (walked ??= walkThp(setup));

/** THP must be "madvise" or "always" (not "never"): skip with the fix otherwise. */
function needThp(ctx: TestContext): void {
  const problem = judge.thpModeProblem(thpMode());
  if (problem) skipOrFail(ctx, problem);
}

function expectVma(w: Walk): Vma {
  expect(w.stats.length, w.stuck).toBeGreaterThanOrEqual(1);
  expect(w.vma, judge.vmaMissing(w)).toBeDefined();
  return w.vma!;
}

describe('Process Lab 3 — transparent huge pages (大页)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await prepareThp();
  });

  it('the region is M MiB (M random, 8–64), starts on the first 2 MiB boundary of memory whose address the kernel chose (not one the program picked), and is advised MADV_HUGEPAGE (VmFlags hg in smaps)', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const r = judge.region(w, expectVma(w), MIB, PRELOAD_HINTS);
    expect(r.shape.facts, r.shape.message).toEqual(r.shape.want);
    expect(r.notAFile.facts, r.notAFile.message).toEqual(r.notAFile.want);
    expect(r.notKernelAligned.facts, r.notKernelAligned.message).toEqual(r.notKernelAligned.want);
    expect(r.kernelPlaced.facts, r.kernelPlaced.message).toEqual(r.kernelPlaced.want);
    // What a larger mapping had around the region may stay mapped (posix_memalign keeps it too): untouched, it costs no memory.
    recordMetric(ctx, { name: 'VmSize growth stop 1 → 2', value: w.vmSizeKb.length === 2 ? w.vmSizeKb[1]! - w.vmSizeKb[0]! : NaN, unit: `kB (region: ${MIB * 1024})`, group: 'huge pages' });
    recordMetric(ctx, { name: 'region', value: MIB, unit: 'MiB', group: 'huge pages' });
  });

  it('after every 4 KiB page is written, the whole VMA is backed by huge pages (AnonHugePages = its size in smaps)', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const v = expectVma(w);
    expect(w.after, w.stuck).toBeDefined();
    const h = judge.hugeBacked(w, v, w.after!, MIB);
    recordMetric(ctx, { name: 'AnonHugePages of the region', value: h.facts, unit: 'kB', group: 'huge pages' });
    expect(h.facts, h.message).toEqual(h.want);
  });

  it('page faults fall 512-fold: one exceptions:page_fault_user event per 2 MiB in the VMA, minflt grew by about that, thp_fault_alloc by at least that', async (ctx) => {
    needThp(ctx);
    const w = await walk();
    const v = expectVma(w);
    expect(w.stats.length, w.stuck).toBe(2);
    const f = judge.faults(w, v, MIB);
    recordMetric(ctx, { name: 'page faults for the region', value: f.inside.facts, unit: `faults (4 KiB pages: ${MIB * 256})`, group: 'huge pages' });
    expect(f.inside.facts, f.inside.message).toEqual(f.inside.want);
    expect(f.minflt.fact, f.minflt.message).toBeLessThanOrEqual(f.minflt.atMost);
    expect(f.thpAlloc.fact, f.thpAlloc.message).toBeGreaterThanOrEqual(f.thpAlloc.atLeast);
  });
});
