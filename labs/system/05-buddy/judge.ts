/**
 * System Lab 5's judge: pure functions from the evidence (`Run`) to the facts
 * each test asserts and the message that shows the kernel's record.
 */
import { orderDelta, pagesIn, zoneOf, type Buddy } from './buddyinfo.js';
import type { MmapCall, PageEvent, Run } from './experiment.js';

/** Free pages in orders ≥ 9 may move this much on top of what the trace explains and the host's measured noise (two order-9 blocks). */
export const TOLERANCE_PAGES = 1024;
/** Order-0 movable allocations allowed beyond the pages asked for: the program's own start (sh, ld.so, libc, stack, its buffers). */
export const SMALL_SLACK = 400;
const MOVABLE = 1;
const MT = ['unmovable', 'movable', 'reclaimable', 'pcptypes/highatomic', 'cma/isolate', 'isolate'];

const hex = (n: number) => `0x${n.toString(16)}`;
const allocs = (r: Run, order?: number) => r.events.filter((e) => e.event === 'mm_page_alloc' && (order === undefined || e.order === order));
const lockedOf = (r: Run, order: number) => r.events.filter((e) => e.event === 'mm_page_alloc_zone_locked' && e.order === order);

/** `order 0: 4211 (4100 movable, 111 unmovable); order 9: 6 (6 movable)` */
export function histogram(events: readonly PageEvent[]): string {
  const by = new Map<number, PageEvent[]>();
  for (const e of events) by.set(e.order, [...(by.get(e.order) ?? []), e]);
  return [...by.entries()].sort((a, b) => a[0] - b[0]).map(([o, es]) => {
    const mts = new Map<number, number>();
    for (const e of es) mts.set(e.migratetype ?? -1, (mts.get(e.migratetype ?? -1) ?? 0) + 1);
    return `order ${o}: ${es.length} (${[...mts.entries()].map(([m, n]) => `${n} ${MT[m] ?? `migratetype ${m}`}`).join(', ')})`;
  }).join('; ') || 'none';
}

const counts = (b: Buddy | undefined, zone: string) => b?.get(zone)?.join(' ') ?? 'none';

const TWO_MIB = 2 * 1024 * 1024;
const MAP_FIXED = 0x10; const MAP_ANONYMOUS = 0x20; const MAP_FIXED_NOREPLACE = 0x100000; const MADV_HUGEPAGE = 14;

/**
 * Did the program align its huge regions itself? 6.18 places an anonymous mmap(NULL, k × 2 MiB) at a 2 MiB boundary
 * by itself; 6.1 (the guest) does not, and such a mapping then holds only k − 1 whole aligned 2 MiB ranges. For each
 * madvise(MADV_HUGEPAGE) of the program: when it covers the whole of the anonymous mapping its thread made just
 * before (no munmap between: nothing trimmed) and the kernel here aligned that mapping for it, it holds k − 1 huge
 * pages on 6.1; otherwise as many as its length has 2 MiB. Too few in all for <huge>: it relied on this kernel.
 */
export function ownAlignment(r: Run) {
  if (!r.mmaps) return { ok: true, capacity: undefined as number | undefined, relied: [] as MmapCall[] };
  const kernelAligned = (m: MmapCall) => m.addr === 0 && !(m.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && (m.flags & MAP_ANONYMOUS) !== 0 && m.len % TWO_MIB === 0;
  const last = new Map<number, MmapCall | undefined>();
  const relied: MmapCall[] = [];
  let capacity = 0;
  for (const c of r.mmaps) {
    if (c.call === 'mmap') { last.set(c.pid, (c.flags & MAP_ANONYMOUS) ? c : undefined); continue; }
    if (c.call === 'munmap') { last.set(c.pid, undefined); continue; }
    if (c.flags !== MADV_HUGEPAGE) continue;
    const m = last.get(c.pid);
    if (m && kernelAligned(m) && c.len >= m.len) { relied.push(m); capacity += m.len / TWO_MIB - 1; }
    else capacity += Math.floor(c.len / TWO_MIB);
  }
  return { ok: relied.length === 0 || capacity >= r.huge, capacity, relied };
}

/** The order-9 blocks: exactly `huge` of them handed to the program, each 512-aligned, movable, mapped huge while held. */
export function hugeBlocks(r: Run) {
  const nine = allocs(r, 9);
  const zero = allocs(r, 0).filter((e) => e.migratetype === MOVABLE).length;
  const facts = {
    order9: nine.length,
    aligned: nine.every((e) => e.pfn % 512 === 0),
    movable: nine.every((e) => e.migratetype === MOVABLE),
    anonHugeKb: r.anonHugeKb ?? 'not read',
    alignsItself: ownAlignment(r).ok,
  };
  const expected = { order9: r.huge, aligned: true, movable: true, anonHugeKb: r.huge * 2048, alignsItself: true };
  const own = ownAlignment(r);
  const fix = r.stuck ? `The run: ${r.stuck}.`
    : nine.length === 0 && zero - r.small >= r.huge * 450 ? `No order-9 block, but ${zero - r.small} order-0 movable pages beyond the ${r.small} small ones: the 2 MiB regions were filled 4 KiB at a time. With THP in "madvise" mode a region gets huge pages only once madvise(2) asked for them, and only where a whole 2 MiB-aligned range lies inside it.`
    : nine.length === 0 ? `No order-9 block and no order-0 pages in their place (${zero} order-0 movable for ${r.small} small pages): nothing touched the huge regions. mmap(2) and madvise(2) only describe the range; the page fault of the first write is what takes a block from the buddy allocator.`
    : nine.length < r.huge ? `Fewer order-9 blocks than asked: is each region 2 MiB-aligned and asked for with madvise before its first touch?`
    : nine.length > r.huge ? `More order-9 blocks than asked: allocate exactly <huge> regions.`
    : facts.anonHugeKb !== r.huge * 2048 ? `The blocks were allocated but not held: AnonHugePages must stay at ${r.huge * 2048} kB until the program's stdin ends.`
    : !own.ok ? `The regions are 2 MiB-aligned only because this kernel aligned them: its mmap(2) calls (syscalls:sys_enter_mmap) ${own.relied.map((m) => `mmap(NULL, ${m.len / 1024} KiB)`).join(', ')}, each given MADV_HUGEPAGE whole without trimming, ask for a multiple of 2 MiB at no address, which 6.18 places on a 2 MiB boundary by itself and 6.1 (the guest, Debian) does not; there they hold ${own.capacity} whole aligned 2 MiB ranges for ${r.huge} huge pages. Map more than 2 MiB per region, find the 2 MiB boundary inside and give back the slack.`
    : `Expected ${r.huge} order-9 allocations at 512-aligned pfns, movable, and AnonHugePages ${r.huge * 2048} kB.`;
  return {
    facts, expected,
    message: `asked for ${r.huge} order-9 blocks and ${r.small} order-0 pages; kmem:mm_page_alloc of the program ${r.pid ?? '?'}: ${histogram(allocs(r))}; ` +
      `order-9 pfns: ${nine.map((e) => `${hex(e.pfn)} (${zoneOf(r.zones, e.pfn) ?? '?'}${e.pfn % 512 ? ', not 512-aligned' : ''})`).join(', ') || 'none'}; ` +
      `AnonHugePages while held: ${r.anonHugeKb ?? 'not read'} kB${r.lost ? ' (the trace lost events)' : ''}.\n${fix}`,
  };
}

/** The order-0 pages: at least `small` movable order-0 allocations, and not far more; held while the program waits, in a mapping that refused huge pages. */
export function smallPages(r: Run) {
  const zero = allocs(r, 0).filter((e) => e.migratetype === MOVABLE);
  // Anonymous − AnonHugePages of smaps_rollup: the 4 KiB anonymous pages it maps while held (its stack and heap add a few dozen).
  const smallKb = r.anonKb !== undefined && r.anonHugeKb !== undefined ? r.anonKb - r.anonHugeKb : undefined;
  const facts = {
    atLeastAsked: zero.length >= r.small, notFarMore: zero.length <= r.small + SMALL_SLACK,
    held: smallKb !== undefined && smallKb >= r.small * 4,
    refusedHuge: (r.noHugeKb ?? 0) >= r.small * 4,
  };
  const others = r.others.filter((o) => o.order0 > 0);
  const byOthers = others.length ? ` (${others.reduce((n, o) => n + o.order0, 0)} of them by other processes it started: ${others.map((o) => `pid ${o.pid} ${o.order0}`).join(', ')} — a page taken for the program by a helper counts as the program's)` : '';
  const fix = zero.length < r.small ? `Too few: each 4 KiB page must be written once (a read maps the shared zero page and allocates nothing).`
    : zero.length > r.small + SMALL_SLACK ? `Too many: ${zero.length - r.small} beyond the asked-for pages — are the small pages taken more than once, or the huge regions filled with 4 KiB pages?`
    : !facts.held ? `Not held: while it waited for its stdin the program mapped ${smallKb ?? '?'} kB of 4 KiB anonymous pages (Anonymous − AnonHugePages in /proc/${r.pid ?? '<pid>'}/smaps_rollup), fewer than the ${r.small * 4} kB of the ${r.small} small pages: every small page stays mapped until stdin ends (pages taken and given back, e.g. the 4 KiB pages a collapse into a huge page frees, are not the small pages).`
    : !facts.refusedHuge ? `Only ${r.noHugeKb ?? '?'} kB of its anonymous pages lie in mappings that refused huge pages (VmFlags "nh" in /proc/${r.pid ?? '<pid>'}/smaps), fewer than the ${r.small * 4} kB of the small pages: madvise(MADV_NOHUGEPAGE) the small region before writing it. Here THP is "madvise" so it got 4 KiB pages anyway; with THP "always" (Debian's 6.1) it would get huge ones.`
    : `The order-0 pages agree.`;
  return {
    facts, expected: { atLeastAsked: true, notFarMore: true, held: true, refusedHuge: true }, extra: zero.length - r.small,
    message: `asked for ${r.small} order-0 pages; kmem:mm_page_alloc of the program: ${histogram(allocs(r))} — ${zero.length} order-0 movable${byOthers}, expected ${r.small}…${r.small + SMALL_SLACK} ` +
      `(the pages asked for plus the program's own start); while held: ${smallKb ?? '?'} kB of 4 KiB anonymous pages, ${r.noHugeKb ?? '?'} kB of them in MADV_NOHUGEPAGE mappings (at least ${r.small * 4} kB expected). ${fix}`,
  };
}

/**
 * Per zone where the program's order-9 blocks came from: the free pages in orders ≥ 9 dropped by at least 512 for
 * each order-9 block the trace saw leave that zone's free lists, and by no more than the trace explains: a
 * smaller block taken off the lists (a per-CPU list refill, percpu_refill=1) splits an order-9/10 block when
 * orders 0–8 are empty (a freshly booted guest), which lowers orders ≥ 9 by at most 512 pages more each.
 */
export function freeLists(r: Run) {
  const locked = lockedOf(r, 9);
  const low = r.events.filter((e) => e.event === 'mm_page_alloc_zone_locked' && e.order < 9);
  const zones = [...new Set([...allocs(r, 9), ...locked].map((e) => zoneOf(r.zones, e.pfn) ?? '?'))];
  const rows = zones.map((zone) => {
    const fromLists = locked.filter((e) => zoneOf(r.zones, e.pfn) === zone).length;
    const lowFromLists = low.filter((e) => zoneOf(r.zones, e.pfn) === zone).length;
    const delta = pagesIn(r.held?.get(zone), 9) - pagesIn(r.before.get(zone), 9);
    const expected = -512 * fromLists;
    const noise = r.idle.maxPages.get(zone) ?? 0;
    const tol = TOLERANCE_PAGES + noise;
    const max = expected + tol;
    // A smaller block taken when orders 0–8 are empty splits an order-10 block (1024 out, its order-9 half back) or an order-9 one: 512 at most.
    const splits = 512 * lowFromLists;
    const min = expected - splits - tol;
    return { zone, fromLists, lowFromLists, delta, expected, min, max, tol, noise, ok: r.held !== undefined && delta >= min && delta <= max };
  });
  const allocated = allocs(r, 9).length;
  const facts = { held: r.held !== undefined, zones: rows.map((x) => `${x.zone}: ${x.ok ? 'agrees' : 'disagrees'}`) };
  return {
    facts, expected: { held: true, zones: rows.map((x) => `${x.zone}: agrees`) },
    rows,
    message: rows.map((x) => `zone ${x.zone}: buddyinfo before ${counts(r.before, x.zone)}; held ${counts(r.held, x.zone)} (read ${r.windowMs ?? '?'} ms later); ` +
      `per order ${orderDelta(r.before.get(x.zone), r.held?.get(x.zone)).join(' ')}; free pages in orders 9–10 moved by ${x.delta}; ` +
      `the trace: ${x.fromLists} order-9 blocks taken off this zone's free lists (mm_page_alloc_zone_locked order=9) and ${x.lowFromLists} smaller ones (each may split a bigger block when orders 0–8 run out), ` +
      `so expected ${x.min} … ${x.max} (${x.expected} for the order-9 blocks, ± ${x.tol}: ${TOLERANCE_PAGES} + the host's own noise, ${x.noise} pages at most in ${r.idle.windows} idle windows of ${r.idle.stepMs} ms)`).join('\n') +
      `\n${allocated} order-9 allocations in all, ${Math.max(0, allocated - locked.length)} of them served from a per-CPU list (no zone_locked event: buddyinfo does not see those).` +
      (rows.length === 0 ? ' No order-9 block was allocated: nothing to compare.' : '') +
      (r.held === undefined ? ' The program never said ready: buddyinfo was not read while it held its memory.' : ''),
  };
}

/** The program's report agrees with the kernel: the pfns it found are the trace's order-9 blocks, its deltas match buddyinfo's within the tolerance. */
export function report(r: Run) {
  const rep = r.report;
  const tracePfns = allocs(r, 9).map((e) => e.pfn).sort((a, b) => a - b);
  const itsPfns = rep.huge.map((h) => h.pfn).sort((a, b) => a - b);
  const zonesRead = [...r.before.keys()];
  const consistent = zonesRead.every((z) => {
    const d = rep.delta.get(z); const b = rep.before.get(z); const a = rep.after.get(z);
    return d !== undefined && b !== undefined && a !== undefined && d.length === 11 && b.length === 11 && a.length === 11 && d.every((x, k) => x === a[k]! - b[k]!);
  });
  const rows = freeLists(r).rows;
  const deltas = rows.map((x) => {
    const its = pagesIn(rep.delta.get(x.zone), 9);
    return { zone: x.zone, its, ok: its >= x.min && its <= x.max, min: x.min, max: x.max };
  });
  const facts = {
    ready: rep.ready, pfns: itsPfns.length === r.huge && itsPfns.join() === tracePfns.join(), everyZone: consistent,
    deltas: deltas.every((d) => d.ok) && deltas.length > 0,
  };
  return {
    facts, expected: { ready: true, pfns: true, everyZone: true, deltas: true },
    message: `the program's pfns: ${itsPfns.map(hex).join(', ') || 'none'}; the trace's order-9 pfns: ${tracePfns.map(hex).join(', ') || 'none'}; ` +
      `its before/after/delta lines for the zones of /proc/buddyinfo (${zonesRead.join(', ')}): ${consistent ? 'all there, delta = after − before' : `missing, not 11 orders, or delta ≠ after − before (${[...rep.delta.entries()].map(([z, d]) => `${z}: ${d.join(' ')}`).join('; ') || 'no delta line'})`}; ` +
      `its free pages in orders 9–10: ${deltas.map((d) => `${d.zone} ${d.its} (the kernel: ${d.min} … ${d.max})`).join(', ') || 'no zone to compare'}. ` +
      `Expected: the pfn of each huge region read from /proc/self/pagemap, and /proc/buddyinfo read before and after the allocations.`,
  };
}

/** On exit the order-9 blocks go back whole: mm_page_free order 9 for each pfn; exit 0. */
export function release(r: Run) {
  const nine = allocs(r, 9).map((e) => e.pfn);
  const freed = new Set(r.events.filter((e) => e.event === 'mm_page_free' && e.order === 9).map((e) => e.pfn));
  const kept = nine.filter((p) => !freed.has(p));
  const how = r.exit ? (r.exit.signal ?? `exit ${r.exit.exitCode}`) : 'still running';
  return {
    facts: { exit: how, notFreedWhole: kept.map(hex) },
    expected: { exit: 'exit 0', notFreedWhole: [] as string[] },
    message: `after its stdin ended the program ended with ${how}; its order-9 blocks ${nine.map(hex).join(', ') || 'none'}; freed as order 9 (kmem:mm_page_free): ${[...freed].filter((p) => nine.includes(p)).map(hex).join(', ') || 'none'}. ` +
      `Expected each block back whole (munmap of the whole 2 MiB region, or the exit) and exit 0`,
  };
}
