/** Net Lab 1's verdicts (labs/net/01-epoll/judge.ts) on made-up evidence: each case's facts and the messages that explain them. */
import { describe, expect, it } from 'vitest';
import type { BurstRun, LeaversRun, Sample, StallRun, Sweep } from '../../../../labs/net/01-epoll/experiment.js';
import {
  burst, check, CHECK, epollScaling, halfClose, heldBack, leavers, pointHolds, pollComparison, scalingPoint, stall, STALL,
} from '../../../../labs/net/01-epoll/judge.js';

const total = CHECK.clients * CHECK.rounds * CHECK.chunk;
const summary = (echoed: number, mismatches = 0, stalled = 0, starved = 0) =>
  `clients=${CHECK.clients} rounds=${CHECK.rounds} bytes_sent=${total} bytes_echoed=${echoed} mismatches=${mismatches} stalled=${stalled} starved=${starved}`;

function stallRun(extra: Partial<StallRun> = {}): StallRun {
  return {
    pushed: 60_000, otherRounds: STALL.rounds, slowEchoed: 60_000, slowMismatches: 0, quietCpuMs: 0, quietMs: 251, quietRuns: 1,
    rssKb: 1800, report: 'stalled pushed=60000', ss: 'State Recv-Q Send-Q', serverOutput: '(none)', ...extra,
  };
}

function sample(idle: number, extra: Partial<Sample> = {}): Sample {
  return {
    idle, exchanges: 3000, nsPerEvent: 20_000, ticks: 6, syscallsPerEvent: 3.3, syscallsLost: false,
    epollWatches: idle + 2, epollWaitsPerEvent: 0.9, otherWaits: '', mode: 'edge-triggered', wallUs: 90_000, ...extra,
  };
}
const sweepOf = (samples: Sample[]): Sweep => ({ pid: 4242, samples, loadavg: '0.50 0.40 0.30 1/200 999' });

describe('Net Lab 1 judge', () => {
  it('check: echo_load\'s summary line gives the facts; no summary is no facts', () => {
    const ok = check({ report: summary(total), serverOutput: '(none)' });
    expect(ok.summary).not.toBeNull();
    expect(ok.facts).toEqual(ok.want);
    const short = check({ report: `stalled client=3\n${summary(total - 4096, 0, 1)}`, serverOutput: '(none)' });
    expect(short.facts).toEqual({ echoed: total - 4096, mismatches: 0, stalled: 1, starved: 0 });
    expect(short.message).toMatch(/stalled client=3/);
    const none = check({ report: 'connect: Connection refused', serverOutput: 'oops' });
    expect(none.summary).toBeNull();
    expect(none.facts).toBeUndefined();
    expect(none.message).toMatch(/server output:\noops/);
  });

  it('stall: the other client starved, a spinning server, a server woken by a timer, a lost echo are each a problem', () => {
    expect(stall(stallRun()).problems).toEqual([]);
    expect(stall(stallRun({ otherRounds: 0 })).message).toMatch(/another client got 0 of \d+ echoes/);
    expect(stall(stallRun({ quietCpuMs: 240 })).message).toMatch(/used 240 ms of CPU in 251 ms while its only work was an echo the client would not take/);
    expect(stall(stallRun({ quietRuns: 250 })).message).toMatch(/was woken 250 times in 251 ms while it had nothing to do/);
    expect(stall(stallRun({ slowEchoed: 59_000, slowMismatches: 3 })).problems).toEqual([expect.stringMatching(/got 59000 of the 60000 bytes it had sent back \(3 differing\)/)]);
    expect(stall(stallRun({ otherRounds: 0, quietCpuMs: 250, quietRuns: 999 })).problems).toHaveLength(3);
  });

  it('held back: the bytes the non-reading client pushed, with the server\'s VmRSS', () => {
    const h = heldBack(stallRun({ pushed: STALL.push, rssKb: 20_000 }));
    expect(h.pushed).toBe(STALL.push);
    expect(h.message).toMatch(/could send 16777216 bytes of the 16777216 it offered before its writes stopped \(your server's VmRSS then: 20000 kB\)/);
    expect(heldBack(stallRun({ rssKb: undefined })).message).toMatch(/VmRSS then: \? kB/);
  });

  it('half-close: a failed run, and the connections left in CLOSE-WAIT, are shown', () => {
    const line = 'CLOSE-WAIT 0 0 127.0.0.1:7103 127.0.0.1:50000';
    const h = halfClose({ failed: true, reports: ['client=2 sent=70000 then shutdown(SHUT_WR) echoed=65536\n(exit 1)'], closeWait: [{ line } as never], serverOutput: '(none)' });
    expect(h.failed).toBe(true);
    expect(h.message).toMatch(/client=\d+ sent=\d+ then shutdown\(SHUT_WR\) echoed=\d+/);
    expect(h.message).toMatch(/1 connection\(s\) of your server still in CLOSE-WAIT[\s\S]*127\.0\.0\.1:7103/);
    expect(halfClose({ failed: false, reports: ['ok'], closeWait: [], serverOutput: '(none)' }).message).not.toMatch(/CLOSE-WAIT/);
  });

  it('leavers: SIGPIPE, another signal, an exit status, or a server that lived on', () => {
    const base: LeaversRun = { left: 'left=100', serverOutput: '(none)' };
    const lived = leavers({ ...base, after: { exitCode: 0, output: 'ok' } });
    expect([lived.how, lived.after]).toEqual(['', 0]);
    expect(leavers({ ...base, ended: { signal: 'SIGPIPE', exitCode: 0 } }).howMessage).toMatch(/killed by SIGPIPE/);
    expect(leavers({ ...base, ended: { signal: 'SIGSEGV', exitCode: 0 } }).how).toMatch(/^it was killed by SIGSEGV: /);
    const exited = leavers({ ...base, ended: { exitCode: 1 } });
    expect(exited.how).toMatch(/exited with status 1/);
    expect(exited.after).toBeUndefined();
    expect(leavers({ ...base, after: { exitCode: 1, output: 'client=1 echoed=0' } }).afterMessage).toMatch(/4 more clients[\s\S]*client=1 echoed=0/);
  });

  it('burst: the echo, and what the server never read, against what was sent', () => {
    const b: BurstRun = {
      setUp: true, tries: 1, sent: 262_144, queued: 262_144, stopped: '1 of 1 tasks of 1 process(es) stopped', ssBefore: 'ESTAB 262144 0',
      echoed: 262_144, mismatches: 0, left: 0, ssAfter: 'ESTAB 0 0', report: 'burst echoed=262144 of 262144 mismatches=0', failedTries: [], serverOutput: '(none)',
    };
    expect(burst(b).facts).toEqual(burst(b).want);
    const capped = burst({ ...b, echoed: 16_384, left: 245_760, report: 'burst echoed=16384 of 262144 mismatches=0' });
    expect(capped.facts).toEqual({ echoed: 16_384, mismatches: 0, left: 245_760 });
    expect(capped.message).toMatch(/the kernel queued all of them in your server's socket before it ran again \(ss -tni: its Recv-Q 262144\)[\s\S]*burst echoed=\d+ of 262144[\s\S]*the kernel still held [1-9]\d* bytes your server never read in its socket \(ss -tni Recv-Q\)[\s\S]*read until EAGAIN/);
    expect(burst({ ...b, setUp: false, failedTries: ['try 1: the client did not report its burst'] }).setUpMessage).toMatch(/in 3 tries[\s\S]*try 1: the client did not report its burst/);
  });

  it('scaling point: N + 1 watches and epoll_wait() calls on that instance; decoy registrations or a poll worker fail', () => {
    expect(pointHolds(sample(100))).toBe(true);
    expect(pointHolds(sample(100, { epollWatches: 50 }))).toBe(false);
    const decoy = sample(100, { epollWaitsPerEvent: 0, otherWaits: '3 on fd 9' });
    expect(pointHolds(decoy)).toBe(false);
    expect(scalingPoint(decoy, 4242).waitsMessage).toMatch(/0\.00 epoll_wait\(\) calls per round trip on the instance that watches the connections \(3000 round trips, at least 0\.1 expected; waits on other descriptors: 3 on fd 9\)/);
    expect(scalingPoint(sample(10, { epollWatches: 1 }), 4242).watchesMessage).toMatch(/\/proc\/4242\/fdinfo[\s\S]*watch 1 descriptors[\s\S]*expected at least 11/);
  });

  it('epoll scaling: flat CPU and syscalls per message; a CPU cost that grows with N shows as the ratio', () => {
    const flat = epollScaling(sweepOf([sample(10), sample(100), sample(1000, { nsPerEvent: 30_000 }), sample(10_000, { nsPerEvent: 25_000 })]));
    expect(flat.registered).toEqual([true, true, true, true]);
    expect(flat.cpuRatio).toBeCloseTo(1.25);
    expect(flat.syscallRatio).toBeCloseTo(1);
    expect(flat.message).toMatch(/your server \(edge-triggered\)[\s\S]*N=10000: 25000 ns CPU\/event \(6 ticks over 3000 round trips\), 3\.30 syscalls\/event, epoll watches 10002[\s\S]*load: 0\.50/);
    const growing = epollScaling(sweepOf([sample(10), sample(10_000, { nsPerEvent: 2_000_000, epollWatches: 9000, syscallsLost: true })]));
    expect(growing.registered).toEqual([true, false]);
    expect(growing.cpuRatio).toBe(100);
    expect(growing.message).toMatch(/\(trace lost events\)/);
  });

  it('poll comparison: poll\'s CPU per message grows with N, its syscalls do not, epoll is far cheaper at the largest N', () => {
    const poll = sweepOf([sample(10, { epollWatches: 0 }), sample(10_000, { epollWatches: 0, nsPerEvent: 10_000_000, syscallsPerEvent: 3.4 })]);
    const epoll = [sample(10), sample(10_000, { nsPerEvent: 24_000 })];
    const c = pollComparison(poll, epoll);
    expect(c.pollCpuRatio).toBe(500);
    expect(c.epollCpuRatio).toBeCloseTo(1.2);
    expect(c.pollSyscallRatio).toBeLessThan(2);
    expect(c.epollFarCheaper).toBe(true);
    expect(c.message).toMatch(/^poll_echo \(given\):[\s\S]*your epoll server:[\s\S]*load: /);
    // No epoll sweep (its test did not run): no ratio, and nothing to be cheaper.
    const alone = pollComparison(poll, []);
    expect(alone.epollCpuRatio).toBeNaN();
    expect(alone.epollFarCheaper).toBeFalsy();
    expect(pollComparison(poll, [sample(10), sample(10_000, { nsPerEvent: 5_000_000 })]).epollFarCheaper).toBe(false);
  });
});
