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
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, startBackground, type Background } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeTraceInstance, parseSyscallExit, parseTraceLine, syscallArgs, tracepointExists, type TraceInstance } from '../../../helpers/kernel/tracefs.js';
import { continueToStop } from '../stops.js';
import { listTasks, readMaps, readStat } from '../../../helpers/kernel/procfs.js';

const PAGE = 4096;
/**
 * Random size per run: 65–160 MiB plus a partial page, so an off-by-one at the end shows, no fixed byte count fits every
 * run, and a reader that stops at 64 MiB (or at any fixed cap below 160 MiB, in most runs) whatever the file's size misses pages.
 */
const SIZE = (65 + Math.floor(Math.random() * 96)) * 1024 * 1024 + 1 + Math.floor(Math.random() * (PAGE - 1));
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
  /** The program has the file mapped at this stop (a VMA of its inode in /proc/<pid>/maps). */
  readonly mapped: boolean;
  /** Pages of the file the program's own threads looked up in the page cache (mm_filemap_get_pages / map_pages / fault ranges), and how many such events. */
  readonly lookedUp: number;
  readonly lookups: number;
  /** The first pages it did not look up, as ranges ("0-31, 4096-4607"). */
  readonly notLookedUp: string;
  /** Pages of its mappings of the file it referenced since the last stop (smaps Referenced; the spec clears the bits at each stop): a mapping kept from the cold read is read without faults. */
  readonly touched: number;
  /** Pages of the file dropped / added by processes the program started (a dd iflag=nocache, a cat), and their names. */
  readonly deletedByTools: number;
  readonly addedByTools: number;
  readonly tools: string;
  /** Bytes returned by the program's read calls that looked the file up (a mm_filemap_get_pages of the inode between the call's entry and exit, same thread). */
  readonly fileBytes: number;
  /** Its read calls that returned 0 (end of file), most by one thread. */
  readonly eofReads: number;
  readonly eofReadsPerThread: number;
  /** Its calls that had the kernel fill a mapping of the file (madvise MADV_POPULATE_*, mmap MAP_POPULATE, mlock…), as "madvise(MADV_POPULATE_READ) ×2", and the pages only they looked up. */
  readonly populateCalls: string;
  readonly populated: number;
}
interface Walk {
  readonly prog: Background; readonly steps: Step[]; readonly stuck?: string; readonly before: number; readonly canaryBefore: number;
  /** The kernel has the look-up tracepoints (get_pages, map_pages, fault: 6.10 and later); without them only rchar and the mapping are evidence. */
  readonly lookUps?: boolean;
}

let walked: Promise<Walk> | undefined;

const ADD = 'filemap/mm_filemap_add_to_page_cache';
const DELETE = 'filemap/mm_filemap_delete_from_page_cache';
/** Which tasks the program started (a child's pid, name and the task that forked it). */
const NEWTASK = 'task/task_newtask';
/** The program's own look-ups of the file's pages: read(2)-family and splice (get_pages), a mapping's fault-around and faults. */
const LOOKUPS = ['filemap/mm_filemap_get_pages', 'filemap/mm_filemap_map_pages', 'filemap/mm_filemap_fault'];
/** The calls that read a file's bytes (entry and exit, in a second instance that follows the program's tasks): what each returned, and whether it looked the file up. */
const READ_CALLS = ['read', 'pread64', 'readv', 'preadv', 'preadv2', 'sendfile64', 'splice', 'lseek', 'openat'];
/** A reader thread sees the end of the file once per read (twice, with a short read before it); a fixed byte count reads on past it. */
const EOF_READS_PER_THREAD = 2;
/**
 * The calls that have the kernel fill a mapping (get_user_pages: faults in kernel context, PTEs young, folios marked
 * accessed) without the program reading a byte: madvise(MADV_POPULATE_READ/WRITE), mmap(MAP_POPULATE or MAP_LOCKED),
 * mlock, mlock2, mlockall, remap_file_pages, mremap (of a locked mapping).
 */
const POPULATE_CALLS = ['madvise', 'mmap', 'mlock', 'mlock2', 'mlockall', 'remap_file_pages', 'mremap'];
const MADV_POPULATE: Record<number, string> = { 22: 'MADV_POPULATE_READ', 23: 'MADV_POPULATE_WRITE' };
const MAP_POPULATE = 0x8000n;
const MAP_LOCKED = 0x2000n;

/** The program's process tree as the trace shows it: the program, and every task forked from it or its descendants. */
interface Tree { readonly pid: number; readonly tasks: Set<number>; readonly names: Map<number, string> }

/**
 * Pages added to and deleted from the page cache for our file since the last
 * call (order = log2 of the folio's pages), whoever did it: the instance is
 * filtered by inode, not by pid, so that eviction by memory reclaim (kswapd,
 * another task) shows as evidence too; task_newtask tells the processes the
 * program started apart from the rest. Also the pages the program's own
 * threads looked up (get_pages, map_pages, fault).
 */
function pageEvents(trace: TraceInstance, dev: string, ino: string, canaryIno: string, tree: Tree) {
  const { events, lines } = trace.read();
  const { pid } = tree;
  let added = 0;
  let addedByOthers = 0;
  let addedByTools = 0;
  let deleted = 0;
  let deletedByOthers = 0;
  let deletedByTools = 0;
  let canaryDeletedBySelf = 0;
  let lookups = 0;
  let getPages = 0;
  const seen = new Uint8Array(PAGES);
  const toolNames = new Set<string>();
  const sample: string[] = [];
  // The program and its threads (a reader thread adds pages in its own context); a child process is a tool it ran.
  const own = (e: { pid: number; tgid?: number }) => e.tgid === pid || e.pid === pid || (e.tgid === undefined && existsSync(`/proc/${pid}/task/${e.pid}`));
  const tool = (e: { pid: number; tgid?: number }) => !own(e) && tree.tasks.has(e.pid);
  // A task's name as the trace lines print it (after an exec: "dd", not the "sh" task_newtask saw).
  const comm = new Map<number, string>();
  for (const l of lines) { const m = /^\s*(.+)-(\d+)\s+[([]/.exec(l); if (m) comm.set(Number(m[2]), m[1]!.trim()); }
  const named = (e: { pid: number }) => toolNames.add(`${comm.get(e.pid) ?? tree.names.get(e.pid) ?? '?'} (pid ${e.pid})`);
  // The tasks forked from the program or its descendants, first (to a fixed point: per-CPU clocks may order a child's fork after its events).
  const forks = events.flatMap((e) => {
    const m = e.event === 'task_newtask' ? /pid=(\d+) comm=(.*?) clone_flags/.exec(e.body) : null;
    return m ? [{ e, child: Number(m[1]), name: m[2]! }] : [];
  });
  for (let grew = true; grew;) {
    grew = false;
    for (const f of forks) {
      if (tree.tasks.has(f.child) || !(own(f.e) || tree.tasks.has(f.e.pid))) continue;
      tree.tasks.add(f.child);
      tree.names.set(f.child, f.name);
      grew = true;
    }
  }
  for (const e of events) {
    if (e.event === 'task_newtask') continue;
    if (e.event === 'mm_filemap_get_pages' || e.event === 'mm_filemap_map_pages' || e.event === 'mm_filemap_fault') {
      const m = /^dev=(\d+:\d+) ino=([0-9a-f]+) ofs=(\d+)(?:-(\d+))?/.exec(e.body);
      if (!m || m[1] !== dev || m[2] !== ino || !own(e)) continue;
      lookups++;
      if (e.event === 'mm_filemap_get_pages') getPages++;
      const first = Math.floor(Number(m[3]) / PAGE);
      const last = Math.min(PAGES - 1, Math.floor(Number(m[4] ?? m[3]) / PAGE));
      for (let p = first; p <= last; p++) seen[p] = 1;
      continue;
    }
    // Kernels before folios (5.10) print no order: one page per event.
    const m = e.body.match(/^dev (\d+:\d+) ino ([0-9a-f]+) (?:.* order=(\d+))?/);
    if (!m || m[1] !== dev) continue;
    const pages = 2 ** Number(m[3] ?? 0);
    if (m[2] === canaryIno) {
      if (e.event === 'mm_filemap_delete_from_page_cache' && (own(e) || tool(e))) canaryDeletedBySelf += pages;
      continue;
    }
    if (m[2] !== ino) continue;
    if (e.event === 'mm_filemap_add_to_page_cache') {
      added += pages;
      if (!own(e)) addedByOthers += pages;
      if (tool(e)) { addedByTools += pages; named(e); }
      if (sample.length < 2) sample.push(lines.find((l) => l.includes(e.body)) ?? e.body);
    } else if (own(e)) deleted += pages;
    else if (tool(e)) { deletedByTools += pages; named(e); }
    else deletedByOthers += pages;
  }
  writeFileSync(join(trace.dir, 'trace'), '');
  return {
    added, addedByOthers, addedByTools, deleted, deletedByOthers, deletedByTools, canaryDeletedBySelf, sample,
    lookups, getPages, seen, tools: [...toolNames].slice(0, 4).join(', '),
  };
}

/** What readCalls keeps from one stop to the next: the file position of each descriptor of the program, as its calls moved it. */
interface Positions { readonly fd: Map<number, number> }

/** Set `positions` to what the kernel says at a stop: the "pos:" of each descriptor in /proc/<pid>/fdinfo (opened before the trace followed the program, too). */
function syncPositions(pid: number, positions: Positions): void {
  positions.fd.clear();
  let fds: string[] = [];
  try { fds = readdirSync(`/proc/${pid}/fdinfo`); } catch { return; }
  for (const fd of fds) {
    try {
      const pos = /^pos:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (pos !== undefined) positions.fd.set(Number(fd), Number(pos));
    } catch { /* closed meanwhile */ }
  }
}

/**
 * The program's read calls since the last call, from the instance that follows its tasks (set_event_pid, event-fork).
 * A call that looked the file up (a mm_filemap_get_pages of the inode between its entry and exit, same thread) read
 * `ret` bytes of it: from `pos` (pread64, preadv, preadv2), or from the descriptor's position (read, readv, and
 * sendfile without an offset: the position that openat (0), lseek and the earlier reads gave it). Those byte ranges
 * are the pages it read: get_pages itself is not emitted for every batch (a batch that ends in a folio still under
 * I/O is returned untraced), so its own ranges alone would leave holes in a cold read. Where the start is not known
 * (splice, sendfile with an offset pointer), its traced ranges and the pages added within the call count. Also the
 * calls that returned 0 (end of file), by thread.
 */
function readCalls(trace: TraceInstance, pid: number, dev: string, ino: string, positions: Positions, seen: Uint8Array) {
  const { lines } = trace.read();
  // Pages the program's read calls covered, that its threads faulted in outside a populate call, and that only a populate call looked up.
  const byRead = new Uint8Array(PAGES);
  const faulted = new Uint8Array(PAGES);
  const populated = new Uint8Array(PAGES);
  /** The address ranges its populate calls filled ([start, end); mlockall and remap_file_pages: everything), and the calls by name. */
  const populates: { start: bigint; end: bigint }[] = [];
  const populateCalls = new Map<string, number>();
  let populateLookups = 0;
  const own = (e: { pid: number; tgid?: number }) => e.tgid === pid || e.pid === pid || (e.tgid === undefined && existsSync(`/proc/${pid}/task/${e.pid}`));
  /** first/last: the pages its get_pages events looked up; added: the range its readahead added. */
  interface Call { name: string; args: Map<string, bigint>; first?: number; last?: number; added?: [number, number]; populated?: boolean }
  const inCall = new Map<number, Call>();
  const eof = new Map<number, number>();
  const mark = (first: number, last: number) => { for (let p = Math.max(0, first); p <= Math.min(last, PAGES - 1); p++) seen[p] = byRead[p] = 1; };
  const range = (into: Uint8Array, first: number, last: number) => { for (let p = Math.max(0, first); p <= Math.min(last, PAGES - 1); p++) into[p] = 1; };
  const num = (c: Call, k: string) => Number(BigInt.asIntN(64, c.args.get(k) ?? -1n));
  let fileBytes = 0;
  for (const line of lines) {
    const exit = parseSyscallExit(line);
    if (exit) {
      const e = exit;
      const c = inCall.get(e.pid);
      inCall.delete(e.pid);
      if (!own(e) || !c || c.name !== exit.name) continue;
      const ret = Number(exit.ret);
      if (POPULATE_CALLS.includes(c.name)) {
        if (exit.ret < 0n) continue;
        const arg = (k: string) => c.args.get(k) ?? 0n;
        const flags = arg('flags');
        const what = c.name === 'madvise' ? MADV_POPULATE[Number(arg('behavior'))]
          : c.name === 'mmap' ? [flags & MAP_POPULATE ? 'MAP_POPULATE' : '', flags & MAP_LOCKED ? 'MAP_LOCKED' : ''].filter(Boolean).join('|') || undefined
            : c.name === 'mremap' ? (c.populated ? '' : undefined) : '';
        if (what === undefined) continue;
        const [start, len] = c.name === 'mmap' ? [BigInt.asUintN(64, exit.ret), arg('len')] : c.name === 'madvise' ? [arg('start'), arg('len_in')]
          : c.name === 'mlock' || c.name === 'mlock2' ? [arg('start'), arg('len')] : [0n, 1n << 64n];
        populates.push({ start, end: start + len });
        const name = `${c.name}${what ? `(${what})` : ''}`;
        populateCalls.set(name, (populateCalls.get(name) ?? 0) + 1);
        continue;
      }
      if (c.name === 'openat') { if (ret >= 0) positions.fd.set(ret, 0); continue; }
      if (c.name === 'lseek') { if (ret >= 0) positions.fd.set(num(c, 'fd'), ret); continue; }
      if (ret === 0) eof.set(e.pid, (eof.get(e.pid) ?? 0) + 1);
      if (ret <= 0) continue;
      // Where the call started reading, when the kernel's arguments or the descriptor's position say.
      const fd = c.name === 'sendfile64' ? num(c, 'in_fd') : num(c, 'fd');
      const pos = c.name === 'pread64' ? num(c, 'pos') : c.name === 'preadv' || c.name === 'preadv2' ? num(c, 'pos_l') : -1;
      const usesPosition = c.name === 'read' || c.name === 'readv' || (c.name === 'preadv2' && pos < 0) || (c.name === 'sendfile64' && num(c, 'offset') === 0);
      const at = pos >= 0 ? pos : usesPosition ? positions.fd.get(fd) : undefined;
      if (usesPosition) positions.fd.set(fd, (at ?? (c.first ?? 0) * PAGE) + ret);
      if (c.first === undefined) continue;
      fileBytes += ret;
      if (at !== undefined) mark(Math.floor(at / PAGE), Math.floor((at + ret - 1) / PAGE));
      else {
        mark(c.first, Math.max(c.last!, c.first + Math.ceil(ret / PAGE) - 1));
        if (c.added) mark(...c.added);
      }
      continue;
    }
    const e = parseTraceLine(line);
    if (!e) continue;
    if (e.event.startsWith('sys_') && e.body.startsWith('(')) {
      inCall.set(e.pid, { name: e.event.slice(4), args: syscallArgs(e.body) });
      continue;
    }
    const c = inCall.get(e.pid);
    // A mapping's look-ups: inside a populate call the kernel's (get_user_pages), elsewhere the program's own faults.
    const f = (e.event === 'mm_filemap_map_pages' || e.event === 'mm_filemap_fault') && own(e) ? /^dev=(\d+:\d+) ino=([0-9a-f]+) ofs=(\d+)(?:-(\d+))?/.exec(e.body) : null;
    if (f && f[1] === dev && f[2] === ino) {
      const first = Math.floor(Number(f[3]) / PAGE);
      const last = Math.floor(Number(f[4] ?? f[3]) / PAGE);
      if (c && POPULATE_CALLS.includes(c.name)) { c.populated = true; populateLookups++; range(populated, first, last); } else range(faulted, first, last);
      continue;
    }
    if (!c) continue;
    // The file's pages this call looked up (get_pages) or brought in (add: its readahead).
    const g = /^dev=(\d+:\d+) ino=([0-9a-f]+) ofs=(\d+)-(\d+)/.exec(e.body);
    const add = /^dev (\d+:\d+) ino ([0-9a-f]+) .*ofs=(\d+)(?: order=(\d+))?/.exec(e.body);
    if (e.event === 'mm_filemap_get_pages' && g && g[1] === dev && g[2] === ino) {
      c.first = Math.min(c.first ?? Infinity, Math.floor(Number(g[3]) / PAGE));
      c.last = Math.max(c.last ?? 0, Math.floor(Number(g[4]) / PAGE));
    } else if (e.event === 'mm_filemap_add_to_page_cache' && add && add[1] === dev && add[2] === ino) {
      const first = Math.floor(Number(add[3]) / PAGE);
      const last = first + 2 ** Number(add[4] ?? 0) - 1;
      c.added = [Math.min(c.added?.[0] ?? first, first), Math.max(c.added?.[1] ?? last, last)];
    }
  }
  writeFileSync(join(trace.dir, 'trace'), '');
  // A page that only a populate call looked up was not read by the program (the look-up events of the other instance marked it).
  let populatedOnly = 0;
  for (let p = 0; p < PAGES; p++) if (populated[p] && !faulted[p] && !byRead[p]) { seen[p] = 0; populatedOnly++; }
  return {
    fileBytes, eofReads: [...eof.values()].reduce((a, b) => a + b, 0), eofReadsPerThread: Math.max(0, ...eof.values()),
    populates, populateLookups, populated: populatedOnly, populateCalls: [...populateCalls].map(([n, k]) => `${n} ×${k}`).join(', '),
  };
}

/** The first runs of pages not in `seen`, as "0-31, 4096-4607". */
function holes(seen: Uint8Array): string {
  const out: string[] = [];
  for (let p = 0; p < seen.length && out.length < 4; p++) {
    if (seen[p]) continue;
    let q = p;
    while (q + 1 < seen.length && !seen[q + 1]) q++;
    out.push(p === q ? `${p}` : `${p}-${q}`);
    p = q;
  }
  return out.join(', ');
}

/** Pages of the program's mappings of the file referenced since the last clear_refs (smaps Referenced), then clear the bits for the next step. */
function touchedPages(pid: number, ino: number, count: boolean): number {
  const kb = !count ? 0 : (readMaps(pid, true) ?? []).filter((v) => v.inode === ino).reduce((a, v) => a + (v.kb.get('Referenced') ?? 0), 0);
  try { writeFileSync(`/proc/${pid}/clear_refs`, '1'); } catch { /* gone */ }
  return Math.floor((kb * 1024) / PAGE);
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
    const lookups = LOOKUPS.filter(tracepointExists);
    // Recording from before the program starts: its eviction, and every task it forks, are in the trace.
    const trace = makeTraceInstance([ADD, DELETE, NEWTASK, ...lookups], { tag: 'pc', enable: false, bufferKb: 8192, recordTgid: true });
    if (trace) {
      for (const ev of [ADD, DELETE]) writeFileSync(join(trace.dir, 'events', ev, 'filter'), `i_ino == 0x${ino} || i_ino == 0x${canaryIno}`);
      for (const ev of lookups) writeFileSync(join(trace.dir, 'events', ev, 'filter'), `i_ino == 0x${ino}`);
      trace.setEnabled(true);
    }
    const prog = startBackground(program, [file], { timeoutMs: 120_000 });
    const steps: Step[] = [];
    if (!trace) return { prog, steps, before, canaryBefore, stuck: 'no tracefs instance with the filemap and task tracepoints' };
    const lookUps = lookups.length === LOOKUPS.length;
    // The program's read calls, entry and exit, with its look-ups in between: only its tasks (set_event_pid), in global order.
    const calls = READ_CALLS.flatMap((c) => [`syscalls/sys_enter_${c}`, `syscalls/sys_exit_${c}`]).filter(tracepointExists);
    const populating = POPULATE_CALLS.flatMap((c) => [`syscalls/sys_enter_${c}`, `syscalls/sys_exit_${c}`]).filter(tracepointExists);
    const sys = lookUps ? makeTraceInstance([...calls, ...populating, ...LOOKUPS, ADD], { tag: 'pcs', enable: false, bufferKb: 8192, recordTgid: true, clock: 'global' }) : undefined;
    if (sys) {
      for (const ev of [...LOOKUPS, ADD]) writeFileSync(join(sys.dir, 'events', ev, 'filter'), `i_ino == 0x${ino}`);
      writeFileSync(join(sys.dir, 'options', 'event-fork'), '1');
      writeFileSync(sys.pidFile, String(prog.pid));
      sys.setEnabled(true);
    }
    const tree: Tree = { pid: prog.pid, tasks: new Set([prog.pid]), names: new Map() };
    const positions: Positions = { fd: new Map() };
    let last = reading(prog.pid);
    for (let n = 1; n <= 3; n++) {
      const t0 = performance.now();
      const stuck = await continueToStop(prog.pid, n, n === 1, STOP_MS, () => prog.output());
      const ms = performance.now() - t0;
      if (stuck) { await trace.release(); await sys?.release(); return { prog, steps, before, canaryBefore, stuck, lookUps: lookUps && !!sys }; }
      const ev = pageEvents(trace, dev, ino, canaryIno, tree);
      const rc = sys ? readCalls(sys, prog.pid, dev, ino, positions, ev.seen) : { fileBytes: 0, eofReads: 0, eofReadsPerThread: 0, populates: [], populateLookups: 0, populated: 0, populateCalls: '' };
      // Threads the program made before its first stop (event-fork follows those it makes later).
      if (sys && n === 1) writeFileSync(sys.pidFile, listTasks(prog.pid).join(' '));
      syncPositions(prog.pid, positions);
      const now = reading(prog.pid);
      const vmas = (readMaps(prog.pid) ?? []).filter((v) => v.inode === st.ino);
      const mapped = vmas.length > 0;
      // A read call marks the folios it copies from referenced, and smaps counts every page of a mapped folio so marked:
      // a step with read calls on the file is judged by those calls, not by its mapping's Referenced. A populate call
      // marks them too (and makes the PTEs young): a step that had the kernel fill its mapping of the file is not judged by it either.
      const populatedMapping = rc.populateLookups > 0 || rc.populates.some((r) => vmas.some((v) => r.start < v.end && v.start < r.end));
      const touched = touchedPages(prog.pid, st.ino, rc.fileBytes === 0 && ev.getPages === 0 && !populatedMapping);
      const { seen, ...pages } = ev;
      const { fileBytes, eofReads, eofReadsPerThread, populated, populateCalls } = rc;
      steps.push({ resident: await resident(file), ...pages, lookedUp: seen.reduce((a, b) => a + b, 0), notLookedUp: holes(seen), fileBytes, eofReads, eofReadsPerThread, populated, populateCalls, ms, rchar: now.rchar - last.rchar, faults: now.faults - last.faults, mapped, touched });
      last = now;
    }
    await trace.release();
    await sys?.release();
    try { process.kill(prog.pid, 'SIGCONT'); } catch { /* gone */ }
    await prog.exited;
    return { prog, steps, before, canaryBefore, lookUps: lookUps && !!sys };
  })();
  return walked;
}

/**
 * The program read the whole file itself, through the page cache. The kernel's evidence: its own threads looked every
 * page of the file up in the cache (mm_filemap_get_pages for read(2), pread(2), readv(2), sendfile(2)…;
 * mm_filemap_map_pages and mm_filemap_fault for a mapping), or — a mapping kept from the cold read, read without
 * faults — referenced every page of its mapping since the last stop (smaps Referenced; not in a step where it had the
 * kernel fill the mapping: madvise MADV_POPULATE_READ, mmap MAP_POPULATE, mlock); the bytes reached it (rchar grew
 * by the file's size, or it touched every mapped page); no read call of one thread returned 0 (end of file) more than
 * twice (a fixed byte count instead of the end of the file); and no other task (a cat or dd it ran) added the pages.
 * readahead(2) and posix_fadvise(WILLNEED) fill the cache without looking a page up for a read; O_DIRECT bypasses the
 * cache; rereading one block looks up one block; reading /dev/zero adds to rchar, not to the look-ups.
 */
async function expectRead(ctx: TestContext, w: Walk, s: Step, what: string): Promise<void> {
  if (!w.lookUps) await adapted(ctx, `this kernel lacks ${LOOKUPS.filter((e) => !tracepointExists(e)).join(', ')}: ${what} is judged by rchar and the mapping only`);
  const read = w.lookUps ? Math.max(s.lookedUp, Math.min(PAGES, s.touched)) : (s.rchar >= SIZE || s.mapped ? PAGES : 0);
  expect({
    pagesNotReadThroughTheCache: PAGES - read,
    bytesReadFromTheFile: w.lookUps ? s.fileBytes >= SIZE || s.touched >= PAGES : s.rchar >= SIZE || s.mapped,
    readsPastTheEnd: Math.max(0, s.eofReadsPerThread - EOF_READS_PER_THREAD),
    pagesAddedByOtherTasks: s.addedByOthers,
  }, `${what}: the program's own reads of the file through the page cache (its read calls that looked the file up, by offset and bytes returned; ` +
    `its threads' ${s.lookups} mm_filemap_get_pages/map_pages/fault events) covered ${s.lookedUp} of the file's ${PAGES} pages${s.notLookedUp ? ` (not: ${s.notLookedUp}…)` : ''}; ` +
    `pages of its mappings of the file it referenced since the last stop (smaps Referenced, when it made no read call on the file and had the kernel fill no mapping of it): ${s.touched}${s.mapped ? '' : ' (no mapping of the file)'}; ` +
    `its calls that had the kernel fill a mapping of the file (syscalls:sys_enter_*/sys_exit_*, and the map_pages/fault events inside them, not reads by the program): ${s.populateCalls || 'none'}${s.populated ? `, ${s.populated} pages looked up only by them` : ''}; ` +
    `its read calls that looked the file up (syscalls:sys_enter_*/sys_exit_* around mm_filemap_get_pages) returned ${s.fileBytes} bytes, its rchar (/proc/<pid>/io) grew by ${s.rchar} (file: ${SIZE} bytes); ` +
    `its read calls returned 0 (end of file, sys_exit_* ret 0) ${s.eofReads} times, at most ${s.eofReadsPerThread} in one thread; ` +
    `pages of the file added by other tasks: ${s.addedByOthers}${s.tools ? ` (processes it started: ${s.tools})` : ''}. ` +
    'Read every byte of the file in the program itself, through the page cache (read(2)/pread(2) without O_DIRECT, or a mapping whose pages it touches itself, ' +
    'not one the kernel fills for it: madvise MADV_POPULATE_READ, MAP_POPULATE, mlock), from the first byte until a read returns 0.')
    .toEqual({ pagesNotReadThroughTheCache: 0, bytesReadFromTheFile: true, readsPastTheEnd: 0, pagesAddedByOtherTasks: 0 });
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

  it('posix_fadvise(DONTNEED) on the file evicts it: fincore shows every page cached before and none at stop 1', async (ctx) => {
    const w = await walk();
    const s1 = reached(w, 1);
    expect({ before: w.before, afterEvict: s1.resident }, `fincore of ${file} (${PAGES} pages, ${SIZE} bytes) before the program and at stop 1`)
      .toEqual({ before: PAGES, afterEvict: 0 });
    const reclaimed = s1.deletedByOthers;
    if (reclaimed) await adapted(ctx, `memory reclaim dropped ${reclaimed} pages of the lab's file before stop 1 (mm_filemap_delete_from_page_cache by tasks the program did not start)`);
    expect({ droppedByProcessesItStarted: s1.deletedByTools, leftForOthersToDrop: Math.max(0, w.before - s1.deleted - reclaimed) },
      `from the program's start to stop 1, mm_filemap_delete_from_page_cache for ${file}: ${s1.deleted} pages dropped by the program itself, ` +
      `${s1.deletedByTools} by processes it started${s1.tools ? ` (${s1.tools})` : ''}, ${reclaimed} by memory reclaim; ${w.before} were cached. ` +
      'Evict the file in the program itself (posix_fadvise(2) on its descriptor), not by running another tool (dd iflag=nocache, vmtouch -e)')
      .toEqual({ droppedByProcessesItStarted: 0, leftForOthersToDrop: 0 });
    expect(s1.canaryDeletedBySelf, `the program (or a process it started) dropped ${s1.canaryDeletedBySelf} pages of ${canary}, a file it never opened (mm_filemap_delete_from_page_cache in its context; ` +
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
    const reclaimed = s2.deletedByOthers + s3.deletedByOthers;
    if (reclaimed) await adapted(ctx, `memory reclaim dropped ${reclaimed} pages of the lab's file during the reads (mm_filemap_delete_from_page_cache by other tasks): the warm read may re-add that many`);
    const evidence = `between stop 2 and stop 3: ${s3.added} pages added for the inode, deleted by the program ${s3.deleted}, by others (reclaim) ${s3.deletedByOthers}; ${s3.resident} resident (file: ${PAGES}); ` +
      `the cold read had added ${s2.added}; times cold ${s2.ms.toFixed(0)} ms, warm ${s3.ms.toFixed(0)} ms`;
    expect({ addedBeyondReclaim: Math.max(0, s3.added - reclaimed), evictedByProgram: s3.deleted, missing: Math.max(0, PAGES - s3.resident - reclaimed) }, evidence)
      .toEqual({ addedBeyondReclaim: 0, evictedByProgram: 0, missing: 0 });
    await expectRead(ctx, w, s3, 'the warm read');
  });
});
