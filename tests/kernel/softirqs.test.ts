import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSoftirqCounts, parseSoftirqs, softirqDelta, SOFTIRQ_VECTORS } from '../../helpers/kernel/softirqs.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/net', name), 'utf8');

describe('softirqs', () => {
  it('sums a recorded /proc/softirqs over the CPUs, every vector present', () => {
    const text = fixture('proc-softirqs.txt');
    const s = parseSoftirqs(text);
    expect(Object.keys(s)).toEqual([...SOFTIRQ_VECTORS]);
    const netRx = text.split('\n').find((l) => l.trim().startsWith('NET_RX:'))!.trim().split(/\s+/).slice(1).map(Number);
    expect(s.NET_RX).toBe(netRx.reduce((a, b) => a + b, 0));
    expect(softirqDelta(s, { ...s, NET_RX: s.NET_RX! + 7 }).NET_RX).toBe(7);
  });

  it('reads a recorded bpftrace map print and plain "NAME count" lines', () => {
    expect(parseSoftirqCounts(fixture('bpftrace-softirqs.txt'))).toEqual({ BLOCK: 49, SCHED: 187, TIMER: 339, RCU: 1016 });
    expect(parseSoftirqCounts('NET_RX 12\nnet_rx_softirq: 3\n@c["TIMER"]: 4\n@RCU: 9\nAttaching 3 probes...')).toEqual({ NET_RX: 15, TIMER: 4, RCU: 9 });
  });
});
