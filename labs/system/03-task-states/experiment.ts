/**
 * System Lab 3's experiment: build the student's `task_states`, feed it the
 * states R S D T t Z in a random order and random counts on its stdin (a FIFO
 * the spec holds open), and for each pid it prints read what the kernel says:
 * /proc/<pid>/stat (state, ppid), /proc/<pid>/status (TracerPid, pending
 * signals), wchan and the kernel stack, CPU time over a one-second window, and
 * in a private tracefs instance following the program and everything it forks
 * (event-fork): sched_switch (each switch's prev_state), sched_process_exit,
 * signal_generate and signal_deliver. Then it acts on the children (SIGCONT,
 * SIGSTOP, SIGTERM, SIGKILL, ending a vfork wait), asks for `W` and closes the
 * input (the program's exit, in the same trace, shows any zombie it hands to the reaper). Never throws once built: a program that does not answer leaves
 * `stuck`, and judge.ts and the spec decide.
 */
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, scaledTimeout, startBackground, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { listProcesses, readStat, readStatus, type ProcStat } from '../../../helpers/kernel/procfs.js';
import { makeTraceInstance, type TraceEvent } from '../../../helpers/kernel/tracefs.js';

export type TaskState = 'R' | 'S' | 'D' | 'T' | 't' | 'Z';
export const STATES: readonly TaskState[] = ['R', 'S', 'D', 'T', 't', 'Z'];

/** How many children of each state one run asks for (random; D at least 2: one SIGTERM'd, one SIGKILL'd). */
export const COUNTS: Readonly<Record<TaskState, number>> = {
  R: 1 + Math.floor(Math.random() * 2), S: 1 + Math.floor(Math.random() * 2), D: 2 + Math.floor(Math.random() * 2),
  T: 1 + Math.floor(Math.random() * 2), t: 1 + Math.floor(Math.random() * 2), Z: 1 + Math.floor(Math.random() * 2),
};

/** The commands in a random order. */
export const ORDER: readonly TaskState[] = (() => {
  const l = STATES.flatMap((s) => Array<TaskState>(COUNTS[s]).fill(s));
  for (let i = l.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [l[i], l[j]] = [l[j]!, l[i]!]; }
  return l;
})();

/** How long the program may take to print a pid, and a child to reach its state (stretched under TCG: LABS_TIMEOUT_SCALE). */
export const ANSWER_MS = scaledTimeout(5_000);
export const SETTLE_MS = scaledTimeout(3_000);
/** The observation window: states sampled, CPU time read before and after. */
export const WINDOW_MS = 1_000;
const SAMPLE_MS = 50;
/** How long a signal's effect may take to show (a stop, a wake-up, a death). */
export const REACT_MS = scaledTimeout(1_500);
/** The trace_marker line written when the window ends, before the spec sends any signal. */
export const WINDOW_MARK = 'kl-task-states: window over';
/** How long the program may take to end after its input closed. */
export const EXIT_MS = scaledTimeout(5_000);
/** How long a D child is watched after SIGTERM. */
export const IGNORE_MS = 400;

/** What /proc said about one process at one moment. */
export interface ProcView {
  readonly stat?: ProcStat;
  /** Its thread group (Tgid in /proc/<pid>/status): a process when it equals the pid, a thread otherwise. */
  readonly tgid?: number;
  /** The tasks still in its thread group (/proc/<pid>/task): a zombie has none but its leader. */
  readonly tasks?: readonly number[];
  /** SigCgt: the signals it catches (bit n-1 = signal n). */
  readonly caught?: bigint;
  readonly tracerPid?: number;
  /** The tracer's thread group (its Tgid), when traced. */
  readonly tracerTgid?: number;
  /** SigPnd | ShdPnd, as a bit mask (bit n-1 = signal n). */
  readonly pending?: bigint;
  readonly wchan?: string;
  /** The first frames of /proc/<pid>/stack (empty where unreadable). */
  readonly stack: readonly string[];
}

/** One child the spec asked for. */
export interface Child {
  readonly asked: TaskState;
  /** The line the program printed for it (trimmed), or undefined when none came. */
  readonly line?: string;
  readonly pid?: number;
  /** States seen while waiting for it to settle, in order, deduplicated. */
  readonly seen: readonly string[];
  /** /proc once settled (or at the deadline). */
  readonly view?: ProcView;
  /** States sampled every 50 ms over the window. */
  samples: string[];
  /** CPU time (schedstat, ns) and context switches over the window. */
  runNs?: number;
  switches?: number;
}

/** What happened to each child when the spec acted on it. */
export interface Actions {
  /** T: state after SIGCONT (first state other than T within REACT_MS, or T). */
  readonly continued: Map<number, string>;
  /** t: state IGNORE_MS after SIGCONT. */
  readonly tracedAfterCont: Map<number, string>;
  /** S: state after SIGSTOP, then after SIGCONT. */
  readonly sleepStop: Map<number, { stopped: string; resumed: string }>;
  /** D #1: SIGTERM while waiting, then the wait ended by killing its vfork child. */
  termed?: {
    pid: number; vforkKids: number[]; afterTerm: ProcView; afterEnd?: ProcView; endedAt?: number;
  };
  /** D #2: SIGKILL while its vfork child still lives. */
  killed?: { pid: number; vforkKids: number[]; kidsAliveAtKill: number[]; after?: ProcView; sentAt: number; kidsAfter?: string[] };
  /** D #3…: the wait ended by killing the vfork child. */
  readonly released: Map<number, { vforkKids: number[]; after?: string }>;
  /** After W: which asked-for children still exist, with their stat. */
  afterW?: { program?: ProcStat; children: Map<number, ProcStat | undefined> };
}

/** The evidence of one run. */
export interface Run {
  readonly pid: number;
  /** The program's parent when it started: its own SIGCHLD at its exit goes there. */
  readonly parent?: number;
  readonly order: readonly TaskState[];
  readonly children: Child[];
  readonly actions: Actions;
  /** The kernel's record: sched_switch, sched_process_exit, signal_generate/deliver of the program and what it forked. */
  events: TraceEvent[];
  lost: boolean;
  /** How the program ended after its input closed. */
  exit?: RunResult;
  /** The asked-for children still alive (not zombies) once the program had ended. */
  survivors: ProcStat[];
  readonly stuck?: string;
  output: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readText(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/** What /proc shows of `pid` now. */
export function view(pid: number): ProcView {
  const stat = readStat(pid);
  const status = readStatus(pid);
  const tracerPid = status ? Number(status.fields.get('TracerPid') ?? 0) : undefined;
  const mask = (k: string) => BigInt(`0x${status?.fields.get(k) ?? '0'}`);
  const stack = (readText(`/proc/${pid}/stack`) ?? '').split('\n').filter(Boolean).slice(0, 6).map((l) => l.replace(/^\[<[0-9a-f]+>\]\s*/, ''));
  let tasks: number[] | undefined;
  try { tasks = readdirSync(`/proc/${pid}/task`).map(Number); } catch { /* gone */ }
  return {
    stat,
    tgid: status?.tgid,
    tasks,
    caught: status ? mask('SigCgt') : undefined,
    tracerPid,
    tracerTgid: tracerPid ? readStatus(tracerPid)?.tgid : undefined,
    pending: status ? mask('SigPnd') | mask('ShdPnd') : undefined,
    wchan: readText(`/proc/${pid}/wchan`)?.trim(),
    stack,
  };
}

/** The scheduler's CPU time of `pid` in ns (/proc/<pid>/schedstat field 1), undefined once gone. */
function runNs(pid: number): number | undefined {
  const t = readText(`/proc/${pid}/schedstat`);
  return t ? Number(t.split(/\s+/)[0]) : undefined;
}

function switches(pid: number): number | undefined {
  const s = readStatus(pid);
  return s ? Number(s.fields.get('voluntary_ctxt_switches') ?? 0) + Number(s.fields.get('nonvoluntary_ctxt_switches') ?? 0) : undefined;
}

/** Poll `pid`'s state until `done` says so or `ms` pass; the last state read ('gone' once reaped). */
async function until(pid: number, done: (state: string) => boolean, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let state = readStat(pid)?.state ?? 'gone';
  while (!done(state) && Date.now() < deadline) {
    await sleep(10);
    state = readStat(pid)?.state ?? 'gone';
  }
  return state;
}

const kill = (pid: number, sig: NodeJS.Signals) => { try { process.kill(pid, sig); } catch { /* gone */ } };
const childrenOf = (pid: number) => listProcesses().filter((p) => p.ppid === pid).map((p) => p.pid);

/** Build the student's task_states.c. */
export async function buildTaskStates(): Promise<string> {
  return (await buildProgram({ src: labSource('system/03-task-states/task_states.c') })).path;
}

/** Run the whole protocol once; never throws (the tests judge). */
export async function runTaskStates(program: string): Promise<Run> {
  const dir = await makeTempDir('ts');
  const fifo = join(dir, 'commands');
  await run('mkfifo', [fifo], { timeoutMs: 5_000 });
  // Read and write: the open does not wait for the program, and the program sees end of input when this closes.
  let fd: number | undefined = openSync(fifo, 'r+');
  const trace = makeTraceInstance(['sched/sched_switch', 'sched/sched_process_exit', 'signal/signal_generate', 'signal/signal_deliver'],
    { tag: 'ts', bufferKb: 8192, clock: 'mono', enable: false, recordTgid: true });
  // The program's stdin is the FIFO (sh execs it: same pid, inside the run's sandbox).
  const prog = startBackground('sh', ['-c', 'exec "$0" < "$1"', program, fifo], { timeoutMs: 120_000 });
  const pid = prog.pid;
  const children: Child[] = [];
  const actions: Actions = { continued: new Map(), tracedAfterCont: new Map(), sleepStop: new Map(), released: new Map() };
  const grandchildren = new Set<number>();
  const r: Run = { pid, parent: readStat(pid)?.ppid, order: ORDER, children, actions, events: [], lost: false, survivors: [], output: '' };
  const close = () => { if (fd !== undefined) { closeSync(fd); fd = undefined; } };
  const finish = async (stuck?: string): Promise<Run> => {
    close();
    const exit = await Promise.race([prog.exited, sleep(EXIT_MS).then(() => undefined)]);
    // The sandbox ends whatever the program left when it exits: the trace's exit times say who ended first.
    const made = new Set(children.map((c) => c.pid).filter((p): p is number => p !== undefined && p > 0));
    const survivors = exit ? listProcesses().filter((p) => made.has(p.pid) && p.state !== 'Z') : [];
    await sleep(200);
    let events: TraceEvent[] = [];
    let lost = false;
    if (trace) { trace.setEnabled(false); ({ events, lost } = trace.read()); await trace.release(); }
    await prog.stop('SIGKILL');
    // Without a sandbox (LABS_SANDBOX=0) nothing else would end them.
    for (const p of [...made, ...grandchildren]) if (readStat(p)) kill(p, 'SIGKILL');
    return { ...r, events, lost, exit, survivors, output: prog.output(), ...(stuck ? { stuck } : {}) };
  };
  if (!trace) return finish('tracefs instances or sched:sched_switch, sched:sched_process_exit, signal:signal_generate, signal:signal_deliver missing');
  // The program and (event-fork) every process it makes, from their first instruction.
  writeFileSync(trace.pidFile, String(pid));
  writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  trace.setEnabled(true);

  const pidLines = () => prog.stdout().split('\n').map((l) => l.trim()).filter((l) => /^-?\d+$/.test(l));
  for (const asked of ORDER) {
    const before = pidLines().length;
    try { writeSync(fd!, `${asked}\n`); } catch (e) { return finish(`writing '${asked}' to the program's stdin failed: ${(e as Error).message}`); }
    const deadline = Date.now() + ANSWER_MS;
    while (pidLines().length <= before && Date.now() < deadline && readStat(pid)) await sleep(10);
    const line = pidLines()[before];
    const n = line === undefined ? undefined : Number(line);
    if (n === undefined || n <= 0 || n === pid) { children.push({ asked, line, seen: [], samples: [] }); continue; }
    const seen: string[] = [];
    const settle = Date.now() + SETTLE_MS;
    for (;;) {
      const s = readStat(n)?.state ?? 'gone';
      if (seen[seen.length - 1] !== s) seen.push(s);
      if (s === asked || s === 'gone' || Date.now() > settle) break;
      await sleep(10);
    }
    children.push({ asked, line, pid: n, seen, view: view(n), samples: [] });
  }
  if (!readStat(pid) || readStat(pid)!.state === 'Z') return finish(`the program ${pid} ended before its input did`);

  // The window: every child's state every 50 ms, its CPU time and switches before and after.
  const live = children.filter((c) => c.pid !== undefined);
  const start = new Map(live.map((c) => [c.pid!, { ns: runNs(c.pid!), sw: switches(c.pid!) }]));
  const end = Date.now() + WINDOW_MS;
  while (Date.now() < end) {
    for (const c of live) c.samples.push(readStat(c.pid!)?.state ?? 'gone');
    await sleep(SAMPLE_MS);
  }
  // A marker in the ring buffer: the switches before it are the children's own, before the spec acted on them.
  try { writeFileSync(join(trace.dir, 'trace_marker'), WINDOW_MARK); } catch { /* judged without it: every switch counts */ }
  for (const c of live) {
    const a = start.get(c.pid!)!;
    const ns = runNs(c.pid!);
    const sw = switches(c.pid!);
    if (a.ns !== undefined && ns !== undefined) c.runNs = ns - a.ns;
    if (a.sw !== undefined && sw !== undefined) c.switches = sw - a.sw;
  }

  const reached = (s: TaskState) => live.filter((c) => c.asked === s && c.view?.stat?.state === s).map((c) => c.pid!);
  // T: SIGCONT ends a group stop. t: it does not end a ptrace stop.
  for (const p of reached('T')) { kill(p, 'SIGCONT'); actions.continued.set(p, await until(p, (s) => s !== 'T', REACT_MS)); }
  for (const p of reached('t')) kill(p, 'SIGCONT');
  if (reached('t').length) await sleep(IGNORE_MS);
  for (const p of reached('t')) actions.tracedAfterCont.set(p, readStat(p)?.state ?? 'gone');
  // S: a signal wakes an interruptible sleep: SIGSTOP stops it at once, SIGCONT sends it back to sleep.
  for (const p of reached('S')) {
    kill(p, 'SIGSTOP');
    const stopped = await until(p, (s) => ['T', 't', 'Z', 'gone'].includes(s), REACT_MS);
    kill(p, 'SIGCONT');
    const resumed = await until(p, (s) => s === 'S' || s === 'gone' || s === 'Z', REACT_MS);
    actions.sleepStop.set(p, { stopped, resumed });
  }
  // D: the first one gets SIGTERM (caught: it must stay asleep), then its vfork child is killed to end the wait.
  const ds = reached('D');
  const endWait = (kids: number[]) => kids.forEach((k) => { grandchildren.add(k); kill(k, 'SIGKILL'); });
  if (ds[0] !== undefined) {
    const p = ds[0];
    const vforkKids = childrenOf(p);
    vforkKids.forEach((k) => grandchildren.add(k));
    kill(p, 'SIGTERM');
    await sleep(IGNORE_MS);
    actions.termed = { pid: p, vforkKids, afterTerm: view(p) };
    if (vforkKids.length && actions.termed.afterTerm.stat?.state === 'D') {
      endWait(vforkKids);
      actions.termed.endedAt = Date.now();
      await until(p, (s) => s !== 'D', REACT_MS);
      await sleep(100);
      actions.termed.afterEnd = view(p);
    }
  }
  // The second gets SIGKILL while its vfork child still lives: a killable sleep ends.
  if (ds[1] !== undefined) {
    const p = ds[1];
    const vforkKids = childrenOf(p);
    const kidsAliveAtKill = vforkKids.filter((k) => { const s = readStat(k)?.state; return s !== undefined && s !== 'Z'; });
    kill(p, 'SIGKILL');
    actions.killed = { pid: p, vforkKids, kidsAliveAtKill, sentAt: Date.now() };
    await until(p, (s) => s === 'Z' || s === 'gone', REACT_MS);
    actions.killed.after = view(p);
    // Its vfork child must die with it (PR_SET_PDEATHSIG): dead (Z, or reaped) before the spec ends it.
    const deadline = Date.now() + REACT_MS;
    const alive = () => vforkKids.filter((k) => { const s = readStat(k)?.state; return s !== undefined && s !== 'Z'; });
    while (alive().length && Date.now() < deadline) await sleep(10);
    actions.killed.kidsAfter = vforkKids.map((k) => readStat(k)?.state ?? 'gone');
    endWait(vforkKids);
  }
  for (const p of ds.slice(2)) {
    const vforkKids = childrenOf(p);
    endWait(vforkKids);
    actions.released.set(p, { vforkKids, after: await until(p, (s) => s !== 'D', REACT_MS) });
  }
  // Z: W reaps every child that has exited; the others stay.
  const zs = reached('Z');
  try { writeSync(fd!, 'W\n'); } catch { /* the program is gone: afterW says so */ }
  const wDeadline = Date.now() + REACT_MS;
  while (zs.some((p) => readStat(p)) && Date.now() < wDeadline) await sleep(10);
  await sleep(100);
  actions.afterW = { program: readStat(pid), children: new Map(live.map((c) => [c.pid!, readStat(c.pid!)])) };
  return finish();
}
