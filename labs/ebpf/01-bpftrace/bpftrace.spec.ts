/**
 * Lab 1 — 初窥门径: kernel insight with bpftrace, no C written.
 * Each script is started once, the experiment waits for "Attaching N probes..."
 * (never a sleep), then runs its own children and looks for their PIDs.
 *
 * The lab's anatomy: experiment.ts runs each script and its children and
 * collects the lines it printed, judge.ts turns them into facts and messages,
 * this file says what must hold.
 */
import { describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { listAttachPoints, traceExits, traceOpens } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

describe('Lab 1 — bpftrace one-liners (初窥门径)', () => {
  requires(...labRequires(import.meta.url));

  it('prints the path of every openat(2): cat /etc/hosts and a file named at random, and ls /tmp, show up under their own PID and command name', async () => {
    const o = judge.opens(await traceOpens());
    holds(o);
  });

  it('reports the PID of a child that exited (kprobe:do_exit, or the sched_process_exit tracepoint without kprobes)', async (ctx) => {
    const { alive, reaped } = judge.exits(await traceExits((m) => adapted(ctx, m)));
    // toBe, as before the split: the failure reads "expected true to be false".
    expect(alive.got, alive.message).toBe(alive.want);
    holds(reaped);
  });

  it('control: lists what each mechanism can attach to here: stable tracepoints vs kprobes on (almost) any kernel function', async (ctx) => {
    const a = await listAttachPoints((m) => adapted(ctx, m));
    recordMetric(ctx, { name: 'tracepoints (bpftrace -l "tracepoint:*")', value: a.tracepoints.length, unit: 'probes', group: 'attach points' });
    recordMetric(ctx, { name: 'kprobes (bpftrace -l "kprobe:*")', value: a.kprobes.length, unit: 'probes', group: 'attach points' });
    for (const v of judge.attachPoints(a)) holds(v);
  });
});
