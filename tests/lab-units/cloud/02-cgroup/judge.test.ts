/** Lab 3.2's verdicts (labs/cloud/02-cgroup/judge.ts) on made-up runs: placement, limits, CPU charge, OOM kill, peak usage, cleanup. */
import { describe, expect, it } from 'vitest';
import type { Cleanup, ControlRun, CpuRun, MemRun } from '../../../../labs/cloud/02-cgroup/experiment.js';
import { control, cpuLimited, MEMORY_MAX, oomKill, removed, survives, type Verdict } from '../../../../labs/cloud/02-cgroup/judge.js';
import type { RunResult } from '../../../../helpers/harness/exec.js';
import type { LimitsInForce } from '../../../../helpers/kernel/cgroup-limits.js';

const CPU = '/sys/fs/cgroup/cpu,cpuacct/kl-1-cpu', MEM = '/sys/fs/cgroup/memory/kl-1-cpu';
const DIRS = [CPU, MEM];
const result = (extra: Partial<RunResult> = {}): RunResult =>
  ({ command: 'sh cgexec.sh', pid: 300, exitCode: 0, timedOut: false, reason: 'exited', stdout: '', stderr: '', ...extra } as RunResult);
const limits = (extra: Partial<LimitsInForce> = {}): LimitsInForce =>
  ({ cpuDir: CPU, memoryDir: MEM, cpuQuotaUs: 10_000, cpuPeriodUs: 100_000, memoryMaxBytes: MEMORY_MAX, memoryPeakBytes: 60 * 2 ** 20, procCgroup: '', ...extra });
/** The messages of the verdicts that do not hold. */
const failing = (vs: readonly Verdict[]) => vs.filter((v) => JSON.stringify(v.got) !== JSON.stringify(v.want)).map((v) => v.message);

function cpuRun(extra: Partial<CpuRun> = {}): CpuRun {
  return {
    version: 1, dirs: DIRS, pid: 300, membership: { inAll: true, evidence: '' }, beforeUsec: 1_000,
    r: result({ stdout: 'started pid=300\nwall_ms=3000.0\n' }), limits: limits(), where: '4:cpu,cpuacct:/kl-1-cpu\n',
    total: { usageUsec: 301_000, nrPeriods: 30, nrThrottled: 29, oomKill: 0 }, ...extra,
  };
}
function memRun(extra: Partial<MemRun> = {}): MemRun {
  return { version: 1, dirs: DIRS, swap: 'memsw 104857600', oomKillBefore: 0, oomKillAfter: 0, procsAfter: [], r: result(), limits: limits(), where: '', ...extra };
}

describe('Lab 3.2 (cgroup) judge', () => {
  it('the limited hog: 10 % of 3 s, less what was charged before it started, is within the selftest tolerance and throttled', () => {
    const c = cpuLimited(cpuRun());
    expect(failing([...c.ran, ...c.charged])).toEqual([]);
    expect(c.share).toBeCloseTo(0.1, 5);
    expect(c.nrThrottled).toBe(29);
    const unlimited = cpuLimited(cpuRun({ total: { usageUsec: 2_900_000, nrPeriods: 30, nrThrottled: 0, oomKill: 0 } }));
    expect(failing(unlimited.charged)).toEqual([
      expect.stringMatching(/charged 2899000 µs .* the quota allows 300000 µs .* accepts 245455\.\.366666 µs/),
      'cpu.stat nr_throttled must grow while the hog runs into the quota (nr_periods 30)',
    ]);
  });

  it('a hog outside the cgroup, or in a cgroup with other limits, fails on where it ran and what limits it ran under', () => {
    const outside = cpuLimited(cpuRun({ membership: { inAll: false, evidence: 'cgroup dirs: x' }, limits: undefined, where: '' }));
    expect(failing(outside.ran)).toEqual([
      'cgexec.sh must put the hog (pid 300) into the cgroup before exec\'ing it:\ncgroup dirs: x',
      expect.stringMatching(/^cgexec.sh must put the command into the lab's cgroup\. .*\n\(never seen\)\nno cpu\/memory files there/),
      expect.stringMatching(/^the limits in force while it ran must be the seed's/),
    ]);
    const own = cpuLimited(cpuRun({ limits: limits({ cpuQuotaUs: 20_000 }) }));
    expect(failing(own.ran)).toEqual([expect.stringMatching(/^the limits in force while it ran must be the seed's \(cpu.max "10000 100000", 100M\)/)]);
    expect(failing(cpuLimited(cpuRun({ limits: limits({ memoryDir: '/sys/fs/cgroup/memory' }) })).ran))
      .toEqual([expect.stringMatching(/must put the command into the lab's cgroup/)]);
    expect(failing(cpuLimited(cpuRun({ r: result({ exitCode: 1 }) })).ran)).toEqual([expect.stringMatching(/^sh cgexec.sh exited 1/)]);
  });

  it('the control run must use at least 2.5× the quota and never be throttled', () => {
    const run = (usageUsec: number, nrThrottled = 0): ControlRun => ({ r: result({ stdout: 'wall_ms=1000\n' }), stats: { usageUsec, nrPeriods: 0, nrThrottled, oomKill: 0 }, loadavg: '1.00 1.00 1.00 1/100 1' });
    expect(failing(control(run(950_000)).verdicts)).toEqual([]);
    expect(control(run(950_000)).share).toBeCloseTo(0.95, 5);
    expect(failing(control(run(200_000, 3)).verdicts)).toEqual([
      expect.stringMatching(/^unlimited, the hog was charged 200000 µs in 1000 ms \(20\.0 %\); it must be at least 2\.5× the 10 % quota \(load average: 1\.00/),
      'nothing throttles a cgroup without a quota',
    ]);
  });

  it('the OOM case: SIGKILL, oom_kill grew, peak near the limit, nothing left; a hog that kills itself fails on the kernel\'s counts', () => {
    const killed = memRun({ r: result({ signal: 'SIGKILL', exitCode: 137 }), oomKillAfter: 1, limits: limits({ memoryPeakBytes: MEMORY_MAX }) });
    const o = oomKill(killed, false);
    expect(failing([...o.killed, ...o.after])).toEqual([]);
    expect(o).toMatchObject({ kills: 1, peakMiB: 100 });
    const selfKilled = oomKill(memRun({ r: result({ signal: 'SIGKILL' }), limits: limits({ memoryPeakBytes: 2 ** 20 }), procsAfter: [301] }), false);
    expect(failing([...selfKilled.killed, ...selfKilled.after])).toEqual([
      'the cgroup\'s oom_kill counter (memory.oom_control) must grow',
      expect.stringMatching(/^the OOM killer acts when the cgroup's usage reaches its limit: the peak usage must be near 104857600 bytes/),
      'nothing is left in the cgroup after the kill',
    ]);
    const noPeak = { ...killed, version: 2 as const, limits: limits({ memoryPeakBytes: undefined }) };
    expect(failing(oomKill(noPeak, false).after)).toEqual([]);
    expect(failing(oomKill(noPeak, true).after)).toEqual([expect.stringMatching(/^the kernel reports no peak usage/)]);
    expect(failing(oomKill(memRun({ r: result({ exitCode: 0 }) }), false).killed)[0]).toMatch(/^mem_hog 200 must die by SIGKILL from the OOM killer \(swap: memsw 104857600\)/);
  });

  it('the 50 MiB case: ends by itself, no OOM kill, and the kernel charged every page touched', () => {
    const s = survives(memRun(), false);
    expect(failing([...s.ran, ...s.charged])).toEqual([]);
    expect(s.peakMiB).toBe(60);
    const mallocOnly = survives(memRun({ limits: limits({ memoryPeakBytes: 2 ** 20 }) }), false);
    expect(failing(mallocOnly.charged)).toEqual([expect.stringMatching(/^the cgroup's peak usage must show the 50 MiB touched/)]);
    expect(failing(survives(memRun({ oomKillAfter: 1, r: result({ signal: 'SIGKILL', exitCode: 137 }) }), false).ran))
      .toEqual([expect.stringMatching(/exited SIGKILL/), 'no OOM kill in the cgroup']);
    const noPeak = memRun({ limits: limits({ memoryPeakBytes: undefined }) });
    expect(survives(noPeak, false).charged).toEqual([]);
    expect(failing(survives(noPeak, true).charged)).toEqual([expect.stringMatching(/^no peak usage file: /)]);
  });

  it('cleanup: some cgroups made, none left', () => {
    const c = (made: string[], present: string[]): Cleanup => ({ made, present, detail: 'v1' });
    expect(failing(removed(c(DIRS, [])))).toEqual([]);
    expect(failing(removed(c([], [])))).toEqual(['cgroups made (v1)']);
    expect(failing(removed(c(DIRS, [MEM])))).toEqual(['cgroup directories still present']);
  });
});
