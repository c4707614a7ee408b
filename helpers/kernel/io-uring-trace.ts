/**
 * What the kernel saw of a program's io_uring requests, from the io_uring
 * tracepoints: the rings the program created (io_uring:io_uring_create, by
 * its pid), then every request submitted on those rings
 * (io_uring_submit_req; io_uring_submit_sqe before Linux 5.19) and every
 * completion posted (io_uring_complete). Walking them in time order gives
 * how many requests were in flight at once and how many completed out of
 * submission order — evidence a program cannot print its way around.
 *
 * Events are selected by ring, not by pid: completions may be posted by
 * io-wq workers and submissions made by an SQPOLL thread, and neither is a
 * child that set_event_pid would follow.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../harness/errors.js';
import { run, type RunResult, type RunOptions } from '../harness/exec.js';
import { makeTraceInstance, ofProcess, parseTraceLine, tracepointExists } from './tracefs.js';

/** The submission tracepoint of this kernel ("io_uring/io_uring_submit_req", or "…_submit_sqe" before 5.19); undefined without one. */
export function submitTracepoint(): string | undefined {
  return ['io_uring/io_uring_submit_req', 'io_uring/io_uring_submit_sqe'].find(tracepointExists);
}

const ENTER_EVENT = 'syscalls/sys_enter_io_uring_enter';
/** A completion posted while the CQ ring was full (Linux ≥ 5.x; counted as a completion). */
const CQE_OVERFLOW = 'io_uring/io_uring_cqe_overflow';

export interface RequestTrace {
  /** Rings (the kernel's hashed pointers) the program created. */
  readonly rings: readonly string[];
  readonly submits: number;
  readonly completes: number;
  /** Most requests submitted and not yet completed at any moment. */
  readonly maxInFlight: number;
  /** Completions whose user_data was not that of the oldest request in flight. */
  readonly outOfOrder: number;
  /** Requests submitted on the program's rings, by opcode as the kernel names it ("READ", "WRITE", "NOP", …). */
  readonly opcodes: Readonly<Record<string, number>>;
  /**
   * Bytes the kernel reports done (positive io_uring_complete results) by
   * requests that read a file (READ, READV, READ_FIXED) and that write one
   * (WRITE, WRITEV, WRITE_FIXED): the data that really went through the ring.
   */
  readonly bytes: { readonly read: number; readonly write: number };
  /** io_uring_link events on the program's rings: one per request queued behind another with IOSQE_IO_LINK. */
  readonly links: number;
  /**
   * Of those, the links that queue a write request (WRITE, WRITEV, WRITE_FIXED) behind a read request (READ, READV,
   * READ_FIXED): "request <req> linked after <target>", both submitted on the ring (io_uring_submit_req names their
   * opcodes). A read linked to a NOP, or a NOP to a write, is not one.
   */
  readonly readWriteLinks: number;
  /** io_uring_enter(2) calls by the program's pid (syscalls:sys_enter_io_uring_enter); undefined when not traced. */
  readonly enters?: number;
  /**
   * Of those, the calls that hand the kernel requests (to_submit > 0, the argument as the syscall tracepoint
   * prints it, in hex): a call that only waits for completions does not count. Undefined when not traced.
   */
  readonly submitEnters?: number;
  /** The first few of the program's events, for messages. */
  readonly sample: string;
}

/** What "a read request" is, for every io_uring lab: any opcode that reads a file into memory. */
export const READ_OPS: ReadonlySet<string> = new Set(['READ', 'READV', 'READ_FIXED', 'READ_MULTISHOT']);
/** And "a write request". */
export const WRITE_OPS: ReadonlySet<string> = new Set(['WRITE', 'WRITEV', 'WRITE_FIXED']);

/** Read requests submitted (READ, READV, READ_FIXED, READ_MULTISHOT together). */
export function readRequests(t: Pick<RequestTrace, 'opcodes'>): number {
  return Object.entries(t.opcodes).reduce((n, [op, count]) => n + (READ_OPS.has(op) ? count : 0), 0);
}
/** Linux ≥ 5.19 prints the opcode's name ("opcode READ"); 5.15's io_uring_submit_sqe prints its number ("op 22"). */
const OPCODE = /\b(?:opcode|op) (\w+)/;
const OPCODE_NAMES: Record<string, string> = { 1: 'READV', 2: 'WRITEV', 4: 'READ_FIXED', 5: 'WRITE_FIXED', 0: 'NOP', 22: 'READ', 23: 'WRITE' };
const REQ = /\breq(?:uest)? (?:0x)?([0-9a-f]+)/;
/** "READ and WRITE requests: 2048 READ (67108864 bytes done), 2048 WRITE (67108864 bytes done), 3 NOP" — for messages. */
export function describeRequests(t: Pick<RequestTrace, 'opcodes' | 'bytes'>): string {
  const ops = Object.entries(t.opcodes).map(([op, n]) => `${n} ${op}`).join(', ') || 'no requests';
  return `${ops}; bytes done by read requests ${t.bytes.read}, by write requests ${t.bytes.write}`;
}

const RING = /\bring (?:0x)?([0-9a-f]+)/;
/** io_uring_link: "ring …, request <req> linked after <target_req>" (5.15 and 6.x). */
const LINK = /\brequest (?:0x)?([0-9a-f]+) linked after (?:0x)?([0-9a-f]+)/;
/** sys_enter_io_uring_enter's to_submit: "to_submit: 0x00000002" (6.x) or "to_submit: 2" (older); hex either way. */
const TO_SUBMIT = /\bto_submit: (?:0x)?([0-9a-f]+)/;
const USER_DATA = /\b(?:user_)?data 0x([0-9a-f]+)/;

/**
 * Walk `trace` lines (in time order) and follow the requests on the rings
 * that `pid` created. Pure: unit-tested on recorded lines.
 */
export function followRequests(lines: readonly string[], pid: number): RequestTrace {
  const rings = new Set<string>();
  const inFlight = new Map<string, string[]>(); // ring → user_data of requests in flight, oldest first
  let submits = 0, completes = 0, now = 0, maxInFlight = 0, outOfOrder = 0, links = 0, readWriteLinks = 0, enters = 0, submitEnters = 0, sawEnterEvent = false;
  const opcodes: Record<string, number> = {};
  const opOfReq = new Map<string, string>(); // req pointer → opcode of the request it carries now (pointers are reused)
  const opOfData = new Map<string, string>(); // user_data → opcode of the last request submitted with it
  const bytes = { read: 0, write: 0 };
  const sample: string[] = [];
  for (const line of lines) {
    const ev = parseTraceLine(line);
    if (ev && (ev.event === 'sys_io_uring_enter' || ev.event === 'sys_enter_io_uring_enter')) {
      sawEnterEvent = true;
      if (ofProcess(ev, pid)) {
        enters++;
        if (Number.parseInt(TO_SUBMIT.exec(ev.body)?.[1] ?? '0', 16) > 0) submitEnters++;
      }
      continue;
    }
    const ring = ev && RING.exec(ev.body)?.[1];
    if (!ev || !ring) continue;
    if (ev.event === 'io_uring_create') {
      if (ofProcess(ev, pid)) rings.add(ring);
      continue;
    }
    if (!rings.has(ring)) continue;
    if (ev.event === 'io_uring_link') {
      links++;
      const m = LINK.exec(ev.body);
      if (m && WRITE_OPS.has(opOfReq.get(m[1]!) ?? '') && READ_OPS.has(opOfReq.get(m[2]!) ?? '')) readWriteLinks++;
      continue;
    }
    const data = USER_DATA.exec(ev.body)?.[1] ?? '';
    const req = REQ.exec(ev.body)?.[1] ?? '';
    const queue = inFlight.get(ring) ?? [];
    inFlight.set(ring, queue);
    if (ev.event === 'io_uring_submit_req' || ev.event === 'io_uring_submit_sqe') {
      submits++;
      const raw = OPCODE.exec(ev.body)?.[1] ?? '?';
      const op = /^\d+$/.test(raw) ? (OPCODE_NAMES[raw] ?? `op ${raw}`) : raw;
      opcodes[op] = (opcodes[op] ?? 0) + 1;
      if (req) opOfReq.set(req, op);
      opOfData.set(data, op);
      queue.push(data);
      maxInFlight = Math.max(maxInFlight, ++now);
    } else if (ev.event === 'io_uring_complete' || ev.event === 'io_uring_cqe_overflow') {
      // A completion that found the CQ ring full is kept on the overflow list (io_uring_cqe_overflow, "res N"):
      // it completed all the same, and the program reaps it once it makes room.
      completes++;
      const res = Number(/\b(?:result|res) (-?\d+)/.exec(ev.body)?.[1] ?? 0);
      // 5.15's io_uring_complete has no req pointer: the user_data names the request then.
      const op = (req ? opOfReq.get(req) : undefined) ?? opOfData.get(data) ?? '';
      if (res > 0 && READ_OPS.has(op)) bytes.read += res;
      if (res > 0 && WRITE_OPS.has(op)) bytes.write += res;
      if (queue.length > 0 && queue[0] !== data) outOfOrder++;
      const at = queue.indexOf(data);
      if (at >= 0) queue.splice(at, 1);
      now = Math.max(0, now - 1);
    } else {
      continue;
    }
    if (sample.length < 6) sample.push(line.trim());
  }
  return { rings: [...rings], submits, completes, maxInFlight, outOfOrder, opcodes, bytes, links, readWriteLinks, ...(sawEnterEvent ? { enters, submitEnters } : {}), sample: sample.join('\n') };
}

/**
 * Run `prog args` with the io_uring tracepoints recording in a private
 * tracefs instance (global clock, so that a completion on another CPU sorts
 * after its submission) and follow its requests.
 */
export async function traceIoUringRequests(
  prog: string,
  args: readonly string[],
  options: Pick<RunOptions, 'timeoutMs' | 'cwd'> & { readonly bufferKb?: number; /** Also count the program's io_uring_enter(2) calls. */ readonly enters?: boolean } = {},
): Promise<RequestTrace & { readonly result: RunResult }> {
  const submit = submitTracepoint();
  const enter = ENTER_EVENT;
  const withEnters = options.enters && tracepointExists(enter);
  if (options.enters && !withEnters) throw new LabError(`tracefs has no ${enter} tracepoint (CONFIG_FTRACE_SYSCALLS): io_uring_enter calls cannot be counted`, { code: 'E_CAPABILITY' });
  const overflow = tracepointExists(CQE_OVERFLOW) ? [CQE_OVERFLOW] : [];
  const inst = submit && makeTraceInstance(['io_uring/io_uring_create', submit, 'io_uring/io_uring_complete', ...overflow, 'io_uring/io_uring_link'],
    { tag: 'iour', clock: 'global', bufferKb: options.bufferKb ?? 16_384, recordTgid: true });
  if (!inst) throw new LabError('tracefs has no instances or no io_uring tracepoints (io_uring_create, io_uring_submit_req/_sqe, io_uring_complete, io_uring_link)', { code: 'E_CAPABILITY' });
  try {
    // The syscall tracepoint fires for every process: the recorded thread group (record-tgid) picks the program's
    // calls from any of its threads. The shell enables it, then becomes the program (exec keeps the pid).
    const enterDir = join(inst.dir, 'events', enter);
    const result = withEnters
      ? await run('sh', ['-c', `echo 1 > ${enterDir}/enable && exec "$0" "$@"`, prog, ...args],
        { timeoutMs: options.timeoutMs ?? 120_000, cwd: options.cwd, reject: false })
      : await run(prog, args, { timeoutMs: options.timeoutMs ?? 120_000, cwd: options.cwd, reject: false });
    if (withEnters) writeFileSync(join(enterDir, 'enable'), '0');
    inst.setEnabled(false);
    const { lines, lost } = inst.read();
    if (lost) throw new LabError(`the trace buffer of ${inst.dir} overflowed while ${result.command} ran: raise bufferKb`, { code: 'E_RESOURCE' });
    return { ...followRequests(lines, result.pid), result };
  } finally {
    await inst.release();
  }
}
