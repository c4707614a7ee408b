/** System Lab 3's verdicts (labs/system/03-task-states/judge.ts) on made-up runs: switches, signals, the D tests, zombies, the end. */
import { describe, expect, it } from 'vitest';
import type { Child, ProcView, Run, TaskState } from '../../../../labs/system/03-task-states/experiment.js';
import {
  answers, ending, killedWhileWaiting, LOST_NOTE, parseSignal, running, sleeping, stopped, termWhileWaiting, traced, uninterruptible, windowEnd, zombies,
} from '../../../../labs/system/03-task-states/judge.js';
import { parseSwitch } from '../../../../helpers/kernel/sched.js';
import type { ProcStat } from '../../../../helpers/kernel/procfs.js';
import type { TraceEvent } from '../../../../helpers/kernel/tracefs.js';

const PROG = 100;
const stat = (pid: number, state: string, ppid = PROG) => ({ pid, state, ppid, comm: 'task_states' } as ProcStat);
const view = (pid: number, state: string, extra: Partial<ProcView> = {}): ProcView => ({ stat: stat(pid, state), tgid: pid, tasks: [pid], caught: 0x4000n, tracerPid: 0, pending: 0n, wchan: '0', stack: [], ...extra });
const child = (asked: TaskState, pid: number, state: string = asked, extra: Partial<Child> = {}): Child =>
  ({ asked, line: String(pid), pid, seen: [state], view: view(pid, state), samples: Array<string>(20).fill(state), runNs: 0, switches: 0, ...extra });
const sw = (ts: number, prev: number, state: string): TraceEvent =>
  ({ pid: prev, tgid: prev, ts, event: 'sched_switch', body: `prev_comm=task_states prev_pid=${prev} prev_prio=120 prev_state=${state} ==> next_comm=swapper/0 next_pid=0 next_prio=120` });
const exit = (ts: number, pid: number): TraceEvent => ({ pid, tgid: pid, ts, event: 'sched_process_exit', body: `comm=task_states pid=${pid} prio=120 group_dead=1` });
const mark = (ts: number): TraceEvent => ({ pid: 1, ts, event: 'tracing_mark_write', body: 'kl-task-states: window over' });

function run(children: Child[], events: TraceEvent[], extra: Partial<Run> = {}): Run {
  return {
    pid: PROG, order: children.map((c) => c.asked), children, events, lost: false, survivors: [], output: '',
    actions: { continued: new Map(), tracedAfterCont: new Map(), sleepStop: new Map(), released: new Map() },
    ...extra,
  };
}

describe('System Lab 3 judge', () => {
  it('parses sched_switch and the signal events', () => {
    expect(parseSwitch(sw(1, 5, 'R+'))).toMatchObject({ prevPid: 5, prevState: 'R+', nextPid: 0 });
    expect(parseSignal({ pid: 100, ts: 1, event: 'signal_generate', body: 'sig=19 errno=0 code=0 comm=task_states pid=101 grp=1 res=0' }))
      .toEqual({ sig: 19, target: 101, res: 0 });
    expect(parseSignal({ pid: 101, ts: 1, event: 'signal_deliver', body: 'sig=15 errno=0 code=0 sa_handler=401136 sa_flags=14000000' })).toEqual({ sig: 15, target: 101 });
    expect(windowEnd(run([], [mark(7)]))).toBe(7);
  });

  it('answers: every command a distinct child of the program', () => {
    const r = run([child('R', 101), child('S', 102), { asked: 'Z', line: '-1', seen: [], samples: [] }], []);
    expect(answers(r).facts).toEqual({ answered: 2, distinct: 2, childrenOfTheProgram: 2 });
  });

  it('R: runs, and a switch into sleep gives a napping child away', () => {
    const busy = child('R', 101, 'R', { runNs: 600e6 });
    expect(running(run([busy], [sw(1, 101, 'R+'), mark(2)]), 1000)[0]!.facts).toMatchObject({ ran: true, sleepingSwitches: 0, window: true });
    const nap = child('R', 101, 'R', { runNs: 5e6, samples: ['S', 'R', 'S'] });
    expect(running(run([nap], [sw(1, 101, 'S'), mark(2)]), 1000)[0]!.facts).toMatchObject({ ran: false, sleepingSwitches: 1, window: false });
  });

  it('says with every child\'s evidence, and at the end, when the trace lost events (a missing event may be the trace\'s)', () => {
    const c = child('T', 104, 'S');
    for (const lost of [false, true]) {
      const r = run([c], [], { lost });
      for (const m of [stopped(r)[0]!.message, sleeping(run([child('S', 102)], [], { lost }))[0]!.message, ending(r).message]) {
        if (lost) expect(m).toContain(LOST_NOTE);
        else expect(m).not.toContain('lost');
      }
    }
  });

  it('S and D: the last switch before the window mark, not the ones after', () => {
    const s = child('S', 102);
    const r = run([s], [sw(1, 102, 'S'), mark(2), sw(3, 102, 'T')]);
    r.actions.sleepStop.set(102, { stopped: 'T', resumed: 'S' });
    expect(sleeping(r)[0]!.facts).toEqual({ child: true, state: 'S', window: true, idle: true, lastSwitch: 'S', stopped: 'T', resumed: 'S' });
    const d = child('D', 103, 'D', { view: view(103, 'D', { wchan: 'kernel_clone' }) });
    expect(uninterruptible(run([d], [sw(1, 103, 'D'), mark(2)]))[0]!.facts).toMatchObject({ lastSwitch: 'D', inVforkWait: true });
    const fake = child('D', 103, 'S', { view: view(103, 'S', { wchan: '__do_sys_pause' }) });
    expect(uninterruptible(run([fake], []))[0]!.facts).toMatchObject({ state: 'S', inVforkWait: false });
  });

  it('D and SIGTERM: pending while waiting, delivered after the vfork child exits; an uncaught SIGTERM is named', () => {
    const deliver: TraceEvent = { pid: 103, ts: 5, event: 'signal_deliver', body: 'sig=15 errno=0 code=0 sa_handler=1 sa_flags=0' };
    const r = run([child('D', 103)], [exit(4, 104), deliver]);
    r.actions.termed = { pid: 103, vforkKids: [104], afterTerm: view(103, 'D', { pending: 0x4000n }), afterEnd: view(103, 'Z') };
    expect(termWhileWaiting(r).facts).toEqual({ tested: true, vforkChild: true, stillD: 'D', termCaught: true, termPending: true, wokeWhenTheWaitEnded: true, deliveredAfterTheWait: true });
    const blocked = run([child('D', 103)], [exit(4, 104), deliver]);
    blocked.actions.termed = { pid: 103, vforkKids: [104], afterTerm: view(103, 'D', { pending: 0x4000n, caught: 0n }), afterEnd: view(103, 'Z') };
    expect(termWhileWaiting(blocked).message).toMatch(/SIGTERM is not caught/);
    const killed = run([child('D', 103)], []);
    killed.actions.termed = { pid: 103, vforkKids: [104], afterTerm: view(103, 'Z') };
    expect(termWhileWaiting(killed).message).toMatch(/SIGTERM ended the child while it waited/);
    expect(termWhileWaiting(run([], [])).facts).toEqual({ tested: false });
    // 6.12: the parent wakes when the vfork child lets go of the memory and takes its SIGTERM before the child's sched_process_exit.
    const killKid: TraceEvent = { pid: 104, ts: 4, event: 'signal_deliver', body: 'sig=9 errno=0 code=0 sa_handler=0 sa_flags=0' };
    const early = run([child('D', 103)], [killKid, deliver, exit(6, 104)]);
    early.actions.termed = r.actions.termed;
    expect(termWhileWaiting(early).facts).toMatchObject({ deliveredAfterTheWait: true });
    const before = run([child('D', 103)], [{ ...deliver, ts: 3 }, killKid, exit(6, 104)]);
    before.actions.termed = r.actions.termed;
    expect(termWhileWaiting(before).facts).toMatchObject({ deliveredAfterTheWait: false });
  });

  it('D and SIGKILL: ended first, while the vfork child lived', () => {
    const r = run([], [exit(3, 105), exit(4, 106)]);
    r.actions.killed = { pid: 105, vforkKids: [106], kidsAliveAtKill: [106], after: view(105, 'Z'), sentAt: 0, kidsAfter: ['Z'] };
    expect(killedWhileWaiting(r).facts).toEqual({ tested: true, vforkChildAlive: true, ended: true, exitedFirst: true, vforkChildDiedWithIt: true });
    r.actions.killed.kidsAfter = ['S'];
    expect(killedWhileWaiting(r).message).toMatch(/still alive: it would outlive its parent/);
  });

  it('T needs a stop signal and no tracer; t needs the program as tracer', () => {
    const gen: TraceEvent = { pid: 107, ts: 1, event: 'signal_generate', body: 'sig=19 errno=0 code=0 comm=task_states pid=107 grp=1 res=0' };
    const r = run([child('T', 107)], [gen, sw(1.5, 107, 'T'), mark(2)]);
    r.actions.continued.set(107, 'S');
    const t = stopped(r)[0]!;
    expect(t.facts).toEqual(t.expected);
    const tr = run([child('t', 108, 't', { view: view(108, 't', { tracerPid: PROG, tracerTgid: PROG }) })], [sw(1, 108, 't'), mark(2)]);
    tr.actions.tracedAfterCont.set(108, 't');
    const row = traced(tr)[0]!;
    expect(row.facts).toEqual(row.expected);
    const byStop = run([child('T', 107, 't', { view: view(107, 't', { tracerPid: PROG }) })], [sw(1, 107, 't'), mark(2)]);
    expect(stopped(byStop)[0]!.facts).toMatchObject({ state: 't', tracer: PROG, stopSignal: false });
  });

  it('Z: exited before the window, gone after W, the live children kept', () => {
    const z = child('Z', 109);
    const s = child('S', 102);
    const r = run([z, s], [exit(1, 109), sw(1, 109, 'Z'), mark(2)]);
    r.actions.afterW = { program: stat(PROG, 'S', 1), children: new Map([[109, undefined], [102, stat(102, 'S')]]) };
    const row = zombies(r)[0]!;
    expect(row.facts).toEqual(row.expected);
    r.actions.afterW = { program: stat(PROG, 'S', 1), children: new Map([[109, undefined], [102, undefined]]) };
    expect(zombies(r)[0]!.facts.liveChildrenKept).toEqual([102]);
  });

  it('the end: children exit before the program, or are named', () => {
    const r = run([child('R', 101), child('S', 102)], [exit(1, 101), exit(2, 102), exit(3, PROG)],
      { exit: { exitCode: 0, reason: 'exited' } as Run['exit'] });
    expect(ending(r).facts).toEqual({ exit: 'exit 0', childrenOutlivingIt: [], survivors: [], zombiesLeftForTheReaper: 0 });
    const late = run([child('R', 101)], [exit(3, PROG), exit(4, 101)], { exit: { exitCode: 0, reason: 'exited' } as Run['exit'] });
    expect(ending(late).facts.childrenOutlivingIt).toEqual([101]);
  });

  it('the end: zombies the program did not reap are handed to the reaper at its exit (SIGCHLD from its exit_notify), its own notice to its parent is not one', () => {
    const chld = (ts: number, to: number, comm: string, code = 2): TraceEvent =>
      ({ pid: PROG, tgid: PROG, ts, event: 'signal_generate', body: `sig=17 errno=0 code=${code} comm=${comm} pid=${to} grp=1 res=1` });
    const fromChild = (ts: number, from: number): TraceEvent =>
      ({ pid: from, tgid: from, ts, event: 'signal_generate', body: `sig=17 errno=0 code=2 comm=task_states pid=${PROG} grp=1 res=0` });
    const done = { exit: { exitCode: 0, reason: 'exited' } as Run['exit'], parent: 50 };
    // Reaped: the children's notices go to the program before it exits; at its exit only its own notice, to its parent.
    const reaped = run([child('R', 101), child('S', 102)], [exit(1, 101), fromChild(1.1, 101), exit(2, 102), fromChild(2.1, 102), exit(3, PROG), chld(3.1, 50, 'node', 1)], done);
    expect(ending(reaped).facts.zombiesLeftForTheReaper).toBe(0);
    // Killed and left: two SIGCHLDs to init from the program's exit before its own.
    const left = run([child('R', 101), child('S', 102)], [exit(1, 101), fromChild(1.1, 101), exit(2, 102), fromChild(2.1, 102), exit(3, PROG),
      chld(3.1, 1, 'init'), chld(3.2, 1, 'init'), chld(3.3, 50, 'node', 1)], done);
    const e = ending(left);
    expect(e.facts).toEqual({ exit: 'exit 0', childrenOutlivingIt: [], survivors: [], zombiesLeftForTheReaper: 2 });
    expect(e.message).toMatch(/zombies left for the reaper: 2 — at its exit the kernel handed 2 unreaped child\(ren\) to init 1/);
    // The parent is the reaper too: the last notice is the program's own, the others count.
    const same = run([child('R', 101)], [exit(1, 101), exit(3, PROG), chld(3.1, 50, 'node'), chld(3.2, 50, 'node', 1)], done);
    expect(ending(same).facts.zombiesLeftForTheReaper).toBe(1);
    // Before its exit: a SIGCHLD the program sends (kill(2)) is not a hand-over.
    const early = run([child('R', 101)], [chld(0.5, 1, 'init'), exit(1, 101), exit(3, PROG), chld(3.1, 50, 'node', 1)], done);
    expect(ending(early).facts.zombiesLeftForTheReaper).toBe(0);
  });
});
