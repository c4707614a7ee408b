/**
 * Lab 1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Opens`, `Exits`, `AttachPoints`) to the facts each test
 * asserts, with the message that shows the evidence (the script's lines for
 * the children's PIDs). Also the two line formats the scripts print, which the
 * experiment reads while it waits. Unit-tested on made-up evidence in
 * tests/lab-units/ebpf/01-bpftrace/judge.test.ts.
 */
import type { Verdict } from '../../../helpers/harness/verdict.js';

/** What each script's BEGIN probe prints once every probe is attached. */
export const READY = /^Tracing .*Hit Ctrl-C to end\./;

/** One verdict (helpers/harness/verdict.ts): the facts observed, what they must equal, and the message that shows the evidence. */
export type { Verdict };

/** Lines "<pid> <comm> Opening file: <path>" printed for `pid`. */
export function opensOf(lines: readonly string[], pid: number): { comm: string; path: string }[] {
  return lines.flatMap((l) => {
    const m = l.match(/^(\d+) (\S+) Opening file: (.*)$/);
    return m && Number(m[1]) === pid ? [{ comm: m[2]!, path: m[3]! }] : [];
  });
}

/** The PIDs of the lines "PID <pid> exited…". */
export function exitedPids(lines: readonly string[]): Set<number> {
  return new Set(lines.flatMap((l) => { const m = l.match(/^PID (\d+) exited/); return m ? [Number(m[1])] : []; }));
}

/** opensnoop.bt's run: cat of /etc/hosts and a file named at random, and ls /tmp. */
export interface Opens {
  /** The file named at random (only a script that prints what openat(2) received can show it). */
  readonly random: string;
  readonly catPid: number;
  readonly lsPid: number;
  /** The script's event lines at the last attempt. */
  readonly lines: readonly string[];
  /** Events bpftrace reported lost (perf buffer full). */
  readonly lost: number;
}

/** exits_kprobe.bt or exits_tracepoint.bt's run: reaped children, then one still alive. */
export interface Exits {
  /** The script run (its workspace path under c/). */
  readonly script: string;
  /** Probes bpftrace attached. */
  readonly probes: number;
  /** The children of the last attempt (two `true`, then a forked subshell that never exec'd). */
  readonly pids: readonly number[];
  /** The script's event lines after that attempt. */
  readonly lines: readonly string[];
  readonly lost: number;
  /** `sleep 30`, still running, and whether the script reported it as exited. */
  readonly alivePid: number;
  readonly reportedAlive: boolean;
}

/** `bpftrace -l` of each kind. */
export interface AttachPoints {
  readonly tracepoints: readonly string[];
  readonly kprobes: readonly string[];
  /** The host has kprobes (capabilities). */
  readonly kprobesOk: boolean;
}

/** Each open of cat and ls under its own PID and command name. */
export function opens(e: Opens): Verdict {
  const { lines, catPid, lsPid, random, lost } = e;
  const sample = [...lines.filter((l) => l.startsWith(`${catPid} `) || l.startsWith(`${lsPid} `)).slice(0, 30)];
  const evidence = `bpftrace printed ${lines.length} lines${lost ? ` and lost ${lost} events (perf buffer full)` : ''}; those of cat (pid ${catPid}) and ls (pid ${lsPid}):\n${sample.join('\n') || '(none)'}\nfirst lines:\n${lines.slice(0, 5).join('\n')}`;
  return {
    got: {
      catOpenedHosts: opensOf(lines, catPid).find((o) => o.path === '/etc/hosts')?.comm,
      catOpenedRandom: opensOf(lines, catPid).find((o) => o.path === random)?.comm,
      lsOpenedTmp: opensOf(lines, lsPid).find((o) => o.path === '/tmp')?.comm,
    },
    want: { catOpenedHosts: 'cat', catOpenedRandom: 'cat', lsOpenedTmp: 'ls' },
    message: `your workspace file ebpf/01-bpftrace/opensnoop.bt; cat also opened ${random}\n${evidence}`,
  };
}

/** A child still alive is not reported; every reaped child is. */
export function exits(e: Exits): { alive: Verdict; reaped: Verdict } {
  const seen = exitedPids(e.lines);
  return {
    alive: {
      got: e.reportedAlive,
      want: false,
      message: `your workspace file ${e.script} reported "PID ${e.alivePid} exited" while that process (sleep 30) was still running: print at exit, not at fork or exec`,
    },
    reaped: {
      got: e.pids.map((p) => ({ pid: p, reported: seen.has(p) })),
      want: e.pids.map((p) => ({ pid: p, reported: true })),
      message: `your workspace file ${e.script} (${e.probes} probe) printed ${e.lines.length} lines${e.lost ? ` and lost ${e.lost} events` : ''}, e.g.:\n${e.lines.slice(0, 8).join('\n') || '(none)'}\nexpected "PID <pid> exited" for the reaped children ${e.pids.join(', ')} (the last one a forked subshell that never exec'd)`,
    },
  };
}

/** The tracepoints the lab's scripts attach to. */
export const LAB_TRACEPOINTS = ['tracepoint:syscalls:sys_enter_openat', 'tracepoint:sched:sched_process_exit'];

/** Tracepoints the scripts need are listed; kprobes outnumber them and include do_exit, or there are none (no CONFIG_KPROBES). */
export function attachPoints(a: AttachPoints): Verdict[] {
  const { tracepoints, kprobes } = a;
  const listed: Verdict = {
    got: LAB_TRACEPOINTS.filter((p) => tracepoints.includes(p)),
    want: LAB_TRACEPOINTS,
    message: `bpftrace -l "tracepoint:*" listed ${tracepoints.length}`,
  };
  if (!a.kprobesOk) {
    return [listed, { got: kprobes.length, want: 0, message: 'without CONFIG_KPROBES no kernel function can be kprobed' }];
  }
  return [
    listed,
    { got: kprobes.length > tracepoints.length, want: true, message: 'a kprobe can attach to any traceable kernel function: thousands more than tracepoints' },
    { got: kprobes.includes('kprobe:do_exit'), want: true, message: 'kprobe:do_exit is what the seed attaches to' },
  ];
}
