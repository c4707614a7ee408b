/**
 * Process Lab 4's experiment: a file of random size (and a canary file the
 * program never opens), the student's `pcache <file>` run through its three
 * stops (evicted, cold read, warm read), and what the kernel shows at each:
 * resident pages (fincore), filemap add/delete events for the two inodes by
 * whom (the program, a process it started, memory reclaim), the program's
 * own look-ups of the file (mm_filemap_get_pages / map_pages / fault), its
 * read calls with what they returned (the syscalls group's enter and exit events in an
 * instance that follows its tasks), the calls that had the kernel fill a
 * mapping (populate), smaps Referenced, rchar and faults. Never throws once
 * built: a program that does not stop ends the walk with `stuck`; judge.ts
 * and the spec decide.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, startBackground, type Background } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeTraceInstance, parseSyscallExit, parseTraceLine, syscallArgs, tracepointExists, type TraceInstance } from '../../../helpers/kernel/tracefs.js';
import { listTasks, readIo, readMaps, readStat } from '../../../helpers/kernel/procfs.js';
import { continueToStop } from '../stops.js';
import { PAGE } from './judge.js';

/**
 * Random size per run: 65–160 MiB plus a partial page, so an off-by-one at the end shows, no fixed byte count fits every
 * run, and a reader that stops at 64 MiB (or at any fixed cap below 160 MiB, in most runs) whatever the file's size misses pages.
 */
export const SIZE = (65 + Math.floor(Math.random() * 96)) * 1024 * 1024 + 1 + Math.floor(Math.random() * (PAGE - 1));
export const PAGES = Math.ceil(SIZE / PAGE);
export const STOP_MS = 20_000;

/** The built program, the lab's file and the canary. */
export interface PagecacheSetup {
  readonly program: string;
  readonly file: string;
  readonly canary: string;
}

/** Build `pcache` and write the two files: cached (written) and clean (synced), so that DONTNEED may drop them. */
export async function preparePagecache(): Promise<PagecacheSetup> {
  const program = (await buildProgram({ src: labSource('process/04-pagecache/pcache.c') })).path;
  const dir = await makeTempDir('pcache');
  const file = join(dir, 'data.bin');
  writeFileSync(file, randomBytes(SIZE), { flush: true });
  // A file the program never opens, cached too: a program that empties every cache drops it as well.
  const canary = join(dir, 'canary.bin');
  writeFileSync(canary, randomBytes(256 * PAGE), { flush: true });
  return { program, file, canary };
}

/** Resident pages of `path` as the kernel reports them (fincore: cachestat(2) or mincore(2)). */
export async function resident(path: string): Promise<number> {
  const r = await run('fincore', ['-n', '-r', '-b', '-o', 'PAGES', path]);
  return Number(r.stdout.trim());
}

/**
 * Resident pages at a stop, once the count holds still (150 ms apart, at most 3 s): readahead the program started
 * (posix_fadvise WILLNEED, readahead(2), the kernel's async readahead) may still be completing, and a page under
 * I/O is in the cache but not counted by mincore until it is up to date.
 */
async function residentAtStop(path: string): Promise<number> {
  let last = await resident(path);
  for (const end = Date.now() + 3000; ;) {
    await new Promise((r) => setTimeout(r, 150));
    const now = await resident(path);
    if (now === last || Date.now() > end) return now;
    last = now;
  }
}

export interface Step {
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
export interface Walk {
  readonly prog: Background; readonly steps: Step[]; readonly stuck?: string; readonly before: number; readonly canaryBefore: number;
  /** The kernel has the look-up tracepoints (get_pages, map_pages, fault: 6.10 and later); without them only rchar and the mapping are evidence. */
  readonly lookUps?: boolean;
}

const ADD = 'filemap/mm_filemap_add_to_page_cache';
const DELETE = 'filemap/mm_filemap_delete_from_page_cache';
/** Which tasks the program started (a child's pid, name and the task that forked it). */
const NEWTASK = 'task/task_newtask';
/** The program's own look-ups of the file's pages: read(2)-family and splice (get_pages), a mapping's fault-around and faults. */
export const LOOKUPS = ['filemap/mm_filemap_get_pages', 'filemap/mm_filemap_map_pages', 'filemap/mm_filemap_fault'];
/** The calls that read a file's bytes (entry and exit, in a second instance that follows the program's tasks): what each returned, and whether it looked the file up. */
const READ_CALLS = ['read', 'pread64', 'readv', 'preadv', 'preadv2', 'sendfile64', 'splice', 'lseek', 'openat'];
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
  const { events, lines } = trace.take();
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
  const { lines } = trace.take();
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
  const st = readStat(pid);
  return { rchar: readIo(pid)?.get('rchar') ?? 0, faults: st ? st.minflt + st.majflt : 0 };
}

/** One run of the program through its three stops, and the kernel's record of each step. */
export async function walkPagecache({ program, file, canary }: PagecacheSetup): Promise<Walk> {
  const st = statSync(file);
  const dev = `${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`;
  const ino = st.ino.toString(16);
  const canaryIno = statSync(canary).ino.toString(16);
  const lookups = LOOKUPS.filter(tracepointExists);
  // Recording from before the program starts: its eviction, and every task it forks, are in the trace.
  // The instance first: its ring buffers (8 MiB per CPU) are allocated now, and that allocation may make memory
  // reclaim drop pages of the lab's files — before they are read back and counted, not between the count and the trace.
  const trace = makeTraceInstance([ADD, DELETE, NEWTASK, ...lookups], { tag: 'pc', enable: false, bufferKb: 8192, recordTgid: true });
  if (trace) {
    for (const ev of [ADD, DELETE]) writeFileSync(join(trace.dir, 'events', ev, 'filter'), `i_ino == 0x${ino} || i_ino == 0x${canaryIno}`);
    for (const ev of lookups) writeFileSync(join(trace.dir, 'events', ev, 'filter'), `i_ino == 0x${ino}`);
  }
  // Both files were written whole, but memory reclaim may have dropped some of their pages since: read them back
  // first, so that the program starts with every page cached (what the eviction test compares with).
  for (const f of [file, canary]) if ((await resident(f)) < Math.ceil(statSync(f).size / PAGE)) await run('dd', [`if=${f}`, 'of=/dev/null', 'bs=1M', 'status=none']);
  const before = await resident(file);
  const canaryBefore = await resident(canary);
  trace?.setEnabled(true);
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
    // Resident pages first, then the record: a page memory reclaim drops before fincore counts is in this step's record.
    const residentNow = await residentAtStop(file);
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
    steps.push({ resident: residentNow, ...pages, lookedUp: seen.reduce((a, b) => a + b, 0), notLookedUp: holes(seen), fileBytes, eofReads, eofReadsPerThread, populated, populateCalls, ms, rchar: now.rchar - last.rchar, faults: now.faults - last.faults, mapped, touched });
    last = now;
  }
  await trace.release();
  await sys?.release();
  try { process.kill(prog.pid, 'SIGCONT'); } catch { /* gone */ }
  await prog.exited;
  return { prog, steps, before, canaryBefore, lookUps: lookUps && !!sys };
}
