/**
 * What the kernel says about signals: the `signal:signal_generate` tracepoint
 * (kernel/signal.c, __send_signal_locked) records every signal the kernel
 * generates — who sent it (the event's pid column is the sending task), to
 * whom (`pid`), whether to the whole thread group (`grp`), and what became of
 * it (`res`: 0 delivered/queued, 1 ignored, 2 already pending, 3 queue
 * overflow, 4 queued without its info).
 */
import type { TraceEvent } from './tracefs.js';

export const SIGNAL_GENERATE = 'signal/signal_generate';

export const SIGNAL_RESULTS = ['delivered', 'ignored', 'already pending', 'overflow', 'lose info'] as const;
export type SignalResult = (typeof SIGNAL_RESULTS)[number] | `result ${number}`;

export interface GeneratedSignal {
  /** The task that generated it (the trace line's pid column: the sender's context). */
  readonly sender: number;
  readonly sig: number;
  /** si_code: 128 (SI_KERNEL) for a signal the kernel sends on its own, 0 (SI_USER) for kill(2). */
  readonly code: number;
  /** The target task. */
  readonly pid: number;
  readonly comm: string;
  readonly group: boolean;
  readonly result: SignalResult;
  readonly ts: number;
}

/** `sig=1 errno=0 code=128 comm=sessions pid=31111 grp=1 res=0` of a signal_generate event, or undefined. */
export function parseSignalGenerate(e: TraceEvent): GeneratedSignal | undefined {
  if (e.event !== 'signal_generate') return undefined;
  const m = e.body.match(/sig=(\d+) errno=-?\d+ code=(-?\d+) comm=(.*) pid=(\d+) grp=(\d+) res=(\d+)/);
  if (!m) return undefined;
  const res = Number(m[6]);
  return {
    sender: e.pid, sig: Number(m[1]), code: Number(m[2]), comm: m[3]!, pid: Number(m[4]), group: m[5] === '1',
    result: SIGNAL_RESULTS[res] ?? `result ${res}`, ts: e.ts,
  };
}

/** One line per event, for a failure message. */
export function formatGenerated(s: GeneratedSignal): string {
  return `${s.ts.toFixed(6)} task ${s.sender} → pid ${s.pid} (${s.comm}) sig=${s.sig} code=${s.code}${s.group ? ' grp' : ''}: ${s.result}`;
}
