/**
 * Process Lab 5's experiment: the student's `mytrace -o <file> <command…>` run
 * on a command (cat of a file of random size, a shell that runs K commands and
 * signals itself, T threads × M getppid calls, a shell whose child outlives it
 * with another status), then `strace -c -f` on the same command (same stdin,
 * stdout to a pipe, same cwd). While mytrace runs, a private tracefs instance
 * follows its process and everything below it (event-fork) from its first
 * instruction: its ptrace(2) calls (syscalls:sys_enter/exit_ptrace: request,
 * target, result), forks, execs and exits (sched). Returns the evidence
 * (`Run`): mytrace's table as parsed, strace's summary, mytrace's exit and the
 * kernel's record of who traced whom. Never throws for a wrong mytrace: a
 * missing table is an empty one; judge.ts and the spec decide.
 */
import { constants, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
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

const REQUEST_NAMES: Record<string, string> = { 0: 'TRACEME', 1: 'PEEKTEXT', 2: 'PEEKDATA', 3: 'PEEKUSER', 7: 'CONT', 8: 'KILL', 9: 'SINGLESTEP', 12: 'GETREGS', 16: 'ATTACH', 17: 'DETACH', 24: 'SYSCALL', 0x4200: 'SETOPTIONS', 0x4206: 'SEIZE', 0x420e: 'GET_SYSCALL_INFO' };
const ERRNO: Record<string, string> = { '-1': 'EPERM', '-3': 'ESRCH', '-5': 'EIO', '-14': 'EFAULT', '-22': 'EINVAL' };

/** The kernel's record of one run under mytrace. */
export interface TracerEvidence {
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

/** One command run under mytrace and under strace -c -f. */
export interface Run {
  /** mytrace's table: calls by name. */
  readonly mine: Map<string, number>;
  readonly strace: SyscallSummary;
  readonly exitCode: number | undefined;
  readonly stderr: string;
  /** What the kernel showed of mytrace as the tracer. */
  readonly tracer: TracerEvidence;
}

/** Parse the tracer's table: lines "<calls> <name>" (or "<name> <calls>"); anything else is ignored. */
export function parseCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const a = line.match(/^\s*(\d+)\s+([a-z_][a-z0-9_]*)\s*$/);
    const b = line.match(/^\s*([a-z_][a-z0-9_]*)[\s:=]+(\d+)\s*$/);
    const [calls, name] = a ? [Number(a[1]), a[2]!] : b ? [Number(b[2]), b[1]!] : [0, ''];
    if (name) out.set(name, (out.get(name) ?? 0) + calls);
  }
  return out;
}

/** Read the run's record (pure): who mytrace is, which tasks ran the command, what mytrace's ptrace calls did to them, and when each ended. */
export function tracerEvidence(events: readonly TraceEvent[], lines: readonly string[], tracerPath: string, file: string): TracerEvidence {
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

/** The built mytrace, the workload (T threads × M getppid) and a scratch directory. */
export interface StraceSetup {
  readonly mytrace: string;
  readonly workload: string;
  readonly dir: string;
}

export async function prepareStrace(): Promise<StraceSetup> {
  const mytrace = (await buildProgram({ src: labSource('process/05-strace/mytrace.c') })).path;
  const workload = (await buildProgram({ src: `${REFERENCE_SRC}/process/05-strace/workload.c`, ldlibs: ['-lpthread'] })).path;
  const dir = await makeTempDir('strace');
  return { mytrace, workload, dir };
}

/** Run `file args` under mytrace, watched by the kernel, and under strace -c -f (same stdin, stdout to a pipe, same cwd: dash calls getcwd when $PWD is not the cwd). */
export async function underMytrace(s: StraceSetup, file: string, args: readonly string[]): Promise<Run> {
  const out = join(s.dir, `mytrace-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.txt`);
  // Who does the tracing: the kernel records mytrace's process and everything below it (event-fork) from its first instruction.
  const trace = makeTraceInstance(TRACER_EVENTS, { tag: 'ptr', enable: false, bufferKb: 8192, recordTgid: true, clock: 'mono' });
  if (!trace) throw new Error(`no tracefs instance with ${TRACER_EVENTS.join(', ')}`);
  writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  const mineRun = await run('sh', ['-c', `echo $$ > ${trace.pidFile} && for f in ${TRACER_EVENTS.map((e) => trace.enableFile(e)).join(' ')}; do echo 1 > $f; done && exec "$0" "$@"`, s.mytrace, '-o', out, file, ...args], { timeoutMs: 60_000, reject: false });
  trace.setEnabled(false);
  const rec = trace.read();
  const tracer = tracerEvidence(rec.events, rec.lines, s.mytrace, file);
  await trace.release();
  // what mytrace wrote, never where a link it put in its place leads (it runs as another uid; the harness reads as root)
  const mine = parseCounts(await readFile(out, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW }).catch(() => ''));
  const { summary } = await countSyscalls(file, args, { reject: false });
  return { mine, strace: summary, exitCode: mineRun.exitCode, stderr: mineRun.stderr.slice(-600), tracer };
}

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
/** Signals the shell of "follows the children" sends itself besides SIGTRAP (one at random): a tracer that passes on only the signals it has seen swallows it. */
const SIGNALS = ['USR1', 'USR2', 'HUP', 'ALRM', 'TERM', 'WINCH'];

/** One process: cat of a file of random size. */
export async function catRun(s: StraceSetup): Promise<{ file: string; run: Run }> {
  const file = join(s.dir, 'input');
  writeFileSync(file, Buffer.alloc(rand(1, 300) * 4096 + rand(0, 4095), 'x'));
  return { file, run: await underMytrace(s, '/bin/cat', [file]) };
}

/** A shell that traps SIGTRAP and one other signal (random), sends itself both, then runs K (random) cat commands. */
export async function shellRun(s: StraceSetup): Promise<{ k: number; sig: string; script: string; run: Run }> {
  const k = rand(2, 6);
  const file = join(s.dir, 'small');
  writeFileSync(file, 'hello\n');
  // The shell also sends itself SIGTRAP and one other signal it traps: each handler it runs opens /dev/null once.
  const sig = SIGNALS[rand(0, SIGNALS.length - 1)]!;
  const traps = `trap 'echo >/dev/null' TRAP ${sig}; kill -TRAP $$; kill -${sig} $$`;
  const script = [traps, ...Array.from({ length: k }, () => `cat ${file} >/dev/null`)].join('; ');
  return { k, sig, script, run: await underMytrace(s, '/bin/sh', ['-c', script]) };
}

/** T threads × M getppid calls (T, M random). */
export async function threadsRun(s: StraceSetup): Promise<{ t: number; m: number; run: Run }> {
  const t = rand(2, 8);
  const m = rand(50, 500);
  return { t, m, run: await underMytrace(s, s.workload, [String(t), String(m)]) };
}

/** A shell that exits with a random status, after a child that exits first with another, while a child that outlives it exits with a third. */
export async function exitStatusRun(s: StraceSetup): Promise<{ status: number; later: number; early: number; script: string; run: Run }> {
  const status = rand(4, 120);
  const later = (status % 100) + 121;
  const early = status < 100 ? status + 1 : status - 1;
  const script = `(exit ${early}); (sleep 0.3; exit ${later}) & exit ${status}`;
  return { status, later, early, script, run: await underMytrace(s, '/bin/sh', ['-c', script]) };
}
