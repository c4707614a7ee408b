/** System Lab 5's parsers and verdicts (labs/system/05-buddy/) on made-up evidence. */
import { describe, expect, it } from 'vitest';
import { orderDelta, pagesIn, parseBuddyinfo, parseZoneinfo, zoneOf, type Buddy } from '../../../../labs/system/05-buddy/buddyinfo.js';
import { noHugeAnonKb, parseMmap, parsePageEvent, parseReport, type PageEvent, type Run } from '../../../../labs/system/05-buddy/experiment.js';
import { freeLists, hugeBlocks, ownAlignment, release, report, smallPages } from '../../../../labs/system/05-buddy/judge.js';

const BUDDYINFO = `Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 
Node 0, zone    DMA32      3      2      3      2      3      2      2      5      5      3    751 
Node 0, zone   Normal   6284   8134   8862   7590   4525   2627   1627    827    364      1    442 
`;
const ZONEINFO = `Node 0, zone      DMA
  pages free     3968
        spanned  4095
        present  3998
  start_pfn:           1
Node 0, zone    DMA32
        spanned  1044480
        present  782336
  start_pfn:           4096
Node 0, zone   Normal
        spanned  5505024
        present  5505024
  start_pfn:           1048576
Node 0, zone  Movable
        spanned  0
        present  0
`;
const zones = parseZoneinfo(ZONEINFO);
const before = parseBuddyinfo(BUDDYINFO);
const minus = (b: Buddy, zone: string, order: number, n: number): Buddy => {
  const m = new Map([...b].map(([z, c]) => [z, [...c]]));
  m.get(zone)![order]! -= n;
  return m;
};
const ev = (event: PageEvent['event'], pfn: number, order: number, migratetype = 1): PageEvent => ({ event, pfn, order, migratetype, ts: 1 });
const HUGE_PFNS = [0x288c00, 0x288e00, 0x1a5c00, 0x1a5e00];

function run(extra: Partial<Run> = {}): Run {
  const events = [
    ...HUGE_PFNS.flatMap((p) => [ev('mm_page_alloc_zone_locked', p, 9), ev('mm_page_alloc', p, 9), ev('mm_page_free', p, 9)]),
    ...Array.from({ length: 1050 }, (_, i) => ev('mm_page_alloc', 0x300000 + i, 0)),
  ];
  const held = minus(before, 'Normal', 10, 2);
  const out = [...before].map(([z, c]) => `before ${z} ${c.join(' ')}`).concat(
    HUGE_PFNS.map((p, i) => `huge ${i} 0x7f00${i}00000 pfn 0x${p.toString(16)}`),
    [...held].map(([z, c]) => `after ${z} ${c.join(' ')}`),
    [...held].map(([z, c]) => `delta ${z} ${orderDelta(before.get(z), c).join(' ')}`), ['ready']).join('\n');
  return {
    huge: 4, small: 1000, pid: 42, zones, idle: { windows: 10, stepMs: 50, maxPages: new Map([['Normal', 0]]) },
    before, held, windowMs: 12, freed: before, anonHugeKb: 8192, anonKb: 8192 + 4100, noHugeKb: 4000, others: [], events, lost: false, fields: ['pfn', 'order', 'gfp_flags', 'migratetype'],
    report: parseReport(out), exit: { exitCode: 0 } as Run['exit'], output: out, ...extra,
  };
}

describe('System Lab 5: buddyinfo, zoneinfo and kmem events', () => {
  it('parses the free lists per zone and the zones\' page frames', () => {
    expect(before.get('Normal')).toHaveLength(11);
    expect(pagesIn(before.get('Normal'), 9)).toBe(512 + 442 * 1024);
    expect(zones.map((z) => z.name)).toEqual(['DMA', 'DMA32', 'Normal']);
    expect(zoneOf(zones, 0x288c00)).toBe('Normal');
    expect(zoneOf(zones, 0x5000)).toBe('DMA32');
  });

  it('parses an mm_page_alloc and a _zone_locked line', () => {
    const a = parsePageEvent({ pid: 1, ts: 2, event: 'mm_page_alloc', body: 'page=00000000b2f67ee2 pfn=0x173e00 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE|__GFP_NORETRY' });
    expect(a).toMatchObject({ pfn: 0x173e00, order: 9, migratetype: 1, gfp: 'GFP_TRANSHUGE|__GFP_NORETRY' });
    expect(parsePageEvent({ pid: 1, ts: 2, event: 'mm_page_alloc_zone_locked', body: 'page=0000 pfn=0x100 order=0 migratetype=1 percpu_refill=1' })?.percpuRefill).toBe(1);
  });
});

describe('System Lab 5 judge', () => {
  it('passes the reference-like run', () => {
    for (const j of [hugeBlocks, smallPages, freeLists, report, release]) {
      const v = j(run());
      expect(v.facts, v.message).toEqual(v.expected);
    }
  });

  it('order 9: 4 KiB pages in place of the huge ones, or nothing touched, each with its own advice', () => {
    const filled = run({ events: Array.from({ length: 1000 + 4 * 512 }, (_, i) => ev('mm_page_alloc', i, 0)), anonHugeKb: 0 });
    expect(hugeBlocks(filled).message).toMatch(/filled 4 KiB at a time/);
    const untouched = run({ events: Array.from({ length: 1010 }, (_, i) => ev('mm_page_alloc', i, 0)), anonHugeKb: 0 });
    expect(hugeBlocks(untouched).message).toMatch(/nothing touched the huge regions/);
    expect(hugeBlocks(run({ anonHugeKb: 0 })).message).toMatch(/allocated but not held/);
  });

  it('order 0: small pages given back before ready, taken by a helper, or in a mapping that did not refuse huge pages', () => {
    const given = smallPages(run({ anonKb: 8192 + 2000, noHugeKb: 1900 }));
    expect(given.facts.held).toBe(false);
    expect(given.message).toMatch(/Not held: .* 2000 kB of 4 KiB anonymous pages/);
    const helper = smallPages(run({ others: [{ pid: 43, order0: 2048 }], events: [...run().events, ...Array.from({ length: 2048 }, (_, i) => ({ ...ev('mm_page_alloc', 0x400000 + i, 0), pid: 43 }))] }));
    expect(helper.facts.notFarMore).toBe(false);
    expect(helper.message).toMatch(/2048 of them by other processes it started: pid 43 2048/);
    const hugeable = smallPages(run({ noHugeKb: 0 }));
    expect(hugeable.facts).toEqual({ atLeastAsked: true, notFarMore: true, held: true, refusedHuge: false });
    expect(hugeable.message).toMatch(/MADV_NOHUGEPAGE/);
  });

  it('order 9: huge regions the kernel aligned for the program (mmap(NULL, k × 2 MiB), MADV_HUGEPAGE on the whole, nothing trimmed)', () => {
    const M = 2 * 1024 * 1024;
    const mm = parseMmap('sys_mmap', 42, '(addr: 0x00000000, len: 0x00200000, prot: 0x00000003, flags: 0x00000022, fd: 0xffffffffffffffff, off: 0x00000000)')!;
    expect(mm).toEqual({ call: 'mmap', pid: 42, addr: 0, len: M, flags: 0x22 });
    const adv = parseMmap('sys_madvise', 42, '(start: 0x7f0000200000, len_in: 0x00200000, behavior: 0x0000000e)')!;
    expect(adv).toMatchObject({ call: 'madvise', addr: 0x7f0000200000, len: M, flags: 14 });
    const unmap = parseMmap('sys_munmap', 42, '(addr: 0x7f0000400000, len: 0x00200000)')!;
    const naive = run({ mmaps: [mm, adv, mm, adv, mm, adv, mm, adv] });
    expect(ownAlignment(naive)).toMatchObject({ ok: false, capacity: 0 });
    expect(hugeBlocks(naive).message).toMatch(/only because this kernel aligned them/);
    const trimmed = { ...mm, len: 2 * M };
    expect(ownAlignment(run({ mmaps: Array.from({ length: 4 }, () => [trimmed, unmap, adv]).flat() })).ok).toBe(true);
    expect(ownAlignment(run({ mmaps: [{ ...mm, len: 5 * M }, { ...adv, len: 4 * M }] })).ok).toBe(true);
    expect(ownAlignment(run({ mmaps: [{ ...mm, len: 4 * M }, { ...adv, len: 4 * M }] })).ok).toBe(false);
    expect(noHugeAnonKb('7f00-7f10 rw-p 0 0 0\nAnonymous:  64 kB\nVmFlags: rd wr mr mw me ac nh\n7f10-7f20 rw-p\nAnonymous:  8 kB\nVmFlags: rd wr hg\n')).toBe(64);
  });

  it('buddyinfo: a drop that the trace does not explain (or none at all) disagrees', () => {
    const v = freeLists(run({ held: before }));
    expect(v.facts.zones).toEqual(['Normal: disagrees']);
    expect(v.message).toMatch(/moved by 0; [^]*expected -3072 … -1024 \(-2048 for the order-9 blocks/);
  });

  it('the report: made-up pfns or a delta that is not after − before disagree', () => {
    const r = run();
    const fake = run({ report: { ...r.report, huge: r.report.huge.map((h, i) => ({ ...h, pfn: 0x200000 + i * 512 })) } });
    expect(report(fake).facts.pfns).toBe(false);
    const delta = new Map(r.report.delta); delta.set('Normal', Array<number>(11).fill(0));
    expect(report(run({ report: { ...r.report, delta } })).facts).toMatchObject({ everyZone: false, deltas: false });
  });
});

describe('System Lab 5 judge: a fresh guest', () => {
  it('buddyinfo: small blocks taken when orders 0–8 are empty may split order-9/10 blocks too (6.1 guest, measured)', () => {
    const r = run();
    // 4 order-9 blocks (−2048) and 5 order-0 refills that each split a big block: −4608 in all.
    const events = [...r.events, ...Array.from({ length: 5 }, (_, i) => ev('mm_page_alloc_zone_locked', 0x290000 + i, 0))];
    const v = freeLists(run({ events, held: minus(minus(before, 'Normal', 10, 7), 'Normal', 9, -5) }));
    expect(v.facts.zones, v.message).toEqual(['Normal: agrees']);
  });
});
