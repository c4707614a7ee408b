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
import { LabError } from './errors.js';
import { run, type RunResult, type RunOptions } from './exec.js';
import { makeTraceInstance, parseTraceLine, tracepointExists } from './tracefs.js';

/** The submission tracepoint of this kernel ("io_uring/io_uring_submit_req", or "…_submit_sqe" before 5.19); undefined without one. */
export function submitTracepoint(): string | undefined {
  return ['io_uring/io_uring_submit_req', 'io_uring/io_uring_submit_sqe'].find(tracepointExists);
}

export interface RequestTrace {
  /** Rings (the kernel's hashed pointers) the program created. */
  readonly rings: readonly string[];
  readonly submits: number;
  readonly completes: number;
  /** Most requests submitted and not yet completed at any moment. */
  readonly maxInFlight: number;
  /** Completions whose user_data was not that of the oldest request in flight. */
  readonly outOfOrder: number;
  /** The first few of the program's events, for messages. */
  readonly sample: string;
}

const RING = /\bring (?:0x)?([0-9a-f]+)/;
const USER_DATA = /\b(?:user_)?data 0x([0-9a-f]+)/;

/**
 * Walk `trace` lines (in time order) and follow the requests on the rings
 * that `pid` created. Pure: unit-tested on recorded lines.
 */
export function followRequests(lines: readonly string[], pid: number): RequestTrace {
  const rings = new Set<string>();
  const inFlight = new Map<string, string[]>(); // ring → user_data of requests in flight, oldest first
  let submits = 0, completes = 0, now = 0, maxInFlight = 0, outOfOrder = 0;
  const sample: string[] = [];
  for (const line of lines) {
    const ev = parseTraceLine(line);
    const ring = ev && RING.exec(ev.body)?.[1];
    if (!ev || !ring) continue;
    if (ev.event === 'io_uring_create') {
      if (ev.pid === pid) rings.add(ring);
      continue;
    }
    if (!rings.has(ring)) continue;
    const data = USER_DATA.exec(ev.body)?.[1] ?? '';
    const queue = inFlight.get(ring) ?? [];
    inFlight.set(ring, queue);
    if (ev.event === 'io_uring_submit_req' || ev.event === 'io_uring_submit_sqe') {
      submits++;
      queue.push(data);
      maxInFlight = Math.max(maxInFlight, ++now);
    } else if (ev.event === 'io_uring_complete') {
      completes++;
      if (queue.length > 0 && queue[0] !== data) outOfOrder++;
      const at = queue.indexOf(data);
      if (at >= 0) queue.splice(at, 1);
      now = Math.max(0, now - 1);
    } else {
      continue;
    }
    if (sample.length < 6) sample.push(line.trim());
  }
  return { rings: [...rings], submits, completes, maxInFlight, outOfOrder, sample: sample.join('\n') };
}

/**
 * Run `prog args` with the io_uring tracepoints recording in a private
 * tracefs instance (global clock, so that a completion on another CPU sorts
 * after its submission) and follow its requests.
 */
export async function traceIoUringRequests(
  prog: string,
  args: readonly string[],
  options: Pick<RunOptions, 'timeoutMs' | 'cwd'> & { readonly bufferKb?: number } = {},
): Promise<RequestTrace & { readonly result: RunResult }> {
  const submit = submitTracepoint();
  const inst = submit && makeTraceInstance(['io_uring/io_uring_create', submit, 'io_uring/io_uring_complete'],
    { tag: 'iour', clock: 'global', bufferKb: options.bufferKb ?? 16_384 });
  if (!inst) throw new LabError('tracefs has no instances or no io_uring tracepoints (io_uring_create, io_uring_submit_req/_sqe, io_uring_complete)', { code: 'E_CAPABILITY' });
  try {
    const result = await run(prog, args, { timeoutMs: options.timeoutMs ?? 120_000, cwd: options.cwd, reject: false });
    inst.setEnabled(false);
    const { lines, lost } = inst.read();
    if (lost) throw new LabError(`the trace buffer of ${inst.dir} overflowed while ${result.command} ran: raise bufferKb`, { code: 'E_RESOURCE' });
    return { ...followRequests(lines, result.pid), result };
  } finally {
    await inst.release();
  }
}
