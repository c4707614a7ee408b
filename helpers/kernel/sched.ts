/**
 * The scheduler's tracepoints as the labs read them: sched:sched_switch, one
 * line per context switch on a CPU, `prev_comm=x prev_pid=1 prev_prio=120
 * prev_state=S ==> next_comm=y next_pid=2 next_prio=120`. prev_state is the
 * state the task that left the CPU was in (R or R+ when preempted, S, D, T,
 * t, Z, X, I …): Lab 4.6 counts the switches between its two hogs, Lab 7.3
 * reads how each child last left the CPU.
 */
import type { TraceEvent } from './tracefs.js';

export interface Switch {
  readonly ts: number;
  readonly prevPid: number;
  readonly prevState: string;
  readonly nextPid: number;
  /** The event as "<ts> <body>", for messages. */
  readonly line: string;
}

/** One sched_switch event's fields; undefined for another event or a body this reader does not know. */
export function parseSwitch(e: TraceEvent): Switch | undefined {
  if (e.event !== 'sched_switch') return undefined;
  const m = e.body.match(/prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)/);
  return m ? { ts: e.ts, prevPid: Number(m[1]), prevState: m[2]!, nextPid: Number(m[3]), line: `${e.ts.toFixed(6)} ${e.body}` } : undefined;
}

/** Switches from one of the two tasks straight to the other, either way. */
export function switchesBetween(events: readonly TraceEvent[], a: number, b: number): number {
  let n = 0;
  for (const e of events) {
    const s = parseSwitch(e);
    if (s && ((s.prevPid === a && s.nextPid === b) || (s.prevPid === b && s.nextPid === a))) n++;
  }
  return n;
}
