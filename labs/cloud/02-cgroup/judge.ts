/**
 * Lab 2's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `CpuRun`, `ControlRun`, `MemRun`, `Cleanup`) to the facts each
 * test asserts, what they must be, and the message that shows the evidence.
 * Unit-tested on made-up runs in tests/lab-units/cloud/02-cgroup/judge.test.ts.
 */
import type { RunResult } from '../../../helpers/harness/exec.js';
import { expectedUsageUsec, valuesClose } from '../../../helpers/kernel/cgroup.js';
import { describeLimits, type LimitsInForce } from '../../../helpers/kernel/cgroup-limits.js';
import type { Cleanup, ControlRun, CpuRun, MemRun } from './experiment.js';
import type { Verdict } from '../../../helpers/harness/verdict.js';

export const QUOTA_US = 10_000;
export const PERIOD_US = 100_000;
export const MEMORY_MAX = 100 * 1024 * 1024; // the seed's "100M"
/** Wall time of the limited hog: 30 periods, enough that one period's slack is small. */
export const HOG_SECONDS = 3;
export const CONTROL_SECONDS = 1;
/**
 * Unlimited, the hog gets a whole CPU on an idle machine and its weighted
 * share on a busy one (≈ 34 % was seen here at load 12 before the control
 * cgroup got CONTROL_WEIGHT): 2.5×
 * the quota (25 %) is still well above what the quota ever allows (≈ 12 %).
 */
export const CONTROL_FACTOR = 2.5;
/** cpu.weight of the control cgroup (default 100): wins contention, limits nothing. */
export const CONTROL_WEIGHT = 1000;
/** The cgroup selftests' tolerance for cpu.max (values_close(..., 10), about ±20 %). */
export const SELFTEST_ERR_PERCENT = 10;
export const OOM_MIB = 200;
export const SURVIVE_MIB = 50;
/** Peak usage at the OOM kill: the kernel kills when a charge would pass the limit, so the peak is within a few pages of it. */
export const PEAK_AT_KILL_SHARE = 0.9;

/** One thing that must hold (helpers/harness/verdict.ts): the spec asserts it with `holds(v)`. */
export type { Verdict };

export function show(r: RunResult): string {
  return `${r.command} exited ${r.signal ?? r.exitCode}\n--- stdout ---\n${r.stdout.trim()}\n--- stderr (tail) ---\n${r.stderr.trim().split('\n').slice(-8).join('\n')}`;
}

/** The wall time cpu_hog reports (wall_ms=…), 0 when it said nothing. */
export const wallMsOf = (r: RunResult) => Number(r.stdout.match(/wall_ms=([\d.]+)/)?.[1] ?? 0);

/** The limits the workload ran under are the seed's, read from the cgroup it was in (not the one the lab meant). */
export function seedLimits(dirs: readonly string[], pid: number, l: LimitsInForce | undefined, where: string): Verdict[] {
  const evidence = `the workload (pid ${pid}) was last in:\n${where.trim() || '(never seen)'}\n${l ? describeLimits(l) : 'no cpu/memory files there'}\nthe lab's cgroup: ${dirs.join(' ')}`;
  return [
    { got: { inLabCgroup: !!l && dirs.includes(l.memoryDir) && dirs.includes(l.cpuDir) }, want: { inLabCgroup: true }, message: `cgexec.sh must put the command into the lab's cgroup. ${evidence}` },
    {
      got: { quota: l?.cpuQuotaUs, period: l?.cpuPeriodUs, memory: l?.memoryMaxBytes },
      want: { quota: QUOTA_US, period: PERIOD_US, memory: MEMORY_MAX },
      message: `the limits in force while it ran must be the seed's (cpu.max "${QUOTA_US} ${PERIOD_US}", 100M). ${evidence}`,
    },
  ];
}

/** The limited busy loop: where it ran and how it ended (`ran`), then what the cgroup was charged (`charged`). */
export function cpuLimited(c: CpuRun) {
  const ran: Verdict[] = [
    { got: { inAll: c.membership.inAll }, want: { inAll: true }, message: `cgexec.sh must put the hog (pid ${c.pid}) into the cgroup before exec'ing it:\n${c.membership.evidence}` },
    ...seedLimits(c.dirs, c.pid, c.limits, c.where),
    { got: { exitCode: c.r.exitCode }, want: { exitCode: 0 }, message: show(c.r) },
  ];
  const wallMs = wallMsOf(c.r);
  const usageUsec = c.total.usageUsec - c.beforeUsec;
  const expected = expectedUsageUsec(wallMs * 1000, QUOTA_US, PERIOD_US);
  const share = usageUsec / (wallMs * 1000);
  const lo = Math.ceil(expected * (100 - SELFTEST_ERR_PERCENT) / (100 + SELFTEST_ERR_PERCENT));
  const hi = Math.floor(expected * (100 + SELFTEST_ERR_PERCENT) / (100 - SELFTEST_ERR_PERCENT));
  const charged: Verdict[] = [
    {
      got: { chargeWithinTolerance: valuesClose(usageUsec, expected, SELFTEST_ERR_PERCENT) },
      want: { chargeWithinTolerance: true },
      message: `the cgroup was charged ${usageUsec} µs of CPU in the hog's ${wallMs.toFixed(0)} ms of wall time (${(share * 100).toFixed(1)} %; ${c.beforeUsec} µs more before it started); ` +
        `the quota allows ${expected} µs and the kernel selftest's tolerance accepts ${lo}..${hi} µs\n${show(c.r)}`,
    },
    {
      got: { throttledEnough: c.total.nrThrottled >= HOG_SECONDS * 3 },
      want: { throttledEnough: true },
      message: `cpu.stat nr_throttled must grow while the hog runs into the quota (nr_periods ${c.total.nrPeriods})`,
    },
  ];
  return { ran, share, nrThrottled: c.total.nrThrottled, charged };
}

/** The control run: far more CPU than the quota allows, never throttled. */
export function control(c: ControlRun) {
  const wallMs = wallMsOf(c.r);
  const share = c.stats.usageUsec / (wallMs * 1000);
  const min = CONTROL_FACTOR * QUOTA_US / PERIOD_US;
  const verdicts: Verdict[] = [
    {
      got: { farAboveQuota: share >= min },
      want: { farAboveQuota: true },
      message: `unlimited, the hog was charged ${c.stats.usageUsec} µs in ${wallMs.toFixed(0)} ms (${(share * 100).toFixed(1)} %); ` +
        `it must be at least ${CONTROL_FACTOR}× the 10 % quota (load average: ${c.loadavg})\n${show(c.r)}`,
    },
    { got: { nrThrottled: c.stats.nrThrottled }, want: { nrThrottled: 0 }, message: 'nothing throttles a cgroup without a quota' },
  ];
  return { share, verdicts };
}

/**
 * mem_hog OOM_MIB in the 100M cgroup: killed by the OOM killer in the lab's cgroup (`killed`), its peak near
 * the limit (`peakMiB` for the metric; without a peak file a failure only when `strict`), nothing left (`after`).
 */
export function oomKill(m: MemRun, strict: boolean) {
  const killed: Verdict[] = [
    { got: { signal: m.r.signal }, want: { signal: 'SIGKILL' }, message: `mem_hog ${OOM_MIB} must die by SIGKILL from the OOM killer (swap: ${m.swap}):\n${show(m.r)}` },
    {
      got: { oomKillGrew: m.oomKillAfter - m.oomKillBefore >= 1 },
      want: { oomKillGrew: true },
      message: `the cgroup's oom_kill counter (${m.version === 2 ? 'memory.events' : 'memory.oom_control'}) must grow`,
    },
    ...seedLimits(m.dirs, m.r.pid, m.limits, m.where),
  ];
  const peak = m.limits?.memoryPeakBytes;
  const after: Verdict[] = [];
  if (peak !== undefined) {
    after.push({
      got: { peakNearLimit: peak >= PEAK_AT_KILL_SHARE * MEMORY_MAX },
      want: { peakNearLimit: true },
      message: `the OOM killer acts when the cgroup's usage reaches its limit: the peak usage must be near ${MEMORY_MAX} bytes. ${describeLimits(m.limits!)}`,
    });
  } else if (strict) {
    after.push({ got: { peakReported: false }, want: { peakReported: true }, message: `the kernel reports no peak usage (memory.peak needs Linux 5.19 on cgroup v2): ${m.limits ? describeLimits(m.limits) : ''}` });
  }
  after.push({ got: m.procsAfter, want: [], message: 'nothing is left in the cgroup after the kill' });
  return { kills: m.oomKillAfter - m.oomKillBefore, killed, peakMiB: peak === undefined ? undefined : peak / 2 ** 20, after };
}

/**
 * mem_hog SURVIVE_MIB in the 100M cgroup: ends by itself, no OOM kill, in the lab's cgroup (`ran`); the kernel's
 * peak shows every page touched (`charged`; without a peak file nothing to judge, a failure only when `strict`).
 */
export function survives(m: MemRun, strict: boolean) {
  const ran: Verdict[] = [
    { got: { exit: m.r.exitCode, signal: m.r.signal ?? null }, want: { exit: 0, signal: null }, message: show(m.r) },
    { got: { oomKill: m.oomKillAfter }, want: { oomKill: 0 }, message: 'no OOM kill in the cgroup' },
    ...seedLimits(m.dirs, m.r.pid, m.limits, m.where),
  ];
  // The kernel's count, not the program's: a mem_hog that only malloc()s is charged almost nothing.
  const peak = m.limits?.memoryPeakBytes;
  const describe = m.limits ? describeLimits(m.limits) : '';
  const charged: Verdict[] = peak === undefined
    ? (strict ? [{ got: { peakReported: false }, want: { peakReported: true }, message: `no peak usage file: ${describe}` }] : [])
    : [{
      got: { everyPageCharged: peak >= SURVIVE_MIB * 2 ** 20 },
      want: { everyPageCharged: true },
      message: `the cgroup's peak usage must show the ${SURVIVE_MIB} MiB touched (every page written is charged). ${describe}\n${show(m.r)}`,
    }];
  return { ran, peakMiB: peak === undefined ? undefined : peak / 2 ** 20, charged };
}

/** The lab made cgroups and removed every one. */
export function removed(c: Cleanup): Verdict[] {
  return [
    { got: { made: c.made.length > 0 }, want: { made: true }, message: `cgroups made (${c.detail})` },
    { got: c.present, want: [], message: 'cgroup directories still present' },
  ];
}
