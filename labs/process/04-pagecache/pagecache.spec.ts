/**
 * Process Lab 4 — 页面缓存 (seed 001 §2.2).
 * The student's `pcache <file>` evicts its file from the page cache, reads it
 * cold, then warm, stopping itself after each step (labs/process/stops.ts).
 * The kernel's evidence: which pages are resident (fincore(1), i.e. the
 * kernel's cachestat/mincore view) at each stop, and the
 * filemap:mm_filemap_add_to_page_cache (and delete_from_page_cache) events for
 * that inode in a private tracefs instance filtered by inode. Only the lab's own file is evicted;
 * the machine-wide drop_caches is never touched. The file size is random.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, startBackground, type Background } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeTraceInstance, type TraceInstance } from '../../../helpers/kernel/tracefs.js';
import { continueToStop } from '../stops.js';
import { readMaps, readStat } from '../../../helpers/kernel/procfs.js';

const PAGE = 4096;
/** Random size per run: 4–32 MiB plus a partial page, so an off-by-one at the end shows. */
const SIZE = (4 + Math.floor(Math.random() * 29)) * 1024 * 1024 + 1 + Math.floor(Math.random() * (PAGE - 1));
const PAGES = Math.ceil(SIZE / PAGE);
const STOP_MS = 20_000;

let program = '';
let file = '';
let canary = '';

/** Resident pages of `path` as the kernel reports them (fincore: cachestat(2) or mincore(2)). */
async function resident(path: string): Promise<number> {
  const r = await run('fincore', ['-n', '-r', '-b', '-o', 'PAGES', path]);
  return Number(r.stdout.trim());
}

interface Step {
  readonly resident: number;
  readonly added: number;
  /** Pages of the file dropped from the cache by the program itself, and by anyone else (memory reclaim: kswapd, other tasks). */
  readonly deleted: number;
  readonly deletedByOthers: number;
  readonly ms: number;
  readonly sample: string[];
  /** Pages of the file added by a task that is not the program or one of its live threads (a tool it ran: cat, dd). */
  readonly addedByOthers: number;
  /** Pages of the canary (a file the program never opens) that the program dropped: a machine-wide eviction. */
  readonly canaryDeletedBySelf: number;
  /** What the program itself read since the last stop: bytes through read(2)-like calls (rchar) and page faults. */
  readonly rchar: number;
  readonly faults: number;
  /** The program has the file mapped at this stop (a VMA of its inode in /proc/<pid>/maps): a mapping kept from the cold read is read without faults. */
  readonly mapped: boolean;
}
interface Walk { readonly prog: Background; readonly steps: Step[]; readonly stuck?: string; readonly before: number; readonly canaryBefore: number }

let walked: Promise<Walk> | undefined;

const ADD = 'filemap/mm_filemap_add_to_page_cache';
const DELETE = 'filemap/mm_filemap_delete_from_page_cache';

/**
 * Pages added to and deleted from the page cache for our file since the last
 * call (order = log2 of the folio's pages), whoever did it: the instance is
 * filtered by inode, not by pid, so that eviction by memory reclaim (kswapd,
 * another task) shows as evidence too.
 */
function pageEvents(trace: TraceInstance, dev: string, ino: string, canaryIno: string, pid: number) {
  const { events, lines } = trace.read();
  let added = 0;
  let addedByOthers = 0;
  let deleted = 0;
  let deletedByOthers = 0;
  let canaryDeletedBySelf = 0;
  const sample: string[] = [];
  // The program and its live threads (a reader thread adds pages in its own context).
  const own = (tid: number) => tid === pid || existsSync(`/proc/${pid}/task/${tid}`);
  for (const e of events) {
    const m = e.body.match(/^dev (\d+:\d+) ino ([0-9a-f]+) .*order=(\d+)/);
    if (!m || m[1] !== dev) continue;
    const pages = 2 ** Number(m[3]);
    if (m[2] === canaryIno) {
      if (e.event === 'mm_filemap_delete_from_page_cache' && own(e.pid)) canaryDeletedBySelf += pages;
      continue;
    }
    if (m[2] !== ino) continue;
    if (e.event === 'mm_filemap_add_to_page_cache') {
      added += pages;
      if (!own(e.pid)) addedByOthers += pages;
      if (sample.length < 2) sample.push(lines.find((l) => l.includes(e.body)) ?? e.body);
    } else if (own(e.pid)) deleted += pages;
    else deletedByOthers += pages;
  }
  writeFileSync(join(trace.dir, 'trace'), '');
  return { added, addedByOthers, deleted, deletedByOthers, canaryDeletedBySelf, sample };
}

/** The program's own reading so far: rchar of /proc/<pid>/io and its page faults (an mmap reader faults instead of reading). */
function reading(pid: number): { rchar: number; faults: number } {
  let rchar = 0;
  try { rchar = Number(/^rchar:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
  const st = readStat(pid);
  return { rchar, faults: st ? st.minflt + st.majflt : 0 };
}

function walk(): Promise<Walk> {
  walked ??= (async () => {
    const st = statSync(file);
    const dev = `${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`;
    const ino = st.ino.toString(16);
    const canaryIno = statSync(canary).ino.toString(16);
    const before = await resident(file);
    const canaryBefore = await resident(canary);
    const trace = makeTraceInstance([ADD, DELETE], { tag: 'pc', enable: false, bufferKb: 8192 });
    const prog = startBackground(program, [file], { timeoutMs: 120_000 });
    const steps: Step[] = [];
    if (!trace) return { prog, steps, before, canaryBefore, stuck: 'no tracefs instance with the filemap tracepoints' };
    for (const ev of [ADD, DELETE]) writeFileSync(join(trace.dir, 'events', ev, 'filter'), `i_ino == 0x${ino} || i_ino == 0x${canaryIno}`);
    trace.setEnabled(true);
    let last = reading(prog.pid);
    for (let n = 1; n <= 3; n++) {
      const t0 = performance.now();
      const stuck = await continueToStop(prog.pid, n, n === 1, STOP_MS, () => prog.output());
      const ms = performance.now() - t0;
      if (stuck) { await trace.release(); return { prog, steps, before, canaryBefore, stuck }; }
      const ev = pageEvents(trace, dev, ino, canaryIno, prog.pid);
      const now = reading(prog.pid);
      const mapped = (readMaps(prog.pid) ?? []).some((v) => v.inode === st.ino);
      steps.push({ resident: await resident(file), ...ev, ms, rchar: now.rchar - last.rchar, faults: now.faults - last.faults, mapped });
      last = now;
    }
    await trace.release();
    try { process.kill(prog.pid, 'SIGCONT'); } catch { /* gone */ }
    await prog.exited;
    return { prog, steps, before, canaryBefore };
  })();
  return walked;
}

/**
 * The program read the file itself: its rchar grew by the file's size (read(2), pread(2), readv(2)…), or — a reader
 * that maps the file — it has the file mapped at the stop; and no other task (a cat or dd it ran) added the pages.
 * readahead(2) or posix_fadvise(WILLNEED) fill the cache without reading a byte. (Page faults are no measure: with
 * fault-around and large folios one fault maps many pages, and a program faults on its own memory too.)
 */
function expectRead(s: Step, what: string): void {
  expect({ readTheFile: s.rchar >= SIZE || s.mapped, pagesAddedByOtherTasks: s.addedByOthers },
    `${what}: the program's rchar (/proc/<pid>/io) grew by ${s.rchar} bytes (file: ${SIZE}), ` +
    `and it ${s.mapped ? 'has' : 'does not have'} the file mapped at the stop (/proc/<pid>/maps); ` +
    `pages of the file added by other tasks: ${s.addedByOthers}. Read the file's bytes in the program itself.`)
    .toEqual({ readTheFile: true, pagesAddedByOtherTasks: 0 });
}

function reached(w: Walk, n: number): Step {
  expect(w.steps.length, `expected the program to reach stop ${n}; ${w.stuck ?? ''}`).toBeGreaterThanOrEqual(n);
  return w.steps[n - 1]!;
}

describe('Process Lab 4 — the page cache (页面缓存)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    program = (await buildProgram({ src: labSource('process/04-pagecache/pcache.c') })).path;
    const dir = await makeTempDir('pcache');
    file = join(dir, 'data.bin');
    // Written (so cached) and synced (so clean: DONTNEED may drop it) before the program starts.
    writeFileSync(file, randomBytes(SIZE), { flush: true });
    // A file the program never opens, cached too: a program that empties every cache drops it as well.
    canary = join(dir, 'canary.bin');
    writeFileSync(canary, randomBytes(256 * PAGE), { flush: true });
  });

  it('posix_fadvise(DONTNEED) on the file evicts it: fincore shows every page cached before and none at stop 1', async () => {
    const w = await walk();
    const s1 = reached(w, 1);
    expect({ before: w.before, afterEvict: s1.resident }, `fincore of ${file} (${PAGES} pages, ${SIZE} bytes) before the program and at stop 1`)
      .toEqual({ before: PAGES, afterEvict: 0 });
    expect(s1.canaryDeletedBySelf, `the program dropped ${s1.canaryDeletedBySelf} pages of ${canary}, a file it never opened (mm_filemap_delete_from_page_cache in its context; ` +
      `${w.canaryBefore} of its pages were cached before): evict the lab's file only (posix_fadvise(2) on it), never every process's cache (/proc/sys/vm/drop_caches)`).toBe(0);
  });

  it('the cold read brings every page back: mm_filemap_add_to_page_cache events for the inode add up to the file\'s pages, and fincore shows them all', async (ctx) => {
    const w = await walk();
    const s2 = reached(w, 2);
    recordMetric(ctx, { name: 'pages added by the cold read', value: s2.added, unit: `pages (file: ${PAGES})`, group: 'page cache' });
    // Pages that memory reclaim (another task, not the program) dropped meanwhile may be added twice or be missing: that many, no more.
    const reclaimed = s2.deletedByOthers;
    if (reclaimed) await adapted(ctx, `memory reclaim dropped ${reclaimed} pages of the lab's file during the cold read (mm_filemap_delete_from_page_cache by other tasks)`);
    expect({ missingFromAdds: Math.max(0, PAGES - s2.added), addedBeyondReclaim: Math.max(0, s2.added - PAGES - reclaimed), notResident: Math.max(0, PAGES - s2.resident - reclaimed) },
      `between stop 1 and stop 2: ${s2.added} pages added to the page cache for this inode (sum of 2^order over the events; deleted by the program ${s2.deleted}, by others ${reclaimed}) and ${s2.resident} resident (fincore); the file has ${PAGES} pages. Sample:\n  ${s2.sample.join('\n  ') || '(no event for the inode)'}`)
      .toEqual({ missingFromAdds: 0, addedBeyondReclaim: 0, notResident: 0 });
    expectRead(s2, 'the cold read');
  });

  it('the warm read adds no page to the cache (every page was already there; only pages memory reclaim took away may come back), and the program evicts nothing more', async (ctx) => {
    afterCorrectness(ctx, ['posix_fadvise(DONTNEED) on the file evicts it', 'the cold read brings every page back'], 'the warm read (and the cold/warm times)');
    const w = await walk();
    const [s2, s3] = [reached(w, 2), reached(w, 3)];
    recordMetric(ctx, { name: 'cold read (stop 1 → 2)', value: s2.ms, unit: 'ms', group: 'page cache' });
    recordMetric(ctx, { name: 'warm read (stop 2 → 3)', value: s3.ms, unit: 'ms', group: 'page cache' });
    recordMetric(ctx, { name: 'cold / warm', value: s2.ms / s3.ms, unit: '×', group: 'page cache' });
    // Others share this machine: if memory reclaim (not the program) dropped pages of the file, the warm read may re-add those, no more.
    const reclaimed = s2.deletedByOthers + s3.deletedByOthers;
    if (reclaimed) await adapted(ctx, `memory reclaim dropped ${reclaimed} pages of the lab's file during the reads (mm_filemap_delete_from_page_cache by other tasks): the warm read may re-add that many`);
    const evidence = `between stop 2 and stop 3: ${s3.added} pages added for the inode, deleted by the program ${s3.deleted}, by others (reclaim) ${s3.deletedByOthers}; ${s3.resident} resident (file: ${PAGES}); ` +
      `the cold read had added ${s2.added}; times cold ${s2.ms.toFixed(0)} ms, warm ${s3.ms.toFixed(0)} ms`;
    expect({ addedBeyondReclaim: Math.max(0, s3.added - reclaimed), evictedByProgram: s3.deleted, missing: Math.max(0, PAGES - s3.resident - reclaimed) }, evidence)
      .toEqual({ addedBeyondReclaim: 0, evictedByProgram: 0, missing: 0 });
    expectRead(s3, 'the warm read');
  });
});
