/**
 * Process Lab 6's experiment: build the student's `cfs_pair`, run
 * `cfs_pair <cpu> <nice> <seconds>` once in a kl-… cgroup of its own
 * (helpers/kernel/cgroup.ts, v1 here) with a high weight, so other work on the
 * shared host takes CPU from the pair as a whole rather than from one of them,
 * and collect what the kernel shows of its two hogs: Cpus_allowed_list, exe,
 * policy, nice and se.load.weight; se.sum_exec_runtime and se.vruntime of
 * /proc/<pid>/sched over three windows; the sched:sched_switch events between
 * the two pids and the programs the pair exec'd (sched:sched_process_exec) in
 * private tracefs instances; the hogs' voluntary switches, the parent's CPU
 * time, the cgroup's members; then a short second run on another CPU. Never
 * throws once built: a pair that does not start ends the run early with
 * `stuck`, and judge.ts and the spec decide.
 */
import { randomInt } from 'node:crypto';
import { readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { join as pathJoin } from 'node:path';
import { availableParallelism } from 'node:os';
import { pidsIn } from '../../../helpers/harness/cgroup-files.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { enterPrograms } from '../../../helpers/harness/contain.js';
import { startBackground } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeCgroup } from '../../../helpers/kernel/cgroup.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import { switchesBetween } from '../../../helpers/kernel/sched.js';
import { formatStat, listProcesses, readSched, readStat, readStatus, type ProcStat } from '../../../helpers/kernel/procfs.js';

/** N random in 3..7: ideal ratios 1.95 … 4.76, far enough apart that a wrong nice is caught. */
export const NICE = 3 + Math.floor(Math.random() * 5);
/**
 * The CPU and the run times are random too: a program that ignores <cpu> is caught, and one that parses <seconds> as
 * an integer loses a fraction of 0.45–0.90 s, more than EARLY_SLACK_MS (tests/fixtures/process/06-cfs/clever-int-seconds).
 */
export const CPU = randomInt(0, availableParallelism());
export const WINDOWS = 3;
export const WINDOW_MS = 1_000;
const SETTLE_MS = 300;
/** A fraction of 0.45–0.90 (two decimals): what an integer parse of <seconds> loses. */
const fraction = () => 0.45 + randomInt(0, 46) / 100;

interface Sample { readonly sum: number; readonly vruntime: number; readonly weight: number; readonly nice: number }

/** The evidence of one run of `cfs_pair CPU NICE <seconds>` (and of the short second run). */
export interface Run {
  /** The arguments: <cpu> and <nice>; the windows measured as planned (count, length). */
  readonly cpu: number;
  readonly nice: number;
  readonly windowCount: number;
  readonly windowMs: number;
  /** cfs_pair's real path: what the hogs' /proc/<pid>/exe must be. */
  readonly self: string;
  readonly kids: ProcStat[];
  readonly affinity: string[];
  readonly windows: { dSum: [number, number]; dVr: [number, number] }[];
  readonly weights: [number, number];
  readonly nices: [number, number];
  readonly switches: number;
  readonly switchSample: string[];
  readonly stuck?: string;
  readonly load: string;
  readonly cgroupVersion: 1 | 2;
  /** Per hog: the executable (/proc/<pid>/exe) and the scheduling policy (/proc/<pid>/sched). */
  readonly exes: string[];
  readonly policies: number[];
  /** Programs other than cfs_pair that the program's processes exec'd ("pid file", sched:sched_process_exec). */
  readonly exec: string[];
  /** The <seconds> argument and how long the program ran (ms). */
  readonly seconds: number;
  readonly ranMs?: number;
  /** A second, short run on another CPU (where there is one): its <cpu> and <seconds>, the CPU its hogs were allowed. */
  readonly other?: { readonly cpu: number; readonly seconds: number; readonly affinity: string[]; readonly ranMs: number };
  /** Over the measured windows: the parent's CPU time (ms), each hog's voluntary context switches, hogs missing from the spec's cgroup.procs. */
  readonly parentCpuMs: number;
  readonly voluntary: number[];
  readonly notInCgroup: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Build the student's cfs_pair.c. */
export async function buildPair(): Promise<string> {
  return (await buildProgram({ src: labSource('process/06-cfs/cfs_pair.c') })).path;
}

function sample(pid: number): Sample | undefined {
  const s = readSched(pid);
  const st = readStat(pid);
  if (!s || !st) return undefined;
  return { sum: s.get('se.sum_exec_runtime') ?? NaN, vruntime: s.get('se.vruntime') ?? NaN, weight: s.get('se.load.weight') ?? NaN, nice: st.nice };
}

/** Run the pair once, collecting the kernel's view; never throws for a wrong program (the tests judge). */
export async function runPair(program: string): Promise<Run> {
  const cg = makeCgroup({ tag: 'cfs' });
  // A high weight for the pair's group: the host's other work then competes with the group, not with one hog.
  cg.setCpuWeight(1000);
  // 4.8 s of measuring and margin, plus 0.45–0.90 s: an integer parse of <seconds> ends the pair that much early.
  const seconds = Number(((SETTLE_MS + WINDOWS * WINDOW_MS + 1_500) / 1000 + 0.2 + fraction()).toFixed(2));
  const self = realpathSync(program);
  const started = Date.now();
  const join = cg.dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ');
  // Every program the pair's processes exec, from the first instruction (event-fork: the program and all it forks).
  const execs = makeTraceInstance(['sched/sched_process_exec'], { tag: 'cfsx', enable: false });
  if (execs) writeFileSync(pathJoin(execs.dir, 'options', 'event-fork'), '1');
  const watch = execs ? `echo $$ > ${execs.pidFile} && echo 1 > ${execs.enableFile('sched/sched_process_exec')} && ` : '';
  const prog = startBackground('sh', ['-c', `${join} && ${watch}exec "$0" "$@"`, program, String(CPU), String(NICE), String(seconds)], { timeoutMs: 60_000 });
  const load = loadavg;
  const base = { cpu: CPU, nice: NICE, windowCount: WINDOWS, windowMs: WINDOW_MS, self, seconds, exec: [] as string[], parentCpuMs: 0, voluntary: [] as number[], notInCgroup: [] as string[], exes: [] as string[], policies: [] as number[], cgroupVersion: cg.version, affinity: [] as string[], windows: [] as Run['windows'], weights: [0, 0] as [number, number], nices: [0, 0] as [number, number], switches: 0, switchSample: [] as string[] };
  let kids: ProcStat[] = [];
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (kids = listProcesses().filter((p) => p.ppid === prog.pid && p.state !== 'Z')).length < 2) await sleep(20);
  if (kids.length < 2) return { ...base, kids, load: load(), stuck: `expected two hog children of ${prog.pid} within 5 s; found ${kids.map(formatStat).join('; ') || 'none'} (output: ${prog.output().trim() || 'none'})` };
  kids.sort((a, b) => a.pid - b.pid);
  await sleep(SETTLE_MS);
  const pids = kids.map((k) => k.pid);
  const affinity = pids.map((p) => readStatus(p)?.fields.get('Cpus_allowed_list') ?? '(gone)');
  const exes = pids.map((p) => { try { return readlinkSync(`/proc/${p}/exe`); } catch { return '(gone)'; } });
  const policies = pids.map((p) => readSched(p)?.get('policy') ?? -1);
  const trace = makeTraceInstance(['sched/sched_switch'], { tag: 'cfs', enable: false, bufferKb: 8192 });
  if (trace) { writeFileSync(trace.pidFile, pids.join(' ')); trace.setEnabled(true); }
  const windows: Run['windows'] = [];
  const parent0 = cpuMs(prog.pid);
  const vol0 = pids.map(voluntarySwitches);
  let prev = pids.map(sample);
  for (let w = 0; w < WINDOWS; w++) {
    await sleep(WINDOW_MS);
    const cur = pids.map(sample);
    if (cur.some((s) => !s) || prev.some((s) => !s)) break;
    windows.push({ dSum: [cur[0]!.sum - prev[0]!.sum, cur[1]!.sum - prev[1]!.sum], dVr: [cur[0]!.vruntime - prev[0]!.vruntime, cur[1]!.vruntime - prev[1]!.vruntime] });
    prev = cur;
  }
  const parentCpuMs = cpuMs(prog.pid) - parent0;
  const voluntary = pids.map((p, i) => voluntarySwitches(p) - vol0[i]!);
  // The hogs stay where the spec put the program: in its cgroup itself (cgroup.procs), not in cgroups of their own.
  const notInCgroup = cg.dirs.flatMap((d) => { const procs = pidsIn(d); return pids.filter((p) => !procs.includes(p)).map((p) => `${p} not in ${d}/cgroup.procs`); });
  let switches = 0;
  const switchSample: string[] = [];
  if (trace) {
    trace.setEnabled(false);
    const { events, lines } = trace.read();
    switches = switchesBetween(events, pids[0]!, pids[1]!);
    switchSample.push(...lines.filter((l) => l.includes('sched_switch')).slice(0, 2));
    await trace.release();
  }
  const last = prev as Sample[];
  await prog.exited;
  const ranMs = Date.now() - started;
  const exec = execs ? otherPrograms(execs, self, prog.pid) : ['(no tracefs instance for sched:sched_process_exec)'];
  await execs?.release();
  const other = await otherCpuRun(program);
  return { ...base, exes, policies, ranMs, exec, parentCpuMs, voluntary, notInCgroup, ...(other ? { other } : {}), kids, affinity, windows, weights: [last[0]?.weight ?? 0, last[1]?.weight ?? 0], nices: [last[0]?.nice ?? 99, last[1]?.nice ?? 99], switches, switchSample, load: load(),
    stuck: windows.length < WINDOWS ? `a hog ended before ${WINDOWS} windows of ${WINDOW_MS} ms were measured` : trace ? undefined : 'no tracefs instance for sched:sched_switch' };
}

/** With two CPUs a program that ignores <cpu> is right half the time: a short second run on the other CPU tells. */
async function otherCpuRun(program: string): Promise<Run['other']> {
  const cpus = availableParallelism();
  if (cpus < 2) return undefined;
  const cpu = (CPU + 1 + randomInt(0, cpus - 1)) % cpus;
  const seconds = Number((1 + fraction()).toFixed(2));
  const t0 = Date.now();
  const prog = startBackground(program, [String(cpu), String(NICE), String(seconds)], { timeoutMs: 30_000 });
  let kids: ProcStat[] = [];
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline && (kids = listProcesses().filter((p) => p.ppid === prog.pid && p.state !== 'Z')).length < 2) await sleep(20);
  await sleep(100);
  const affinity = kids.sort((a, b) => a.pid - b.pid).map((k) => readStatus(k.pid)?.fields.get('Cpus_allowed_list') ?? '(gone)');
  await prog.exited;
  return { cpu, seconds, affinity, ranMs: Date.now() - t0 };
}

/**
 * sched:sched_process_exec of the program's tree ("filename=… pid=… old_pid=…"): every program run other than
 * cfs_pair itself (the first exec is the spec's shell turning into cfs_pair). A hog that execs taskset or nice
 * back into cfs_pair, or has a shell run taskset -p and renice -p on it, leaves its tools here.
 */
function otherPrograms(trace: NonNullable<ReturnType<typeof makeTraceInstance>>, self: string, programPid: number): string[] {
  trace.setEnabled(false);
  const real = (f: string) => { try { return realpathSync(f); } catch { return f; } };
  const r = trace.read();
  const execs = r.events.filter((e) => e.event === 'sched_process_exec')
    .map((e) => e.body.match(/^filename=(.*) pid=(\d+) old_pid=(\d+)$/))
    .filter((m): m is RegExpMatchArray => Boolean(m));
  // a contained lab enters the program through nsenter, env and setpriv, exec'd in the shell's pid before cfs_pair
  const wrappers = new Set(enterPrograms());
  const firstSelf = execs.findIndex((m) => Number(m[2]) === programPid && real(m[1]!) === self);
  const entering = (m: RegExpMatchArray, i: number) => i < firstSelf && Number(m[2]) === programPid && wrappers.has(real(m[1]!));
  const out = execs.filter((m, i) => real(m[1]!) !== self && !entering(m, i)).map((m) => `${m[2]} ${m[1]}`);
  // The record must be whole: a buffer the program's execs overran, or one it cleared, would hide the tools it ran.
  if (r.lost) out.push('(events lost: the exec trace\'s ring buffer was overrun, so execs are missing from it)');
  if (!execs.some((m) => Number(m[2]) === programPid && real(m[1]!) === self)) {
    out.push(`(the spec's own shell exec'ing cfs_pair at pid ${programPid} is missing from the exec trace: its buffer was cleared)`);
  }
  return out;
}

/** utime + stime of a process in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const st = readStat(pid);
  return st ? (st.utime + st.stime) * 10 : NaN;
}

/** voluntary_ctxt_switches of /proc/<pid>/status: times the task gave up the CPU by sleeping (a hog never does). */
function voluntarySwitches(pid: number): number {
  return Number(readStatus(pid)?.fields.get('voluntary_ctxt_switches') ?? NaN);
}

function loadavg(): string {
  try { return readFileSync('/proc/loadavg', 'utf8').trim(); } catch { return '?'; }
}
