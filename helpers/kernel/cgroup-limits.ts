/**
 * The limits a process actually ran under, as the kernel shows them: the
 * cgroup it was in (/proc/<pid>/cgroup), then that cgroup's cpu and memory
 * files (cpu.max or cpu.cfs_quota_us/cfs_period_us; memory.max or
 * memory.limit_in_bytes; and the peak usage: memory.peak or
 * memory.max_usage_in_bytes). A lab asserts these instead of the limits it
 * meant to set, so a script that changes or dodges them is seen.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_BASE, v1Hierarchies } from './cgroup.js';

/** One line of /proc/<pid>/cgroup: "4:memory:/x", "1:cpu,cpuacct:/x", "9:name=systemd:/", "0::/x" (cgroups(7)). */
export interface ProcCgroupEntry {
  /** Hierarchy id (as in /proc/cgroups); 0 for the unified (v2) hierarchy. */
  readonly id: number;
  /** v1: the controllers bound to the hierarchy ("name=systemd" kept as printed); empty for v2. */
  readonly controllers: readonly string[];
  /** The cgroup's path inside the hierarchy. */
  readonly path: string;
  /** The line as the kernel printed it. */
  readonly raw: string;
}

/** /proc/<pid>/cgroup as entries, one per line (pure): the one parser of the file. */
export function parseProcCgroupEntries(text: string): ProcCgroupEntry[] {
  return text.split('\n').flatMap((raw) => {
    const m = raw.match(/^(\d+):([^:]*):(.*)$/);
    return m ? [{ id: Number(m[1]), controllers: m[2]!.split(',').filter(Boolean), path: m[3]!, raw }] : [];
  });
}

/** /proc/<pid>/cgroup parsed: the v2 path ("0::/x") and the v1 path of each controller ("4:memory:/x", "1:cpu,cpuacct:/x"). */
export function parseProcCgroup(text: string): { v2?: string; v1: Record<string, string> } {
  const v1: Record<string, string> = {};
  let v2: string | undefined;
  for (const e of parseProcCgroupEntries(text)) {
    if (e.id === 0 && e.controllers.length === 0) v2 = e.path;
    else for (const c of e.controllers) v1[c] = e.path;
  }
  return { v2, v1 };
}

export interface LimitsInForce {
  /** The cgroup directories whose files were read (cpu, memory). */
  readonly cpuDir: string;
  readonly memoryDir: string;
  /** CPU quota and period, µs; quota null when unlimited ("max" / -1). */
  readonly cpuQuotaUs: number | null;
  readonly cpuPeriodUs: number;
  /** Memory limit, bytes; null when unlimited. */
  readonly memoryMaxBytes: number | null;
  /** The most memory ever charged to the cgroup, bytes (undefined when the kernel has no such file). */
  readonly memoryPeakBytes?: number;
  /** The /proc/<pid>/cgroup text the directories came from. */
  readonly procCgroup: string;
}

const num = (s: string) => Number(s.trim());
/** v1 reports "no limit" as a huge page-aligned number. */
const V1_UNLIMITED = 2 ** 62;

/** Read the limits of the cgroup that `procCgroup` (the text of /proc/<pid>/cgroup) names. */
export function limitsOf(procCgroup: string, version: 1 | 2, base = CGROUP_BASE): LimitsInForce {
  const where = parseProcCgroup(procCgroup);
  if (version === 2) {
    const dir = join(base, where.v2 ?? '/');
    const [quota, period] = readFileSync(join(dir, 'cpu.max'), 'utf8').trim().split(/\s+/);
    const max = readFileSync(join(dir, 'memory.max'), 'utf8').trim();
    const peak = join(dir, 'memory.peak');
    return {
      cpuDir: dir, memoryDir: dir, procCgroup,
      cpuQuotaUs: quota === 'max' ? null : num(quota!), cpuPeriodUs: num(period!),
      memoryMaxBytes: max === 'max' ? null : num(max),
      ...(existsSync(peak) ? { memoryPeakBytes: num(readFileSync(peak, 'utf8')) } : {}),
    };
  }
  const h = v1Hierarchies(base);
  const cpuDir = join(h.cpu, where.v1.cpu ?? '/'), memoryDir = join(h.memory, where.v1.memory ?? '/');
  const quota = num(readFileSync(join(cpuDir, 'cpu.cfs_quota_us'), 'utf8'));
  const limit = num(readFileSync(join(memoryDir, 'memory.limit_in_bytes'), 'utf8'));
  return {
    cpuDir, memoryDir, procCgroup,
    cpuQuotaUs: quota < 0 ? null : quota, cpuPeriodUs: num(readFileSync(join(cpuDir, 'cpu.cfs_period_us'), 'utf8')),
    memoryMaxBytes: limit >= V1_UNLIMITED ? null : limit,
    memoryPeakBytes: num(readFileSync(join(memoryDir, 'memory.max_usage_in_bytes'), 'utf8')),
  };
}

/** One line for messages: "cpu 10000/100000 µs in /sys/fs/cgroup/cpu/kl-…; memory.max 104857600 (peak 104857600) in …". */
export function describeLimits(l: LimitsInForce): string {
  return `CPU quota ${l.cpuQuotaUs ?? 'max'}/${l.cpuPeriodUs} µs in ${l.cpuDir}; memory limit ${l.memoryMaxBytes ?? 'max'} bytes, ` +
    `peak usage ${l.memoryPeakBytes ?? '(not reported)'} bytes in ${l.memoryDir}`;
}
