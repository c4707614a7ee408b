/** io_uring Lab 2's verdicts (labs/io_uring/02-uring-cp/judge.ts) on made-up traces. */
import { describe, expect, it } from 'vitest';
import { MAX_PIPELINE_BLOCK, oneAtATime, pipelined } from '../../../../labs/io_uring/02-uring-cp/judge.js';
import type { RequestTrace } from '../../../../helpers/kernel/io-uring-trace.js';

const MiB = 1024 * 1024;
/** A copy of 64 MiB in 32 KiB blocks: 2048 READ and 2048 WRITE requests, all done. */
function trace(extra: Partial<RequestTrace> = {}, pid = 4242): RequestTrace & { result: { pid: number } } {
  return {
    rings: ['ffff0001'], submits: 4096, completes: 4096, maxInFlight: 1, outOfOrder: 0,
    opcodes: { READ: 2048, WRITE: 2048 }, bytes: { read: 64 * MiB, write: 64 * MiB }, links: 0, readWriteLinks: 0, sample: 'io_uring_submit_req: ring ffff0001 opcode READ',
    ...extra, result: { pid },
  };
}

describe('io_uring Lab 2 judge', () => {
  it('the naive copy: one request in flight passes, two fail, and the message shows the requests and bytes', () => {
    const ok = oneAtATime(trace());
    expect(ok.fact).toBeLessThanOrEqual(ok.atMost);
    const two = oneAtATime(trace({ maxInFlight: 2 }, 77));
    expect(two.fact).toBeGreaterThan(two.atMost);
    expect(two.message).toBe('uring_cp (pid 77): at most 2 requests in flight at once (2048 READ, 2048 WRITE; bytes done by read requests 67108864, by write requests 67108864). ' +
      'The naive copy submits one request and waits for its completion before the next; keeping several in flight is uring_cp_pipelined.');
  });

  it('the pipelined copy: several in flight and enough requests pass; one in flight, or a file moved in huge blocks, fails', () => {
    const naive = trace({}, 1);
    const good = pipelined(naive, trace({ maxInFlight: 8, outOfOrder: 12 }, 2), 64 * MiB);
    expect(good.inFlight.fact).toBeGreaterThanOrEqual(good.inFlight.atLeast);
    expect(good.submits.fact).toBeGreaterThanOrEqual(good.submits.atLeast);
    expect(good.submits.atLeast).toBe(64 * MiB / MAX_PIPELINE_BLOCK);
    const serial = pipelined(naive, trace({}, 2), 64 * MiB);
    expect(serial.inFlight.fact).toBeLessThan(serial.inFlight.atLeast);
    expect(serial.inFlight.message).toMatch(/^io_uring:io_uring_submit_req \/ io_uring_complete on the rings each program created, copying 67108864 bytes from a cold cache:\n/);
    expect(serial.inFlight.message).toContain('uring_cp (pid 1): rings 1, 4096 requests submitted, 4096 completed, at most 1 in flight, 0 completed out of order\n' +
      'uring_cp_pipelined (pid 2): rings 1, 4096 requests submitted, 4096 completed, at most 1 in flight, 0 completed out of order\nFirst events of uring_cp_pipelined:\nio_uring_submit_req');
    expect(serial.inFlight.message).toMatch(/\nQueue several blocks' reads before waiting \(NJOBS > 1\), and keep the pipeline full\.$/);
    const huge = pipelined(naive, trace({ submits: 3, maxInFlight: 2, sample: '' }, 2), 64 * MiB);
    expect(huge.submits.fact).toBeLessThan(huge.submits.atLeast);
    expect(huge.submits.message).toMatch(/First events of uring_cp_pipelined:\n\(none\)\nThe copy must move its 64 MiB through the ring\.$/);
  });
});
