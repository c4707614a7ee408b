/**
 * Process Lab 5 — 系统调用与你自己的 strace (seed 001 §6).
 * The student's `mytrace -o <file> <command…>` counts the system calls of a
 * command and of every process and thread it starts, by name, with
 * ptrace(PTRACE_SYSCALL). The reference is the kernel as strace sees it:
 * `strace -c -f` on the same command, with the same input and output. The
 * commands' sizes are random per run, so no count can be hard-coded. The
 * kernel also says who traced: every task of the command resumed by successful
 * ptrace(2) calls of mytrace's own process (syscalls:sys_enter/exit_ptrace,
 * request, target and result), and mytrace's exit after all of theirs
 * (sched:sched_process_exit).
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { countSyscalls, type SyscallSummary } from '../../../helpers/kernel/syscalls.js';
import { makeTraceInstance, pairSyscalls, type TraceEvent } from '../../../helpers/kernel/tracefs.js';

/**
 * What the kernel records of the run under mytrace (its own process and, event-fork, everything below it): each
 * ptrace(2) call with its request, target and result, each fork/clone, each execve, each task's exit.
 */
const TRACER_EVENTS = ['syscalls/sys_enter_ptrace', 'syscalls/sys_exit_ptrace', 'sched/sched_process_fork', 'sched/sched_process_exec', 'sched/sched_process_exit'];
/** ptrace requests that resume a stopped tracee: PTRACE_CONT, PTRACE_SINGLESTEP, PTRACE_SYSCALL, PTRACE_SYSEMU(_SINGLESTEP). */
const RESUME_REQUESTS = new Set([7n, 9n, 24n, 31n, 32n]);
/** …and those that let it go on otherwise: PTRACE_DETACH, PTRACE_LISTEN. */
const RELEASE_REQUESTS = new Set([17n, 0x4208n]);
/**
 * Requests that read which system call a stopped tracee is in: PTRACE_PEEKUSER (orig_rax), PTRACE_GETREGS,
 * PTRACE_GETREGSET, PTRACE_GET_SYSCALL_INFO. A tracer that counts calls asks one of them at least once per call.
 */
const READ_REQUESTS = new Set([3n, 12n, 0x4204n, 0x420en]);
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
const TIMING = new Set(['wait4', 'futex', 'rt_sigreturn', 'restart_syscall', 'rt_sigsuspend', 'sched_yield', 'nanosleep', 'clock_nanosleep']);

let mytrace = '';
let workload = '';
let dir = '';

/** Parse the tracer's table: lines "<calls> <name>" (or "<name> <calls>"); anything else is ignored. */
function parseCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const a = line.match(/^\s*(\d+)\s+([a-z_][a-z0-9_]*)\s*$/);
    const b = line.match(/^\s*([a-z_][a-z0-9_]*)[\s:=]+(\d+)\s*$/);
    const [calls, name] = a ? [Number(a[1]), a[2]!] : b ? [Number(b[2]), b[1]!] : [0, ''];
    if (name) out.set(name, (out.get(name) ?? 0) + calls);
  }
  return out;
}

interface Comparison {
  readonly mine: Map<string, number>;
  readonly strace: SyscallSummary;
  /** "name: mytrace X, strace Y" for every name whose count or presence differs. */
  readonly differences: string[];
  readonly onlyMine: string[];
  readonly onlyStrace: string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;
  /** What the kernel showed of mytrace as the tracer, when watched. */
  readonly tracer?: TracerEvidence;
}

/** The kernel's record of one run under mytrace. */
interface TracerEvidence {
  /** mytrace's pid (its execve in the trace). */
  readonly pid?: number;
  /** The task that execve'd the command (below mytrace), and every task it and its descendants created: tid → comm. */
  readonly command: ReadonlyMap<number, string>;
  /** ptrace(2) calls of mytrace's own process: all, failed, and successful resumes per target task. */
  readonly calls: number;
  readonly failed: number;
  readonly failedSample: string[];
  readonly resumes: ReadonlyMap<number, number>;
  readonly released: ReadonlySet<number>;
  /** Successful ptrace(2) calls of mytrace that read a command task's registers or syscall info (READ_REQUESTS). */
  readonly reads: number;
  /** Programs started below mytrace outside the command's tree ("pid file"), and processes there that called ptrace(2). */
  readonly outside: { pid: number; file: string }[];
  readonly otherTracers: { pid: number; calls: number }[];
  /** Command tasks whose exit the kernel recorded after mytrace's own, or never while watched (seconds after mytrace's exit, or NaN). */
  readonly outlived: { pid: number; comm: string; after: number }[];
}

const REQUEST_NAMES: Record<string, string> = { 0: 'TRACEME', 1: 'PEEKTEXT', 2: 'PEEKDATA', 3: 'PEEKUSER', 7: 'CONT', 8: 'KILL', 9: 'SINGLESTEP', 12: 'GETREGS', 16: 'ATTACH', 17: 'DETACH', 24: 'SYSCALL', 0x4200: 'SETOPTIONS', 0x4206: 'SEIZE', 0x420e: 'GET_SYSCALL_INFO' };
const ERRNO: Record<string, string> = { '-1': 'EPERM', '-3': 'ESRCH', '-5': 'EIO', '-14': 'EFAULT', '-22': 'EINVAL' };

/** Read the run's record (pure): who mytrace is, which tasks ran the command, what mytrace's ptrace calls did to them, and when each ended. */
function tracerEvidence(events: readonly TraceEvent[], lines: readonly string[], tracerPath: string, file: string): TracerEvidence {
  const execs = events.filter((e) => e.event === 'sched_process_exec').map((e) => ({ e, m: e.body.match(/^filename=(.*) pid=(\d+) old_pid=(\d+)$/) }));
  const pid = Number(execs.find((x) => x.m?.[1] === tracerPath)?.m?.[2] ?? NaN);
  const command = new Map<number, string>();
  const root = execs.find((x) => x.m?.[1] === file && Number(x.m[2]) !== pid);
  if (root) command.set(Number(root.m![2]), file.split('/').pop()!);
  // Forks and clones in the order the kernel recorded them: a task joins the command when its parent is in it.
  for (const e of events) {
    const f = e.event === 'sched_process_fork' ? e.body.match(/pid=(\d+) child_comm=(.*) child_pid=(\d+)$/) : undefined;
    if (f && command.has(Number(f[1]))) command.set(Number(f[3]), f[2]!);
    const x = e.event === 'sched_process_exec' ? e.body.match(/^filename=(.*) pid=(\d+) old_pid=(\d+)$/) : undefined;
    if (x && command.has(Number(x[3]))) command.set(Number(x[2]), x[1]!.split('/').pop()!);
  }
  const all = pairSyscalls(lines, ['ptrace']);
  const mine = all.filter((c) => (c.tgid ?? c.pid) === pid);
  let reads = 0;
  for (const c of mine) if (c.ret !== undefined && c.ret >= 0n && READ_REQUESTS.has(c.args.get('request') ?? -1n) && command.has(Number(c.args.get('pid') ?? 0n))) reads++;
  const outside = execs.filter((x) => x.m && Number(x.m[2]) !== pid && !command.has(Number(x.m[2]))).map((x) => ({ pid: Number(x.m![2]), file: x.m![1]! }));
  const others = new Map<number, number>();
  for (const c of all) { const g = c.tgid ?? c.pid; if (g !== pid && !command.has(c.pid)) others.set(g, (others.get(g) ?? 0) + 1); }
  const otherTracers = [...others].map(([p, calls]) => ({ pid: p, calls }));
  const resumes = new Map<number, number>();
  const released = new Set<number>();
  const failedCalls = mine.filter((c) => c.ret !== undefined && c.ret < 0n);
  for (const c of mine.filter((c) => c.ret === 0n)) {
    const req = c.args.get('request') ?? -1n;
    const target = Number(c.args.get('pid') ?? 0n);
    if (RESUME_REQUESTS.has(req)) resumes.set(target, (resumes.get(target) ?? 0) + 1);
    if (RESUME_REQUESTS.has(req) || RELEASE_REQUESTS.has(req)) released.add(target);
  }
  const exits = new Map(events.filter((e) => e.event === 'sched_process_exit').map((e) => [e.pid, e.ts]));
  const tracerExit = exits.get(pid);
  const outlived = [...command].flatMap(([t, comm]) => {
    const at = exits.get(t);
    return tracerExit !== undefined && (at === undefined || at > tracerExit) ? [{ pid: t, comm, after: at === undefined ? NaN : at - tracerExit }] : [];
  });
  const failedSample = failedCalls.slice(0, 3).map((c) => {
    const req = c.args.get('request') ?? -1n;
    return `ptrace(PTRACE_${REQUEST_NAMES[req.toString()] ?? `0x${req.toString(16)}`}, ${c.args.get('pid')}) = ${ERRNO[String(c.ret)] ?? c.ret}`;
  });
  return { ...(Number.isFinite(pid) ? { pid } : {}), command, calls: mine.length, failed: failedCalls.length, failedSample, resumes, released, outlived, reads, outside, otherTracers };
}


/** Run `file args` under mytrace and under strace -c -f (same stdin, stdout to a pipe, same cwd: dash calls getcwd when $PWD is not the cwd) and compare. */
async function compare(file: string, args: readonly string[], options: { readonly watchTracer?: boolean } = { watchTracer: true }): Promise<Comparison> {
  const out = join(dir, `mytrace-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.txt`);
  // Who does the tracing: the kernel records mytrace's process and everything below it (event-fork) from its first instruction.
  const trace = options.watchTracer ? makeTraceInstance(TRACER_EVENTS, { tag: 'ptr', enable: false, bufferKb: 8192, recordTgid: true, clock: 'mono' }) : undefined;
  if (options.watchTracer && !trace) throw new Error(`no tracefs instance with ${TRACER_EVENTS.join(', ')}`);
  if (trace) writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  const mineRun = trace
    ? await run('sh', ['-c', `echo $$ > ${trace.pidFile} && for f in ${TRACER_EVENTS.map((e) => trace.enableFile(e)).join(' ')}; do echo 1 > $f; done && exec "$0" "$@"`, mytrace, '-o', out, file, ...args], { timeoutMs: 60_000, reject: false })
    : await run(mytrace, ['-o', out, file, ...args], { timeoutMs: 60_000, reject: false });
  let tracer: TracerEvidence | undefined;
  if (trace) {
    trace.setEnabled(false);
    const rec = trace.read();
    tracer = tracerEvidence(rec.events, rec.lines, mytrace, file);
    await trace.release();
  }
  const mine = parseCounts(await readFile(out, 'utf8').catch(() => ''));
  const { summary } = await countSyscalls(file, args, { reject: false });
  const names = new Set([...mine.keys(), ...summary.rows.map((r) => r.name)].filter((n) => !NO_RETURN.has(n)));
  const onlyMine: string[] = [];
  const onlyStrace: string[] = [];
  const differences: string[] = [];
  for (const n of [...names].sort()) {
    const a = mine.get(n) ?? 0;
    const b = summary.calls(n);
    if (a && !b) onlyMine.push(n);
    if (b && !a) onlyStrace.push(n);
    if (a !== b && (!TIMING.has(n) || !a || !b)) differences.push(`${n}: mytrace ${a}, strace ${b}`);
  }
  return { mine, strace: summary, differences, onlyMine, onlyStrace, exitCode: mineRun.exitCode, stderr: mineRun.stderr.slice(-600), ...(tracer ? { tracer } : {}) };
}

function table(c: Comparison): string {
  const rows = [...new Set([...c.mine.keys(), ...c.strace.rows.map((r) => r.name)])].sort()
    .map((n) => `  ${n.padEnd(18)} ${String(c.mine.get(n) ?? '-').padStart(7)} ${String(c.strace.calls(n) || '-').padStart(7)}`);
  return `  ${'syscall'.padEnd(18)} mytrace  strace -c -f\n${rows.join('\n')}\nmytrace exit ${c.exitCode}; stderr: ${c.stderr.trim() || '(none)'}`;
}

function expectSame(c: Comparison, what: string, note = ''): void {
  expect(c.mine.size, `mytrace wrote no "<calls> <name>" line for ${what}.\n${table(c)}`).toBeGreaterThan(0);
  expect({ onlyInMytrace: c.onlyMine, onlyInStrace: c.onlyStrace },
    `the same system call names as strace -c -f for ${what} (exit and exit_group aside): only in mytrace: ${c.onlyMine.join(' ') || 'none'}; only in strace: ${c.onlyStrace.join(' ') || 'none'}${note}\n${table(c)}`)
    .toEqual({ onlyInMytrace: [], onlyInStrace: [] });
  expect(c.differences, `the same count as strace -c -f for every deterministic call of ${what} (timing-dependent: ${[...TIMING].join(' ')}): ${c.differences.join('; ')}${note}\n${table(c)}`).toEqual([]);
  expectTracer(c, what);
}

/**
 * The kernel's view of who traced the command: every task of it (the task that execve'd it and all it created) was
 * resumed by a successful ptrace(2) call of mytrace's own process — at least once per system call mytrace reports,
 * since every call stops its task twice — and mytrace ended only after all of them had.
 */
function expectTracer(c: Comparison, what: string): void {
  const t = c.tracer!;
  const tasks = [...t.command].map(([pid, comm]) => `${pid} (${comm})`);
  const calls = [...c.mine.values()].reduce((a, b) => a + b, 0);
  const resumed = [...t.command.keys()].reduce((a, p) => a + (t.resumes.get(p) ?? 0), 0);
  const untouched = [...t.command].filter(([p]) => !t.released.has(p)).map(([p, comm]) => `${p} (${comm})`);
  const ptraceLine = `mytrace (pid ${t.pid ?? '?'}) made ${t.calls} ptrace(2) calls, ${t.failed} failed${t.failedSample.length ? ` (${t.failedSample.join('; ')}${t.failed > 3 ? '; …' : ''})` : ''}; ` +
    `successful resumes (PTRACE_SYSCALL, _CONT…) of the command's tasks: ${resumed}`;
  expect(t.command.size, `the kernel saw no execve of the command below mytrace for ${what} (sched:sched_process_exec)`).toBeGreaterThan(0);
  const late = t.outlived.map((o) => `${o.pid} (${o.comm}) ${Number.isNaN(o.after) ? 'had not ended' : `ended ${(o.after * 1000).toFixed(0)} ms after mytrace`}`);
  expect(late, `mytrace ended while tasks of ${what} it traces were still running (sched:sched_process_exit): ${late.join(', ')}. ` +
    `It must run until the command and every process and thread it started have ended (waitpid(2) reports none left), then write the table.\n${table(c)}`).toEqual([]);
  expect(untouched, `tasks of ${what} that no successful ptrace(2) call of mytrace's own process ever resumed — someone else traced them, or nobody: ${untouched.slice(0, 8).join(', ')}` +
    `${untouched.length > 8 ? ', …' : ''} (of ${tasks.length}). ${ptraceLine}. mytrace itself must trace every process and thread of the command, not a tool it runs.\n${table(c)}`).toEqual([]);
  expect(resumed, `${ptraceLine}, for the ${calls} system calls it reports for ${what}: each call stops its task at entry and at exit, and each stop must be resumed by mytrace ` +
    `(calls on other processes, or that fail, do not count).\n${table(c)}`).toBeGreaterThanOrEqual(calls);
  // Resuming is not counting: at a syscall-stop the tracer must ask the kernel which call it is.
  expect(t.reads, `${ptraceLine}; successful ptrace(2) calls of mytrace that read which system call a task of the command is in ` +
    `(PTRACE_GET_SYSCALL_INFO, PTRACE_GETREGS, PTRACE_GETREGSET, PTRACE_PEEKUSER): ${t.reads}, for the ${calls} system calls it reports for ${what}. ` +
    `Each counted call must come from a syscall-stop where mytrace asked the kernel which call it was; counts read elsewhere (another tracer, tracefs, a second run) are not mytrace's.\n${table(c)}`)
    .toBeGreaterThanOrEqual(calls);
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
  expect({ tracingTools: tools.map((o) => base(o.file)), secondCopyOfTheCommand: rerun, otherProcessesCallingPtrace: t.otherTracers.map((o) => `${o.pid} (${o.calls} calls)`) },
    `programs mytrace (pid ${t.pid ?? '?'}) started outside the command's tree for ${what} (sched:sched_process_exec): ${outsideList}; processes below mytrace other than mytrace ` +
    `that called ptrace(2): ${t.otherTracers.map((o) => `${o.pid} (${o.calls} calls)`).join(', ') || 'none'}. mytrace must count the command it runs by tracing it itself: ` +
    `no strace or other tracer below it, no second run of the command whose calls it reports instead.\n${table(c)}`)
    .toEqual({ tracingTools: [], secondCopyOfTheCommand: false, otherProcessesCallingPtrace: [] });
}

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
/** Signals the shell of "follows the children" sends itself besides SIGTRAP (one at random): a tracer that passes on only the signals it has seen swallows it. */
const SIGNALS = ['USR1', 'USR2', 'HUP', 'ALRM', 'TERM', 'WINCH'];

describe('Process Lab 5 — your own strace (系统调用)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    mytrace = (await buildProgram({ src: labSource('process/05-strace/mytrace.c') })).path;
    workload = (await buildProgram({ src: `${REFERENCE_SRC}/process/05-strace/workload.c`, ldlibs: ['-lpthread'] })).path;
    dir = await makeTempDir('strace');
  });

  it('counts the system calls of one process (cat of a file of random size) exactly as strace -c -f does, name by name', async (ctx: TestContext) => {
    const file = join(dir, 'input');
    writeFileSync(file, Buffer.alloc(rand(1, 300) * 4096 + rand(0, 4095), 'x'));
    const c = await compare('/bin/cat', [file]);
    expectSame(c, `cat ${file}`);
    recordMetric(ctx, { name: 'system calls of cat (strace -c -f)', value: c.strace.total, unit: 'calls', group: 'syscalls' });
  });

  it('follows the children of a shell (-f): K commands give K+1 execve and the same counts for every call of every process', async () => {
    const k = rand(2, 6);
    const file = join(dir, 'small');
    writeFileSync(file, 'hello\n');
    // The shell also sends itself SIGTRAP and one other signal it traps: each handler it runs opens /dev/null once.
    const sig = SIGNALS[rand(0, SIGNALS.length - 1)]!;
    const traps = `trap 'echo >/dev/null' TRAP ${sig}; kill -TRAP $$; kill -${sig} $$`;
    const script = [traps, ...Array.from({ length: k }, () => `cat ${file} >/dev/null`)].join('; ');
    const c = await compare('/bin/sh', ['-c', script]);
    expect(c.mine.get('execve') ?? 0, `execve: the shell and its ${k} cat commands.\n${table(c)}`).toBe(c.strace.calls('execve'));
    expectSame(c, `sh -c '${script}'`, `. The shell sends itself SIGTRAP and SIG${sig} (kill), and its trap for each opens /dev/null: ` +
      `a signal-delivery-stop must be resumed with its signal, whichever it is (SIGTRAP too: PTRACE_O_TRACESYSGOOD marks syscall-stops as SIGTRAP|0x80, so a plain SIGTRAP is a real signal)`);
  });

  it('follows threads too: T threads × M getppid calls (T, M random) are counted as T × M getppid, and the clones match', async (ctx: TestContext) => {
    const t = rand(2, 8);
    const m = rand(50, 500);
    const c = await compare(workload, [String(t), String(m)]);
    expect(c.mine.get('getppid') ?? 0, `getppid made by ${t} threads × ${m} calls.\n${table(c)}`).toBe(t * m);
    expectSame(c, `workload ${t} ${m}`);
    recordMetric(ctx, { name: 'threads traced', value: t, unit: 'threads', group: 'syscalls' });
  });

  it('exits with the traced command\'s exit status (random), also when a child of the command ends after it with another status: that child is traced to its end (its calls counted, mytrace ends after it)', async (ctx) => {
    afterCorrectness(ctx, ['counts the system calls of one process'], "passing on the traced command's exit status");
    const status = rand(4, 120);
    const later = (status % 100) + 121;
    const early = status < 100 ? status + 1 : status - 1;
    const script = `(exit ${early}); (sleep 0.3; exit ${later}) & exit ${status}`;
    const c = await compare('/bin/sh', ['-c', script]);
    expect(c.exitCode, `mytrace -o … /bin/sh -c '${script}': the command (the first tracee) exits ${status}; its child, traced too (-f), exits ${later} after it, ` +
      `and a child it started before exits ${early} first. mytrace's status is the one waitpid(2) reports for the command's own pid (WEXITSTATUS, or 128 + WTERMSIG), whoever else ends first or last\n${table(c)}`).toBe(status);
    // The child that outlives the command is traced to its end: mytrace ends after it, and its calls are in the table.
    expectTracer(c, `sh -c '${script}'`);
    expectSame(c, `sh -c '${script}'`);
  });
});
