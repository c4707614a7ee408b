/**
 * A cgroup the lab makes, limits, reads and removes, on either interface:
 *
 * - v2 (Ubuntu 22.04 and any systemd host in unified mode): one directory
 *   `/sys/fs/cgroup/kl-…` with `cpu.max`, `memory.max`, `memory.swap.max`,
 *   `cpu.stat` (usage_usec, nr_periods, nr_throttled), `memory.events`
 *   (oom_kill) and one `cgroup.procs`. It must sit where the controllers are
 *   enabled: the parent's `cgroup.subtree_control` must list cpu and memory.
 * - v1 (this host): one directory per controller hierarchy —
 *   `cpu/kl-…` (`cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpu.stat`
 *   nr_throttled), `cpuacct/kl-…` (`cpuacct.usage`, ns) and `memory/kl-…`
 *   (`memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` when swap
 *   accounting exists, `memory.oom_control` oom_kill) — and a process must be
 *   written into the `cgroup.procs` of each.
 *
 * Names come from uniqueName() (`kl-<run>-…`), made at the top of each
 * hierarchy, so the reaper finds what a killed run left. The release kills
 * only the cgroup's own members (processes the lab placed there), waits for
 * them to leave, then removes the directories.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeCgroups, v1ControllerDir } from '../harness/capabilities.js';
import { parseKeyed, pidsIn } from '../harness/cgroup-files.js';
import { destroyCgroup } from '../harness/destroy.js';
import { LabError } from '../harness/errors.js';
import { defer } from '../harness/resources.js';
import { uniqueName } from '../harness/run-state.js';

export const CGROUP_BASE = '/sys/fs/cgroup';

export interface CgroupStats {
  /** CPU time charged to the cgroup, µs (v2 cpu.stat usage_usec; v1 cpuacct.usage / 1000). */
  readonly usageUsec: number;
  readonly nrPeriods: number;
  readonly nrThrottled: number;
  /** Processes the OOM killer killed in this cgroup (v2 memory.events; v1 memory.oom_control). */
  readonly oomKill: number;
}

export interface Cgroup {
  readonly name: string;
  readonly version: 1 | 2;
  /** Directories a process joins by writing its PID into each one's cgroup.procs. */
  readonly dirs: readonly string[];
  /** cpu.max "<quota> <period>" (v2) or cfs_quota_us / cfs_period_us (v1). */
  setCpuMax(quotaUs: number, periodUs: number): void;
  /**
   * Proportional share under contention, on v2's scale (1..10000, default
   * 100): cpu.weight on v2, cpu.shares = weight × 1024 / 100 on v1.
   */
  setCpuWeight(weight: number): void;
  /**
   * memory.max (v2) or memory.limit_in_bytes (v1), with swap closed for the
   * cgroup when the interface allows it. Returns how swap was handled.
   */
  setMemoryMax(bytes: number): string;
  stats(): CgroupStats;
  /** PIDs in the cgroup (union over the v1 hierarchies). */
  procs(): number[];
  /** Kill the members, wait until they left, remove the directories. Idempotent. */
  remove(): Promise<void>;
}

export interface CgroupOptions {
  /** Tag in the generated name. Default "cg". */
  readonly tag?: string;
  /** The cgroup filesystem root. Default /sys/fs/cgroup. */
  readonly base?: string;
  /** Force an interface (tests use a fake tree); default: probed. */
  readonly version?: 1 | 2;
  /** Register the removal with the running test (or suite). Default true. */
  readonly autoRemove?: boolean;
}

const DEFAULTS = { tag: 'cg', base: CGROUP_BASE, autoRemove: true } as const;

/** `key value` lines (cpu.stat, memory.events, memory.oom_control) as numbers: the harness's one parser. */
export { parseKeyed };

/**
 * The kernel cgroup selftests' `values_close(a, b, err)`:
 * |a − b| ≤ (a + b) × err / 100 — with err = 10 about ±20 % of b.
 */
export function valuesClose(a: number, b: number, errPercent: number): boolean {
  return Math.abs(a - b) <= ((a + b) / 100) * errPercent;
}

/**
 * CPU time a hog running for `durationUsec` of wall time may use under a
 * quota, as test_cpucg_max computes it: whole periods × quota, plus the
 * last partial period up to one quota.
 */
export function expectedUsageUsec(durationUsec: number, quotaUs: number, periodUs: number): number {
  const periods = Math.floor(durationUsec / periodUs);
  const remainder = durationUsec - periods * periodUs;
  return periods * quotaUs + Math.min(remainder, quotaUs);
}

const read = (p: string) => readFileSync(p, 'utf8');
const readOr = (p: string, fallback: string) => { try { return read(p); } catch { return fallback; } };

function writeControl(dir: string, file: string, value: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch (e) {
    throw new LabError(`writing "${value}" to ${join(dir, file)} failed: ${(e as Error).message}`, { code: 'E_RESOURCE', cause: e });
  }
}

async function removeDirs(dirs: readonly string[]): Promise<void> {
  // The one cgroup destroy routine (shared with the reaper): kill the members (freezer or cgroup.kill), rmdir, bounded.
  const d = destroyCgroup(dirs);
  if (!d.gone) throw new LabError(`could not remove cgroup ${dirs.join(', ')}: ${d.reason}`, { code: 'E_RESOURCE' });
}

/** The v1 hierarchy directories for cpu, cpuacct and memory (deduplicated: cpu,cpuacct is often one mount). */
export function v1Hierarchies(base: string, mountinfo?: string): { cpu: string; cpuacct?: string; memory: string } {
  const real = (p: string) => { try { return realpathSync(p); } catch { return p; } };
  // From /proc/self/mountinfo (the real root), else the directories of a fake tree.
  const cpu = v1ControllerDir('cpu', base, 'cpu.cfs_quota_us', mountinfo);
  const memory = v1ControllerDir('memory', base, 'memory.limit_in_bytes', mountinfo);
  if (!cpu || !memory) {
    throw new LabError(`no cgroup v1 cpu and memory hierarchies under ${base}`, { code: 'E_CAPABILITY' });
  }
  const acct = v1ControllerDir('cpuacct', base, 'cpuacct.usage', mountinfo);
  const cpuacct = acct && real(acct) !== real(cpu) ? real(acct) : undefined;
  return { cpu: real(cpu), cpuacct, memory: real(memory) };
}

function v2Cgroup(base: string, name: string): Cgroup {
  const enabled = readOr(join(base, 'cgroup.subtree_control'), '').trim().split(/\s+/);
  const missing = ['cpu', 'memory'].filter((c) => !enabled.includes(c));
  if (missing.length) {
    throw new LabError(`${base}/cgroup.subtree_control lacks ${missing.join(' and ')} (has "${enabled.join(' ')}"), so a cgroup made there cannot be limited. ` +
      `The lab does not change the host's cgroups; fix: boot with systemd's unified hierarchy (systemd.unified_cgroup_hierarchy=1), whose root enables them.`, { code: 'E_CAPABILITY' });
  }
  const dir = join(base, name);
  mkdirSync(dir);
  return {
    name, version: 2, dirs: [dir],
    setCpuMax(quotaUs, periodUs) { writeControl(dir, 'cpu.max', `${quotaUs} ${periodUs}`); },
    setCpuWeight(weight) { writeControl(dir, 'cpu.weight', String(weight)); },
    setMemoryMax(bytes) {
      writeControl(dir, 'memory.max', String(bytes));
      if (existsSync(join(dir, 'memory.swap.max'))) {
        writeControl(dir, 'memory.swap.max', '0');
        return 'memory.swap.max = 0';
      }
      return 'no memory.swap.max (kernel without swap accounting): swap is not limited';
    },
    stats() {
      const cpu = parseKeyed(readOr(join(dir, 'cpu.stat'), ''));
      const events = parseKeyed(readOr(join(dir, 'memory.events'), ''));
      return { usageUsec: cpu.usage_usec ?? 0, nrPeriods: cpu.nr_periods ?? 0, nrThrottled: cpu.nr_throttled ?? 0, oomKill: events.oom_kill ?? 0 };
    },
    procs: () => pidsIn(dir),
    remove: () => removeDirs([dir]),
  };
}

function v1Cgroup(base: string, name: string): Cgroup {
  const h = v1Hierarchies(base);
  const cpu = join(h.cpu, name);
  const acct = h.cpuacct ? join(h.cpuacct, name) : undefined;
  const mem = join(h.memory, name);
  const dirs = [cpu, ...(acct ? [acct] : []), mem];
  const made: string[] = [];
  try {
    for (const d of dirs) { mkdirSync(d); made.push(d); }
  } catch (e) {
    made.reverse().forEach((d) => { try { rmdirSync(d); } catch { /* best effort */ } });
    throw new LabError(`mkdir of cgroup ${name} failed: ${(e as Error).message}`, { code: 'E_RESOURCE', cause: e });
  }
  return {
    name, version: 1, dirs,
    setCpuMax(quotaUs, periodUs) {
      writeControl(cpu, 'cpu.cfs_period_us', String(periodUs));
      writeControl(cpu, 'cpu.cfs_quota_us', String(quotaUs));
    },
    setCpuWeight(weight) { writeControl(cpu, 'cpu.shares', String(Math.round((weight * 1024) / 100))); },
    setMemoryMax(bytes) {
      writeControl(mem, 'memory.limit_in_bytes', String(bytes));
      // memory+swap must be >= memory: set after the memory limit, to the same value (no swap at all).
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) {
        writeControl(mem, 'memory.memsw.limit_in_bytes', String(bytes));
        return 'memory.memsw.limit_in_bytes = memory.limit_in_bytes';
      }
      return 'no memory.memsw.* (swap accounting off: boot with swapaccount=1): swap is not limited';
    },
    stats() {
      const st = parseKeyed(readOr(join(cpu, 'cpu.stat'), ''));
      const usageNs = acct ? Number(readOr(join(acct, 'cpuacct.usage'), '0').trim()) : Number(readOr(join(cpu, 'cpuacct.usage'), '0').trim());
      const oom = parseKeyed(readOr(join(mem, 'memory.oom_control'), ''));
      return { usageUsec: Math.round(usageNs / 1000), nrPeriods: st.nr_periods ?? 0, nrThrottled: st.nr_throttled ?? 0, oomKill: oom.oom_kill ?? 0 };
    },
    procs: () => [...new Set(dirs.flatMap(pidsIn))],
    remove: () => removeDirs(dirs),
  };
}

/** Make a cgroup (v2 if it has cpu and memory, else v1), removed when the test ends. */
export function makeCgroup(options: CgroupOptions = {}): Cgroup {
  const base = options.base ?? DEFAULTS.base;
  const version = options.version ?? probeCgroups(base).version;
  if (version === 0) throw new LabError(`no cgroup cpu and memory controllers under ${base}`, { code: 'E_CAPABILITY' });
  const name = uniqueName(options.tag ?? DEFAULTS.tag);
  const cg = version === 2 ? v2Cgroup(base, name) : v1Cgroup(base, name);
  if (options.autoRemove ?? DEFAULTS.autoRemove) defer(`cgroup ${cg.dirs.join(' ')}`, () => cg.remove(), `rmdir ${cg.dirs.join(' ')}   (after killing the pids in their cgroup.procs)`);
  return cg;
}
