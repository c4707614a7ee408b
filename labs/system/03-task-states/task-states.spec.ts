/**
 * System Lab 3 — 进程调度: task states (seed 003 进程调度 §2–3).
 * The student's `task_states` reads commands on stdin (R S D T t Z W); the
 * spec asks for each state in a random order and random counts (D at least
 * twice) and judges each printed pid by the kernel alone: the state letter in
 * /proc/<pid>/stat sampled over a second, its CPU time, wchan and stack,
 * TracerPid and pending signals in /proc/<pid>/status, and in a private
 * tracefs instance the child's sched_switch prev_state, its exit and the
 * signals generated for and delivered to it. Then it acts: SIGCONT to T and
 * t, SIGSTOP/SIGCONT to S, SIGTERM to a D child (caught: it stays asleep
 * until its vfork child is killed), SIGKILL to another (killable), W, and the
 * end of input.
 *
 * The lab's anatomy: experiment.ts runs the program and collects the evidence
 * (`Run`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { buildTaskStates, ORDER, runTaskStates, WINDOW_MS, type Run } from './experiment.js';
import * as judge from './judge.js';

let program: string;
let ran: Promise<Run> | undefined;
/** The program's one run, shared by the tests (the first test to ask starts it). */
const once = () => (ran ??= runTaskStates(program));

/** Each child of one state must meet `expected`; none asked is a failure of the run, not a pass. */
function each(rows: { facts: object; expected: object; message: string }[], state: string) {
  expect(rows.length, `no '${state}' child was asked for in this run (order ${ORDER.join(' ')})`).toBeGreaterThan(0);
  for (const r of rows) expect(r.facts, r.message).toEqual(r.expected);
}

describe('System Lab 3 — task states (进程调度：进程状态)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    program = await buildTaskStates();
  });

  it('each command makes one new child of the program and prints its pid (7–13 commands in a random order)', async () => {
    const r = await once();
    const a = judge.answers(r);
    expect(a.facts, a.message).toEqual({ answered: ORDER.length, distinct: ORDER.length, childrenOfTheProgram: ORDER.length });
  });

  it('R: the child runs — state R throughout, its CPU time grows, it leaves the CPU only still runnable (prev_state R), never asleep', async (ctx) => {
    const r = await once();
    const rows = judge.running(r, WINDOW_MS);
    each(rows, 'R');
    const c = r.children.find((x) => x.asked === 'R' && x.runNs !== undefined);
    if (c) recordMetric(ctx, { name: 'R child CPU share over the window', value: Math.round((c.runNs! / (WINDOW_MS * 1e6)) * 100), unit: '%', group: 'task states' });
  });

  it('S: the child sleeps interruptibly — state S, no CPU, prev_state=S; a signal wakes it: SIGSTOP stops it at once, SIGCONT puts it back to sleep', async () => {
    each(judge.sleeping(await once()), 'S');
  });

  it('D: the child sleeps uninterruptibly in the vfork wait — state D, no CPU, prev_state=D, wchan/stack in kernel_clone', async () => {
    each(judge.uninterruptible(await once()), 'D');
  });

  it('D ignores a caught SIGTERM while it waits (still D, SIGTERM pending) and takes it when the wait ends (signal_deliver after its vfork child exits)', async () => {
    const t = judge.termWhileWaiting(await once());
    expect(t.facts, t.message).toEqual({ tested: true, vforkChild: true, stillD: 'D', termCaught: true, termPending: true, wokeWhenTheWaitEnded: true, deliveredAfterTheWait: true });
  });

  it('the vfork wait is killable: SIGKILL ends a D child at once, while its vfork child still lives', async () => {
    const k = judge.killedWhileWaiting(await once());
    expect(k.facts, k.message).toEqual({ tested: true, vforkChildAlive: true, ended: true, exitedFirst: true, vforkChildDiedWithIt: true });
  });

  it('T: the child is in a group stop by a stop signal (signal_generate), not traced, prev_state=T; SIGCONT continues it', async () => {
    each(judge.stopped(await once()), 'T');
  });

  it('t: the child is in a ptrace stop of the program (TracerPid), prev_state=t; SIGCONT does not move it', async () => {
    each(judge.traced(await once()), 't');
  });

  it('Z: the child has exited (sched_process_exit, prev_state=Z) but stays a zombie of the program until W reaps it; W leaves the live children alone', async () => {
    each(judge.zombies(await once()), 'Z');
  });

  it('at the end of its input the program ends and reaps every child before it exits 0 by itself (no zombie left for the reaper)', async (ctx) => {
    afterCorrectness(ctx, ['each command makes one new child'], 'ending its children');
    const e = judge.ending(await once());
    expect(e.facts, e.message).toEqual({ exit: 'exit 0', childrenOutlivingIt: [], survivors: [], zombiesLeftForTheReaper: 0 });
  });
});
