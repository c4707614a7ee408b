/**
 * System Lab 5's experiment: build the student's `buddy`, ask it for a random
 * number of order-9 blocks (transparent huge pages) and order-0 pages, and read
 * what the kernel says: /proc/buddyinfo (the free blocks of each order, per
 * zone) before the program starts, while it holds the memory and after it
 * ends; /proc/zoneinfo (each zone's page frames); AnonHugePages in
 * /proc/<pid>/smaps_rollup; and in a private tracefs instance following the
 * program, kmem:mm_page_alloc (every block handed out: pfn, order,
 * migratetype), kmem:mm_page_alloc_zone_locked (the blocks taken off a zone's
 * free lists, not from a per-CPU list) and kmem:mm_page_free. Before that, the
 * same window without the program: the host's own noise in buddyinfo. Never
 * throws once built: the evidence says what happened.
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, scaledTimeout, startBackground, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { readStat } from '../../../helpers/kernel/procfs.js';
import { makeTraceInstance, ofProcess, type TraceEvent } from '../../../helpers/kernel/tracefs.js';
import { pagesIn, parseBuddyinfo, parseZoneinfo, type Buddy, type ZoneSpan } from './buddyinfo.js';

/** Order-9 blocks (2 MiB THPs) and order-0 pages one run asks for (random). */
export const HUGE = 3 + Math.floor(Math.random() * 6);
export const SMALL = 1000 + Math.floor(Math.random() * 3000);
/** How long the program may take to allocate and say `ready` (stretched under TCG: LABS_TIMEOUT_SCALE). */
export const READY_MS = scaledTimeout(10_000);
export const EXIT_MS = scaledTimeout(5_000);
/** How long the spec lets the program hold its memory before reading buddyinfo (and the idle window of the noise control). */
export const HOLD_MS = 200;
/** The idle windows: this many, this long (about the time the reference needs from `go` to `ready`). */
export const IDLE_WINDOWS = 10;
export const IDLE_STEP_MS = 50;

export const EVENTS = ['kmem/mm_page_alloc', 'kmem/mm_page_alloc_zone_locked', 'kmem/mm_page_free'] as const;
/** The program's mmap(2), munmap(2) and madvise(2) calls, where the kernel has syscall events: did it align its huge regions itself? */
export const MAP_EVENTS = ['syscalls/sys_enter_mmap', 'syscalls/sys_enter_munmap', 'syscalls/sys_enter_madvise'] as const;

/** One mmap/munmap/madvise call of the program (sys_enter_…), in the order it made them. */
export interface MmapCall {
  readonly call: 'mmap' | 'munmap' | 'madvise';
  readonly pid: number;
  readonly addr: number;
  readonly len: number;
  /** mmap: flags; madvise: the advice. */
  readonly flags: number;
}

/** One kmem event of the program. */
export interface PageEvent {
  readonly event: 'mm_page_alloc' | 'mm_page_alloc_zone_locked' | 'mm_page_free';
  /** The task that took or gave the page: the program or one of its children. */
  readonly pid?: number;
  readonly pfn: number;
  readonly order: number;
  /** mm_page_alloc and _zone_locked: 0 unmovable, 1 movable, 2 reclaimable (enum migratetype). */
  readonly migratetype?: number;
  /** _zone_locked: 1 when the block refilled a per-CPU list (rmqueue_bulk). */
  readonly percpuRefill?: number;
  readonly gfp?: string;
  readonly ts: number;
}

/** What the program printed (only used to compare with the kernel). */
export interface Report {
  readonly before: Buddy;
  readonly after: Buddy;
  readonly delta: Buddy;
  readonly huge: { index: number; vaddr: string; pfn: number }[];
  readonly ready: boolean;
}

export interface Run {
  readonly huge: number;
  readonly small: number;
  readonly pid?: number;
  readonly zones: ZoneSpan[];
  /** The host without the program: buddyinfo read every IDLE_STEP_MS, IDLE_WINDOWS times; the largest change of free pages in orders ≥ 9 per zone. */
  readonly idle: { windows: number; stepMs: number; maxPages: Map<string, number> };
  readonly before: Buddy;
  /** The first reading after the program said `ready` (read every few ms while it allocates): it holds its memory. */
  readonly held?: Buddy;
  /** Milliseconds between the last reading before `go` and `held`. */
  readonly windowMs?: number;
  /** After it exited. */
  readonly freed?: Buddy;
  /** AnonHugePages of /proc/<pid>/smaps_rollup while held, kB. */
  readonly anonHugeKb?: number;
  /** Anonymous of /proc/<pid>/smaps_rollup while held (every anonymous page it maps, huge ones included), kB. */
  readonly anonKb?: number;
  /** /proc/<pid>/smaps while held: Anonymous in the mappings whose VmFlags have `nh` (MADV_NOHUGEPAGE), kB. */
  readonly noHugeKb?: number;
  /** Other processes of the program (its children: set_event_pid follows forks) and their order-0 movable allocations. */
  readonly others: { pid: number; order0: number }[];
  /** Its mmap(2) calls (undefined: no syscall events on this kernel). */
  readonly mmaps?: MmapCall[];
  readonly events: PageEvent[];
  readonly lost: boolean;
  /** The mm_page_alloc format's field names on this kernel. */
  readonly fields: string[];
  readonly report: Report;
  readonly exit?: RunResult;
  /** Time from `go` to `ready`, ms. */
  readonly allocMs?: number;
  readonly stuck?: string;
  readonly output: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readBuddy = () => parseBuddyinfo(readFileSync('/proc/buddyinfo', 'utf8'));

/** One kmem line's body: `page=… pfn=0x1a5c00 order=9 migratetype=1 gfp_flags=…`. */
export function parsePageEvent(e: TraceEvent): PageEvent | undefined {
  if (e.event !== 'mm_page_alloc' && e.event !== 'mm_page_alloc_zone_locked' && e.event !== 'mm_page_free') return undefined;
  const f = (k: string) => e.body.match(new RegExp(`(?:^|\\s)${k}=(\\S+)`))?.[1];
  const pfn = f('pfn');
  const order = f('order');
  if (pfn === undefined || order === undefined) return undefined;
  const mt = f('migratetype');
  const refill = f('percpu_refill');
  const gfp = f('gfp_flags');
  return {
    event: e.event, pfn: Number(pfn), order: Number(order), ts: e.ts, pid: e.tgid ?? e.pid,
    ...(mt !== undefined ? { migratetype: Number(mt) } : {}),
    ...(refill !== undefined ? { percpuRefill: Number(refill) } : {}),
    ...(gfp !== undefined ? { gfp } : {}),
  };
}

/** The program's lines: before/after/delta <zone> c0…c10, huge <i> <vaddr> pfn <pfn>, ready. */
export function parseReport(out: string): Report {
  const before: Buddy = new Map(); const after: Buddy = new Map(); const delta: Buddy = new Map();
  const huge: Report['huge'] = [];
  let ready = false;
  for (const line of out.split('\n').map((l) => l.trim())) {
    let m = line.match(/^(before|after|delta)\s+(\S+)((?:\s+-?\d+)+)$/);
    if (m) {
      const counts = m[3]!.trim().split(/\s+/).map(Number);
      (m[1] === 'before' ? before : m[1] === 'after' ? after : delta).set(m[2]!, counts);
      continue;
    }
    m = line.match(/^huge\s+(\d+)\s+(\S+)\s+pfn\s+(0x[0-9a-f]+|\d+)$/i);
    if (m) { huge.push({ index: Number(m[1]), vaddr: m[2]!, pfn: Number(m[3]) }); continue; }
    if (line === 'ready') ready = true;
  }
  return { before, after, delta, huge, ready };
}

/** /proc/<pid>/smaps: the anonymous kB of the mappings that refused huge pages (VmFlags `nh`, MADV_NOHUGEPAGE). */
export function noHugeAnonKb(smaps: string): number {
  let sum = 0;
  let anon = 0;
  for (const line of smaps.split('\n')) {
    const a = line.match(/^Anonymous:\s+(\d+) kB/);
    if (a) { anon = Number(a[1]); continue; }
    const f = line.match(/^VmFlags:(.*)$/);
    if (f) { if (f[1]!.trim().split(/\s+/).includes('nh')) sum += anon; anon = 0; }
  }
  return sum;
}

/** `sys_mmap(addr: 0x00000000, len: 0x00400000, prot: 0x3, flags: 0x22, fd: 0xffffffffffffffff, off: 0x0)`, `sys_munmap(addr: …, len: …)`, `sys_madvise(start: …, len_in: …, behavior: 0xe)`. */
export function parseMmap(event: string, pid: number, body: string): MmapCall | undefined {
  const call = event === 'sys_mmap' ? 'mmap' : event === 'sys_munmap' ? 'munmap' : event === 'sys_madvise' ? 'madvise' : undefined;
  if (!call) return undefined;
  const f = (...ks: string[]) => { for (const k of ks) { const v = body.match(new RegExp(`\\b${k}: (?:0x)?([0-9a-f]+)`))?.[1]; if (v !== undefined) return parseInt(v, 16); } return undefined; };
  const addr = f('addr', 'start');
  const len = f('len', 'len_in');
  const flags = call === 'mmap' ? f('flags') : call === 'madvise' ? f('behavior') : 0;
  if (addr === undefined || len === undefined || flags === undefined) return undefined;
  return { call, pid, addr, len, flags };
}

/** Build the student's buddy.c. */
export async function buildBuddy(): Promise<string> {
  return (await buildProgram({ src: labSource('system/05-buddy/buddy.c') })).path;
}

/** The whole protocol once; never throws (the tests judge). */
export async function runBuddy(program: string, huge = HUGE, small = SMALL): Promise<Run> {
  const zones = parseZoneinfo(readFileSync('/proc/zoneinfo', 'utf8'));
  const formatFile = '/sys/kernel/tracing/events/kmem/mm_page_alloc/format';
  let fields: string[] = [];
  try { fields = [...readFileSync(formatFile, 'utf8').matchAll(/field:[^;]*?(\w+);/g)].map((m) => m[1]!).filter((f) => !f.startsWith('common_')); } catch { /* no tracefs */ }
  // The host alone, in windows like the program's: how much buddyinfo moves without it.
  const maxPages = new Map<string, number>();
  let prev = readBuddy();
  for (let i = 0; i < IDLE_WINDOWS; i++) {
    await sleep(IDLE_STEP_MS);
    const cur = readBuddy();
    for (const [z, c] of cur) maxPages.set(z, Math.max(maxPages.get(z) ?? 0, Math.abs(pagesIn(c, 9) - pagesIn(prev.get(z), 9))));
    prev = cur;
  }
  const idle = { windows: IDLE_WINDOWS, stepMs: IDLE_STEP_MS, maxPages };

  const dir = await makeTempDir('bd');
  const fifo = join(dir, 'stdin');
  await run('mkfifo', [fifo], { timeoutMs: 5_000 });
  let fd: number | undefined = openSync(fifo, 'r+');
  const empty: Report = { before: new Map(), after: new Map(), delta: new Map(), huge: [], ready: false };
  const withMmap = MAP_EVENTS.every((e) => existsSync(join('/sys/kernel/tracing/events', e)));
  const trace = makeTraceInstance(withMmap ? [...EVENTS, ...MAP_EVENTS] : EVENTS, { tag: 'bd', bufferKb: 16384, enable: false, recordTgid: true });
  const base = { huge, small, zones, idle, events: [] as PageEvent[], lost: false, fields, report: empty, output: '', others: [] };
  if (!trace) { closeSync(fd); return { ...base, before: readBuddy(), stuck: `tracefs instances or ${EVENTS.join(', ')} missing` }; }
  // sh waits for one line on the FIFO before it execs the program (same pid): the trace follows it from its first instruction.
  const prog = startBackground('sh', ['-c', 'exec < "$3"; read go; exec "$0" "$1" "$2"', program, String(huge), String(small), fifo],
    { timeoutMs: 120_000 });
  const pid = prog.pid;
  writeFileSync(trace.pidFile, String(pid));
  writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  trace.setEnabled(true);
  const before = readBuddy();
  const go = Date.now();
  writeSync(fd, 'go\n');
  let stuck: string | undefined;
  let allocMs: number | undefined;
  const deadline = Date.now() + READY_MS;
  // Every few ms: the first reading once `ready` is out is the one closest to the program's allocations.
  while (!/^ready$/m.test(prog.stdout()) && Date.now() < deadline) {
    const st = readStat(pid);
    if (!st || st.state === 'Z') break;
    await sleep(2);
  }
  let held: Buddy | undefined;
  let windowMs: number | undefined;
  let anonHugeKb: number | undefined;
  let anonKb: number | undefined;
  let noHugeKb: number | undefined;
  if (/^ready$/m.test(prog.stdout())) {
    held = readBuddy();
    allocMs = windowMs = Date.now() - go;
    await sleep(HOLD_MS);
    try {
      const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const m = roll.match(/^AnonHugePages:\s+(\d+) kB/m);
      anonHugeKb = m ? Number(m[1]) : undefined;
      const a = roll.match(/^Anonymous:\s+(\d+) kB/m);
      anonKb = a ? Number(a[1]) : undefined;
      noHugeKb = noHugeAnonKb(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
    } catch { /* gone */ }
  } else {
    stuck = `the program did not print 'ready' within ${READY_MS / 1000} s`;
  }
  closeSync(fd); fd = undefined;
  const exit = await Promise.race([prog.exited, sleep(EXIT_MS).then(() => undefined)]);
  await sleep(100);
  const freed = readBuddy();
  trace.setEnabled(false);
  const { events, lost } = trace.read();
  await trace.release();
  await prog.stop('SIGKILL');
  // The instance follows the program and every process it starts (set_event_pid + event-fork): a page taken for it by a
  // helper (a child, a clone sharing its memory) is the program's too. Only the interrupts' events in its time are left out.
  const tree = events.filter((e) => e.pid !== 0);
  const mmaps = withMmap ? tree.map((e) => parseMmap(e.event, e.pid, e.body)).filter((m): m is MmapCall => m !== undefined) : undefined;
  const mine = tree.map(parsePageEvent).filter((e): e is PageEvent => e !== undefined);
  const others = new Map<number, { pid: number; order0: number }>();
  for (const e of tree) {
    if (ofProcess(e, pid)) continue;
    const k = e.tgid ?? e.pid;
    const o = others.get(k) ?? { pid: k, order0: 0 };
    const pe = parsePageEvent(e);
    if (pe?.event === 'mm_page_alloc' && pe.order === 0 && pe.migratetype === 1) o.order0++;
    others.set(k, o);
  }
  const output = prog.stdout();
  return {
    ...base, pid, before, events: mine, lost, report: parseReport(output), output: prog.output(),
    ...(held ? { held, windowMs } : {}), ...(anonHugeKb !== undefined ? { anonHugeKb } : {}), freed,
    ...(anonKb !== undefined ? { anonKb } : {}), ...(noHugeKb !== undefined ? { noHugeKb } : {}), others: [...others.values()], ...(mmaps ? { mmaps } : {}),
    ...(exit ? { exit } : { stuck: stuck ?? `the program did not exit within ${EXIT_MS / 1000} s of its stdin's end` }),
    ...(allocMs !== undefined ? { allocMs } : {}), ...(stuck ? { stuck } : {}),
  };
}
