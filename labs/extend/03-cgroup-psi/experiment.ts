/**
 * Extend Lab 3's experiment, in two parts.
 *
 * cgwhere (`placeAndAsk`): a sleeper the lab started is placed in random kl-
 * cgroups, a different one in each hierarchy the lab may touch (v1: cpu,
 * cpuacct, memory; the unified cgroup2 tree on every host), nested one level,
 * with a ':' in the leaf's name; the student's `cgwhere <pid>` then runs in a
 * mount namespace of its own where those v1 hierarchies are mounted at random
 * directories. Evidence (`Placement`): the kernel's /proc/<pid>/cgroup and
 * /proc/cgroups, the cgroups the lab made, the mounts as cgwhere saw them, its
 * answer, and what each directory it printed is on the host (real path, a
 * directory or not, its cgroup.procs).
 *
 * psiwatch (`pressureRuns`): three runs of a workload that re-reads a file twice
 * the size of a memory limit (psi.ts pressureCgroup) while the student's
 * `psiwatch <file> <stall µs> <window µs> <seconds>` holds a PSI trigger on the
 * cgroup's memory.pressure: squeezed, without the limit (control), and squeezed
 * with a stall the squeeze never reaches. Evidence (`PressureRun`): the totals
 * before and after and sampled meanwhile, the kernel's answer on psiwatch's
 * descriptors, its triggers as the kernel keeps them (trigger-state.ts, every
 * 200 ms), the events it printed, its CPU time.
 *
 * Throws only for the harness (no mount namespace, the process moved); a wrong
 * cgwhere or psiwatch shows in the evidence. judge.ts and the spec decide.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cgroupV1Controllers, probeCgroups } from '../../../helpers/harness/capabilities.js';
import { parseCgroupProcs } from '../../../helpers/harness/cgroup-files.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { destroyCgroup } from '../../../helpers/harness/destroy.js';
import { run, startBackground, waitUntil, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { cgroup2Root } from '../../../helpers/kernel/cgroup-bpf.js';
import { descendants, listProcesses, readStat } from '../../../helpers/kernel/procfs.js';
import {
  describeOpenFiles, monotonicSeconds, openFiles, pressureCgroup, readPressure, samplePressure, triggersOn,
  type Pressure, type PressureSample,
} from './psi.js';
import { pathTokens, show } from './judge.js';
import { pinTriggerIterator, sampleTriggers, type TriggerSample } from './trigger-state.js';

export const CGROUP_BASE = '/sys/fs/cgroup';
/** v1 hierarchies the lab may move a process into (pids and freezer hold it for the sandbox). */
const V1_PLACED = ['cpu', 'cpuacct', 'memory'];

/** The squeeze: a 32 MiB limit and a 256 MiB file read again and again. */
export const LIMIT_BYTES = 32 * 1024 * 1024;
export const FILE_MIB = 256;
const WORKLOAD_SECONDS = 5;
/**
 * The trigger: "some <stall> 2000000" — 30–70 ms of stall (random per run) within 2 s. A 2 s window needs no
 * CAP_SYS_RESOURCE. A third run asks for a stall the squeeze never reaches (1.5 s within 4 s; measured: at most
 * ~0.3 s per 2 s here): a watcher that ignores its arguments, or counts on its own, reports events there, and the
 * kernel's copy of its trigger (psi-triggers.bpf.c) shows any other numbers than those given.
 */
const STALL_US = (3 + randomInt(0, 5)) * 10_000;
const WINDOW_US = 2_000_000;
export const UNREACHABLE_US = 1_500_000;
/** The third run's window: 4 s (a multiple of 2 s needs no CAP_SYS_RESOURCE either), so a watcher that writes "2000000" whatever it is given shows. */
export const UNREACHABLE_WINDOW_US = 4_000_000;
/** psiwatch runs past the workload by more than a window, so a late event is still seen. */
export const WATCH_SECONDS = WORKLOAD_SECONDS + 4;

/** The built programs and a scratch directory. */
export interface PsiSetup {
  readonly cgwhere: string;
  readonly psiwatch: string;
  readonly tmp: string;
}

export async function preparePsi(): Promise<PsiSetup> {
  const cgwhere = (await buildProgram({ src: labSource('extend/03-cgroup-psi/cgwhere.c') })).path;
  const psiwatch = (await buildProgram({ src: labSource('extend/03-cgroup-psi/psiwatch.c') })).path;
  const tmp = await makeTempDir('psi');
  return { cgwhere, psiwatch, tmp };
}

/** A v1 hierarchy the lab moved in cgwhere's mount namespace: host mount point → where cgwhere sees it. */
export interface Moved { readonly host: string; readonly ns: string; readonly what: string }

/** A directory cgwhere printed, as the host sees it: resolved as cgwhere saw it, then read through the host's mount of the same hierarchy. */
export interface DirView {
  /** The moved hierarchy it is under in cgwhere's namespace, if any. */
  readonly there?: Moved;
  /** Its real path (resolved when under a moved mount, realpath(3) otherwise); undefined when that failed. */
  readonly real?: string;
  /** Where the host reads it, whether that is a directory, and the pids in its cgroup.procs (undefined: not read). */
  readonly host?: string;
  readonly isDir: boolean;
  readonly procs?: readonly number[];
}

/** The kernel's view of the placed process, the lab's cgroups, and cgwhere's answer. */
export interface Placement {
  readonly target: number;
  /** /proc/<target>/cgroup, read before cgwhere ran (and unchanged after it). */
  readonly kernelView: string;
  /** /proc/cgroups, read after cgwhere ran. */
  readonly procCgroups: string;
  readonly answer: RunResult;
  /** The leaf cgroup the lab made in each hierarchy: its path inside the hierarchy and its directory. */
  readonly placed: readonly { path: string; dir: string; what: string }[];
  readonly moved: readonly Moved[];
  /** /proc/self/mountinfo in cgwhere's mount namespace, read just before it started. */
  readonly nsMountinfo: string;
  /** Every absolute path cgwhere printed (pathTokens of its stdout), as the host sees it. */
  readonly dirs: ReadonlyMap<string, DirView>;
}

/** What `d`, printed by cgwhere, is on the host (the moved mounts translated back). */
function viewOf(d: string, moved: readonly Moved[]): DirView {
  const movedTo = moved.find((x) => resolve(d) === x.ns || resolve(d).startsWith(`${x.ns}/`));
  const there = movedTo ? { there: movedTo } : {};
  let real = '';
  try { real = movedTo ? resolve(d) : realpathSync(d); } catch { return { ...there, isDir: false }; }
  const host = movedTo ? movedTo.host + real.slice(movedTo.ns.length) : real;
  let isDir = false;
  try { isDir = statSync(host).isDirectory(); } catch { /* gone or never there */ }
  let procs: number[] | undefined;
  if (isDir) try { procs = parseCgroupProcs(readFileSync(join(host, 'cgroup.procs'), 'utf8')); } catch { /* not a cgroup */ }
  return { ...there, real, host, isDir, ...(procs ? { procs } : {}) };
}

/** Place a sleeper in kl- cgroups of every hierarchy the lab may touch, move the v1 ones in a mount namespace, and ask cgwhere where it is. */
export async function placeAndAsk(s: PsiSetup): Promise<Placement> {
  const sleeper = startBackground('sleep', ['120'], { timeoutMs: 180_000 });
  const target = sleeper.pid;
  const placed: { path: string; dir: string; what: string }[] = [];
  const moved: Moved[] = [];
  // The sandbox's shell joins its cgroups, then execs sleep: place the process only after that.
  await waitUntil('the sleeper to exec sleep', () => { try { return readFileSync(`/proc/${target}/comm`, 'utf8').trim(); } catch { return ''; } }, (c) => c === 'sleep');
  // Where to make cgroups: the v1 hierarchies we may touch, and the unified tree.
  const roots: { dir: string; what: string }[] = [];
  const v1 = cgroupV1Controllers();
  for (const c of V1_PLACED) {
    const dir = v1.get(c);
    if (dir && !roots.some((r) => r.dir === dir)) roots.push({ dir, what: `v1 ${c}` });
  }
  const u = await cgroup2Root();
  roots.push({ dir: u.path, what: `cgroup2 (${u.how})` });
  for (const r of roots) {
    const top = join(r.dir, uniqueName('w'));
    mkdirSync(top);
    defer(`cgroup ${top}`, () => {
      const d = destroyCgroup([top]);
      if (!d.gone) throw new Error(`cgroup ${top} not removed: ${d.reason}`);
    }, `rmdir ${top}/* ${top}   (after killing the pids in their cgroup.procs)`);
    // A ':' in the name: /proc/<pid>/cgroup then has a path with a ':' in it ("<id>:<controllers>:<path>" splits at the first two only).
    const leaf = join(top, `x${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`);
    mkdirSync(leaf);
    writeFileSync(join(leaf, 'cgroup.procs'), String(target));
    placed.push({ path: leaf.slice(r.dir.length), dir: leaf, what: r.what });
  }
  const kernelView = readFileSync(`/proc/${target}/cgroup`, 'utf8');
  // cgwhere runs in a mount namespace of its own where the v1 hierarchies the process was placed in are mounted at random
  // directories (bind, then the usual mount point unmounted; cpu last, after cpuacct and cpuset): where a hierarchy is
  // mounted comes from the mount table (mount options), not from a host's usual layout or mount order.
  for (const r of [...roots].reverse().filter((x) => x.what.startsWith('v1'))) {
    const ns = join(s.tmp, `m${randomBytes(3).toString('hex')}`);
    mkdirSync(ns);
    moved.push({ host: r.dir, ns, what: r.what });
  }
  const nsInfo = join(s.tmp, `mountinfo-${randomBytes(3).toString('hex')}`);
  const moves = moved.map((m) => `mount --bind '${m.host}' '${m.ns}' && umount -l '${m.host}' && `).join('');
  const answer = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${moves}cat /proc/self/mountinfo > '${nsInfo}' && exec "$0" "$@"`, s.cgwhere, String(target)],
    { timeoutMs: 10_000, reject: false });
  let nsMountinfo = '';
  try { nsMountinfo = readFileSync(nsInfo, 'utf8'); } catch { throw new Error(`no mount namespace for cgwhere: ${show(answer)}`); }
  const after = readFileSync(`/proc/${target}/cgroup`, 'utf8');
  if (after !== kernelView) throw new Error(`the process moved while cgwhere ran:\n${kernelView}\nthen\n${after}`);
  const procCgroups = readFileSync('/proc/cgroups', 'utf8');
  const dirs = new Map(pathTokens(answer.stdout).map((d) => [d, viewOf(d, moved)]));
  return { target, kernelView, procCgroups, answer, placed, moved, nsMountinfo, dirs };
}

export type RunKind = 'squeezed' | 'control' | 'unreachable';

/** One run of the workload with psiwatch holding its trigger. */
export interface PressureRun {
  readonly how: string;
  /** The host's cgroup version (probeCgroups of /sys/fs/cgroup) when the run was set up. */
  readonly hostVersion: number;
  readonly file: string;
  readonly observed: string;
  readonly before: Pressure;
  readonly after: Pressure;
  readonly samples: PressureSample[];
  readonly workload: RunResult;
  readonly watcher: RunResult;
  /** What the kernel said about each descriptor psiwatch (or a child) had open on the file, while the workload ran. */
  readonly triggers: { pid: number; fd: number; writable: boolean; trigger: boolean; answer: string }[];
  readonly openFilesSeen: string;
  /** Pressure files other than the cgroup's that psiwatch held while the workload ran. */
  readonly otherPressure: string[];
  /** The stall threshold psiwatch was given (µs). */
  readonly stallUs: number;
  /** The window psiwatch was given (µs), and how long it was asked to watch (s). */
  readonly windowUs: number;
  readonly watchSeconds: number;
  /** CLOCK_MONOTONIC times of the events psiwatch printed. */
  readonly events: number[];
  readonly start: number;
  readonly end: number;
  /** The iterator's readings of psiwatch's pressure files (struct psi_trigger), every 200 ms while it ran. */
  readonly triggerSamples: TriggerSample[];
  /** psiwatch's CPU time (utime + stime of /proc/<pid>/stat, ms) when the workload ended, and how long it had run by then (s). */
  readonly cpuMs: number;
  readonly cpuOverS: number;
}

/** The workload: join every cgroup directory, then re-read the file until the time is up. */
const WORKLOAD = 'f=$1; s=$2; shift 2; for d in "$@"; do echo $$ > "$d/cgroup.procs" || exit 1; done; ' +
  'end=$(($(date +%s) + s)); while [ "$(date +%s)" -lt "$end" ]; do cat "$f" > /dev/null; done';

async function pressureRun(s: PsiSetup, bigFile: string, triggerPin: string, kind: RunKind): Promise<PressureRun> {
  // Tags that do not say which run is which (a watcher must not read its answer from the cgroup's name).
  const cg = await pressureCgroup(`p${randomBytes(2).toString('hex')}`, kind === 'control' ? undefined : LIMIT_BYTES);
  const hostVersion = probeCgroups(CGROUP_BASE).version;
  const stallUs = kind === 'unreachable' ? UNREACHABLE_US : STALL_US;
  const windowUs = kind === 'unreachable' ? UNREACHABLE_WINDOW_US : WINDOW_US;
  // A cold start: the file's pages out of the page cache.
  await run('dd', [`if=${bigFile}`, 'iflag=nocache', 'count=0', 'status=none'], { timeoutMs: 20_000 });
  const before = readPressure(cg.pressureFile);
  const start = monotonicSeconds();
  const watcher = startBackground(s.psiwatch, [cg.pressureFile, String(stallUs), String(windowUs), String(WATCH_SECONDS)], { timeoutMs: 60_000 });
  const family = () => [watcher.pid, ...descendants(listProcesses(), watcher.pid).map((p) => p.pid)];
  const triggerSampler = sampleTriggers(triggerPin, family, 200);
  // Wait (bounded) until psiwatch has the file open, then a little for its write.
  for (let i = 0; i < 40 && !family().some((p) => openFiles(p).some((f) => f.target === cg.pressureFile)); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  // Sample the parent's file: reading the watched file itself would fold its averages and starve the trigger.
  const sampler = samplePressure(cg.observeFile, 100);
  const workloadP = run('sh', ['-c', WORKLOAD, 'workload', bigFile, String(WORKLOAD_SECONDS), ...cg.dirs], { timeoutMs: 60_000, reject: false });
  await new Promise((r) => setTimeout(r, 1000));
  const triggers = (await Promise.all(family().map(async (pid) => (await triggersOn(pid, cg.pressureFile)).map((t) => ({ pid, ...t }))))).flat();
  // Other pressure files held meanwhile (the system-wide /proc/pressure/*, another cgroup's): events must come from this one.
  const otherPressure = family().flatMap((pid) => openFiles(pid).filter((f) => /(^\/proc\/pressure\/|\.pressure$)/.test(f.target) && f.target !== cg.pressureFile).map((f) => `pid ${pid} fd ${f.fd} -> ${f.target}`));
  const openFilesSeen = family().map((p) => `pid ${p}:\n${describeOpenFiles(p)}`).join('\n');
  const workload = await workloadP;
  // psiwatch still runs (WATCH_SECONDS outlasts the workload): its CPU time so far.
  const st = readStat(watcher.pid);
  const cpuMs = st ? (st.utime + st.stime) * 10 : NaN;
  const cpuOverS = monotonicSeconds() - start;
  const w = await watcher.exited;
  const triggerSamples = triggerSampler.stop();
  const samples = sampler.stop();
  const end = monotonicSeconds();
  const after = readPressure(cg.pressureFile);
  const events = w.stdout.split('\n').flatMap((l) => (l.match(/\d+\.\d+/g) ?? []).map(Number).filter((t) => t >= start - 1 && t <= end + 1).slice(0, 1));
  return { how: cg.how, hostVersion, file: cg.pressureFile, observed: cg.observeFile, before, after, samples, workload, watcher: w, triggers, openFilesSeen, otherPressure, stallUs, windowUs, events, start, end, triggerSamples, cpuMs, cpuOverS, watchSeconds: WATCH_SECONDS };
}

/** The file to re-read, the trigger iterator, and the three runs in order: squeezed, control, unreachable. */
export async function pressureRuns(s: PsiSetup): Promise<Record<RunKind, PressureRun>> {
  const bigFile = join(s.tmp, 'big');
  const triggerPin = await pinTriggerIterator();
  await run('dd', ['if=/dev/urandom', `of=${bigFile}`, 'bs=1M', `count=${FILE_MIB}`, 'conv=fsync', 'status=none'], { timeoutMs: 120_000 });
  const squeezed = await pressureRun(s, bigFile, triggerPin, 'squeezed');
  const control = await pressureRun(s, bigFile, triggerPin, 'control');
  const unreachable = await pressureRun(s, bigFile, triggerPin, 'unreachable');
  return { squeezed, control, unreachable };
}
