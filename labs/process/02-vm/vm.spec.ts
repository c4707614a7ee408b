/**
 * Process Lab 2 — 虚拟内存与缺页 (seed 001 §2.1, 003 内存管理).
 * The student's `vm <pages>` maps memory, touches it and stops itself
 * (SIGSTOP) at six points; at each stop the spec reads what the kernel says
 * about it: the VMAs in /proc/<pid>/maps, minflt in /proc/<pid>/stat, RssAnon
 * in /proc/<pid>/status, the exceptions:page_fault_user events of that pid in a
 * private tracefs instance, and physical frame numbers in /proc/<pid>/pagemap.
 * After the fork the kernel's record says who made the child's new frame (its
 * page faults and address-space calls between stops 5 and 6: a copy-on-write
 * fault, not a page mapped over the old one) and whether the parent reaped the
 * child (its wait4/waitid results, sched_process_exit of both).
 * The page count is chosen at random per run, so no answer can be hard-coded.
 *
 * The lab's anatomy: experiment.ts runs the program and collects the evidence
 * (`Walk`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { buildVm, PAGES, SPLIT_RSS_LAG_KB, walkVm, type Stop, type VmSetup, type Walk } from './experiment.js';
import * as judge from './judge.js';
import { MINFLT_SLACK, RSS_SLACK_KB, type Range } from './judge.js';

let setup: VmSetup;
let walked: Promise<Walk> | undefined;
/** The program's one run, shared by the tests (the first test to ask starts it). */
const walk = () => (walked ??= walkVm(setup));

function reached(w: Walk, n: number): Stop {
  expect(w.stops.length, judge.stopMissing(w, n)).toBeGreaterThanOrEqual(n);
  return w.stops[n - 1]!;
}

function expectRange(w: Walk): Range {
  reached(w, 2);
  expect(w.range, judge.rangeMissing(w)).toBeDefined();
  return w.range!;
}

describe('Process Lab 2 — virtual memory and page faults (虚拟内存与缺页)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await buildVm();
  });

  it('mmap of N pages (N random, 64–447) adds a VMA of exactly N pages (anonymous, rw-p) to /proc/<pid>/maps, and RSS does not grow before the pages are touched', async (ctx) => {
    const w = await walk();
    const r = expectRange(w);
    const m = judge.mapping(w.stops[0]!, w.stops[1]!, r);
    expect(m.vma, m.vmaMessage).toEqual({ pages: PAGES, perms: 'rw-p' });
    expect(m.rssGrowthKb, m.rssMessage).toBeLessThanOrEqual(RSS_SLACK_KB);
    recordMetric(ctx, { name: 'pages mapped', value: PAGES, unit: 'pages', group: 'virtual memory' });
  });

  it('writing each page once takes exactly one page fault per page: exceptions:page_fault_user events in the VMA = pages (all writes), minflt grew by that much', async (ctx) => {
    const w = await walk();
    const r = expectRange(w);
    reached(w, 3);
    const t = judge.touch(w, r, PAGES);
    expect(t.inRegion, t.inRegionMessage).toEqual({ events: PAGES, pages: PAGES, writes: PAGES });
    expect(t.ofProcess, t.ofProcessMessage).toBeLessThanOrEqual(PAGES + MINFLT_SLACK);
    expect(t.minflt, t.minfltMessage).toBeGreaterThanOrEqual(PAGES);
    expect(t.minflt).toBeLessThanOrEqual(PAGES + MINFLT_SLACK);
    if (t.usPerFault !== undefined) recordMetric(ctx, { name: 'time per first-touch fault (trace timestamps)', value: t.usPerFault, unit: 'µs', group: 'virtual memory' });
    recordMetric(ctx, { name: 'minflt during the touch', value: t.minflt, unit: 'faults', group: 'virtual memory' });
  });

  it('RSS grows by pages × 4 KiB once they are written (RssAnon in /proc/<pid>/status)', async (ctx) => {
    const w = await walk();
    reached(w, 3);
    const g = judge.rssGrowth(w, PAGES, SPLIT_RSS_LAG_KB);
    recordMetric(ctx, { name: 'RssAnon growth', value: g.grew, unit: 'kB', group: 'virtual memory' });
    expect(g.grew, g.message).toBeGreaterThanOrEqual(PAGES * 4 - RSS_SLACK_KB - SPLIT_RSS_LAG_KB);
    expect(g.grew).toBeLessThanOrEqual(PAGES * 4 + RSS_SLACK_KB);
  });

  it('every written page has a physical frame of its own: pagemap shows all pages present with pairwise different PFNs', async () => {
    const w = await walk();
    expectRange(w);
    reached(w, 3);
    const f = judge.frames(w, PAGES);
    expect(f.facts, f.message).toEqual({ present: PAGES, distinctPfns: PAGES, zeroPfns: 0 });
  });

  it('two mappings of one memfd page are two virtual addresses that translate to the same PFN', async () => {
    const w = await walk();
    reached(w, 4);
    const m = judge.memfdPair(w, setup.memfdDev);
    expect(m.twice, m.pairMessage).toBeDefined();
    expect(m.devices, m.devicesMessage).toEqual({ devices: [setup.memfdDev, setup.memfdDev] });
    expect(m.faults, m.faultsMessage).toEqual({ faultsInFirst: true, faultsInSecond: true });
    expect(m.frame, m.frameMessage).toEqual({ shared: 'ss', present: [true, true], samePfn: true });
  });

  it('after fork the child shares the parent\'s frames until it writes; its write to page 0 is a copy-on-write fault (a write to the present, write-protected page) that gives it a new PFN, while the parent keeps every frame and every other page stays shared', async () => {
    const w = await walk();
    const r = expectRange(w);
    expect(w.cow, w.stuck ?? 'no child').toBeDefined();
    const before = judge.sharedBeforeWrite(w);
    expect(before.shared, before.message).toBe(true);
    expect(w.cow!.after, w.stuck).toBeDefined();
    const cow = judge.copyOnWrite(w, w.cow!.after!);
    expect(cow.facts, cow.message).toEqual({ childPage0Moved: true, parentFramesKept: true, otherPagesStillShared: true });
    const who = judge.whoMadeTheFrame(w, r);
    expect(who.facts, who.message).toEqual({ cowFaultsOnPage0: true, faultsNotACopy: 0, faultsOffPage0: 0, callsOverTheRegion: [] });
  });

  it('the parent waits for its child (the kernel shows a wait4/waitid of the parent that reaped it) and then ends by itself (exit 0)', async (ctx) => {
    afterCorrectness(ctx, ['after fork the child shares'], 'ending cleanly');
    const w = await walk();
    expect(w.exit, w.stuck ?? '').toBe('exit 0');
    const r = judge.reaping(w);
    expect(r.reaped, r.message).toBe(true);
  });
});
