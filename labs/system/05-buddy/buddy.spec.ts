/**
 * System Lab 5 — 内存管理: physical memory, zones and the buddy allocator
 * (seed 003 内存管理 §3–5). The student's `buddy <huge> <small>` takes a
 * random number of order-9 blocks (transparent huge pages) and order-0 pages
 * and reports the free lists of /proc/buddyinfo before and after. The kernel
 * judges: kmem:mm_page_alloc / _zone_locked / mm_page_free of the program in
 * a private tracefs instance, AnonHugePages, and /proc/buddyinfo read by the
 * spec before and while the program holds its memory, within a stated
 * tolerance over the host's own measured noise.
 *
 * experiment.ts runs the program and collects the evidence (`Run`), judge.ts
 * turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { pagesIn } from './buddyinfo.js';
import { buildBuddy, runBuddy, type Run } from './experiment.js';
import * as judge from './judge.js';

let program: string;
let ran: Promise<Run> | undefined;
const once = () => (ran ??= runBuddy(program));

describe('System Lab 5 — zones and the buddy allocator (内存管理：物理内存)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    program = await buildBuddy();
  });

  it(`control: the kernel records page allocations (kmem:mm_page_alloc has pfn, order, migratetype) and the host's buddyinfo noise is measured`, async (ctx) => {
    const r = await once();
    expect(['pfn', 'order', 'migratetype'].every((f) => r.fields.includes(f)), `mm_page_alloc fields on this kernel: ${r.fields.join(', ') || 'none (no tracefs?)'}`).toBe(true);
    for (const [zone, pages] of r.idle.maxPages) {
      if (pages > 0 || zone === 'Normal') recordMetric(ctx, { name: `host noise: free pages in orders ≥ 9, zone ${zone}, largest change in ${r.idle.stepMs} ms`, value: pages, unit: 'pages', group: 'buddy' });
    }
  });

  it(`order 9: the kernel hands the program exactly <huge> (3–8, random) blocks of order 9 — mm_page_alloc order=9, movable, 512-aligned pfns — mapped huge while it holds them (AnonHugePages)`, async () => {
    const h = judge.hugeBlocks(await once());
    expect(h.facts, h.message).toEqual(h.expected);
  });

  it(`order 0: the <small> (1000–3999, random) ordinary pages are order-0 movable allocations of the program, each page once`, async (ctx) => {
    const s = judge.smallPages(await once());
    const zero = (await capabilities())['zero-page'];
    if (!zero.ok) await adapted(ctx, `no shared zero page on this kernel (${zero.detail}): a first read takes an order-0 page too, so this test cannot tell pages read from pages written here`);
    expect(s.facts, s.message).toEqual(s.expected);
    recordMetric(ctx, { name: 'order-0 movable allocations beyond the pages asked for', value: s.extra, unit: 'pages', group: 'buddy' });
  });

  it('buddyinfo: while the program holds them, the zone\'s free pages in orders 9–10 drop by 512 for each order-9 block the trace saw leave its free lists (within the stated tolerance)', async (ctx) => {
    afterCorrectness(ctx, ['order 9:'], 'the free lists\' change');
    const r = await once();
    const f = judge.freeLists(r);
    expect(f.facts, f.message).toEqual(f.expected);
    for (const x of f.rows) recordMetric(ctx, { name: `free pages in orders 9–10, zone ${x.zone}, while held`, value: x.delta, unit: 'pages', group: 'buddy' });
    const z = f.rows[0]?.zone;
    if (z) recordMetric(ctx, { name: `free pages in orders 0–8, zone ${z}, while held`, value: pagesIn(r.held?.get(z), 0, 8) - pagesIn(r.before.get(z), 0, 8), unit: 'pages', group: 'buddy' });
  });

  it('the program\'s report agrees with the kernel: its pfns are the trace\'s order-9 blocks and its buddyinfo deltas match within the tolerance', async () => {
    const p = judge.report(await once());
    expect(p.facts, p.message).toEqual(p.expected);
  });

  it('when its input ends the program gives every order-9 block back whole (mm_page_free order=9) and exits 0', async (ctx) => {
    afterCorrectness(ctx, ['order 9:'], 'giving the blocks back');
    const e = judge.release(await once());
    expect(e.facts, e.message).toEqual(e.expected);
  });
});
