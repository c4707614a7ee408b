/**
 * Process Lab 1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts: `Observed`, `Sigusr1Run`, `UnreapedRun`, `LeaderExitRun`,
 * `StoppedMemberRun`) to the facts each test asserts, with the message that
 * shows the evidence (unit-tested in
 * tests/lab-units/process/01-sessions/judge.test.ts).
 *
 * The orphaned group: POSIX (and kernel/exit.c's kill_orphaned_pgrp()): when
 * an exit orphans a process group — no member has a parent in the same
 * session but another group — and a member of it is stopped, every member
 * gets SIGHUP, then SIGCONT. Linux checks this while it reparents the exiting
 * leader's children one by one (forget_original_parent → reparent_leader): the
 * group is orphaned only once the last of them has its new parent, so the
 * signals come from the exiting leader's context, with si_code SI_KERNEL (128).
 */
import type { GeneratedSignal } from '../../../helpers/kernel/signals.js';
import { formatGenerated } from '../../../helpers/kernel/signals.js';
import { formatStat } from '../../../helpers/kernel/procfs.js';
import type { LeaderExitRun, Observed, Sigusr1Run, StoppedMemberRun, Threaded, Tree, UnreapedRun } from './experiment.js';

/** Threads the job leader runs besides its own (the guide's contract). */
export const THREADS = 3;
/** How long the tree may take to appear (fork + pthread_create take milliseconds even on a busy host). */
export const SETTLE_MS = 5_000;
/** How long a zombie must stay a zombie, and orphans stay alive, to count as "until reaped" / "live on". */
export const HOLD_MS = 500;
/** How soon after SIGUSR1 the zombie must be gone (the reference: a few ms). */
export const REAP_MS = 1_500;
/**
 * How long a zombie must stay a zombie when no SIGUSR1 comes: longer than HOLD_MS + REAP_MS, so that no fixed
 * delay both outlasts this test and fits the reaping test's window (a timer is not "on SIGUSR1").
 */
export const UNREAPED_MS = 2_500;

export const SIGHUP = 1;
export const SIGCONT = 18;
/** si_code of a signal the kernel sends on its own (SEND_SIG_PRIV). */
export const SI_KERNEL = 128;

export interface OrphanEvidence {
  /** The job's members (pids), as /proc showed them before the leader exited. */
  readonly members: readonly number[];
  readonly stopped: number;
  /** signal_generate events recorded while the leader exited (any target). */
  readonly signals: readonly GeneratedSignal[];
  /** What the subreaper's waitpid(2) said per pid ("signal=1", "exit=0"). */
  readonly reaped: ReadonlyMap<number, string>;
}

export interface OrphanVerdict {
  /** Empty when the lab's sentence holds. */
  readonly problems: string[];
  /** Members the kernel did not signal although they were in the group (a kernel difference, said, not failed). */
  readonly unsignalled: number[];
  /** The kernel's own SIGHUP/SIGCONT to the members, one line each. */
  readonly record: string[];
}

export function judgeOrphanedGroup(e: OrphanEvidence): OrphanVerdict {
  const members = new Set(e.members);
  const ours = e.signals.filter((s) => members.has(s.pid) && s.code === SI_KERNEL && (s.sig === SIGHUP || s.sig === SIGCONT));
  const record = ours.map(formatGenerated);
  const hupOf = (pid: number) => ours.find((s) => s.pid === pid && s.sig === SIGHUP);
  const contAfter = (pid: number, ts: number) => ours.some((s) => s.pid === pid && s.sig === SIGCONT && s.ts >= ts);
  const problems: string[] = [];
  const unsignalled: number[] = [];

  const stoppedHup = hupOf(e.stopped);
  if (!stoppedHup) {
    problems.push(`the kernel generated no SIGHUP (si_code ${SI_KERNEL}) for the stopped member ${e.stopped} when the leader exited: ` +
      'the group was not orphaned by that exit (a member still had a parent in the same session but another group), or was not stopped');
  }
  for (const pid of e.members) {
    const hup = hupOf(pid);
    const status = e.reaped.get(pid) ?? 'not reaped';
    if (!hup) {
      if (stoppedHup && pid !== e.stopped) unsignalled.push(pid);
      else if (pid !== e.stopped) problems.push(`${pid}: no SIGHUP from the kernel, ${status}`);
      continue;
    }
    if (!contAfter(pid, hup.ts)) problems.push(`${pid}: the kernel generated SIGHUP but no SIGCONT after it`);
    if (hup.result === 'ignored') problems.push(`${pid}: the kernel generated SIGHUP and found it ignored (SIG_IGN): ${status}`);
    else if (status !== `signal=${SIGHUP}`) problems.push(`${pid}: the kernel generated SIGHUP (${hup.result}), but waitpid(2) says ${status}: a handler or a blocked SIGHUP kept it alive`);
  }
  return { problems, unsignalled, record };
}

/** The tree for a message: /proc/<pid>/stat of every process below the subreaper, and the output so far. */
export function show(t: Tree): string {
  return `/proc/<pid>/stat below the subreaper (pid ${t.subreaper}):\n${t.all.map((p) => `  ${formatStat(p)}`).join('\n') || '  (no processes)'}\n` +
    `subreaper and program output:\n${t.output.trim().split('\n').map((l) => `  ${l}`).join('\n')}`;
}

/** Processes in L's session (0 without a leader). */
export const sessionSize = (t: Tree) => (t.leader ? t.all.filter((p) => p.session === t.leader!.pid).length : 0);

export const leaderMissing = (t: Tree) =>
  `expected a process below the subreaper whose session id is its own pid (setsid); found none within ${SETTLE_MS} ms.\n${show(t)}`;
export const jobMissing = (t: Tree) => `expected, in session ${t.leader?.pid}, a process group other than the leader's with at least 2 live members, ` +
  `led by a process whose pgrp is its own pid; found none.\n${show(t)}`;
export const zombieMissing = (t: Tree) =>
  `expected a child of the session leader ${t.leader?.pid} in state Z (exited, not yet reaped); found ${t.zombies.length}.\n${show(t)}`;

/** L's ids (sid = pgrp = pid, no controlling terminal) and its parent left in the old session. L must be there. */
export function leader(o: Observed) {
  const l = o.tree.leader!;
  return {
    ids: { pid: l.pid, sid: l.session, pgrp: l.pgrp, tty_nr: l.ttyNr, tpgid: l.tpgid },
    want: { pid: l.pid, sid: l.pid, pgrp: l.pid, tty_nr: 0, tpgid: -1 },
    idsMessage: `/proc/${l.pid}/stat: ${formatStat(l)}\n${show(o.tree)}`,
    parentLeft: o.parent && o.parent.session !== l.pid,
    parentMessage: `the leader's parent (${l.ppid}) stays in the old session`,
  };
}

/** J's group: each member's pgrp = J and sid = L, and J's group is not L's. L and J must be there. */
export function group(t: Tree) {
  const l = t.leader!;
  const j = t.job!;
  return {
    members: t.members.map((p) => ({
      fact: { pid: p.pid, pgrp: p.pgrp, sid: p.session }, want: { pid: p.pid, pgrp: j.pid, sid: l.pid }, message: `/proc/${p.pid}/stat: ${formatStat(p)}`,
    })),
    jobGroup: j.pgrp,
    leaderGroup: l.pgrp,
    apartMessage: `the job's group must differ from the session leader's own group ${l.pgrp}`,
  };
}

/** The threaded member's tasks: how many, num_threads, and per task its Tgid/Pid and whether readdir(/proc) lists it (the main thread: undefined). */
export function threads(th: Threaded, t: Tree) {
  const p = th.process;
  const evidence = `ls /proc/${p.pid}/task: ${th.tasks.join(' ')}; /proc/${p.pid}/stat: ${formatStat(p)}\n${show(t)}`;
  return {
    tasks: th.tasks.length,
    tasksMessage: `expected ≥ ${1 + THREADS} tasks (the process and its threads) in one member of the job. ${evidence}`,
    numThreads: p.numThreads,
    numThreadsMessage: `num_threads (field 20 of /proc/${p.pid}/stat) counts the tasks. ${evidence}`,
    each: th.tasks.map((tid, i) => ({
      ids: th.ids[i], want: { tgid: p.pid, pid: tid }, idsMessage: `/proc/${tid}/status must give Tgid ${p.pid} and Pid ${tid}`,
      listed: tid !== p.pid ? th.listed[i] : undefined,
      listedMessage: `thread ${tid} is reachable as /proc/${tid} but readdir(/proc) lists only thread-group leaders`,
    })),
  };
}

/** Z's state HOLD_MS on (must be 'Z'). Z must be there. */
export function held(r: Sigusr1Run) {
  const z = r.tree.zombies[0]!;
  const still = r.held?.stat;
  return { state: still?.state, message: `${z.pid} must still be a zombie ${HOLD_MS} ms later: /proc/${z.pid}/stat: ${still ? formatStat(still) : '(gone)'}` };
}

/** After SIGUSR1: Z gone, L alive (its stat line, matching `leaderPattern`), Z not reaped by the subreaper. SIGUSR1 must have been sent. */
export function reapedOnSigusr1(r: Sigusr1Run) {
  const z = r.tree.zombies[0]!;
  const l = r.tree.leader!;
  const s = r.signalled!;
  const lNow = s.leaderNow;
  return {
    gone: s.gone,
    goneMessage: `after SIGUSR1 to ${l.pid}, zombie ${z.pid} must be reaped (its /proc entry gone) within ${REAP_MS} ms.\n${show(s.after)}`,
    leaderNow: lNow && lNow.state !== 'Z' ? formatStat(lNow) : `${l.pid} gone or a zombie (${lNow ? formatStat(lNow) : 'no /proc entry'})`,
    leaderPattern: new RegExp(`^${l.pid} \\(`),
    leaderMessage: `the session leader must survive SIGUSR1 (block it and wait for it; its default action kills).\n${show(s.after)}`,
    bySubreaper: s.reaped.get(z.pid),
    bySubreaperMessage: `zombie ${z.pid} must be reaped by its parent ${l.pid}, not handed to the subreaper`,
  };
}

/** Without SIGUSR1: Z's state at the end of the watch (must be 'Z'), or how it went. Z must be there. */
export function unreaped(r: UnreapedRun) {
  const z = r.tree.zombies[0]!;
  const l = r.tree.leader!;
  const w = r.watched!;
  const masks = w.leaderMasks?.map(([k, v]) => `${k}:\t${v}`).join(', ') ?? '(gone)';
  const by = w.reaped.get(z.pid);
  return {
    state: w.last?.state ?? `gone (${by ? `reaped by the subreaper: ${by}` : 'reaped by its parent'})`,
    message: `no SIGUSR1 was sent, yet zombie ${z.pid} left state Z ${w.ms} ms after the tree appeared: L reaped it on its own (a timer, a poll, a wait that did not wait for the signal). ` +
      `/proc/${z.pid}/stat now: ${w.last ? formatStat(w.last) : '(no entry)'}; /proc/${l.pid}/status: ${masks} (bit 10 of the masks is SIGUSR1). ` +
      `L must reap Z only once SIGUSR1 arrives: block SIGUSR1 before forking Z, wait for it (sigwait, signalfd, sigsuspend), then waitpid.\n${show(w.after)}`,
  };
}

/** After L's exit (no member stopped): L gone, and each member alive, reparented to the subreaper, same group and session. L and J must be there. */
export function livesOn(r: LeaderExitRun) {
  const l = r.tree.leader!;
  const j = r.tree.job!;
  const e = r.exited!;
  return {
    leaderThere: e.leaderThere,
    leaderMessage: `session leader ${l.pid} must be gone after SIGTERM.\n${show(e.after)}`,
    members: r.tree.members.map((p, i) => {
      const s = e.members[i];
      return {
        fact: s ? { ppid: s.ppid, pgrp: s.pgrp, sid: s.session, alive: s.state !== 'Z' && s.state !== 'X' } : `${p.pid} gone: ${e.reaped.get(p.pid) ?? 'not reaped by the subreaper'}`,
        want: { ppid: r.tree.subreaper, pgrp: j.pid, sid: l.pid, alive: true },
        message: `${HOLD_MS} ms after the leader exited, ${p.pid} must live on, reparented to the subreaper ${r.tree.subreaper}, in the same group and session.\n${show(e.after)}`,
      };
    }),
  };
}

/** Before L's exit: the stopped member's thread states (must be all T), then each member's group and session. L and J must be there. */
export function stoppedBefore(r: StoppedMemberRun) {
  const l = r.tree.leader!;
  const j = r.tree.job!;
  return {
    states: r.states ?? '',
    statesMessage: `${r.stopped} must be stopped (state T in every thread) before the leader exits`,
    members: r.tree.members.map((p, i) => {
      const s = r.before?.[i];
      return { fact: s && { pgrp: s.pgrp, sid: s.session }, want: { pgrp: j.pid, sid: l.pid }, message: `/proc/${p.pid}/stat just before the leader exits` };
    }),
  };
}

/** After L's exit with a member stopped: judgeOrphanedGroup's problems (none expected) and the members the kernel left unsignalled (an adaptation). L must have been sent SIGTERM. */
export function orphaned(r: StoppedMemberRun) {
  const l = r.tree.leader!;
  const stopped = r.stopped!;
  const e = r.exited!;
  const verdict = judgeOrphanedGroup({ members: r.tree.members.map((p) => p.pid), stopped, signals: e.signals, reaped: e.reaped });
  const evidence = `signal:signal_generate (SIGHUP=${SIGHUP}, SIGCONT=${SIGCONT}) for the job's members while leader ${l.pid} exited:\n` +
    `${verdict.record.map((x) => `  ${x}`).join('\n') || '  (none)'}\n` +
    `the subreaper's waitpid(2) statuses: ${r.tree.members.map((p) => `${p.pid} ${e.reaped.get(p.pid) ?? 'not reaped'}`).join(', ')}\n${show(e.after)}`;
  return {
    problems: verdict.problems.length,
    message: `${stopped} was stopped when leader ${l.pid} exited:\n${verdict.problems.map((p) => `  ${p}`).join('\n')}\n${evidence}`,
    unsignalled: verdict.unsignalled,
    adaptation: `this kernel (${e.kernel}) sent the orphaned group's SIGHUP and SIGCONT only to the stopped member ${stopped}, ` +
      `not to ${verdict.unsignalled.join(', ')} (signal:signal_generate); POSIX and kernel/exit.c's kill_orphaned_pgrp() send them to every member`,
  };
}
