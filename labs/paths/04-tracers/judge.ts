/**
 * Lab 8.4's verdicts (pure): from a trial's evidence to the facts each test
 * asserts and the message that shows the evidence.
 */
import { END_AFTER_EXIT_MS, END_BOUND_MS, type Trial } from './experiment.js';
import type { Verdict as Base } from '../../../helpers/harness/verdict.js';

/** The count a recipe printed: the last number on its last non-empty line of output. */
export function recipeCount(stdout: string): number | undefined {
  // bpftrace's own "Attaching N probes..." is not a count.
  const last = stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^Attaching \d+ probes?\.\.\./.test(l)).pop();
  const m = last?.match(/(\d+)\D*$/);
  return m ? Number(m[1]) : undefined;
}

/** Executables that are other tracers: a recipe that runs them does another tool's job. */
const OTHER_TRACERS: Record<string, RegExp> = {
  perf: /^(bpftrace|strace|ltrace|gdb|trace-cmd|python3?.*)$/,
  bpftrace: /^(perf.*|strace|ltrace|gdb|trace-cmd)$/,
  ftrace: /^(perf.*|bpftrace|strace|ltrace|gdb)$/,
};

function common(t: Trial) {
  const count = t.recipe ? recipeCount(t.recipe.stdout) : undefined;
  const tail = (s: string) => s.trim().split('\n').slice(-6).join('\n') || '(nothing)';
  const text = `${t.syscall}: the tracee (pid ${t.tracee.pid}) was given N=${t.n} calls, the decoy beside it (pid ${t.decoy.pid}) M=${t.m}; ` +
    `the kernel's own record (sys_enter_${t.syscall}, a private tracefs instance per pid): tracee ${t.kernel.tracee ?? '?'}, decoy ${t.kernel.decoy ?? '?'}${t.kernel.lost ? ' (entries lost)' : ''}; ` +
    `tracee ${t.tracee.exit}, decoy ${t.decoy.exit}\n` +
    shapeText(t) +
    (t.recipe ? `the recipe ${t.recipe.ended ? `ended by itself (${t.recipe.exit})` : `did not end within the bound after the tracee exited (${t.recipe.exit})`}` +
      `${t.recipe.afterExitMs === undefined ? '' : `, ${Math.abs(t.recipe.afterExitMs)} ms ${t.recipe.afterExitMs < 0 ? 'before' : 'after'} the tracee's exit (sched_process_exit of each)`}; its last lines:\n${tail(t.recipe.stdout)}\nstderr:\n${tail(t.recipe.stderr)}\n` : '') +
    (t.note ? `${t.note}\n` : '');
  return { count, text };
}

/**
 * The recipe ended when the tracee exited: after the tracee's sched_process_exit and at most END_AFTER_EXIT_MS (by place) later
 * (the kernel's record of both). A recipe that ends when the calls stop coming — a quiet time, a timeout — ends inside
 * one of the tracee's pauses or long after its exit.
 */
export function endVerdict(t: Trial): string {
  const r = t.recipe;
  if (!r) return 'no recipe ran';
  if (!r.ended) return `did not end within ${END_BOUND_MS / 1000} s after the tracee exited (stopped with SIGINT)`;
  if (r.afterExitMs === undefined) return `ended, but ${r.endNote ?? 'the kernel\'s record lacks its end'}`;
  if (r.afterExitMs < 0) return `ended ${-r.afterExitMs} ms before the tracee exited: it must watch the tracee's exit, not its calls`;
  const bound = END_AFTER_EXIT_MS[t.where];
  if (r.afterExitMs > bound) return `ended ${r.afterExitMs} ms after the tracee exited (more than ${bound} ms${t.where === 'guest' ? ' in the guest' : ''}): it must end when the tracee exits, not after a quiet time or a timeout`;
  return 'when the tracee exited';
}

const shapeText = (t: Trial) => (t.shape
  ? `the tracee made its calls ${t.shape.pausesMs.length ? `in ${t.shape.pausesMs.length + 1} bursts with pauses of ${t.shape.pausesMs.join(' and ')} ms` : 'in one burst'}, then lived on ${t.shape.lingerMs} ms before it exited; `
  : '');

/** The count is the kernel's: exactly N, not N+M (the decoy), not a guess. */
function countVerdict(t: Trial, count: number | undefined): string {
  if (count === undefined) return 'no count printed';
  if (count === t.n) return 'N';
  if (count === t.n + t.m) return 'N+M: the decoy\'s calls counted too (filter by the pid)';
  if (count === 0) return '0: nothing counted';
  return `${count}, not N=${t.n}`;
}

/** A trial's verdict: named facts (helpers/harness/verdict.ts). */
export type Verdict = Base<Record<string, unknown>>;

/** The workload did what the spec asked, as the kernel recorded it (a control: the harness, not the student). */
export function workload(trials: readonly Trial[]): Verdict {
  const rows = trials.map((t) => ({ tool: t.tool, tracee: t.kernel.tracee === t.n, decoy: t.kernel.decoy === t.m, exits: t.tracee.exit === 'exit 0' && t.decoy.exit === 'exit 0', lost: t.kernel.lost }));
  return {
    got: { rows },
    want: { rows: trials.map((t) => ({ tool: t.tool, tracee: true, decoy: true, exits: true, lost: false })) },
    message: trials.map((t) => common(t).text).join('\n'),
  };
}

export function ftrace(t: Trial | undefined): Verdict {
  if (!t) return { got: { ran: false }, want: { ran: true }, message: 'no ftrace trial ran' };
  const { count, text } = common(t);
  const f = t.attach?.ftrace;
  const entry = new RegExp(`(^|_)sys_${t.syscall}$`);
  const facts = {
    ran: true,
    tracerWhenReleased: f?.currentTracer === 'function_graph' ? 'function' : f?.currentTracer ?? '?',
    // A tracer that records nothing (tracing_on=0) counts nothing: its count came from somewhere else.
    recordingWhenReleased: f?.tracingOn === '1',
    filterOnTheEntryFunction: Boolean(f && f.filter.length > 0 && f.filter.some((x) => entry.test(x.split(/\s/)[0]!))),
    onlyTheTracee: Boolean(f && f.pids.length > 0 && f.pids.every((p) => p === String(t.tracee.pid))),
    ended: endVerdict(t),
    count: countVerdict(t, count),
  };
  return {
    got: facts,
    want: { ran: true, tracerWhenReleased: 'function', recordingWhenReleased: true, filterOnTheEntryFunction: true, onlyTheTracee: true, ended: 'when the tracee exited', count: 'N' },
    message: `your workspace file paths/04-tracers/ftrace.sh (${t.where === 'guest' ? 'in the guest of Debian\'s kernel' : 'on this host'}); ` +
      `the instance handed to it, read by the spec when the tracee was released${t.attach?.attached ? '' : ' (no tracer seen there within the bound)'}: ` +
      `current_tracer=${f?.currentTracer ?? '?'}, tracing_on=${f?.tracingOn ?? '?'}, set_ftrace_filter=[${f?.filter.join(' ') ?? ''}], set_ftrace_pid=[${f?.pids.join(' ') ?? ''}] ` +
      `(expected the function tracer, recording (tracing_on=1), on the entry function *sys_${t.syscall} of the tracee ${t.tracee.pid} only); it printed ${count ?? 'no count'} (${countVerdict(t, count)})\n${text}`,
  };
}

const procList = (t: Trial) => (t.attach?.procs ?? []).map((p) => `${p.pid}:${p.exe}${p.perfFds ? `(${p.perfFds} perf fds)` : ''}`).join(' ') || '(none)';

export function perf(t: Trial | undefined): Verdict {
  if (!t) return { got: { ran: false }, want: { ran: true }, message: 'no perf trial ran' };
  const { count, text } = common(t);
  const procs = t.attach?.procs ?? [];
  const others = procs.filter((p) => OTHER_TRACERS.perf!.test(p.exe)).map((p) => p.exe);
  // What perf's own events counted (the kernel's counters, read through copies of its fds after the tracee exited):
  // one of them, or their sum (one event per CPU), must be N — a dummy or another event kept open while the count
  // comes from elsewhere (a tracefs instance, a file) never reaches it.
  // perf is the file `perf` runs on this machine (the harness started one to see which), not a program named perf.
  const named = procs.filter((p) => /^perf/.test(p.exe));
  const installed = t.attach?.installedPerf;
  const notPerf = named.filter((p) => !installed || p.exeId !== installed.id).map((p) => p.path);
  const perfPids = new Set(named.filter((p) => installed && p.exeId === installed.id).map((p) => p.pid));
  const counters = (t.attach?.counters ?? []).filter((c) => perfPids.has(c.pid));
  const values = counters.map((c) => c.value).filter((v): v is number => v !== undefined);
  const sum = values.reduce((a, b) => a + b, 0);
  const facts = {
    ran: true,
    perfEventOfPerfWhenReleased: procs.some((p) => perfPids.has(p.pid) && p.perfFds > 0),
    namedPerfButNotPerf: notPerf,
    perfsOwnEventsCountedN: values.includes(t.n) || sum === t.n,
    otherTracers: others,
    ended: endVerdict(t),
    count: countVerdict(t, count),
  };
  return {
    got: facts,
    want: { ran: true, perfEventOfPerfWhenReleased: true, namedPerfButNotPerf: [], perfsOwnEventsCountedN: true, otherTracers: [], ended: 'when the tracee exited', count: 'N' },
    message: `your workspace file paths/04-tracers/perf.sh; its processes when the tracee was released (after ${t.attach?.waitedMs ?? '?'} ms${t.attach?.attached ? '' : ', no perf event fd seen within the bound'}): ${procList(t)} ` +
      `(expected perf itself holding a perf event, and no other tracer; perf is ${installed ? `${installed.path}, the file \`perf\` runs here` : 'the file `perf` runs here (not found)'}${notPerf.length ? `: ${notPerf.join(' ')} is named perf but is another program` : ''}); what perf's events had counted once the tracee exited (read(2) of copies of its fds): ` +
      `[${counters.map((c) => `${c.pid}:${c.fd}=${c.value ?? c.error}`).join(' ')}]${values.length > 1 ? ` (sum ${sum})` : ''} (expected N=${t.n} in one event or in their sum: the events perf opened count the calls); it printed ${count ?? 'no count'} (${countVerdict(t, count)})\n${text}`,
  };
}

export function bpftrace(t: Trial | undefined): Verdict {
  if (!t) return { got: { ran: false }, want: { ran: true }, message: 'no bpftrace trial ran' };
  const { count, text } = common(t);
  const tps = (t.attach?.bpf ?? []).filter((a) => a.fd_type === 'tracepoint').map((a) => a.tracepoint ?? '?');
  const right = new RegExp(`^sys_(enter|exit)(_${t.syscall})?$`);
  const facts = {
    ran: true,
    onTheSyscallsTracepoint: tps.some((x) => right.test(x)),
    // Tracepoints a count of this system call has no use for (another system call's: read(2), open(2) of the tracee's FIFOs…),
    // and raw_syscalls' beside the syscall's own: then they watch the tracee's other system calls (its exit_group…).
    otherSyscallTracepoints: [
      ...tps.filter((x) => /^sys_(enter|exit)_/.test(x) && !right.test(x)),
      ...(tps.some((x) => /^sys_(enter|exit)_/.test(x) && right.test(x)) ? tps.filter((x) => /^sys_(enter|exit)$/.test(x)).map((x) => `raw_syscalls:${x} beside sys_*_${t.syscall}`) : []),
    ],
    otherTracers: (t.attach?.procs ?? []).filter((p) => OTHER_TRACERS.bpftrace!.test(p.exe)).map((p) => p.exe),
    ended: endVerdict(t),
    count: countVerdict(t, count),
  };
  return {
    got: facts,
    want: { ran: true, onTheSyscallsTracepoint: true, otherSyscallTracepoints: [], otherTracers: [], ended: 'when the tracee exited', count: 'N' },
    message: `your workspace file paths/04-tracers/count.bt; BPF programs bpftrace had attached to tracepoints when the tracee was released (bpftool perf show, after ${t.attach?.waitedMs ?? '?'} ms): [${tps.join(' ')}] ` +
      `(expected sys_enter_${t.syscall}, or sys_exit_${t.syscall}, or raw_syscalls' sys_enter/sys_exit instead — not both: raw_syscalls beside the syscall's own tracepoint watch the tracee's other system calls); processes: ${procList(t)}; it printed ${count ?? 'no count'} (${countVerdict(t, count)})\n${text}`,
  };
}

/** Nanoseconds per call of each trial's tracee. */
export const nsPerCall = (t: Trial) => (t.tracee.ns === undefined ? undefined : t.tracee.ns / t.n);

export function median(xs: readonly number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Overhead { readonly tool: string; readonly where: string; readonly baseNs?: number; readonly tracedNs?: number; readonly percent?: number; readonly trials: number }

/** Each tool's cost per call against the untraced runs of the same place (host or guest), by the medians. */
export function overheads(trials: readonly Trial[]): Overhead[] {
  const out: Overhead[] = [];
  for (const tool of ['ftrace', 'perf', 'bpftrace'] as const) {
    const traced = trials.filter((t) => t.tool === tool);
    if (!traced.length) continue;
    const where = traced[0]!.where;
    const base = median(trials.filter((t) => t.tool === 'none' && t.where === where).map(nsPerCall).filter((x): x is number => x !== undefined));
    const tr = median(traced.map(nsPerCall).filter((x): x is number => x !== undefined));
    out.push({ tool, where, trials: traced.length, ...(base === undefined ? {} : { baseNs: base }), ...(tr === undefined ? {} : { tracedNs: tr }),
      ...(base !== undefined && tr !== undefined ? { percent: Math.round(((tr - base) / base) * 100) } : {}) });
  }
  return out;
}
