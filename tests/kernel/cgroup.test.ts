import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedUsageUsec, makeCgroup, parseKeyed, v1Hierarchies, valuesClose } from '../../helpers/kernel/cgroup.js';
import { makeTempDir } from '../../helpers/harness/resources.js';

/** Recorded from a v1 host (Debian 12, kernel 6.18) after an OOM kill in a 100M cgroup. */
const V1_OOM_CONTROL = 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n';
const V1_CPU_STAT = 'nr_periods 31\nnr_throttled 31\nthrottled_time 2712883529\nnr_bursts 0\nburst_time 0\n';
/** cgroup v2 formats, as documented in Documentation/admin-guide/cgroup-v2.rst. */
const V2_CPU_STAT = 'usage_usec 306123\nuser_usec 306000\nsystem_usec 123\nnr_periods 31\nnr_throttled 30\nthrottled_usec 2690000\nnr_bursts 0\nburst_usec 0\n';
const V2_MEMORY_EVENTS = 'low 0\nhigh 0\nmax 52\noom 1\noom_kill 1\noom_group_kill 0\n';

async function fakeV1(merged = false): Promise<string> {
  const base = await makeTempDir('unit-cgv1');
  const cpu = merged ? 'cpu,cpuacct' : 'cpu';
  mkdirSync(join(base, cpu));
  writeFileSync(join(base, cpu, 'cpu.cfs_quota_us'), '-1\n');
  if (merged) writeFileSync(join(base, cpu, 'cpuacct.usage'), '0\n');
  else {
    mkdirSync(join(base, 'cpuacct'));
    writeFileSync(join(base, 'cpuacct', 'cpuacct.usage'), '0\n');
  }
  mkdirSync(join(base, 'memory'));
  writeFileSync(join(base, 'memory', 'memory.limit_in_bytes'), '9223372036854771712\n');
  return base;
}

describe('cgroup helper', () => {
  it('parses keyed files (cpu.stat, memory.events, memory.oom_control)', () => {
    expect(parseKeyed(V1_OOM_CONTROL)).toEqual({ oom_kill_disable: 0, under_oom: 0, oom_kill: 1 });
    expect(parseKeyed(V2_CPU_STAT)).toMatchObject({ usage_usec: 306123, nr_throttled: 30 });
  });

  it("matches the kernel selftests' values_close and test_cpucg_max's expected usage", () => {
    expect(expectedUsageUsec(3_000_000, 10_000, 100_000)).toBe(300_000);
    expect(expectedUsageUsec(3_050_000, 10_000, 100_000)).toBe(310_000);
    expect(expectedUsageUsec(3_005_000, 10_000, 100_000)).toBe(305_000);
    expect(valuesClose(250_000, 300_000, 10)).toBe(true);
    expect(valuesClose(360_000, 300_000, 10)).toBe(true);
    expect(valuesClose(240_000, 300_000, 10)).toBe(false);
    expect(valuesClose(1_000_000, 300_000, 10)).toBe(false);
  });

  it('v2: one directory, cpu.max, memory.max with swap closed, stats from cpu.stat and memory.events', async () => {
    const base = await makeTempDir('unit-cgv2');
    writeFileSync(join(base, 'cgroup.subtree_control'), 'cpuset cpu io memory pids\n');
    const cg = makeCgroup({ base, version: 2, tag: 'u', autoRemove: false });
    expect(cg.dirs).toHaveLength(1);
    expect(cg.name).toMatch(/^kl-[0-9a-f]{6}-u/);
    const dir = cg.dirs[0]!;
    writeFileSync(join(dir, 'memory.swap.max'), 'max\n');
    cg.setCpuMax(10_000, 100_000);
    cg.setCpuWeight(1000);
    expect(readFileSync(join(dir, 'cpu.weight'), 'utf8')).toBe('1000');
    expect(cg.setMemoryMax(100 * 1024 * 1024)).toBe('memory.swap.max = 0');
    expect(readFileSync(join(dir, 'cpu.max'), 'utf8')).toBe('10000 100000');
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe('104857600');
    expect(readFileSync(join(dir, 'memory.swap.max'), 'utf8')).toBe('0');
    writeFileSync(join(dir, 'cpu.stat'), V2_CPU_STAT);
    writeFileSync(join(dir, 'memory.events'), V2_MEMORY_EVENTS);
    writeFileSync(join(dir, 'cgroup.procs'), '123\n456\n');
    expect(cg.stats()).toEqual({ usageUsec: 306123, nrPeriods: 31, nrThrottled: 30, oomKill: 1 });
    expect(cg.procs()).toEqual([123, 456]);
  });

  it('v2: refuses a parent whose subtree_control lacks cpu or memory (and says why)', async () => {
    const base = await makeTempDir('unit-cgv2');
    writeFileSync(join(base, 'cgroup.subtree_control'), 'pids\n');
    expect(() => makeCgroup({ base, version: 2, autoRemove: false })).toThrow(/lacks cpu and memory/);
  });

  it('v1: a directory per hierarchy, quota and period, memsw when present, stats from cpu.stat, cpuacct.usage, oom_control', async () => {
    const base = await fakeV1();
    const cg = makeCgroup({ base, version: 1, tag: 'u', autoRemove: false });
    expect(cg.dirs.map((d) => d.split('/').slice(-2, -1)[0])).toEqual(['cpu', 'cpuacct', 'memory']);
    const [cpu, acct, mem] = cg.dirs as [string, string, string];
    writeFileSync(join(mem, 'memory.memsw.limit_in_bytes'), '9223372036854771712\n');
    cg.setCpuMax(10_000, 100_000);
    cg.setCpuWeight(1000);
    expect(readFileSync(join(cpu, 'cpu.shares'), 'utf8')).toBe('10240');
    expect(cg.setMemoryMax(100 * 1024 * 1024)).toMatch(/memsw/);
    expect(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).toBe('10000');
    expect(readFileSync(join(cpu, 'cpu.cfs_period_us'), 'utf8')).toBe('100000');
    expect(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8')).toBe('104857600');
    expect(readFileSync(join(mem, 'memory.memsw.limit_in_bytes'), 'utf8')).toBe('104857600');
    writeFileSync(join(cpu, 'cpu.stat'), V1_CPU_STAT);
    writeFileSync(join(acct, 'cpuacct.usage'), '306123456\n');
    writeFileSync(join(mem, 'memory.oom_control'), V1_OOM_CONTROL);
    writeFileSync(join(cpu, 'cgroup.procs'), '7\n');
    writeFileSync(join(mem, 'cgroup.procs'), '7\n8\n');
    expect(cg.stats()).toEqual({ usageUsec: 306123, nrPeriods: 31, nrThrottled: 31, oomKill: 1 });
    expect(cg.procs()).toEqual([7, 8]);
  });

  it('v1: says swap is unlimited when there is no memsw (swapaccount off)', async () => {
    const cg = makeCgroup({ base: await fakeV1(), version: 1, autoRemove: false });
    expect(cg.setMemoryMax(1 << 20)).toMatch(/swap is not limited/);
  });

  it('v1: uses the merged cpu,cpuacct hierarchy once', async () => {
    const base = await fakeV1(true);
    expect(v1Hierarchies(base).cpuacct).toBeUndefined();
    const cg = makeCgroup({ base, version: 1, autoRemove: false });
    expect(cg.dirs).toHaveLength(2);
  });

  it('removes its directories, and removal is idempotent', async () => {
    const cg = makeCgroup({ base: await fakeV1(), version: 1, autoRemove: false });
    await cg.remove();
    expect(cg.dirs.filter((d) => existsSync(d))).toEqual([]);
    await cg.remove();
  });
});
