/**
 * Net Lab 3 — softirqs: the bottom half, counted two ways.
 *
 * The student's bpftrace script (c/net/03-softirqs/softirqs.bt) counts
 * irq:softirq_entry per vector. The spec runs it over three windows — one
 * with a ping flood over the lab's veth pair, one idle, and one with shaped
 * traffic that makes the rare vectors run (a tbf qdisc: NET_TX; an ifb device
 * fed by an ingress redirect: TASKLET; a paced TCP stream: HRTIMER; direct
 * I/O: BLOCK where the disk completes in softirq) — and reads /proc/softirqs
 * before the script starts, once its probes are live, before it is stopped
 * and after it exited: its count of a vector that ran must lie between the
 * inner and the outer /proc deltas, and no vector it names may exceed the
 * outer one. So every vector name is checked against the kernel's order
 * wherever that vector runs here: HI and IRQ_POLL, which nothing raises on a
 * host without their drivers, stay unjudged.
 *
 * The lab's anatomy: experiment.ts runs the windows and collects the evidence
 * (`Softirqs`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { countSoftirqs, type Softirqs } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

describe('Net Lab 3 — softirqs per vector (irq:softirq_entry vs /proc/softirqs)', () => {
  requires(...labRequires(import.meta.url));
  let x: Softirqs;

  beforeAll(async () => {
    x = await countSoftirqs();
  });

  it('counts every vector that ran in agreement with the /proc/softirqs delta of the same window (flooded, idle, shaped), from irq:softirq_entry alone, each under its own name', async (ctx) => {
    for (const note of x.plan.notes) await adapted(ctx, note);
    for (const [name, w] of judge.windows(x)) {
      holds(judge.hooks(name, w));
      holds(judge.someVectorRan(name, w));
      holds(judge.agreement(name, w));
      recordMetric(ctx, { name: `${name} window`, value: w.unseen, unit: 'runs', group: 'softirq runs that reached no BPF program (our observer)' });
      for (const v of ['NET_RX', 'TIMER', 'RCU']) recordMetric(ctx, { name: `${v}, ${name}`, value: w.inner[v] ?? 0, unit: 'softirqs', group: 'softirqs in the window (/proc/softirqs)' });
    }
    for (const v of ['NET_TX', 'TASKLET', 'HRTIMER', 'BLOCK']) recordMetric(ctx, { name: `${v}, shaped`, value: x.shaped.inner[v] ?? 0, unit: 'softirqs', group: 'softirqs in the window (/proc/softirqs)' });
  });

  it('control: the shaped traffic makes the rare vectors run (HRTIMER from the paced stream; NET_TX from tbf and TASKLET from ifb where the kernel has them)', async (ctx) => {
    for (const note of x.plan.notes) await adapted(ctx, note);
    holds(judge.rareVectorsRan(x));
  });

  it('shows NET_RX rise with a ping flood over the veth (3000–6000 packets, random) and stay flat without it', () => {
    holds(judge.netRxRise(x));
  });
});
