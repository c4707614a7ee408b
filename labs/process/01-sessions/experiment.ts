/**
 * Process Lab 1's experiment: build the student's `sessions` and the harness's
 * `subreaper` (c/process/subreaper.c: prctl(PR_SET_CHILD_SUBREAPER), then it
 * reports each child it reaps with its waitpid(2) status), start
 * `subreaper sessions` and wait for the tree: a session leader L, a second
 * process group (J and M, one of them with threads) and a zombie Z, each role
 * found by its ids in /proc/<pid>/stat, never by what the program prints.
 * Each test's case starts a tree of its own, because each does something else
 * to it: only look (`observeTree`), SIGUSR1 to L (`reapOnSigusr1`), nothing
 * (`leaveUnreaped`), SIGTERM to L (`leaderExits`), SIGSTOP to M then SIGTERM
 * to L with signal:signal_generate recorded (`leaderExitsWithStoppedMember`).
 * A case ends early, with what it saw, where the tree lacks what the next step
 * needs; it never throws for a wrong program: judge.ts and the spec decide.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { startBackground, type Background } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { defer } from '../../../helpers/harness/resources.js';
import { recordProcessGroup } from '../../../helpers/harness/run-state.js';
import { parseSignalGenerate, SIGNAL_GENERATE, type GeneratedSignal } from '../../../helpers/kernel/signals.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import { descendants, listProcesses, listTasks, readStat, readStatus, type ProcStat } from '../../../helpers/kernel/procfs.js';
import { HOLD_MS, REAP_MS, SETTLE_MS, SIGCONT, SIGHUP, THREADS, UNREAPED_MS } from './judge.js';

/** The built programs. */
export interface SessionsSetup {
  readonly sessions: string;
  readonly subreaper: string;
}

export async function prepareSessions(): Promise<SessionsSetup> {
  const sessions = (await buildProgram({ src: labSource('process/01-sessions/sessions.c'), ldlibs: ['-lpthread'] })).path;
  const subreaper = (await buildProgram({ src: `${REFERENCE_SRC}/process/subreaper.c` })).path;
  return { sessions, subreaper };
}

/** One look at /proc below the subreaper: the roles found by their ids, not by what the program says. */
export interface Tree {
  /** The subreaper's pid. */
  readonly subreaper: number;
  readonly all: ProcStat[];
  /** L: sid = pid. */
  readonly leader?: ProcStat;
  /** J: a live process in L's session leading a group of its own with at least one other live member. */
  readonly job?: ProcStat;
  readonly members: ProcStat[];
  /** Z: L's children in state Z. */
  readonly zombies: ProcStat[];
  /** The subreaper's and the program's output (stdout and stderr) at that moment. */
  readonly output: string;
}

function snapshot(sub: Background): Tree {
  const all = descendants(listProcesses(), sub.pid);
  const leader = all.find((p) => p.session === p.pid && p.state !== 'Z');
  const inSession = leader ? all.filter((p) => p.session === leader.pid && p.pid !== leader.pid && p.state !== 'Z') : [];
  const job = inSession.find((p) => p.pgrp === p.pid && inSession.some((q) => q.pgrp === p.pid && q.pid !== p.pid));
  const members = job ? inSession.filter((p) => p.pgrp === job.pid) : [];
  const zombies = leader ? all.filter((p) => p.ppid === leader.pid && p.state === 'Z') : [];
  return { subreaper: sub.pid, all, leader, job, members, zombies, output: sub.output() };
}

/** Poll `probe` until `accept` holds or `timeoutMs` passes; the last value either way (the tests judge it). */
async function settle<T>(probe: () => T, accept: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = probe();
  while (!accept(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    v = probe();
  }
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pids the subreaper reaped, with what waitpid(2) said ("exit=0", "signal=1"). */
function reaped(sub: Background): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of sub.stdout().matchAll(/^reaped pid=(\d+) (exit|signal)=(\d+)$/gm)) out.set(Number(m[1]), `${m[2]}=${m[3]}`);
  return out;
}

/** Start `subreaper sessions` and wait until the whole tree is there (or SETTLE_MS passed); released when the test ends. */
async function startTree(s: SessionsSetup, signal: AbortSignal): Promise<{ sub: Background; tree: Tree }> {
  const sub = startBackground(s.subreaper, [s.sessions], { timeoutMs: 60_000, signal });
  // Released before the subreaper's own stop (newest first): L's session escapes the subreaper's process group.
  defer(`processes below subreaper ${sub.pid}`, async () => {
    for (const p of descendants(listProcesses(), sub.pid)) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    await settle(() => descendants(listProcesses(), sub.pid).filter((p) => p.state !== 'Z').length, (n) => n === 0, 5_000);
  });
  const full = (t: Tree) => Boolean(t.leader && t.job && t.zombies.length && t.members.some((m) => listTasks(m.pid).length >= 1 + THREADS));
  const tree = await settle(() => snapshot(sub), full, SETTLE_MS);
  // A killed run's reaper finds these groups too (they left the subreaper's process group).
  for (const g of new Set([tree.leader?.pid, tree.job?.pid].filter((p): p is number => Boolean(p)))) recordProcessGroup(g, `sessions (group ${g})`);
  return { sub, tree };
}

/** The member with the most tasks, as /proc shows them and its threads. */
export interface Threaded {
  /** Its /proc/<pid>/stat in the tree (num_threads). */
  readonly process: ProcStat;
  /** ls /proc/<pid>/task. */
  readonly tasks: number[];
  /** Per task: Tgid and Pid of /proc/<tid>/status (undefined once gone). */
  readonly ids: ({ tgid: number; pid: number } | undefined)[];
  /** Per task: whether readdir(/proc) lists it. */
  readonly listed: boolean[];
}

/** The tree as it appeared, with the leader's parent and the threaded member. */
export interface Observed {
  readonly tree: Tree;
  /** /proc/<ppid>/stat of the leader's parent (undefined when gone or no leader). */
  readonly parent?: ProcStat;
  readonly threaded?: Threaded;
}

export async function observeTree(s: SessionsSetup, signal: AbortSignal): Promise<Observed> {
  const { tree } = await startTree(s, signal);
  const parent = tree.leader ? readStat(tree.leader.ppid) : undefined;
  const most = tree.members.map((p) => ({ process: p, tasks: listTasks(p.pid) })).sort((a, b) => b.tasks.length - a.tasks.length)[0];
  let threaded: Threaded | undefined;
  if (most) {
    const listedNow = new Set(listProcesses().map((p) => p.pid));
    const ids = most.tasks.map((tid) => { const st = readStatus(tid); return st && { tgid: st.tgid, pid: st.pid }; });
    threaded = { ...most, ids, listed: most.tasks.map((tid) => listedNow.has(tid)) };
  }
  return { tree, parent, threaded };
}

/** SIGUSR1 to L once Z has stayed a zombie for HOLD_MS. */
export interface Sigusr1Run {
  readonly tree: Tree;
  /** Z's /proc/<pid>/stat HOLD_MS after the tree appeared (undefined: gone); absent when there was no zombie to watch. */
  readonly held?: { readonly stat?: ProcStat };
  /** After SIGUSR1 (sent only when Z was still a zombie). */
  readonly signalled?: {
    /** Z's /proc entry gone within REAP_MS. */
    readonly gone: boolean;
    readonly ms: number;
    readonly after: Tree;
    /** L's /proc/<pid>/stat then. */
    readonly leaderNow?: ProcStat;
    readonly reaped: ReadonlyMap<number, string>;
  };
}

export async function reapOnSigusr1(s: SessionsSetup, signal: AbortSignal): Promise<Sigusr1Run> {
  const { sub, tree } = await startTree(s, signal);
  const z = tree.zombies[0];
  const l = tree.leader;
  if (!l || !z) return { tree };
  await sleep(HOLD_MS);
  const still = readStat(z.pid);
  const held = { stat: still };
  if (still?.state !== 'Z') return { tree, held };
  const t0 = Date.now();
  process.kill(l.pid, 'SIGUSR1');
  const gone = await settle(() => !existsSync(`/proc/${z.pid}`), (g) => g, REAP_MS);
  const ms = Date.now() - t0;
  const after = snapshot(sub);
  return { tree, held, signalled: { gone, ms, after, leaderNow: readStat(l.pid), reaped: reaped(sub) } };
}

/** No signal at all: how long Z stayed a zombie (at most UNREAPED_MS is watched). */
export interface UnreapedRun {
  readonly tree: Tree;
  readonly watched?: {
    /** Z's /proc/<pid>/stat when it left state Z, or at the end (undefined: gone). */
    readonly last?: ProcStat;
    readonly ms: number;
    /** L's signal masks then (ShdPnd, SigBlk, SigIgn, SigCgt of /proc/<pid>/status: name → value); undefined once gone. */
    readonly leaderMasks?: [string, string][];
    readonly reaped: ReadonlyMap<number, string>;
    readonly after: Tree;
  };
}

export async function leaveUnreaped(s: SessionsSetup, signal: AbortSignal): Promise<UnreapedRun> {
  const { sub, tree } = await startTree(s, signal);
  const z = tree.zombies[0];
  const l = tree.leader;
  if (!l || !z) return { tree };
  const t0 = Date.now();
  const last = await settle(() => readStat(z.pid), (st) => st?.state !== 'Z', UNREAPED_MS);
  const ms = Date.now() - t0;
  const status = readStatus(l.pid);
  const leaderMasks = status && [...status.fields].filter(([k]) => /^Sig(Blk|Ign|Cgt)|^ShdPnd/.test(k));
  return { tree, watched: { last, ms, leaderMasks, reaped: reaped(sub), after: snapshot(sub) } };
}

/** SIGTERM to L while no member is stopped: what became of L and of the job's members HOLD_MS later. */
export interface LeaderExitRun {
  readonly tree: Tree;
  readonly exited?: {
    readonly after: Tree;
    /** L's /proc entry still there. */
    readonly leaderThere: boolean;
    readonly reaped: ReadonlyMap<number, string>;
    /** Each member's /proc/<pid>/stat then, in the order of tree.members (undefined: gone). */
    readonly members: (ProcStat | undefined)[];
  };
}

export async function leaderExits(s: SessionsSetup, signal: AbortSignal): Promise<LeaderExitRun> {
  const { sub, tree } = await startTree(s, signal);
  const l = tree.leader;
  if (!l || !tree.job) return { tree };
  process.kill(l.pid, 'SIGTERM');
  const reparented = (p: ProcStat) => readStat(p.pid)?.ppid === sub.pid;
  await settle(() => !existsSync(`/proc/${l.pid}`) && tree.members.every(reparented), (ok) => ok, 3_000);
  await sleep(HOLD_MS);
  const after = snapshot(sub);
  const leaderThere = existsSync(`/proc/${l.pid}`);
  const reapedNow = reaped(sub);
  return { tree, exited: { after, leaderThere, reaped: reapedNow, members: tree.members.map((p) => readStat(p.pid)) } };
}

/** SIGSTOP to a member other than J, then SIGTERM to L, with the kernel's SIGHUP and SIGCONT recorded. */
export interface StoppedMemberRun {
  readonly tree: Tree;
  /** The member stopped (absent when there was no job). */
  readonly stopped?: number;
  /** The states of its threads once it should be stopped ("TTTT"). */
  readonly states?: string;
  /** Each member's /proc/<pid>/stat just before L was sent SIGTERM, in the order of tree.members (only once every thread was stopped). */
  readonly before?: (ProcStat | undefined)[];
  /** Once L was sent SIGTERM (only when every member was still in J's group and L's session). */
  readonly exited?: {
    /** signal:signal_generate events for SIGHUP and SIGCONT (any target) while L exited. */
    readonly signals: GeneratedSignal[];
    /** The subreaper's waitpid(2) statuses. */
    readonly reaped: ReadonlyMap<number, string>;
    readonly after: Tree;
    /** uname -r. */
    readonly kernel: string;
  };
}

export async function leaderExitsWithStoppedMember(s: SessionsSetup, signal: AbortSignal): Promise<StoppedMemberRun> {
  const { sub, tree } = await startTree(s, signal);
  const l = tree.leader;
  const j = tree.job;
  if (!l || !j) return { tree };
  const stopped = tree.members.find((p) => p.pid !== j.pid)!.pid;
  process.kill(stopped, 'SIGSTOP');
  // Every thread, not just the main one: the kernel counts a process as stopped (SIGNAL_STOP_STOPPED, what
  // kill_orphaned_pgrp() looks for) only once all its threads took part in the group stop.
  const states = await settle(() => listTasks(stopped).map((tid) => readStat(tid)?.state ?? '?').join(''), (st) => st.length > 0 && /^T+$/.test(st), 3_000);
  if (!/^T+$/.test(states)) return { tree, stopped, states };
  const before = tree.members.map((p) => readStat(p.pid));
  if (!before.every((st) => st && st.pgrp === j.pid && st.session === l.pid)) return { tree, stopped, states, before };
  // The kernel's own record of the signals it generates while the leader exits (signal:signal_generate).
  const trace = makeTraceInstance([SIGNAL_GENERATE], { tag: 'sig', enable: false });
  if (!trace) throw new Error(`no tracefs instance with ${SIGNAL_GENERATE} here (mount tracefs: sudo npm run setup)`);
  writeFileSync(join(trace.dir, 'events', SIGNAL_GENERATE, 'filter'), `sig == ${SIGHUP} || sig == ${SIGCONT}`);
  trace.setEnabled(true);
  process.kill(l.pid, 'SIGTERM');
  const statuses = await settle(() => reaped(sub), (r) => tree.members.every((p) => r.has(p.pid)), 5_000);
  trace.setEnabled(false);
  const signals = trace.read().events.map(parseSignalGenerate).filter((g): g is GeneratedSignal => Boolean(g));
  await trace.release();
  return { tree, stopped, states, before, exited: { signals, reaped: statuses, after: snapshot(sub), kernel: release() } };
}
