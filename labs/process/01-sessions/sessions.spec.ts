/**
 * Process Lab 1 — 会话、进程组、线程与任务 (seed 001 §1.1–1.5).
 * The student's `sessions` builds a session leader L, a process group (J with
 * threads, and M) and a zombie Z. It runs under `subreaper` (a harness program:
 * prctl(PR_SET_CHILD_SUBREAPER)), so orphans come to a process the spec
 * started and not to PID 1, and each reaped child's wait status is reported by
 * the kernel through waitpid(2). Every fact comes from /proc/<pid>/stat,
 * /proc/<pid>/task and those wait statuses; nothing the program prints.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { startBackground, type Background } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { defer } from '../../../helpers/harness/resources.js';
import { recordProcessGroup } from '../../../helpers/harness/run-state.js';
import { parseSignalGenerate, SIGNAL_GENERATE, type GeneratedSignal } from '../../../helpers/kernel/signals.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import { descendants, formatStat, listProcesses, listTasks, readStat, readStatus, type ProcStat } from '../../../helpers/kernel/procfs.js';
import { judgeOrphanedGroup, SIGCONT, SIGHUP } from './judge.js';

/** Threads the job leader runs besides its own (the guide's contract). */
const THREADS = 3;
/** How long the tree may take to appear (fork + pthread_create take milliseconds even on a busy host). */
const SETTLE_MS = 5_000;
/** How long a zombie must stay a zombie, and orphans stay alive, to count as "until reaped" / "live on". */
const HOLD_MS = 500;
/** How soon after SIGUSR1 the zombie must be gone (the reference: a few ms). */
const REAP_MS = 1_500;
/**
 * How long a zombie must stay a zombie when no SIGUSR1 comes: longer than HOLD_MS + REAP_MS, so that no fixed
 * delay both outlasts this test and fits the reaping test's window (a timer is not "on SIGUSR1").
 */
const UNREAPED_MS = 2_500;

let sessions = '';
let subreaper = '';

/** What /proc shows below the subreaper: the roles found by their ids, not by what the program says. */
interface Tree {
  readonly all: ProcStat[];
  /** L: sid = pid. */
  readonly leader?: ProcStat;
  /** J: a live process in L's session leading a group of its own with at least one other live member. */
  readonly job?: ProcStat;
  readonly members: ProcStat[];
  /** Z: L's children in state Z. */
  readonly zombies: ProcStat[];
}

function snapshot(root: number): Tree {
  const all = descendants(listProcesses(), root);
  const leader = all.find((p) => p.session === p.pid && p.state !== 'Z');
  const inSession = leader ? all.filter((p) => p.session === leader.pid && p.pid !== leader.pid && p.state !== 'Z') : [];
  const job = inSession.find((p) => p.pgrp === p.pid && inSession.some((q) => q.pgrp === p.pid && q.pid !== p.pid));
  const members = job ? inSession.filter((p) => p.pgrp === job.pid) : [];
  const zombies = leader ? all.filter((p) => p.ppid === leader.pid && p.state === 'Z') : [];
  return { all, leader, job, members, zombies };
}

function show(t: Tree, sub: Background): string {
  return `/proc/<pid>/stat below the subreaper (pid ${sub.pid}):\n${t.all.map((p) => `  ${formatStat(p)}`).join('\n') || '  (no processes)'}\n` +
    `subreaper and program output:\n${sub.output().trim().split('\n').map((l) => `  ${l}`).join('\n')}`;
}

/** Poll `probe` until `accept` holds or `timeoutMs` passes; the last value either way (the assertions judge it). */
async function settle<T>(probe: () => T, accept: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = probe();
  while (!accept(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    v = probe();
  }
  return v;
}

/** A /proc file's text, or undefined once the process is gone. */
function readProc(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pids the subreaper reaped, with what waitpid(2) said. */
function reaped(sub: Background): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of sub.stdout().matchAll(/^reaped pid=(\d+) (exit|signal)=(\d+)$/gm)) out.set(Number(m[1]), `${m[2]}=${m[3]}`);
  return out;
}

/** Start `subreaper sessions` and wait until the whole tree is there (or SETTLE_MS passed). */
async function startTree(ctx: TestContext): Promise<{ sub: Background; tree: Tree }> {
  const sub = startBackground(subreaper, [sessions], { timeoutMs: 60_000, signal: ctx.signal });
  // Released before the subreaper's own stop (newest first): L's session escapes the subreaper's process group.
  defer(`processes below subreaper ${sub.pid}`, async () => {
    for (const p of descendants(listProcesses(), sub.pid)) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    await settle(() => descendants(listProcesses(), sub.pid).filter((p) => p.state !== 'Z').length, (n) => n === 0, 5_000);
  });
  const full = (t: Tree) => Boolean(t.leader && t.job && t.zombies.length && t.members.some((m) => listTasks(m.pid).length >= 1 + THREADS));
  const tree = await settle(() => snapshot(sub.pid), full, SETTLE_MS);
  // A killed run's reaper finds these groups too (they left the subreaper's process group).
  for (const g of new Set([tree.leader?.pid, tree.job?.pid].filter((p): p is number => Boolean(p)))) recordProcessGroup(g, `sessions (group ${g})`);
  recordMetric(ctx, { name: 'processes in the session', value: tree.leader ? tree.all.filter((p) => p.session === tree.leader!.pid).length : 0, unit: 'processes', group: 'sessions' });
  return { sub, tree };
}

function expectLeader(tree: Tree, sub: Background): ProcStat {
  expect(tree.leader, `expected a process below the subreaper whose session id is its own pid (setsid); found none within ${SETTLE_MS} ms.\n${show(tree, sub)}`).toBeDefined();
  return tree.leader!;
}

function expectJob(tree: Tree, sub: Background): ProcStat {
  expectLeader(tree, sub);
  expect(tree.job, `expected, in session ${tree.leader!.pid}, a process group other than the leader's with at least 2 live members, ` +
    `led by a process whose pgrp is its own pid; found none.\n${show(tree, sub)}`).toBeDefined();
  return tree.job!;
}

function expectZombie(tree: Tree, sub: Background): ProcStat {
  const leader = expectLeader(tree, sub);
  expect(tree.zombies.length, `expected a child of the session leader ${leader.pid} in state Z (exited, not yet reaped); found ${tree.zombies.length}.\n${show(tree, sub)}`).toBeGreaterThanOrEqual(1);
  return tree.zombies[0]!;
}

describe('Process Lab 1 — sessions, process groups, threads and tasks (会话、进程组、线程与任务)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    sessions = (await buildProgram({ src: labSource('process/01-sessions/sessions.c'), ldlibs: ['-lpthread'] })).path;
    subreaper = (await buildProgram({ src: `${REFERENCE_SRC}/process/subreaper.c` })).path;
  });

  it('the session leader has sid = pgrp = its own pid and no controlling terminal (tty_nr 0, tpgid -1)', async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    const l = expectLeader(tree, sub);
    expect({ pid: l.pid, sid: l.session, pgrp: l.pgrp, tty_nr: l.ttyNr, tpgid: l.tpgid },
      `/proc/${l.pid}/stat: ${formatStat(l)}\n${show(tree, sub)}`).toEqual({ pid: l.pid, sid: l.pid, pgrp: l.pid, tty_nr: 0, tpgid: -1 });
    const parent = readStat(l.ppid);
    expect(parent && parent.session !== l.pid, `the leader's parent (${l.ppid}) stays in the old session`).toBe(true);
  });

  it('the session holds a second process group: its leader J has pgrp = its pid, another member M has pgrp = J, both sid = the session leader', async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    const j = expectJob(tree, sub);
    const l = tree.leader!;
    for (const p of tree.members) {
      expect({ pid: p.pid, pgrp: p.pgrp, sid: p.session }, `/proc/${p.pid}/stat: ${formatStat(p)}`).toEqual({ pid: p.pid, pgrp: j.pid, sid: l.pid });
    }
    expect(j.pgrp, `the job's group must differ from the session leader's own group ${l.pgrp}`).not.toBe(l.pgrp);
    recordMetric(ctx, { name: 'processes in the job', value: tree.members.length, unit: 'processes', group: 'sessions' });
  });

  it(`a member with ${THREADS} more threads shows ${1 + THREADS} tasks under /proc/<pid>/task, each with its own TID and the process's Tgid, hidden from the /proc listing`, async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    expectJob(tree, sub);
    const withThreads = tree.members.map((p) => ({ p, tasks: listTasks(p.pid) })).sort((a, b) => b.tasks.length - a.tasks.length)[0]!;
    const { p, tasks } = withThreads;
    const evidence = `ls /proc/${p.pid}/task: ${tasks.join(' ')}; /proc/${p.pid}/stat: ${formatStat(p)}\n${show(tree, sub)}`;
    expect(tasks.length, `expected ≥ ${1 + THREADS} tasks (the process and its threads) in one member of the job. ${evidence}`).toBeGreaterThanOrEqual(1 + THREADS);
    expect(p.numThreads, `num_threads (field 20 of /proc/${p.pid}/stat) counts the tasks. ${evidence}`).toBe(tasks.length);
    const listed = new Set(listProcesses().map((s) => s.pid));
    for (const tid of tasks) {
      const st = readStatus(tid);
      expect(st && { tgid: st.tgid, pid: st.pid }, `/proc/${tid}/status must give Tgid ${p.pid} and Pid ${tid}`).toEqual({ tgid: p.pid, pid: tid });
      if (tid !== p.pid) expect(listed.has(tid), `thread ${tid} is reachable as /proc/${tid} but readdir(/proc) lists only thread-group leaders`).toBe(false);
    }
    recordMetric(ctx, { name: 'tasks in the threaded member', value: tasks.length, unit: 'tasks', group: 'sessions' });
  });

  it('a child that exited stays in state Z until its parent reaps it, and the session leader reaps it (not the subreaper) on SIGUSR1', async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    const z = expectZombie(tree, sub);
    const l = tree.leader!;
    await sleep(HOLD_MS);
    const still = readStat(z.pid);
    expect(still?.state, `${z.pid} must still be a zombie ${HOLD_MS} ms later: /proc/${z.pid}/stat: ${still ? formatStat(still) : '(gone)'}`).toBe('Z');
    const t0 = Date.now();
    process.kill(l.pid, 'SIGUSR1');
    const gone = await settle(() => !existsSync(`/proc/${z.pid}`), (g) => g, REAP_MS);
    recordMetric(ctx, { name: 'SIGUSR1 to reaped', value: Date.now() - t0, unit: 'ms', group: 'sessions' });
    const after = snapshot(sub.pid);
    expect(gone, `after SIGUSR1 to ${l.pid}, zombie ${z.pid} must be reaped (its /proc entry gone) within ${REAP_MS} ms.\n${show(after, sub)}`).toBe(true);
    const lNow = readStat(l.pid);
    expect(lNow && lNow.state !== 'Z' ? formatStat(lNow) : `${l.pid} gone or a zombie (${lNow ? formatStat(lNow) : 'no /proc entry'})`,
      `the session leader must survive SIGUSR1 (block it and wait for it; its default action kills).\n${show(after, sub)}`).toMatch(new RegExp(`^${l.pid} \\(`));
    expect(reaped(sub).get(z.pid), `zombie ${z.pid} must be reaped by its parent ${l.pid}, not handed to the subreaper`).toBeUndefined();
  });

  it(`a zombie nobody reaps stays a zombie: without SIGUSR1, L leaves Z in state Z (still Z ${UNREAPED_MS} ms on)`, async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    const z = expectZombie(tree, sub);
    const l = tree.leader!;
    const t0 = Date.now();
    const last = await settle(() => readStat(z.pid), (s) => s?.state !== 'Z', UNREAPED_MS);
    const leftAfter = Date.now() - t0;
    const lStatus = readProc(`/proc/${l.pid}/status`)?.split('\n').filter((x) => /^Sig(Blk|Ign|Cgt)|^ShdPnd/.test(x)).join(', ') ?? '(gone)';
    expect(last?.state ?? `gone (${reaped(sub).get(z.pid) ? `reaped by the subreaper: ${reaped(sub).get(z.pid)}` : 'reaped by its parent'})`,
      `no SIGUSR1 was sent, yet zombie ${z.pid} left state Z ${leftAfter} ms after the tree appeared: L reaped it on its own (a timer, a poll, a wait that did not wait for the signal). ` +
      `/proc/${z.pid}/stat now: ${last ? formatStat(last) : '(no entry)'}; /proc/${l.pid}/status: ${lStatus} (bit 10 of the masks is SIGUSR1). ` +
      `L must reap Z only once SIGUSR1 arrives: block SIGUSR1 before forking Z, wait for it (sigwait, signalfd, sigsuspend), then waitpid.\n${show(snapshot(sub.pid), sub)}`).toBe('Z');
  });

  it('when the terminal-less session leader exits, the group lives on: reparented to the subreaper, same pgrp, sid still the dead leader\'s pid, no SIGHUP', async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    const j = expectJob(tree, sub);
    const l = tree.leader!;
    process.kill(l.pid, 'SIGTERM');
    const reparented = (p: ProcStat) => readStat(p.pid)?.ppid === sub.pid;
    await settle(() => !existsSync(`/proc/${l.pid}`) && tree.members.every(reparented), (ok) => ok, 3_000);
    await sleep(HOLD_MS);
    const after = snapshot(sub.pid);
    expect(existsSync(`/proc/${l.pid}`), `session leader ${l.pid} must be gone after SIGTERM.\n${show(after, sub)}`).toBe(false);
    const reapedNow = reaped(sub);
    for (const p of tree.members) {
      const s = readStat(p.pid);
      expect(s ? { ppid: s.ppid, pgrp: s.pgrp, sid: s.session, alive: s.state !== 'Z' && s.state !== 'X' } : `${p.pid} gone: ${reapedNow.get(p.pid) ?? 'not reaped by the subreaper'}`,
        `${HOLD_MS} ms after the leader exited, ${p.pid} must live on, reparented to the subreaper ${sub.pid}, in the same group and session.\n${show(after, sub)}`)
        .toEqual({ ppid: sub.pid, pgrp: j.pid, sid: l.pid, alive: true });
    }
  });

  it('but if a member is stopped when the leader exits, the kernel sends the now orphaned group SIGHUP and SIGCONT: every member dies of SIGHUP', async (ctx) => {
    const { sub, tree } = await startTree(ctx);
    const j = expectJob(tree, sub);
    const l = tree.leader!;
    const stopped = tree.members.find((p) => p.pid !== j.pid)!;
    process.kill(stopped.pid, 'SIGSTOP');
    // Every thread, not just the main one: the kernel counts a process as stopped (SIGNAL_STOP_STOPPED, what
    // kill_orphaned_pgrp() looks for) only once all its threads took part in the group stop.
    const states = () => listTasks(stopped.pid).map((tid) => readStat(tid)?.state ?? '?').join('');
    const st = await settle(states, (s) => s.length > 0 && /^T+$/.test(s), 3_000);
    expect(st, `${stopped.pid} must be stopped (state T in every thread) before the leader exits`).toMatch(/^T+$/);
    for (const p of tree.members) {
      const s = readStat(p.pid);
      expect(s && { pgrp: s.pgrp, sid: s.session }, `/proc/${p.pid}/stat just before the leader exits`).toEqual({ pgrp: j.pid, sid: l.pid });
    }
    // The kernel's own record of the signals it generates while the leader exits (signal:signal_generate).
    const trace = makeTraceInstance([SIGNAL_GENERATE], { tag: 'sig', enable: false });
    if (!trace) throw new Error(`no tracefs instance with ${SIGNAL_GENERATE} here (mount tracefs: sudo npm run setup)`);
    writeFileSync(join(trace.dir, 'events', SIGNAL_GENERATE, 'filter'), `sig == ${SIGHUP} || sig == ${SIGCONT}`);
    trace.setEnabled(true);
    process.kill(l.pid, 'SIGTERM');
    const statuses = await settle(() => reaped(sub), (r) => tree.members.every((p) => r.has(p.pid)), 5_000);
    trace.setEnabled(false);
    const signals = trace.read().events.map(parseSignalGenerate).filter((s): s is GeneratedSignal => Boolean(s));
    await trace.release();
    const verdict = judgeOrphanedGroup({ members: tree.members.map((p) => p.pid), stopped: stopped.pid, signals, reaped: statuses });
    const after = snapshot(sub.pid);
    const evidence = `signal:signal_generate (SIGHUP=${SIGHUP}, SIGCONT=${SIGCONT}) for the job's members while leader ${l.pid} exited:\n` +
      `${verdict.record.map((r) => `  ${r}`).join('\n') || '  (none)'}\n` +
      `the subreaper's waitpid(2) statuses: ${tree.members.map((p) => `${p.pid} ${statuses.get(p.pid) ?? 'not reaped'}`).join(', ')}\n${show(after, sub)}`;
    expect(verdict.problems.length, `${stopped.pid} was stopped when leader ${l.pid} exited:\n${verdict.problems.map((p) => `  ${p}`).join('\n')}\n${evidence}`).toBe(0);
    if (verdict.unsignalled.length) {
      await adapted(ctx, `this kernel (${release()}) sent the orphaned group's SIGHUP and SIGCONT only to the stopped member ${stopped.pid}, ` +
        `not to ${verdict.unsignalled.join(', ')} (signal:signal_generate); POSIX and kernel/exit.c's kill_orphaned_pgrp() send them to every member`);
    }
  });
});
