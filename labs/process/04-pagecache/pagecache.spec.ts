/**
 * Process Lab 4 — 页面缓存 (seed 001 §2.2).
 * The student's `pcache <file>` evicts its file from the page cache, reads it
 * cold, then warm, stopping itself after each step (labs/process/stops.ts).
 * The kernel's evidence: which pages are resident (fincore(1), i.e. the
 * kernel's cachestat/mincore view) at each stop, and the
 * filemap:mm_filemap_add_to_page_cache (and delete_from_page_cache) events for
 * that inode in a private tracefs instance filtered by inode. Only the lab's own file is evicted;
 * the machine-wide drop_caches is never touched. The file size is random.
 * That the program itself read every page through the cache is judged from the
 * kernel too: its threads' mm_filemap_get_pages (read(2)-family, splice),
 * mm_filemap_map_pages and mm_filemap_fault (a mapping) events for the inode,
 * the pages of its mappings of the file it referenced since the last stop
 * (smaps Referenced after clear_refs), its rchar, the read calls that returned
 * 0 (syscalls:sys_exit_*), and task:task_newtask, which tells the processes
 * it started (a dd, a cat) from memory reclaim. A mapping the kernel filled for
 * it (madvise MADV_POPULATE_READ, mmap MAP_POPULATE, mlock: their syscalls
 * and the map_pages/fault events inside them) is not read by the program.
  *
 * The lab's anatomy: experiment.ts runs the program and collects the evidence
 * (`Walk`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { tracepointExists } from '../../../helpers/kernel/tracefs.js';
import { LOOKUPS, PAGES, preparePagecache, SIZE, walkPagecache, type PagecacheSetup, type Step, type Walk } from './experiment.js';
import * as judge from './judge.js';

let setup: PagecacheSetup;
let walked: Promise<Walk> | undefined;
/** The program's one run, shared by the tests (the first test to ask starts it). */
const walk = () => (walked ??= walkPagecache(setup));
const shape = () => ({ path: setup.file, size: SIZE, pages: PAGES });

function reached(w: Walk, n: number): Step {
  expect(w.steps.length, judge.stopMissing(w, n)).toBeGreaterThanOrEqual(n);
  return w.steps[n - 1]!;
}

async function expectRead(ctx: TestContext, w: Walk, s: Step, what: string): Promise<void> {
  if (!w.lookUps) await adapted(ctx, `this kernel lacks ${LOOKUPS.filter((e) => !tracepointExists(e)).join(', ')}: ${what} is judged by rchar and the mapping only`);
  const r = judge.readItself(s, shape(), !!w.lookUps, what);
  expect(r.facts, r.message).toEqual(r.want);
}

describe('Process Lab 4 — the page cache (页面缓存)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await preparePagecache();
  });

  it('posix_fadvise(DONTNEED) on the file evicts it: fincore shows every page cached before and none at stop 1', async (ctx) => {
    const w = await walk();
    const s1 = reached(w, 1);
    const v = judge.eviction(w, s1, shape(), setup.canary);
    expect(v.resident.facts, v.resident.message).toEqual(v.resident.want);
    if (v.reclaimed) await adapted(ctx, `memory reclaim dropped ${v.reclaimed} pages of the lab's file before stop 1 (mm_filemap_delete_from_page_cache by tasks the program did not start)`);
    expect(v.byWhom.facts, v.byWhom.message).toEqual(v.byWhom.want);
    expect(v.canary.fact, v.canary.message).toBe(0);
  });

  it('the cold read brings every page back: mm_filemap_add_to_page_cache events for the inode add up to the file\'s pages, and fincore shows them all', async (ctx) => {
    const w = await walk();
    const s2 = reached(w, 2);
    recordMetric(ctx, { name: 'pages added by the cold read', value: s2.added, unit: `pages (file: ${PAGES})`, group: 'page cache' });
    // Pages that memory reclaim (another task, not the program) dropped meanwhile may be added twice or be missing: that many, no more.
    const v = judge.coldRead(s2, shape());
    if (v.reclaimed) await adapted(ctx, `memory reclaim dropped ${v.reclaimed} pages of the lab's file during the cold read (mm_filemap_delete_from_page_cache by other tasks)`);
    expect(v.facts, v.message).toEqual(v.want);
    await expectRead(ctx, w, s2, 'the cold read');
  });

  it('the warm read adds no page to the cache (every page was already there; only pages memory reclaim took away may come back), and the program evicts nothing more', async (ctx) => {
    afterCorrectness(ctx, ['posix_fadvise(DONTNEED) on the file evicts it', 'the cold read brings every page back'], 'the warm read (and the cold/warm times)');
    const w = await walk();
    const [s2, s3] = [reached(w, 2), reached(w, 3)];
    recordMetric(ctx, { name: 'cold read (stop 1 → 2)', value: s2.ms, unit: 'ms', group: 'page cache' });
    recordMetric(ctx, { name: 'warm read (stop 2 → 3)', value: s3.ms, unit: 'ms', group: 'page cache' });
    recordMetric(ctx, { name: 'cold / warm', value: s2.ms / s3.ms, unit: '×', group: 'page cache' });
    // Others share this machine: if memory reclaim (not the program) dropped pages of the file, the warm read may re-add those, no more.
    const v = judge.warmRead(s2, s3, shape());
    if (v.reclaimed) await adapted(ctx, `memory reclaim dropped ${v.reclaimed} pages of the lab's file during the reads (mm_filemap_delete_from_page_cache by other tasks): the warm read may re-add that many`);
    expect(v.facts, v.message).toEqual(v.want);
    await expectRead(ctx, w, s3, 'the warm read');
  });
});
