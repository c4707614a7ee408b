/** Process Lab 6's verdicts (labs/process/06-cfs/judge.ts) on made-up runs: placement, the hogs' conduct, the split, vruntime, the switches. */
import { describe, expect, it } from 'vitest';
import type { Run } from '../../../../labs/process/06-cfs/experiment.js';
import {
  duration, execs, identity, measured, median, placement, show, spinning, split, switching, unscaled, vruntime, weight, otherRun,
} from '../../../../labs/process/06-cfs/judge.js';
import type { ProcStat } from '../../../../helpers/kernel/procfs.js';

const SELF = '/tmp/kl-cache/cfs_pair';
/** Three 1 s windows of a nice 0 / nice 5 pair on CPU 1: CPU time 3.06 : 1, vruntime alike. */
function run(extra: Partial<Run> = {}): Run {
  const win = { dSum: [754, 246] as [number, number], dVr: [754, 751] as [number, number] };
  return {
    cpu: 1, nice: 5, windowCount: 3, windowMs: 1_000, self: SELF, seconds: 5.73, ranMs: 5_800,
    kids: [{ pid: 301 } as ProcStat, { pid: 302 } as ProcStat], affinity: ['1', '1'], windows: [win, win, win],
    weights: [1024 * 1024, 335 * 1024], nices: [0, 5], switches: 312, switchSample: ['100.000001 prev_pid=301 ==> next_pid=302'],
    load: '1.00 1.00 1.00 3/200 400', cgroupVersion: 1, exes: [SELF, SELF], policies: [0, 0], exec: [],
    parentCpuMs: 0, voluntary: [1, 0], notInCgroup: [], ...extra,
  };
}

describe('Process Lab 6 judge', () => {
  it('sched_prio_to_weight, se.load.weight unscaled from ×1024, the median of three', () => {
    expect([weight(0), weight(5), weight(-20), weight(19)]).toEqual([1024, 335, 88761, 15]);
    expect([unscaled(1024 * 1024), unscaled(335)]).toEqual([1024, 335]);
    expect(median([3, 1, 2])).toBe(2);
  });

  it('placement: both on <cpu>, nice 0 and N, the table\'s weights; an off-by-one nice shows in the message', () => {
    const p = placement(run());
    expect(p.facts).toEqual(p.want);
    const off = placement(run({ nices: [0, 4], weights: [1024 * 1024, 423 * 1024], affinity: ['0', '1'] }));
    expect(off.facts).not.toEqual(off.want);
    expect(off.message).toMatch(/^expected both on CPU 1 only, nice 0 and 5, weights 1024 and 335 \(se.load.weight/);
    expect(off.message).toContain('hogs 301 (nice 0) and 302 (nice 5) on CPU 1 for 5.73 s');
  });

  it('identity: the hogs are cfs_pair itself at SCHED_OTHER; exec\'d tools are listed', () => {
    const id = identity(run({ exes: [SELF, '/usr/bin/bash'], policies: [0, 3] }));
    expect(id.facts).not.toEqual(id.want);
    expect(id.want).toEqual({ exe: [SELF, SELF], policy: [0, 0] });
    expect(id.message).toContain("the hogs are cfs_pair's forked children");
    expect(execs(run({ exec: ['301 /usr/bin/taskset'] })).message).toMatch(/exec'd \(sched:sched_process_exec\): 301 \/usr\/bin\/taskset\. Each hog/);
    expect(execs(run()).message).toContain('exec\'d (sched:sched_process_exec): none.');
  });

  it('spinning: a handful of voluntary switches is "never", a hand-off is counted; a busy parent or a hog outside the cgroup shows', () => {
    const good = spinning(run({ voluntary: [10, 0], parentCpuMs: 300 }));
    expect(good.facts).toEqual(good.want);
    const bad = spinning(run({ voluntary: [11, 400], parentCpuMs: 310, notInCgroup: ['302 not in /sys/fs/cgroup/cpu/kl-x/cgroup.procs'] }));
    expect(bad.facts).toEqual({ hogsSleptTimes: [11, 400], notInCgroup: ['302 not in /sys/fs/cgroup/cpu/kl-x/cgroup.procs'], parentBusy: true });
    expect(bad.message).toMatch(/grew by 11 and 400 .* the parent cfs_pair used 310 ms of CPU .* 302 not in \S+\/cgroup\.procs/);
  });

  it('durations: <seconds> with 0.1 s of slack below (an integer parse loses more), 3 s above; the second run\'s too, 1.1 s above', () => {
    const d = duration(run());
    expect([d.fact, d.atLeast, d.atMost]).toEqual([5_800, 5_630, 8_730]);
    expect(d.message).toBe('cfs_pair 1 5 5.73 ran 5800 ms: the hogs spin for <seconds>, then the parent reaps them and exits (5630–8730 ms: parse a decimal, and keep a clock finer than seconds)');
    expect(duration(run({ ranMs: 5_010 })).fact).toBeLessThan(duration(run()).atLeast); // atoi("5.73"): 5 s and a fork
    const o = otherRun(run(), { cpu: 0, seconds: 1.62, affinity: ['0', '1'], ranMs: 5_000 });
    expect(o.affinity).toMatchObject({ fact: ['0', '1'], want: ['0', '0'] });
    expect(o.duration).toMatchObject({ fact: 5_000, atLeast: 1_520, atMost: 2_720 });
    expect(o.duration.message).toMatch(/cfs_pair \d \d [\d.]+,? ran \d+ ms/);
    expect(o.affinity.message).toBe("a second, short run, cfs_pair 0 5 1.62: the hogs' Cpus_allowed_list must follow <cpu>");
  });

  it('the split: the median window ratio against weight(0)/weight(N)', () => {
    const s = split(run());
    expect(s.ideal).toBeCloseTo(1024 / 335);
    expect(s.ratios.map((x) => x.toFixed(3))).toEqual(['3.065', '3.065', '3.065']);
    expect(s.deviation).toBeLessThan(0.01);
    const w = (a: number) => ({ dSum: [a * 100, 100] as [number, number], dVr: [1, 1] as [number, number] });
    const skewed = split(run({ windows: [w(2), w(2.5), w(9)] }));
    expect(skewed.deviation).toBeCloseTo(1 - 2.5 / (1024 / 335));
    expect(skewed.message).toMatch(/^median ratio 2\.50 \(windows: 2\.00, 2\.50, 9\.00\), ideal 1024\/335 = 3\.06, tolerance ±10 %/);
    expect(measured(run({ windows: [w(1)], stuck: 'a hog ended before 3 windows of 1000 ms were measured' })))
      .toMatchObject({ fact: 1, want: 3, message: expect.stringMatching(/^a hog ended before 3 windows/) });
  });

  it('vruntime: equal rates for both while CPU time differs; equal CPU time fails the second', () => {
    const v = vruntime(run());
    expect(v.vruntime.fact).toBeCloseTo(754 / 751 - 1);
    expect(v.cpu.fact).toBeCloseTo(754 / 246);
    const flat = { dSum: [500, 500] as [number, number], dVr: [500, 1500] as [number, number] };
    const f = vruntime(run({ windows: [flat, flat, flat] }));
    expect(f.vruntime.fact).toBeCloseTo(2 / 3);
    expect(f.cpu.fact).toBe(1);
    expect(f.vruntime.message).toMatch(/^Δvruntime over 3 windows: 1500\.0 vs 4500\.0 ms \(ratio must be 1 ± 0\.15\)/);
  });

  it('switches per second over the measured windows, with a sample of the lines', () => {
    const s = switching(run());
    expect(s.perS).toBe(104);
    expect(s.message).toMatch(/^sched_switch events with prev_pid\/next_pid = the two hogs: 312 in 3000 ms\. Sample:\n {2}100\.000001 prev_pid=301/);
    expect(switching(run({ switches: 0, switchSample: [] })).message).toContain('Sample:\n  (none)\n');
    expect(show(run())).toContain('  window 3: Δsum_exec_runtime 754.0 / 246.0 ms, Δvruntime 754.0 / 751.0 ms');
  });
});
