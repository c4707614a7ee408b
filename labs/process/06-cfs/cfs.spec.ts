/**
 * Process Lab 6 — CFS 调度 (seed 003 进程调度).
 * The student's `cfs_pair <cpu> <nice> <seconds>` runs two hogs pinned to one
 * CPU, one at nice 0 and one at nice N (N random per run). The spec runs it in
 * a kl-… cgroup of its own (helpers/kernel/cgroup.ts, v1 here) with a high
 * weight, so other work on the shared host takes CPU from the pair as a whole
 * rather than from one of them, then reads /proc/<pid>/sched (sum_exec_runtime,
 * vruntime, load.weight) over three windows and counts sched:sched_switch
 * events between the two pids in a private tracefs instance.
 *
 * The lab's anatomy: experiment.ts runs the pair and collects the evidence
 * (`Run`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { buildPair, runPair, type Run } from './experiment.js';
import * as judge from './judge.js';
import { MIN_SWITCHES_PER_S, RATIO_TOLERANCE, VRUNTIME_TOLERANCE } from './judge.js';

let program = '';
let measured: Promise<Run> | undefined;
/** The pair's one run, shared by the tests (the first test to ask starts it). */
const measure = () => (measured ??= runPair(program));

describe('Process Lab 6 — CFS: CPU time by weight (进程调度)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    program = await buildPair();
  });

  it('both hogs are pinned to the one CPU <cpu> (Cpus_allowed_list), the second at nice N with the weight of sched_prio_to_weight (se.load.weight); both are cfs_pair itself at SCHED_OTHER, and the pair ends after <seconds>', async (ctx) => {
    const r = await measure();
    expect(r.kids.length, r.stuck).toBe(2);
    if (r.cgroupVersion === 1) await adapted(ctx, 'cgroup v1: the pair runs in a kl-… cpu cgroup with cpu.shares 10240 (cpu.weight 1000 on v2)');
    const p = judge.placement(r);
    expect(p.facts, p.message).toEqual(p.want);
    const id = judge.identity(r);
    expect(id.facts, id.message).toEqual(id.want);
    const x = judge.execs(r);
    expect(x.fact, x.message).toEqual([]);
    const s = judge.spinning(r);
    expect(s.facts, s.message).toEqual(s.want);
    if (r.other) {
      const o = judge.otherRun(r, r.other);
      expect(o.affinity.fact, o.affinity.message).toEqual(o.affinity.want);
      expect(o.duration.fact, o.duration.message).toBeGreaterThanOrEqual(o.duration.atLeast);
      expect(o.duration.fact, o.duration.message).toBeLessThanOrEqual(o.duration.atMost);
    }
    const d = judge.duration(r);
    expect(d.fact, d.message).toBeGreaterThanOrEqual(d.atLeast);
    expect(d.fact, d.message).toBeLessThanOrEqual(d.atMost);
  });

  it('CPU time splits in the ratio of the weights: Δsum_exec_runtime(nice 0) / Δsum_exec_runtime(nice N) = weight(0)/weight(N) within ±10 % (median of 3 windows)', async (ctx) => {
    afterCorrectness(ctx, ['both hogs are pinned to the one CPU'], 'the CPU split between the hogs');
    const r = await measure();
    const m = judge.measured(r);
    expect(m.fact, m.message).toBe(m.want);
    const s = judge.split(r);
    s.ratios.forEach((x, i) => recordMetric(ctx, { name: `CPU time ratio nice 0 : nice ${r.nice}, window ${i + 1}`, value: x, unit: `× (ideal ${s.ideal.toFixed(2)})`, group: 'CFS' }));
    expect(s.deviation, s.message).toBeLessThanOrEqual(RATIO_TOLERANCE);
  });

  it('vruntime advances at the same rate for both (it is CPU time scaled by 1024/weight), while their sum_exec_runtime differ', async (ctx) => {
    afterCorrectness(ctx, ['both hogs are pinned to the one CPU'], 'the CPU split between the hogs');
    const r = await measure();
    const m = judge.measured(r);
    expect(m.fact, m.message).toBe(m.want);
    const v = judge.vruntime(r);
    expect(v.vruntime.fact, v.vruntime.message).toBeLessThanOrEqual(VRUNTIME_TOLERANCE);
    expect(v.cpu.fact, v.cpu.message).toBeGreaterThan(1 + RATIO_TOLERANCE);
  });

  it('the CPU passes back and forth between the two: sched:sched_switch events from one hog to the other, many per second', async (ctx) => {
    afterCorrectness(ctx, ['both hogs are pinned to the one CPU'], 'the CPU split between the hogs');
    const r = await measure();
    expect(r.kids.length, r.stuck).toBe(2);
    const sw = judge.switching(r);
    recordMetric(ctx, { name: 'switches between the two hogs', value: sw.perS, unit: '/s', group: 'CFS' });
    expect(sw.perS, sw.message).toBeGreaterThanOrEqual(MIN_SWITCHES_PER_S);
  });
});
