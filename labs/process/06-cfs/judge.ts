/**
 * Process Lab 6's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`) to the facts each test asserts, with the message that
 * shows the evidence (the windows' Δsum_exec_runtime and Δvruntime, the hogs'
 * placement, what the kernel recorded of the pair). Unit-tested on made-up runs
 * in tests/lab-units/process/06-cfs/judge.test.ts.
 */
import type { Run } from './experiment.js';

/** kernel/sched/core.c sched_prio_to_weight, nice -20 … 19. */
const PRIO_TO_WEIGHT = [
  88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
  9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
  1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
  110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
];
export const weight = (nice: number) => PRIO_TO_WEIGHT[nice + 20]!;
/**
 * Tolerance on the CPU time ratio (median of the windows), ±10 %. Measured here
 * at load 14–17 (other helpers' builds and tests on both CPUs): 8 runs × 3
 * windows of 1 s, nice 3…7, every window within 2 % of the weight ratio (worst
 * 4.841 for an ideal 4.76, 3.006 for 3.06). A one-step error in nice moves the
 * ratio by 1.25× (20 %): ±10 % leaves room on both sides. The pair's own cgroup
 * with a high weight is what keeps the host's load out of the ratio.
 */
export const RATIO_TOLERANCE = 0.10;
/** vruntime advances by delta_exec × 1024 / weight: both hogs' Δvruntime equal within this. */
export const VRUNTIME_TOLERANCE = 0.15;
/** Switches per second between the two, at least: EEVDF's base slice is ≤ 3 ms here, so hundreds are normal. */
export const MIN_SWITCHES_PER_S = 20;
/**
 * How much sooner than <seconds> a run may end: a clock tick (a coarse clock's 4 ms) and rounding. The spec's clock
 * starts before the program's, so a pair that spins for <seconds> runs at least that long; one that parses <seconds>
 * as an integer (atoi) or sleeps on whole seconds (alarm(2), time(2)) loses 0.45–0.90 s of the fraction in each run.
 */
export const EARLY_SLACK_MS = 100;
/** How much later than <seconds> the short second run may end (a loaded machine's fork, exec and reaping). */
export const LATE_SLACK_MS = 1_100;
/** A hog may be made to wait a handful of times (page faults on first touch, the tracer's start); a cooperative hand-off sleeps hundreds of times. */
export const MAX_VOLUNTARY = 10;

/** se.load.weight is kept ×1024 on 64-bit kernels (scale_load): back to the table's scale. */
export const unscaled = (w: number) => (w > PRIO_TO_WEIGHT[0]! ? w / 1024 : w);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The run in a few lines: the hogs, their CPU, the load and each window's deltas. */
export function show(r: Run): string {
  const rows = r.windows.map((w, i) => `  window ${i + 1}: Δsum_exec_runtime ${w.dSum.map((x) => x.toFixed(1)).join(' / ')} ms, Δvruntime ${w.dVr.map((x) => x.toFixed(1)).join(' / ')} ms`);
  return `hogs ${r.kids.map((k) => k.pid).join(' (nice 0) and ')} (nice ${r.nice}) on CPU ${r.cpu} for ${r.seconds} s; load ${r.load}\n${rows.join('\n')}`;
}

/** Both hogs on <cpu> only, at nice 0 and N, with the weights of sched_prio_to_weight. */
export function placement(r: Run) {
  return {
    facts: { affinity: r.affinity, nice: r.nices, weight: r.weights.map(unscaled) },
    want: { affinity: [String(r.cpu), String(r.cpu)], nice: [0, r.nice], weight: [weight(0), weight(r.nice)] },
    message: `expected both on CPU ${r.cpu} only, nice 0 and ${r.nice}, weights ${weight(0)} and ${weight(r.nice)} (se.load.weight is shown ×1024 on 64-bit). ${show(r)}`,
  };
}

/** The program does the work: its own children (not taskset, nice or a shell it runs), with the default policy. */
export function identity(r: Run) {
  return {
    facts: { exe: r.exes, policy: r.policies },
    want: { exe: [r.self, r.self], policy: [0, 0] },
    message: `/proc/<pid>/exe and the policy line of /proc/<pid>/sched of the hogs ${r.kids.map((k) => k.pid).join(', ')}: ` +
      `the hogs are cfs_pair's forked children (${r.self}), which set their CPU and nice themselves, at SCHED_OTHER (0)`,
  };
}

/** Programs the pair exec'd other than cfs_pair: none. */
export function execs(r: Run) {
  return {
    fact: r.exec,
    message: `programs cfs_pair's processes exec'd (sched:sched_process_exec): ${r.exec.join(', ') || 'none'}. ` +
      `Each hog sets its own CPU and nice with sched_setaffinity(2) and setpriority(2) (or nice(2)); taskset, nice, renice or a shell must not do it for them`,
  };
}

/** The scheduler must do the splitting: hogs that never sleep, in the cgroup the spec made, and a parent that waits. */
export function spinning(r: Run) {
  const windowsMs = r.windowCount * r.windowMs;
  return {
    facts: { hogsSleptTimes: r.voluntary.map((v) => (v <= MAX_VOLUNTARY ? 'never' : v)), notInCgroup: r.notInCgroup, parentBusy: r.parentCpuMs > windowsMs * 0.1 },
    want: { hogsSleptTimes: ['never', 'never'], notInCgroup: [], parentBusy: false },
    message: `over the ${windowsMs} ms measured: voluntary_ctxt_switches of the hogs grew by ${r.voluntary.join(' and ')} (a hog spins and never waits; ` +
      `the CPU is taken from it only by preemption), the parent cfs_pair used ${r.parentCpuMs} ms of CPU (it waits for its children), ${r.notInCgroup.join('; ') || 'both hogs in the cgroup the program was started in'}`,
  };
}

/** The second, short run on another CPU: its hogs follow <cpu>, and it ends after its <seconds>. */
export function otherRun(r: Run, other: NonNullable<Run['other']>) {
  const args = `cfs_pair ${other.cpu} ${r.nice} ${other.seconds}`;
  const ms = Math.round(other.seconds * 1000);
  return {
    affinity: { fact: other.affinity, want: [String(other.cpu), String(other.cpu)], message: `a second, short run, ${args}: the hogs' Cpus_allowed_list must follow <cpu>` },
    duration: { fact: other.ranMs, atLeast: ms - EARLY_SLACK_MS, atMost: ms + LATE_SLACK_MS,
      message: `the second run, ${args}, ran ${other.ranMs} ms: the hogs spin for <seconds>, whatever it is (${ms - EARLY_SLACK_MS}–${ms + LATE_SLACK_MS} ms: parse a decimal, and keep a clock finer than seconds)` },
  };
}

/** The pair ends after <seconds>: no sooner than a tick before, at most 3 s later. */
export function duration(r: Run) {
  const atLeast = Math.round(r.seconds * 1000) - EARLY_SLACK_MS;
  const atMost = Math.round(r.seconds * 1000) + 3_000;
  return {
    fact: r.ranMs,
    atLeast,
    atMost,
    message: `cfs_pair ${r.cpu} ${r.nice} ${r.seconds} ran ${r.ranMs} ms: the hogs spin for <seconds>, then the parent reaps them and exits (${atLeast}–${atMost} ms: parse a decimal, and keep a clock finer than seconds)`,
  };
}

/** Every planned window measured (else why not, and what was). */
export function measured(r: Run) {
  return { fact: r.windows.length, want: r.windowCount, message: `${r.stuck ?? ''}\n${show(r)}` };
}

/** Δsum_exec_runtime(nice 0) / Δsum_exec_runtime(nice N) per window, and the median's deviation from the weights' ratio. */
export function split(r: Run) {
  const ratios = r.windows.map((w) => w.dSum[0] / w.dSum[1]);
  const ideal = weight(0) / weight(r.nice);
  const got = median(ratios);
  return {
    ratios,
    ideal,
    deviation: Math.abs(got / ideal - 1),
    message: `median ratio ${got.toFixed(2)} (windows: ${ratios.map((x) => x.toFixed(2)).join(', ')}), ideal ${weight(0)}/${weight(r.nice)} = ${ideal.toFixed(2)}, tolerance ±${RATIO_TOLERANCE * 100} %. ${show(r)}`,
  };
}

/** Over all windows: the two Δvruntime (ratio near 1) and the two Δsum_exec_runtime (the nice 0 hog's larger). */
export function vruntime(r: Run) {
  const dv = r.windows.reduce((s, w) => [s[0]! + w.dVr[0], s[1]! + w.dVr[1]], [0, 0]);
  const ds = r.windows.reduce((s, w) => [s[0]! + w.dSum[0], s[1]! + w.dSum[1]], [0, 0]);
  return {
    vruntime: {
      fact: Math.abs(dv[0]! / dv[1]! - 1),
      message: `Δvruntime over ${r.windowCount} windows: ${dv.map((x) => x.toFixed(1)).join(' vs ')} ms (ratio must be 1 ± ${VRUNTIME_TOLERANCE}). ${show(r)}`,
    },
    cpu: { fact: ds[0]! / ds[1]!, message: `Δsum_exec_runtime: ${ds.map((x) => x.toFixed(1)).join(' vs ')} ms: the nice 0 hog must get more CPU` },
  };
}

/** sched_switch events from one hog straight to the other, per second of the measured windows. */
export function switching(r: Run) {
  const windowsMs = r.windowCount * r.windowMs;
  return {
    perS: r.switches / (windowsMs / 1000),
    message: `sched_switch events with prev_pid/next_pid = the two hogs: ${r.switches} in ${windowsMs} ms. Sample:\n  ${r.switchSample.join('\n  ') || '(none)'}\n${show(r)}`,
  };
}
