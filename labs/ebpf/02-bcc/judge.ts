/**
 * Lab 1.2's verdicts: pure functions from the experiment's evidence
 * (experiment.ts: what each program attached as the kernel lists it, the shells
 * spawned, what the program delivered) to what each test compares — `got`
 * against `want` — with the message that shows the evidence. Unit-tested in
 * tests/lab-units/ebpf/02-bcc/judge.test.ts.
 */
import { fromShells, type Attached, type HelloRun, type RingbufRun } from './experiment.js';

import type { Verdict } from '../../../helpers/harness/verdict.js';

export type { Verdict };

/**
 * The kernel's view of what the student's process attached: BPF programs on perf events (bpftool perf show, by pid)
 * that hook clone or clone3, of kprobe or tracepoint type. A program that learns about new processes another way holds none.
 */
export function attachedToClone(r: Attached): Verdict<{ attachedToClone: boolean; programTypes: boolean }> {
  return {
    got: { attachedToClone: r.cloneHooks.length > 0, programTypes: r.programTypes.every((t) => t === 'tracepoint' || t === 'kprobe') },
    want: { attachedToClone: true, programTypes: true },
    message: `your workspace file ${r.script} must load a BPF program and attach it to the clone system call (kprobe or syscalls:sys_enter_clone tracepoint); ` +
      `bpftool perf show lists for that process: ${JSON.stringify(r.attachments) || '(nothing)'}; program types: ${r.programTypes.join(', ') || '(none)'}`,
  };
}

/** Only a line from one of the shells counts: trace_pipe keeps unread lines of earlier runs and of other programs. */
export function helloFromShells(r: HelloRun): Verdict<boolean> {
  const { pids, lines } = r;
  return {
    got: fromShells(lines, pids).length > 0,
    want: true,
    message: `your workspace file ebpf/02-bcc/hello_bcc.py printed ${lines.length} HELLO lines while ${pids.length} shells forked (pids ${pids.slice(0, 10).join(', ')}${pids.length > 10 ? ', …' : ''}); ` +
      `expected "HELLO pid=<one of them> comm=sh msg=Hello, clone!":\n${lines.slice(0, 10).join('\n') || '(none)'}\nstderr:\n${r.stderr.slice(-1500)}`,
  };
}

/** Every shell arrives with its own pid and the comm the kernel gave it. */
export function everyShellArrived(r: RingbufRun): Verdict<{ pid: number; comm: string | undefined }[]> {
  return {
    got: r.shells.map((s) => ({ pid: s.pid, comm: r.events.find((e) => e.pid === s.pid)?.comm })),
    want: r.shells.map((s) => ({ pid: s.pid, comm: s.comm })),
    message: `your workspace file ebpf/02-bcc/hello_bcc_ringbuf.py delivered ${r.events.length} events, e.g.:\n` +
      `${r.events.slice(0, 10).map((e) => `pid=${e.pid} comm=${e.comm}`).join('\n') || '(none)'}\nstderr:\n${r.stderr.slice(-1500)}`,
  };
}
