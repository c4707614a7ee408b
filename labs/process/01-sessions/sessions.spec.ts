/**
 * Process Lab 1 — 会话、进程组、线程与任务 (seed 001 §1.1–1.5).
 * The student's `sessions` builds a session leader L, a process group (J with
 * threads, and M) and a zombie Z. It runs under `subreaper` (a harness program:
 * prctl(PR_SET_CHILD_SUBREAPER)), so orphans come to a process the spec
 * started and not to PID 1, and each reaped child's wait status is reported by
 * the kernel through waitpid(2). Every fact comes from /proc/<pid>/stat,
 * /proc/<pid>/task and those wait statuses; nothing the program prints.
 *
 * The lab's anatomy: experiment.ts starts the tree (one per test: each does
 * something else to it) and collects the evidence, judge.ts turns it into
 * facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import type { ProcStat } from '../../../helpers/kernel/procfs.js';
import {
  leaderExits, leaderExitsWithStoppedMember, leaveUnreaped, observeTree, prepareSessions, reapOnSigusr1, type SessionsSetup, type Tree,
} from './experiment.js';
import * as judge from './judge.js';
import { THREADS, UNREAPED_MS } from './judge.js';

let setup: SessionsSetup;

function expectLeader(tree: Tree): ProcStat {
  expect(tree.leader, judge.leaderMissing(tree)).toBeDefined();
  return tree.leader!;
}

function expectJob(tree: Tree): ProcStat {
  expectLeader(tree);
  expect(tree.job, judge.jobMissing(tree)).toBeDefined();
  return tree.job!;
}

function expectZombie(tree: Tree): ProcStat {
  expectLeader(tree);
  expect(tree.zombies.length, judge.zombieMissing(tree)).toBeGreaterThanOrEqual(1);
  return tree.zombies[0]!;
}

const sessionMetric = (tree: Tree) => ({ name: 'processes in the session', value: judge.sessionSize(tree), unit: 'processes', group: 'sessions' });

describe('Process Lab 1 — sessions, process groups, threads and tasks (会话、进程组、线程与任务)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await prepareSessions();
  });

  it('the session leader has sid = pgrp = its own pid and no controlling terminal (tty_nr 0, tpgid -1)', async (ctx) => {
    const o = await observeTree(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(o.tree));
    expectLeader(o.tree);
    const l = judge.leader(o);
    expect(l.ids, l.idsMessage).toEqual(l.want);
    expect(l.parentLeft, l.parentMessage).toBe(true);
  });

  it('the session holds a second process group: its leader J has pgrp = its pid, another member M has pgrp = J, both sid = the session leader', async (ctx) => {
    const o = await observeTree(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(o.tree));
    expectJob(o.tree);
    const g = judge.group(o.tree);
    for (const m of g.members) expect(m.fact, m.message).toEqual(m.want);
    expect(g.jobGroup, g.apartMessage).not.toBe(g.leaderGroup);
    recordMetric(ctx, { name: 'processes in the job', value: o.tree.members.length, unit: 'processes', group: 'sessions' });
  });

  it(`a member with ${THREADS} more threads shows ${1 + THREADS} tasks under /proc/<pid>/task, each with its own TID and the process's Tgid, hidden from the /proc listing`, async (ctx) => {
    const o = await observeTree(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(o.tree));
    expectJob(o.tree);
    const t = judge.threads(o.threaded!, o.tree);
    expect(t.tasks, t.tasksMessage).toBeGreaterThanOrEqual(1 + THREADS);
    expect(t.numThreads, t.numThreadsMessage).toBe(t.tasks);
    for (const x of t.each) {
      expect(x.ids, x.idsMessage).toEqual(x.want);
      if (x.listed !== undefined) expect(x.listed, x.listedMessage).toBe(false);
    }
    recordMetric(ctx, { name: 'tasks in the threaded member', value: t.tasks, unit: 'tasks', group: 'sessions' });
  });

  it('a child that exited stays in state Z until its parent reaps it, and the session leader reaps it (not the subreaper) on SIGUSR1', async (ctx) => {
    const r = await reapOnSigusr1(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(r.tree));
    expectZombie(r.tree);
    const h = judge.held(r);
    expect(h.state, h.message).toBe('Z');
    recordMetric(ctx, { name: 'SIGUSR1 to reaped', value: r.signalled!.ms, unit: 'ms', group: 'sessions' });
    const s = judge.reapedOnSigusr1(r);
    expect(s.gone, s.goneMessage).toBe(true);
    expect(s.leaderNow, s.leaderMessage).toMatch(s.leaderPattern);
    expect(s.bySubreaper, s.bySubreaperMessage).toBeUndefined();
  });

  it(`a zombie nobody reaps stays a zombie: without SIGUSR1, L leaves Z in state Z (still Z ${UNREAPED_MS} ms on)`, async (ctx) => {
    const r = await leaveUnreaped(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(r.tree));
    expectZombie(r.tree);
    const u = judge.unreaped(r);
    expect(u.state, u.message).toBe('Z');
  });

  it('when the terminal-less session leader exits, the group lives on: reparented to the subreaper, same pgrp, sid still the dead leader\'s pid, no SIGHUP', async (ctx) => {
    const r = await leaderExits(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(r.tree));
    expectJob(r.tree);
    const v = judge.livesOn(r);
    expect(v.leaderThere, v.leaderMessage).toBe(false);
    for (const m of v.members) expect(m.fact, m.message).toEqual(m.want);
  });

  it('but if a member is stopped when the leader exits, the kernel sends the now orphaned group SIGHUP and SIGCONT: every member dies of SIGHUP', async (ctx) => {
    const r = await leaderExitsWithStoppedMember(setup, ctx.signal);
    recordMetric(ctx, sessionMetric(r.tree));
    expectJob(r.tree);
    const b = judge.stoppedBefore(r);
    expect(b.states, b.statesMessage).toMatch(/^T+$/);
    for (const m of b.members) expect(m.fact, m.message).toEqual(m.want);
    const o = judge.orphaned(r);
    expect(o.problems, o.message).toBe(0);
    if (o.unsignalled.length) await adapted(ctx, o.adaptation);
  });
});
