/**
 * Lab 8.1 — receiving a packet: NAPI polls, GRO and the NET_RX softirq.
 *
 * The student's bpftrace script (c/paths/01-receive/rxpath.bt, run with the
 * lab's port and the receiving device as $1 and $2) prints each NAPI poll of
 * the device (work, budget), each TCP segment to the port that enters GRO
 * (napi_gro_receive_entry) and each skb GRO passes up (netif_receive_skb).
 * The spec sends a TCP connection of a random number of MTU-sized segments
 * over a veth pair whose receiving end runs NAPI with GRO, among decoys (a
 * TCP connection to another port (once from the lab's port) and UDP
 * datagrams to the lab's port before and after, a connection to the same port on another device at the same
 * time). The kernel is the judge: its own record of the same tracepoints in
 * private tracefs instances (experiment.ts), line for line (judge.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { MTU, receiveThroughTracer, type Run } from './experiment.js';
import * as judge from './judge.js';

describe('Lab 8.1 — receiving a packet: NAPI polls, GRO and NET_RX on the receiving veth', () => {
  requires(...labRequires(import.meta.url));
  let r: Run;

  beforeAll(async () => {
    r = await receiveThroughTracer();
  });

  it('control: with GRO on, the kernel took the lab\'s segments (MTU-sized at most) in NAPI polls of at most their budget and passed them up as fewer skbs, some longer than the MTU', (ctx) => {
    const k = judge.kernelMerge(r);
    recordMetric(ctx, { name: 'segments into GRO', value: k.gro, unit: 'skbs', group: 'the lab\'s connection' });
    recordMetric(ctx, { name: 'skbs up the stack', value: k.rx, unit: 'skbs', group: 'the lab\'s connection' });
    recordMetric(ctx, { name: 'longest skb', value: k.longest, unit: 'B', group: 'the lab\'s connection' });
    recordMetric(ctx, { name: 'polls of the device', value: k.polls, unit: 'polls', group: 'NAPI' });
    expect(k.lost, k.message).toBe(false);
    expect(k.data, k.message).toBeGreaterThanOrEqual(r.segments);
    expect(k.rx, k.message).toBeLessThan(k.gro);
    expect(k.longest, k.message).toBeGreaterThan(MTU);
    expect(k.overBudget, k.message).toBe(0);
    expect(k.batched, k.message).toBeGreaterThan(0);
  });

  it('control: every poll of the lab\'s device ran inside a NET_RX softirq of its CPU, and /proc/softirqs NET_RX rose at least as often', (ctx) => {
    const s = judge.softirqs(r);
    recordMetric(ctx, { name: 'NET_RX softirqs that polled the device', value: s.runs, unit: 'softirqs', group: 'NAPI' });
    recordMetric(ctx, { name: '/proc/softirqs NET_RX delta', value: s.delta, unit: 'softirqs', group: 'NAPI' });
    expect(s.polls, s.message).toBeGreaterThan(0);
    expect(s.outside, s.message).toBe(0);
    expect(s.delta, s.message).toBeGreaterThanOrEqual(s.runs);
  });

  it('prints every NAPI poll of the lab\'s device with the packets it took (work) and its budget', () => {
    const p = judge.polls(r);
    expect(p.missing, p.message).toEqual([]);
  });

  it('prints every segment of the lab\'s connection that entered GRO (napi_gro_receive_entry), with its skb and len', () => {
    const s = judge.segments(r);
    expect(s.missing, s.message).toEqual([]);
  });

  it('prints every skb GRO passed up for the lab\'s connection (netif_receive_skb): fewer than the segments, the merged ones longer than the MTU', () => {
    const s = judge.skbs(r);
    expect(s.missing, s.message).toEqual([]);
    expect(s.mine, s.figures).toBeLessThan(s.groLines);
    expect(s.longest, s.figures).toBeGreaterThan(MTU);
  });

  it('prints nothing else: no poll of another device, no segment or skb of the decoys (TCP to the next port, one from the lab\'s port, UDP to the lab\'s port, the lab\'s port on another device)', (ctx) => {
    afterCorrectness(ctx, ['prints every NAPI poll', 'prints every segment', 'prints every skb'], 'lines of other traffic');
    const s = judge.strays(r);
    recordMetric(ctx, { name: 'tracer lines', value: s.lines, unit: 'lines', group: 'the tracer' });
    expect(s.stray, s.message).toEqual([]);
  });
});
