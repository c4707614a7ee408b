/**
 * Process Lab 5 — 系统调用与你自己的 strace (seed 001 §6).
 * The student's `mytrace -o <file> <command…>` counts the system calls of a
 * command and of every process and thread it starts, by name, with
 * ptrace(PTRACE_SYSCALL). The reference is the kernel as strace sees it:
 * `strace -c -f` on the same command, with the same input and output. The
 * commands' sizes are random per run, so no count can be hard-coded.
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
import { requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { countSyscalls, type SyscallSummary } from '../../../helpers/kernel/syscalls.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';

const PTRACE_ENTER = 'syscalls/sys_enter_ptrace';

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
  /** ptrace(2) calls made by mytrace's own process (syscalls:sys_enter_ptrace filtered to its pid), when watched. */
  readonly ptraceCalls?: number;
}

/** Run `file args` under mytrace and under strace -c -f (same stdin, stdout to a pipe, same cwd: dash calls getcwd when $PWD is not the cwd) and compare. */
async function compare(file: string, args: readonly string[], options: { readonly watchTracer?: boolean } = { watchTracer: true }): Promise<Comparison> {
  const out = join(dir, `mytrace-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.txt`);
  // Who does the tracing: the kernel records every ptrace(2) call of mytrace's own pid (not of any child it starts).
  const trace = options.watchTracer ? makeTraceInstance([PTRACE_ENTER], { tag: 'ptr', enable: false, bufferKb: 8192 }) : undefined;
  if (options.watchTracer && !trace) throw new Error(`no tracefs instance with ${PTRACE_ENTER}`);
  const mineRun = trace
    ? await run('sh', ['-c', `echo $$ > ${trace.pidFile} && echo 1 > ${trace.enableFile(PTRACE_ENTER)} && exec "$0" "$@"`, mytrace, '-o', out, file, ...args], { timeoutMs: 60_000, reject: false })
    : await run(mytrace, ['-o', out, file, ...args], { timeoutMs: 60_000, reject: false });
  let ptraceCalls: number | undefined;
  if (trace) {
    trace.setEnabled(false);
    ptraceCalls = trace.read().events.filter((e) => e.pid === mineRun.pid && e.event === 'sys_ptrace').length;
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
  return { mine, strace: summary, differences, onlyMine, onlyStrace, exitCode: mineRun.exitCode, stderr: mineRun.stderr.slice(-600), ...(ptraceCalls === undefined ? {} : { ptraceCalls }) };
}

function table(c: Comparison): string {
  const rows = [...new Set([...c.mine.keys(), ...c.strace.rows.map((r) => r.name)])].sort()
    .map((n) => `  ${n.padEnd(18)} ${String(c.mine.get(n) ?? '-').padStart(7)} ${String(c.strace.calls(n) || '-').padStart(7)}`);
  return `  ${'syscall'.padEnd(18)} mytrace  strace -c -f\n${rows.join('\n')}\nmytrace exit ${c.exitCode}; stderr: ${c.stderr.trim() || '(none)'}`;
}

function expectSame(c: Comparison, what: string): void {
  expect(c.mine.size, `mytrace wrote no "<calls> <name>" line for ${what}.\n${table(c)}`).toBeGreaterThan(0);
  expect({ onlyInMytrace: c.onlyMine, onlyInStrace: c.onlyStrace },
    `the same system call names as strace -c -f for ${what} (exit and exit_group aside): only in mytrace: ${c.onlyMine.join(' ') || 'none'}; only in strace: ${c.onlyStrace.join(' ') || 'none'}\n${table(c)}`)
    .toEqual({ onlyInMytrace: [], onlyInStrace: [] });
  expect(c.differences, `the same count as strace -c -f for every deterministic call of ${what} (timing-dependent: ${[...TIMING].join(' ')}): ${c.differences.join('; ')}\n${table(c)}`).toEqual([]);
  // Each system call stops the tracee twice (entry and exit) and each stop is resumed by a ptrace(2) call of the tracer.
  const calls = [...c.mine.values()].reduce((a, b) => a + b, 0);
  expect(c.ptraceCalls, `syscalls:sys_enter_ptrace events of mytrace's own pid: ${c.ptraceCalls} for the ${calls} system calls it reports for ${what} — ` +
    `mytrace itself must be the tracer (ptrace(2) from its own process), not a tool it runs.\n${table(c)}`).toBeGreaterThanOrEqual(calls);
}

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

describe('Process Lab 5 — your own strace (系统调用)', () => {
  requires('root', 'cc', 'strace', 'tracefs');

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
    const script = Array.from({ length: k }, () => `cat ${file} >/dev/null`).join('; ');
    const c = await compare('/bin/sh', ['-c', script]);
    expect(c.mine.get('execve') ?? 0, `execve: the shell and its ${k} cat commands.\n${table(c)}`).toBe(c.strace.calls('execve'));
    expectSame(c, `sh -c '${script}'`);
  });

  it('follows threads too: T threads × M getppid calls (T, M random) are counted as T × M getppid, and the clones match', async (ctx: TestContext) => {
    const t = rand(2, 8);
    const m = rand(50, 500);
    const c = await compare(workload, [String(t), String(m)]);
    expect(c.mine.get('getppid') ?? 0, `getppid made by ${t} threads × ${m} calls.\n${table(c)}`).toBe(t * m);
    expectSame(c, `workload ${t} ${m}`);
    recordMetric(ctx, { name: 'threads traced', value: t, unit: 'threads', group: 'syscalls' });
  });

  it('exits with the traced command\'s exit status (random), also when a child of the command ends after it with another status', async (ctx) => {
    afterCorrectness(ctx, ['counts the system calls of one process'], "passing on the traced command's exit status");
    const status = rand(4, 120);
    const later = (status % 100) + 121;
    const script = `(sleep 0.3; exit ${later}) & exit ${status}`;
    const c = await compare('/bin/sh', ['-c', script]);
    expect(c.exitCode, `mytrace -o … /bin/sh -c '${script}': the command (the first tracee) exits ${status}; its child, traced too (-f), exits ${later} after it\n${table(c)}`).toBe(status);
  });
});
