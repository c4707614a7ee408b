/**
 * Lab 2's experiment: build the student's cpu_hog and mem_hog, make the
 * seed's kl-… cgroups (helpers/kernel/cgroup.ts: v2 files on Ubuntu, v1 files
 * on hosts like this one) and run each workload through the student's
 * cgexec.sh, collecting what the kernel says: where the workload was
 * (/proc/<pid>/cgroup, cgroup.procs), the limits of the cgroup it ran in and
 * its peak usage (helpers/kernel/cgroup-limits.ts), the CPU time charged and
 * the throttled periods, the oom_kill counter. No assertions: judge.ts and the
 * spec decide. Each case makes its own cgroup; the lab removes them after
 * each test (defer), and `cleanup()` says whether any is left.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { parseCgroupProcs } from '../../../helpers/harness/cgroup-files.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, startBackground, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeCgroup, type Cgroup, type CgroupStats } from '../../../helpers/kernel/cgroup.js';
import { limitsOf, type LimitsInForce } from '../../../helpers/kernel/cgroup-limits.js';
import { CONTROL_SECONDS, CONTROL_WEIGHT, HOG_SECONDS, MEMORY_MAX, PERIOD_US, QUOTA_US } from './judge.js';

/** Called with the reason when the lab takes another path than the seed's (the spec passes `adapted(ctx, …)`). */
export type Adapt = (message: string) => Promise<void>;

export interface CgroupSetup {
  readonly tmp: string;
  readonly cpuHog: string;
  readonly memHog: string;
  readonly cgexec: string;
}

/** A workload's run through cgexec.sh and the cgroup it ran in, as the kernel says. */
export interface Watched {
  readonly r: RunResult;
  /** The limits of the cgroup it was last in (undefined: that cgroup has no cpu/memory files). */
  readonly limits: LimitsInForce | undefined;
  /** Its /proc/self/cgroup, recorded by the shell that became the workload ('' if never recorded). */
  readonly where: string;
}

export interface CpuRun extends Watched {
  readonly version: 1 | 2;
  readonly dirs: readonly string[];
  readonly pid: number;
  /** While the hog ran: in cgroup.procs of every directory, and /proc/<pid>/cgroup with the directories. */
  readonly membership: { readonly inAll: boolean; readonly evidence: string };
  /** CPU time charged before the busy loop began (cgexec.sh, the shells, exec). */
  readonly beforeUsec: number;
  /** The cgroup's counts after the hog exited. */
  readonly total: CgroupStats;
}

export interface ControlRun {
  readonly r: RunResult;
  readonly stats: CgroupStats;
  readonly loadavg: string;
}

export interface MemRun extends Watched {
  readonly version: 1 | 2;
  readonly dirs: readonly string[];
  /** The swap limit the lab could set ("no …" when it could not). */
  readonly swap: string;
  readonly oomKillBefore: number;
  readonly oomKillAfter: number;
  /** Pids left in the cgroup after the run. */
  readonly procsAfter: number[];
}

export interface Cleanup {
  readonly made: readonly string[];
  readonly present: readonly string[];
  readonly detail: string;
}

/** A shell that records its /proc/self/cgroup into "$0", then becomes the command (same pid, same cgroup). */
const RECORD_CGROUP = 'cat /proc/self/cgroup > "$0" && exec "$@"';

const made: string[] = [];

export async function prepareCgroup(): Promise<CgroupSetup> {
  const tmp = await makeTempDir('cgroup');
  const cpuHog = (await buildProgram({ src: labSource('cloud/02-cgroup/cpu_hog.c') })).path;
  const memHog = (await buildProgram({ src: labSource('cloud/02-cgroup/mem_hog.c') })).path;
  return { tmp, cpuHog, memHog, cgexec: labSource('cloud/02-cgroup/cgexec.sh') };
}

/** The seed's cgroup: both limits set. */
async function seedCgroup(adapt: Adapt, tag: string): Promise<{ cg: Cgroup; swap: string }> {
  const cg = makeCgroup({ tag });
  made.push(...cg.dirs);
  if (cg.version === 1) await adapt('cgroup v1: cpu.cfs_quota_us/cpu.cfs_period_us, cpuacct.usage, memory.limit_in_bytes, memory.oom_control, one directory per controller hierarchy');
  cg.setCpuMax(QUOTA_US, PERIOD_US);
  const swap = cg.setMemoryMax(MEMORY_MAX);
  return { cg, swap };
}

/** Where the process is, as the kernel says (/proc/<pid>/cgroup), checked against every directory of the cgroup. */
function membership(cg: Cgroup, pid: number): { inAll: boolean; evidence: string } {
  let procFile = '(gone)';
  try { procFile = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim(); } catch { /* exited */ }
  const inAll = cg.dirs.every((d) => parseCgroupProcs(readFileSync(`${d}/cgroup.procs`, 'utf8')).includes(pid));
  return { inAll, evidence: `/proc/${pid}/cgroup:\n${procFile}\ncgroup dirs: ${cg.dirs.join(' ')}` };
}

/** The limits of the cgroup a recorded /proc/self/cgroup names (undefined when it has no such files). */
function limitsIn(file: string, version: 1 | 2): { limits: LimitsInForce | undefined; where: string } {
  const where = existsSync(file) ? readFileSync(file, 'utf8') : '';
  let limits: LimitsInForce | undefined;
  try { limits = limitsOf(where, version); } catch { /* the process was in a cgroup without these files */ }
  return { limits, where };
}

/**
 * Run `cgexec.sh <dirs> -- cmd`, where cmd first records its own /proc/self/cgroup (a shell that then execs the
 * command: same pid, same cgroup) — the cgroup the workload ran in, as the kernel says — and read that cgroup's
 * limits back after it exited (the lab removes its cgroups only later): the limits it ran under and its peak usage.
 */
async function runWatched(s: CgroupSetup, cg: Cgroup, cmd: string[]): Promise<Watched> {
  const file = join(s.tmp, `proc-cgroup-${cg.name}`);
  const r = await run('sh', [s.cgexec, ...cg.dirs, '--', 'sh', '-c', RECORD_CGROUP, file, ...cmd], { timeoutMs: 60_000, reject: false });
  return { r, ...limitsIn(file, cg.version) };
}

/** cpu_hog HOG_SECONDS in the seed's cgroup: where it ran, under which limits, what the cgroup was charged. */
export async function runCpuLimited(s: CgroupSetup, adapt: Adapt): Promise<CpuRun> {
  const { cg } = await seedCgroup(adapt, 'cpu');
  const procFile = join(s.tmp, `proc-cgroup-${cg.name}`);
  const hog = startBackground('sh', [s.cgexec, ...cg.dirs, '--', 'sh', '-c', RECORD_CGROUP, procFile, s.cpuHog, String(HOG_SECONDS)], { timeoutMs: 60_000 });
  await hog.waitFor(/^started pid=\d+/, 'cpu_hog to start', 20_000).catch(async (e) => { throw new Error(`${(e as Error).message}\n${hog.output()}`); });
  // What the cgroup was charged before the busy loop began (cgexec.sh, the shells, exec): not part of
  // the hog's wall time. Negligible here; under QEMU TCG (the guest pass) starting those processes costs
  // ~0.1 s of CPU, which made 3 s at a 10 % quota look like 12.5-13.4 %.
  const beforeUsec = cg.stats().usageUsec;
  const where = membership(cg, hog.pid);
  const r = await hog.exited;
  const last = limitsIn(procFile, cg.version);
  return { version: cg.version, dirs: cg.dirs, pid: hog.pid, membership: where, beforeUsec, r, ...last, total: cg.stats() };
}

/** cpu_hog CONTROL_SECONDS in a cgroup without a quota (a high weight only, so that a busy host cannot starve it). */
export async function runControl(s: CgroupSetup): Promise<ControlRun> {
  const cg = makeCgroup({ tag: 'ctl' });
  made.push(...cg.dirs);
  // No quota; a high weight only so that a busy shared host (other builds) cannot starve the control run.
  cg.setCpuWeight(CONTROL_WEIGHT);
  const r = await run('sh', [s.cgexec, ...cg.dirs, '--', s.cpuHog, String(CONTROL_SECONDS)], { timeoutMs: 30_000 });
  const stats = cg.stats();
  return { r, stats, loadavg: readFileSync('/proc/loadavg', 'utf8').trim() };
}

/** mem_hog <mib> in the seed's cgroup: how it ended, the oom_kill counter around it, the limits and peak of where it ran. */
export async function runMemHog(s: CgroupSetup, adapt: Adapt, tag: 'oom' | 'mem', mib: number): Promise<MemRun> {
  const { cg, swap } = await seedCgroup(adapt, tag);
  if (tag === 'oom') {
    const swapTotal = Number(readFileSync('/proc/meminfo', 'utf8').match(/SwapTotal:\s+(\d+)/)?.[1] ?? 0);
    if (swapTotal > 0 && swap.startsWith('no ')) await adapt(`the host has swap and ${swap}; the hog may swap before it is killed`);
  }
  const oomKillBefore = cg.stats().oomKill;
  const w = await runWatched(s, cg, [s.memHog, String(mib)]);
  const oomKillAfter = cg.stats().oomKill;
  return { version: cg.version, dirs: cg.dirs, swap, oomKillBefore, ...w, oomKillAfter, procsAfter: cg.procs() };
}

/** The cgroups the lab made and those still present. */
export async function cleanup(): Promise<Cleanup> {
  const caps = await capabilities();
  return { made: [...made], present: made.filter((d) => existsSync(d)), detail: caps.cgroupInfo.detail };
}
