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
 *
 * The lab's anatomy: experiment.ts runs the commands under mytrace and strace
 * and collects the evidence (`Run`), judge.ts turns it into facts and
 * messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { catRun, exitStatusRun, prepareStrace, shellRun, threadsRun, type Run, type StraceSetup } from './experiment.js';
import * as judge from './judge.js';

let setup: StraceSetup;

/** The same table as strace -c -f, and traced by mytrace itself. */
function expectSame(c: Run, what: string, note = ''): void {
  const s = judge.sameAsStrace(c, what, note);
  expect(s.wrote.fact, s.wrote.message).toBeGreaterThan(0);
  expect(s.names.facts, s.names.message).toEqual(s.names.want);
  expect(s.counts.fact, s.counts.message).toEqual([]);
  expectTracer(c, what);
}

/** The kernel's view of who traced the command (judge.tracer). */
function expectTracer(c: Run, what: string): void {
  const t = judge.tracer(c, what);
  expect(t.commandSeen.fact, t.commandSeen.message).toBeGreaterThan(0);
  expect(t.outlived.fact, t.outlived.message).toEqual([]);
  expect(t.untouched.fact, t.untouched.message).toEqual([]);
  expect(t.resumed.fact, t.resumed.message).toBeGreaterThanOrEqual(t.resumed.atLeast);
  expect(t.reads.fact, t.reads.message).toBeGreaterThanOrEqual(t.reads.atLeast);
  expect(t.delegation.facts, t.delegation.message).toEqual(t.delegation.want);
}

describe('Process Lab 5 — your own strace (系统调用)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await prepareStrace();
  });

  it('counts the system calls of one process (cat of a file of random size) exactly as strace -c -f does, name by name', async (ctx: TestContext) => {
    const { file, run: c } = await catRun(setup);
    expectSame(c, `cat ${file}`);
    recordMetric(ctx, { name: 'system calls of cat (strace -c -f)', value: c.strace.total, unit: 'calls', group: 'syscalls' });
  });

  it('follows the children of a shell (-f): K commands give K+1 execve and the same counts for every call of every process', async () => {
    const { k, sig, script, run: c } = await shellRun(setup);
    const x = judge.execves(c, k);
    expect(x.fact, x.message).toBe(x.want);
    expectSame(c, `sh -c '${script}'`, `. The shell sends itself SIGTRAP and SIG${sig} (kill), and its trap for each opens /dev/null: ` +
      `a signal-delivery-stop must be resumed with its signal, whichever it is (SIGTRAP too: PTRACE_O_TRACESYSGOOD marks syscall-stops as SIGTRAP|0x80, so a plain SIGTRAP is a real signal)`);
  });

  it('follows threads too: T threads × M getppid calls (T, M random) are counted as T × M getppid, and the clones match', async (ctx: TestContext) => {
    const { t, m, run: c } = await threadsRun(setup);
    const g = judge.getppids(c, t, m);
    expect(g.fact, g.message).toBe(g.want);
    expectSame(c, `workload ${t} ${m}`);
    recordMetric(ctx, { name: 'threads traced', value: t, unit: 'threads', group: 'syscalls' });
  });

  it('exits with the traced command\'s exit status (random), also when a child of the command ends after it with another status: that child is traced to its end (its calls counted, mytrace ends after it)', async (ctx) => {
    afterCorrectness(ctx, ['counts the system calls of one process'], "passing on the traced command's exit status");
    const e = await exitStatusRun(setup);
    const x = judge.exitStatus(e.run, e);
    expect(x.fact, x.message).toBe(x.want);
    // The child that outlives the command is traced to its end: mytrace ends after it, and its calls are in the table.
    expectTracer(e.run, `sh -c '${e.script}'`);
    expectSame(e.run, `sh -c '${e.script}'`);
  });
});
