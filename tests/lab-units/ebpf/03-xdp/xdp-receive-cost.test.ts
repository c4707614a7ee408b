/**
 * The pure parts of Lab 1.3's receiver-bound measurement (labs/ebpf/03-xdp/receive-cost.ts):
 * the generator's line, NAPI threads and their schedstat in a fake /proc, medians and sums.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { median, napiThreads, parseGenerator, schedTimes, summarize, type ReceiveTrial } from '../../../../labs/ebpf/03-xdp/receive-cost.js';

const proc = mkdtempSync(join(tmpdir(), 'kl-unit-proc-'));
afterAll(() => rmSync(proc, { recursive: true, force: true }));

function task(pid: number, comm: string, schedstat: string): void {
  mkdirSync(join(proc, String(pid)));
  writeFileSync(join(proc, String(pid), 'comm'), `${comm}\n`);
  writeFileSync(join(proc, String(pid), 'schedstat'), `${schedstat}\n`);
}

describe('receive-cost', () => {
  it('parses xdp_trafficgen\'s line and refuses anything else', () => {
    expect(parseGenerator('sent=2621440 calls=40 elapsed_ns=1009000000 pps=2598672 cpu_ns=277872640 wait_ns=700000000\n'))
      .toEqual({ sent: 2621440, elapsedNs: 1009000000, pps: 2598672, cpuNs: 277872640, waitNs: 700000000 });
    expect(parseGenerator('bpf_prog_test_run_opts (live frames, repeat 65536) after 0 frames: Operation not supported')).toBeUndefined();
  });

  it('finds the NAPI threads of one interface only (not of a name it is a prefix of) and reads their schedstat', () => {
    task(4100, 'napi/kl-1-b1-422', '155500000 150000000 812');
    task(4101, 'napi/kl-1-b10-423', '1 2 3');
    task(4102, 'kworker/1:0', '9 9 9');
    writeFileSync(join(proc, 'stat'), 'cpu 1 2 3\n');
    expect(napiThreads('kl-1-b1', proc)).toEqual([4100]);
    expect(schedTimes(4100, proc)).toEqual({ run: 155500000, wait: 150000000 });
  });

  it('takes medians per method and sums the counts', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBe(0);
    const t = (ns: number, reached: number): ReceiveTrial => ({
      method: 'xdp', gen: { sent: reached + 10, elapsedNs: 1e9, pps: reached + 10, cpuNs: 1, waitNs: 0 }, reached, ringFull: 10, counted: reached,
      napiNs: ns * reached, perSecond: reached, nsPerPacket: ns, busy: 0.2, waited: 0.1, log: '',
    });
    const s = summarize('xdp', [t(90, 100), t(500, 300), t(100, 200)]);
    expect({ ns: s.nsPerPacket, perSecond: s.perSecond, sent: s.sent, reached: s.reached, ringFull: s.ringFull, counted: s.counted })
      .toEqual({ ns: 100, perSecond: 200, sent: 630, reached: 600, ringFull: 30, counted: 600 });
  });
});
