/**
 * Process Lab 5's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`) to the facts each test asserts, with the message that
 * shows the evidence (the two tables side by side, the kernel's record of
 * mytrace's ptrace calls). Unit-tested on made-up runs in
 * tests/lab-units/process/05-strace/judge.test.ts.
 */
import type { Run } from './experiment.js';

/** Programs that trace or count system calls themselves: run below mytrace, they do its work. */
const TRACING_TOOLS = new Set(['strace', 'ltrace', 'perf', 'bpftrace', 'trace-cmd', 'sysdig']);
/**
 * strace -c counts a call when it returns; these never return to the caller, so
 * a tracer counting entries sees them and strace does not: left out of the comparison.
 */
const NO_RETURN = new Set(['exit', 'exit_group']);
/**
 * Calls whose number depends on timing (a wait interrupted by SIGCHLD, a futex
 * that found the lock free): their names must match, their counts may differ.
 * Measured: three strace -c -f runs of each command here gave identical counts
 * for every other call.
 */
export const TIMING = new Set(['wait4', 'futex', 'rt_sigreturn', 'restart_syscall', 'rt_sigsuspend', 'sched_yield', 'nanosleep', 'clock_nanosleep']);

/** Both tables side by side, and mytrace's exit and stderr. */
export function table(c: Run): string {
  const rows = [...new Set([...c.mine.keys(), ...c.strace.rows.map((r) => r.name)])].sort()
    .map((n) => `  ${n.padEnd(18)} ${String(c.mine.get(n) ?? '-').padStart(7)} ${String(c.strace.calls(n) || '-').padStart(7)}`);
  return `  ${'syscall'.padEnd(18)} mytrace  strace -c -f\n${rows.join('\n')}\nmytrace exit ${c.exitCode}; stderr: ${c.stderr.trim() || '(none)'}`;
}

/** mytrace's table against strace's: the names only one has, and "name: mytrace X, strace Y" for every deterministic count that differs. */
export function compareCounts(c: Run): { onlyMine: string[]; onlyStrace: string[]; differences: string[] } {
  const names = new Set([...c.mine.keys(), ...c.strace.rows.map((r) => r.name)].filter((n) => !NO_RETURN.has(n)));
  const onlyMine: string[] = [];
  const onlyStrace: string[] = [];
  const differences: string[] = [];
  for (const n of [...names].sort()) {
    const a = c.mine.get(n) ?? 0;
    const b = c.strace.calls(n);
    if (a && !b) onlyMine.push(n);
    if (b && !a) onlyStrace.push(n);
    if (a !== b && (!TIMING.has(n) || !a || !b)) differences.push(`${n}: mytrace ${a}, strace ${b}`);
  }
  return { onlyMine, onlyStrace, differences };
}

/** The same table as strace -c -f: some line at all (> 0), the same names, the same deterministic counts. */
export function sameAsStrace(c: Run, what: string, note = '') {
  const { onlyMine, onlyStrace, differences } = compareCounts(c);
  return {
    wrote: { fact: c.mine.size, message: `mytrace wrote no "<calls> <name>" line for ${what}.\n${table(c)}` },
    names: {
      facts: { onlyInMytrace: onlyMine, onlyInStrace: onlyStrace },
      want: { onlyInMytrace: [], onlyInStrace: [] },
      message: `the same system call names as strace -c -f for ${what} (exit and exit_group aside): only in mytrace: ${onlyMine.join(' ') || 'none'}; only in strace: ${onlyStrace.join(' ') || 'none'}${note}\n${table(c)}`,
    },
    counts: {
      fact: differences,
      message: `the same count as strace -c -f for every deterministic call of ${what} (timing-dependent: ${[...TIMING].join(' ')}): ${differences.join('; ')}${note}\n${table(c)}`,
    },
  };
}

/**
 * The kernel's view of who traced the command: every task of it (the task that execve'd it and all it created) was
 * resumed by a successful ptrace(2) call of mytrace's own process — at least once per system call mytrace reports,
 * since every call stops its task twice — and mytrace ended only after all of them had; it read which call each
 * stop was; nothing else below it traced or reran the command. Each fact: > 0 (`commandSeen`), [] (`outlived`,
 * `untouched`), ≥ `atLeast` (`resumed`, `reads`), `want` (`delegation`).
 */
export function tracer(c: Run, what: string) {
  const t = c.tracer;
  const tasks = [...t.command].map(([pid, comm]) => `${pid} (${comm})`);
  const calls = [...c.mine.values()].reduce((a, b) => a + b, 0);
  const resumed = [...t.command.keys()].reduce((a, p) => a + (t.resumes.get(p) ?? 0), 0);
  const untouched = [...t.command].filter(([p]) => !t.released.has(p)).map(([p, comm]) => `${p} (${comm})`);
  const ptraceLine = `mytrace (pid ${t.pid ?? '?'}) made ${t.calls} ptrace(2) calls, ${t.failed} failed${t.failedSample.length ? ` (${t.failedSample.join('; ')}${t.failed > 3 ? '; …' : ''})` : ''}; ` +
    `successful resumes (PTRACE_SYSCALL, _CONT…) of the command's tasks: ${resumed}`;
  const late = t.outlived.map((o) => `${o.pid} (${o.comm}) ${Number.isNaN(o.after) ? 'had not ended' : `ended ${(o.after * 1000).toFixed(0)} ms after mytrace`}`);
  // Nothing else below mytrace traces or reruns the command: a tracing tool it starts, or a second copy of the command's programs.
  const base = (f: string) => f.split('/').pop()!;
  const need = new Map<string, number>();
  for (const comm of t.command.values()) need.set(base(comm), (need.get(base(comm)) ?? 0) + 1);
  const have = new Map<string, number>();
  for (const o of t.outside) have.set(base(o.file), (have.get(base(o.file)) ?? 0) + 1);
  const rootFile = [...t.command.values()][0];
  const rerun = need.size > 0 && [...need].every(([f]) => (have.get(f) ?? 0) >= 1) && rootFile !== undefined && (have.get(base(rootFile)) ?? 0) >= 1;
  const tools = t.outside.filter((o) => TRACING_TOOLS.has(base(o.file)));
  const outsideList = t.outside.map((o) => `${o.pid} ${o.file}`).join(', ') || 'none';
  return {
    commandSeen: { fact: t.command.size, message: `the kernel saw no execve of the command below mytrace for ${what} (sched:sched_process_exec)` },
    outlived: {
      fact: late,
      message: `mytrace ended while tasks of ${what} it traces were still running (sched:sched_process_exit): ${late.join(', ')}. ` +
        `It must run until the command and every process and thread it started have ended (waitpid(2) reports none left), then write the table.\n${table(c)}`,
    },
    untouched: {
      fact: untouched,
      message: `tasks of ${what} that no successful ptrace(2) call of mytrace's own process ever resumed — someone else traced them, or nobody: ${untouched.slice(0, 8).join(', ')}` +
        `${untouched.length > 8 ? ', …' : ''} (of ${tasks.length}). ${ptraceLine}. mytrace itself must trace every process and thread of the command, not a tool it runs.\n${table(c)}`,
    },
    resumed: {
      fact: resumed,
      atLeast: calls,
      message: `${ptraceLine}, for the ${calls} system calls it reports for ${what}: each call stops its task at entry and at exit, and each stop must be resumed by mytrace ` +
        `(calls on other processes, or that fail, do not count).\n${table(c)}`,
    },
    // Resuming is not counting: at a syscall-stop the tracer must ask the kernel which call it is.
    reads: {
      fact: t.reads,
      atLeast: calls,
      message: `${ptraceLine}; successful ptrace(2) calls of mytrace that read which system call a task of the command is in ` +
        `(PTRACE_GET_SYSCALL_INFO, PTRACE_GETREGS, PTRACE_GETREGSET, PTRACE_PEEKUSER): ${t.reads}, for the ${calls} system calls it reports for ${what}. ` +
        `Each counted call must come from a syscall-stop where mytrace asked the kernel which call it was; counts read elsewhere (another tracer, tracefs, a second run) are not mytrace's.\n${table(c)}`,
    },
    delegation: {
      facts: { tracingTools: tools.map((o) => base(o.file)), secondCopyOfTheCommand: rerun, otherProcessesCallingPtrace: t.otherTracers.map((o) => `${o.pid} (${o.calls} calls)`) },
      want: { tracingTools: [], secondCopyOfTheCommand: false, otherProcessesCallingPtrace: [] },
      message: `programs mytrace (pid ${t.pid ?? '?'}) started outside the command's tree for ${what} (sched:sched_process_exec): ${outsideList}; processes below mytrace other than mytrace ` +
        `that called ptrace(2): ${t.otherTracers.map((o) => `${o.pid} (${o.calls} calls)`).join(', ') || 'none'}. mytrace must count the command it runs by tracing it itself: ` +
        `no strace or other tracer below it, no second run of the command whose calls it reports instead.\n${table(c)}`,
    },
  };
}

/** -f: the shell and its K commands, each an execve in both tables. */
export function execves(c: Run, k: number) {
  return { fact: c.mine.get('execve') ?? 0, want: c.strace.calls('execve'), message: `execve: the shell and its ${k} cat commands.\n${table(c)}` };
}

/** Threads: T × M getppid, every one counted. */
export function getppids(c: Run, t: number, m: number) {
  return { fact: c.mine.get('getppid') ?? 0, want: t * m, message: `getppid made by ${t} threads × ${m} calls.\n${table(c)}` };
}

/** mytrace's own exit status is the command's. */
export function exitStatus(c: Run, e: { status: number; later: number; early: number; script: string }) {
  return {
    fact: c.exitCode,
    want: e.status,
    message: `mytrace -o … /bin/sh -c '${e.script}': the command (the first tracee) exits ${e.status}; its child, traced too (-f), exits ${e.later} after it, ` +
      `and a child it started before exits ${e.early} first. mytrace's status is the one waitpid(2) reports for the command's own pid (WEXITSTATUS, or 128 + WTERMSIG), whoever else ends first or last\n${table(c)}`,
  };
}
