/**
 * Teeth of Net Lab 3 (labs/net/03-softirqs): wrong counters fail the
 * agreement with /proc/softirqs (a wrong vector table too, wherever the
 * misnamed vectors can be made to run); one scalar map per vector passes.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSpecWith, summary } from './fixture-workspace.js';

const SPEC = 'labs/net/03-softirqs/softirqs.spec.ts';
const FIXTURES = join(import.meta.dirname, '../fixtures/net/03-softirqs');
const runWith = (name: string) => runSpecWith(SPEC, 'net/03-softirqs', 'net/03-softirqs/softirqs.bt', join(FIXTURES, name));
const root = process.getuid?.() === 0;
const AGREES = 'counts every vector that ran';

describe.skipIf(!root)('Net Lab 3 fixtures', { timeout: 4 * 60_000 }, () => {
  it.each([
    ['wrong-off-by-one.bt', 'a vector table shifted by one'],
    ['wrong-proc-totals.bt', 'printing /proc/softirqs totals instead of counting'],
    ['wrong-this-cpu.bt', 'counting CPU 0 only'],
    // A helper playing the clever student wrote these; all four passed the spec of 2026-12-04 (the flood was always 5000 pings).
    ['clever-exit.bt', 'counting irq:softirq_exit'],
    ['clever-napi.bt', 'counting NET_RX from napi:napi_poll'],
    ['clever-netifrx-half.bt', 'NET_RX as half the net:netif_rx packets'],
    ['clever-const5000.bt', 'NET_RX as the flood size when netif_rx saw many packets'],
    // Issue #27: these named right only the vectors the flood and idle windows make run; the shaped window makes the rare ones run.
    ['clever-mislabel-hi-tasklet.bt', 'HI and TASKLET swapped'],
    ['clever-mislabel-rare.bt', 'NET_TX, BLOCK, IRQ_POLL and HRTIMER rotated'],
  ])('%s (%s) fails the agreement with /proc/softirqs', async (file) => {
    const res = await runWith(file);
    const agreement = [...res.tests].find(([t]) => t.startsWith(AGREES))?.[1];
    expect(agreement?.status, summary(res)).toBe('failed');
    if (file.startsWith('clever-mislabel')) expect(agreement?.message, summary(res)).toMatch(/name must be the one of its index[\s\S]*(outsideBounds|moreThanRan)/);
  });

  it('one scalar map per vector (@NET_RX: n), printed by bpftrace at exit, passes every test', async () => {
    const res = await runWith('ok-scalar-maps.bt');
    expect([...res.tests.values()].map((v) => v.status), summary(res)).toEqual(['passed', 'passed', 'passed']);
  });
});
