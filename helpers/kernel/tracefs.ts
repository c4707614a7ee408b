/**
 * Private tracefs instances: a lab enables tracepoints in its own ring buffer
 * (/sys/kernel/tracing/instances/kl-<run>-…) instead of the global one, so it
 * never disturbs (or is disturbed by) other tracers. The instance is removed
 * when the test ends; the reaper removes those of killed runs.
 */
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { destroyTraceInstance } from '../harness/destroy.js';
import { join } from 'node:path';
import { defer } from '../harness/resources.js';
import { uniqueName } from '../harness/run-state.js';
import { fieldValue, pagesRecords, parseTraceFormat, type TraceFormat } from './ring-buffer.js';

export const TRACEFS = '/sys/kernel/tracing';
/** The ring buffer's page header format (the same for every instance). */
const HEADER_PAGE = join(TRACEFS, 'events', 'header_page');

/** Does this kernel have the tracepoint `group/name` (e.g. "kvm/kvm_pio")? */
export function tracepointExists(event: string): boolean {
  return existsSync(join(TRACEFS, 'events', event, 'enable'));
}

export interface TraceEvent {
  readonly pid: number;
  /** The thread group (process) of `pid`, when the instance records it (options/record-tgid); "-------" (unknown) gives undefined. */
  readonly tgid?: number;
  readonly event: string;
  readonly body: string;
  /** The CPU whose ring buffer holds the event (the `[001]` column): where it happened. */
  readonly cpu?: number;
  /** The timestamp column as a number: seconds, or with trace_clock "counter" the counter's value. */
  readonly ts: number;
}

/**
 * One line of a `trace` file: `  kvm_io-9646  [000] .....  542.775749: kvm_pio: pio_write at 0xe9 …`.
 * Syscall events print as a call instead (`five-16120 [001] ..... 5935.44: sys_getppid()`): their
 * `event` is the syscall's name (`sys_getppid`) and `body` its argument list.
 */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = line.match(/^\s*(.+)-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\w+)(?::\s?(.*)|(\(.*\)(?: -> .*)?))$/);
  if (!m) return undefined;
  const tgid = m[3] && /^\d+$/.test(m[3]) ? { tgid: Number(m[3]) } : {};
  return { pid: Number(m[2]), ...tgid, cpu: Number(m[4]), ts: Number(m[5]), event: m[6]!, body: m[7] ?? m[8]! };
}

/** Does the event belong to process `pid` (its thread group, where the line says; else the task itself)? */
export function ofProcess(e: TraceEvent, pid: number): boolean {
  return (e.tgid ?? e.pid) === pid;
}

export interface TraceInstance {
  /** The instance directory. */
  readonly dir: string;
  /** The `enable` file of one of its events ("group/name"). */
  enableFile(event: string): string;
  /** Record only events of this pid (and, with event-fork, its children) — `set_event_pid`. */
  readonly pidFile: string;
  setEnabled(enabled: boolean): void;
  /** The events recorded so far; `lost` is true when the ring buffer overwrote some. */
  read(): { events: TraceEvent[]; lost: boolean; lines: string[] };
  /**
   * The events recorded since the last take, consumed (trace_pipe, read without blocking): an event the kernel
   * records while they are read is in this take or the next, never dropped — unlike reading `trace` and then
   * clearing it. `lost` is true when the ring buffer overwrote some ("[LOST n EVENTS]").
   */
  take(): { events: TraceEvent[]; lost: boolean; lines: string[] };
  /**
   * Why this kernel's ring buffer cannot give `event`'s `fields` as binary records (takeRaw), or undefined where it
   * can: no per_cpu/cpu<N>/trace_pipe_raw, a header_page without commit and data, a field missing from the event's
   * format, a big-endian machine.
   */
  rawUnavailable(event: string, fields: readonly string[]): string | undefined;
  /**
   * The records of `event` ("group/name") since the last take, consumed from every CPU's trace_pipe_raw page by page
   * (without blocking), with the event's format to read their fields (ring-buffer.ts recordFields): every field of
   * the event, including those its print format leaves out.
   */
  takeRaw(event: string): { format: TraceFormat; records: Buffer[] };
  /** Disable the events and remove the instance (idempotent; also registered with the test). */
  release(): Promise<void>;
}

export interface TraceInstanceOptions {
  /** Tag in the instance name (≤ 4 characters). */
  readonly tag?: string;
  /** Ring buffer size per CPU. Default: the kernel's. */
  readonly bufferKb?: number;
  /**
   * The instance's trace_clock. "global" orders events of different CPUs
   * correctly (a request submitted on one CPU, completed on another); the
   * default "local" is cheaper but only ordered per CPU. "counter" is one
   * atomic counter shared by every CPU and every instance: it orders the
   * events of two instances against each other exactly.
   */
  readonly clock?: 'local' | 'global' | 'mono' | 'counter';
  /** Enable the events right away. Default true. */
  readonly enable?: boolean;
  /**
   * Record each event's thread group too (options/record-tgid), so that a process is judged as a whole: the
   * events of all its threads (a vCPU thread, a worker) carry its pid as `tgid`. Default false.
   */
  readonly recordTgid?: boolean;
}

/**
 * A tracefs instance with `events` ("group/name") ready; undefined when the
 * kernel lacks tracefs instances or any of the events.
 */
export function makeTraceInstance(events: readonly string[], options: TraceInstanceOptions = {}): TraceInstance | undefined {
  if (!existsSync(join(TRACEFS, 'instances')) || !events.every(tracepointExists)) return undefined;
  const dir = join(TRACEFS, 'instances', uniqueName(options.tag ?? 'tr'));
  mkdirSync(dir);
  const enableFile = (event: string) => join(dir, 'events', event, 'enable');
  const setEnabled = (on: boolean) => events.forEach((e) => writeFileSync(enableFile(e), on ? '1' : '0'));
  const release = defer(`tracefs instance ${dir}`, () => {
    try { setEnabled(false); } catch { /* already gone */ }
    // The one trace-instance destroy routine (shared with the reaper): rmdir, retried while a reader holds the buffer.
    const d = destroyTraceInstance(dir);
    if (!d.gone) throw new Error(`tracefs instance ${dir} not removed: ${d.reason}`);
  }, `rmdir ${dir}`);
  if (options.bufferKb) writeFileSync(join(dir, 'buffer_size_kb'), String(options.bufferKb));
  if (options.clock) writeFileSync(join(dir, 'trace_clock'), options.clock);
  if (options.recordTgid) writeFileSync(join(dir, 'options', 'record-tgid'), '1');
  if (options.enable ?? true) setEnabled(true);
  return {
    dir,
    enableFile,
    pidFile: join(dir, 'set_event_pid'),
    setEnabled,
    read() {
      const text = readFileSync(join(dir, 'trace'), 'utf8');
      const counts = text.match(/entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/);
      const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
      const parsed = lines.map(parseTraceLine).filter((e): e is TraceEvent => Boolean(e));
      return { events: parsed, lost: counts ? counts[1] !== counts[2] : false, lines };
    },
    take() {
      const text = drainPipe(join(dir, 'trace_pipe'));
      const all = text.split('\n').filter(Boolean);
      const lines = all.filter((l) => !/^CPU:\d+ \[LOST \d+ EVENTS\]$/.test(l));
      return { events: lines.map(parseTraceLine).filter((e): e is TraceEvent => Boolean(e)), lost: lines.length !== all.length, lines };
    },
    rawUnavailable(event, fields) {
      const cpus = existsSync(join(dir, 'per_cpu')) ? readdirSync(join(dir, 'per_cpu')).filter((d) => /^cpu\d+$/.test(d)) : [];
      if (!cpus.length || !cpus.every((c) => existsSync(join(dir, 'per_cpu', c, 'trace_pipe_raw')))) return `no ${join(dir, 'per_cpu/cpu<N>/trace_pipe_raw')}`;
      const header = existsSync(HEADER_PAGE) ? parseTraceFormat(readFileSync(HEADER_PAGE, 'utf8')) : undefined;
      if (!header?.fields.get('commit') || !header.fields.get('data')) return `no commit and data fields in ${HEADER_PAGE}`;
      const formatFile = join(dir, 'events', event, 'format');
      const format = parseTraceFormat(readFileSync(formatFile, 'utf8'));
      const missing = ['common_type', ...fields].filter((f) => !format.fields.has(f));
      if (missing.length || format.id === undefined) return `no ${missing.length ? `${missing.join(', ')} field` : 'ID'} in ${formatFile}`;
      if (!new Uint8Array(new Uint16Array([1]).buffer)[0]) return 'a big-endian machine (the ring buffer\'s pages are read as little-endian)';
      return undefined;
    },
    takeRaw(event) {
      const headerPage = readFileSync(HEADER_PAGE, 'utf8');
      const data = parseTraceFormat(headerPage).fields.get('data');
      if (!data) throw new Error(`no data field in ${HEADER_PAGE}`);
      const format = parseTraceFormat(readFileSync(join(dir, 'events', event, 'format'), 'utf8'));
      const type = format.fields.get('common_type');
      // One read gives at most one page: a buffer of the page's size takes it whole.
      const pages = readdirSync(join(dir, 'per_cpu')).filter((d) => /^cpu\d+$/.test(d))
        .flatMap((cpu) => drainChunks(join(dir, 'per_cpu', cpu, 'trace_pipe_raw'), data.offset + data.size));
      const records = pagesRecords(pages, headerPage).filter((r) => !type || format.id === undefined || fieldValue(r, type) === BigInt(format.id));
      return { format, records };
    },
    release,
  };
}

/** Every read a pipe gives now, consumed, each copied into its own buffer; never waits for more (O_NONBLOCK: EAGAIN when it is empty). */
function drainChunks(path: string, size: number): Buffer[] {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(size);
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      let n: number;
      try { n = readSync(fd, buf); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break; throw e; }
      if (n <= 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally { closeSync(fd); }
  return chunks;
}

/** Everything a trace_pipe holds now, consumed; never waits for more. */
function drainPipe(path: string): string {
  return Buffer.concat(drainChunks(path, 1 << 20)).toString('utf8');
}

/** One system call recorded by its syscalls:sys_enter_<name> and sys_exit_<name> events. */
export interface TracedSyscall {
  /** The task (thread) that made it. */
  readonly pid: number;
  /** Its thread group, when the instance records it (options/record-tgid). */
  readonly tgid?: number;
  /** "mmap", "ptrace", "wait4"… (the event name without "sys_"). */
  readonly name: string;
  /** The entry's arguments by name ("addr", "len"…), as printed (hex). */
  readonly args: ReadonlyMap<string, bigint>;
  /** Timestamp of the entry. */
  readonly ts: number;
  /** The return value (signed: -3 is -ESRCH) and when it came back; undefined when the exit was not recorded (the task still in the call, or it never returns). */
  readonly ret?: bigint;
  readonly exitTs?: number;
}

/**
 * The system calls in a trace's lines (pure): each `sys_<name>(a: 0x1, b: 2)` entry paired with the next
 * `sys_<name> -> 0x…` exit of the same task (a task is in one call at a time). Only `names` when given. The
 * kernel prints the return value as unsigned hex: 0xfffffffffffffffd is -3.
 */
/** A `sys_<name> -> 0x…` exit line: the task, the time, the call and its return value (signed). */
export function parseSyscallExit(line: string): { pid: number; tgid?: number; ts: number; name: string; ret: bigint } | undefined {
  const m = line.match(/^\s*.+-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[\d+\]\s+\S+\s+([\d.]+):\s+sys_(\w+) -> (0x[0-9a-f]+)\s*$/);
  if (!m) return undefined;
  return { pid: Number(m[1]), ...(m[2] && /^\d+$/.test(m[2]) ? { tgid: Number(m[2]) } : {}), ts: Number(m[3]), name: m[4]!, ret: BigInt.asIntN(64, BigInt(m[5]!)) };
}

/** The arguments of a `sys_<name>(a: 0x1, b: 2)` entry's body, by name (as unsigned 64-bit values). */
export function syscallArgs(body: string): Map<string, bigint> {
  const args = new Map<string, bigint>();
  for (const m of body.matchAll(/(\w+): (?:0x)?([0-9a-f]+)/g)) args.set(m[1]!, BigInt(`0x${m[2]}`));
  return args;
}

export function pairSyscalls(lines: readonly string[], names?: readonly string[]): TracedSyscall[] {
  const out: { pid: number; tgid?: number; name: string; args: Map<string, bigint>; ts: number; ret?: bigint; exitTs?: number }[] = [];
  const open = new Map<number, number>();
  const wanted = names ? new Set(names) : undefined;
  for (const line of lines) {
    const exit = parseSyscallExit(line);
    if (exit) {
      const at = open.get(exit.pid);
      if (at !== undefined && out[at]!.name === exit.name) {
        out[at]!.ret = exit.ret;
        out[at]!.exitTs = exit.ts;
        open.delete(exit.pid);
      }
      continue;
    }
    const ev = parseTraceLine(line);
    if (!ev || !ev.event.startsWith('sys_') || !ev.body.startsWith('(')) continue;
    const name = ev.event.slice(4);
    if (wanted && !wanted.has(name)) continue;
    const args = syscallArgs(ev.body);
    open.set(ev.pid, out.length);
    out.push({ pid: ev.pid, ...(ev.tgid === undefined ? {} : { tgid: ev.tgid }), name, args, ts: ev.ts });
  }
  return out;
}
