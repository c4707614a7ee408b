/**
 * Lab 8.4 — 内核的可观测技术: three ways to trace one system call (seed 004
 * "(五) 内核的可观测技术": ftrace, perf, bpftrace).
 * The spec picks a system call at random; the student's three recipes —
 * ftrace.sh (the function tracer in a tracefs instance handed to it), perf.sh
 * (perf stat on the syscall's tracepoint) and count.bt (bpftrace) — each count
 * the calls of a tracee they did not start, released with a random N only once
 * the kernel shows the recipe's tracer attached, beside a decoy making the same
 * call. The kernel judges: its own record of the tracee's calls, the perf event
 * fds of perf, the BPF program bpftrace attached (bpftool perf show), the
 * instance's tracer, filter and pid. This host refuses function tracing
 * (lockdown): the ftrace part then runs in a guest of Debian's 6.1 kernel.
 *
 * The lab's anatomy: experiment.ts runs the trials and collects the evidence
 * (`Trial`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, need, requires } from '../../../helpers/harness/requires.js';
import { between, buildPrograms, ftraceInGuest, ftraceNative, functionTracing, hostTrial, pick, randomShape, SYSCALLS, type FtracePlan, type Trial } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

interface Run {
  readonly syscall: string;
  readonly host: readonly Trial[];
  readonly ftrace: readonly Trial[];
  /** Why the ftrace part ran in the guest (undefined: natively). */
  readonly guest?: { readonly why: string; readonly seconds: number };
}

let ran: Promise<Run> | undefined;
let ftraceRan: Promise<Run> | undefined;

/** The host trials: untraced, perf, bpftrace, twice, alternating (N random each time; the first round's traced tracees pause between bursts). */
const once = () => (ran ??= (async () => {
  const p = await buildPrograms();
  const syscall = pick(SYSCALLS);
  const host: Trial[] = [];
  for (let round = 0; round < 2; round++) {
    for (const tool of ['none', 'perf', 'bpftrace'] as const) {
      host.push(await hostTrial(p, tool, syscall, between(20_000, 50_000), between(5_000, 15_000), tool === 'none' ? undefined : randomShape('host', round === 0)));
    }
  }
  return { syscall, host, ftrace: [] };
})());

/** The ftrace trials (natively, or in the guest when this host refuses function tracing), after the host's. */
const withFtrace = () => (ftraceRan ??= (async () => {
  const r = await once();
  const p = await buildPrograms();
  const ft = functionTracing();
  const plan: FtracePlan[] = [0, 1].flatMap((round) => (['none', 'ftrace'] as const).map((tool) => ({
    tool, n: between(5_000, 20_000), m: between(2_000, 6_000), ...(tool === 'ftrace' ? { shape: randomShape(ft.ok ? 'host' : 'guest', round === 0) } : {}),
  })));
  if (ft.ok) return { ...r, ftrace: await ftraceNative(p, r.syscall, plan) };
  const g = await ftraceInGuest(p, r.syscall, plan);
  return { ...r, ftrace: g.trials, guest: { why: ft.why, seconds: g.seconds } };
})());

const first = (trials: readonly Trial[], tool: Trial['tool']) => trials.find((t) => t.tool === tool);

describe('Lab 8.4 — three ways to trace one system call (内核的可观测技术: ftrace, perf, bpftrace)', () => {
  requires(...labRequires(import.meta.url));

  it('control: the tracee makes exactly N calls of the chosen system call and the decoy M — the kernel\'s own record (a private tracefs instance per pid)', async () => {
    const v = judge.workload((await once()).host.filter((t) => t.tool === 'none'));
    holds(v);
  });

  it('perf: perf itself holds a perf event when the tracee starts its calls, ends with it, and prints exactly N (not the decoy\'s)', async () => {
    const v = judge.perf(first((await once()).host, 'perf'));
    holds(v);
  });

  it('bpftrace: a BPF program of bpftrace on the syscall\'s tracepoint when the tracee starts, ends with it, and prints exactly N', async () => {
    const v = judge.bpftrace(first((await once()).host, 'bpftrace'));
    holds(v);
  });

  it('ftrace: the function tracer on the syscall\'s entry function, in the instance handed over, for the tracee only, counts exactly N', async (ctx) => {
    const ft = functionTracing();
    if (!ft.ok) {
      await need(ctx, 'qemu', 'busybox');
      await adapted(ctx, `function tracing refused on this host (${ft.why}): the ftrace recipe runs in a QEMU guest of Debian's kernel`);
    }
    const r = await withFtrace();
    if (r.guest) recordMetric(ctx, { name: 'guest boot and ftrace trials (TCG)', value: Math.round(r.guest.seconds * 10) / 10, unit: 's', group: 'three tracers' });
    const control = judge.workload(r.ftrace.filter((t) => t.tool === 'none'));
    expect(control.got, `the untraced trials ${r.guest ? 'in the guest' : 'here'} (the harness, not your recipe):\n${control.message}`).toEqual(control.want);
    const v = judge.ftrace(first(r.ftrace, 'ftrace'));
    holds(v);
  });

  it('the three counts agree with N in every trial, each recipe ending when its tracee exited; each tool\'s overhead on the tracee, measured against untraced runs of the same place', async (ctx) => {
    afterCorrectness(ctx, ['perf:', 'bpftrace:', 'ftrace:'], 'the tools\' overhead');
    const r = await withFtrace();
    const traced = [...r.host, ...r.ftrace].filter((t) => t.tool !== 'none');
    const rows = traced.map((t) => ({ tool: t.tool, n: t.n, printed: t.recipe ? judge.recipeCount(t.recipe.stdout) : undefined, kernel: t.kernel.tracee, ended: judge.endVerdict(t) }));
    expect(rows, `${r.syscall}: every traced trial, what the recipe printed, what the kernel recorded and when the recipe ended`)
      .toEqual(traced.map((t) => ({ tool: t.tool, n: t.n, printed: t.n, kernel: t.n, ended: 'when the tracee exited' })));
    for (const o of judge.overheads([...r.host, ...r.ftrace])) {
      if (o.tracedNs !== undefined) recordMetric(ctx, { name: `${o.tool}: ${r.syscall} per call, traced (${o.where})`, value: Math.round(o.tracedNs), unit: 'ns', group: 'three tracers' });
      if (o.baseNs !== undefined) recordMetric(ctx, { name: `untraced ${r.syscall} per call (${o.where}, beside ${o.tool})`, value: Math.round(o.baseNs), unit: 'ns', group: 'three tracers' });
      if (o.percent !== undefined) recordMetric(ctx, { name: `${o.tool} overhead on ${r.syscall} (${o.where}, median of ${o.trials})`, value: o.percent, unit: '%', group: 'three tracers' });
    }
  });
});
