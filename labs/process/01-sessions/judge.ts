/**
 * Process Lab 1's verdict on the orphaned-group test, from the kernel's record
 * (pure: unit-tested in tests/lab-units/process/01-sessions/sessions-judge.test.ts).
 *
 * POSIX (and kernel/exit.c's kill_orphaned_pgrp()): when an exit orphans a
 * process group — no member has a parent in the same session but another
 * group — and a member of it is stopped, every member gets SIGHUP, then
 * SIGCONT. Linux checks this while it reparents the exiting leader's children
 * one by one (forget_original_parent → reparent_leader): the group is orphaned
 * only once the last of them has its new parent, so the signals come from the
 * exiting leader's context, with si_code SI_KERNEL (128).
 */
import type { GeneratedSignal } from '../../../helpers/kernel/signals.js';
import { formatGenerated } from '../../../helpers/kernel/signals.js';

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
