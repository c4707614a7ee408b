/** io_uring Lab 3's verdicts (labs/io_uring/03-link-cp/judge.ts) on made-up traces. */
import { describe, expect, it } from 'vitest';
import { allPerBlock, baseline, ENTER_SHARE, fewerEnters, linked, perBlock } from '../../../../labs/io_uring/03-link-cp/judge.js';
import type { RequestTrace } from '../../../../helpers/kernel/io-uring-trace.js';

const MiB = 1024 * 1024;
/** A copy of 64 MiB in 32 KiB blocks: 2048 READ and 2048 WRITE requests, all done, each read linked. */
function trace(extra: Partial<RequestTrace> = {}, pid = 4242): RequestTrace & { result: { pid: number } } {
  return {
    rings: ['ffff0001'], submits: 4096, completes: 4096, maxInFlight: 16, outOfOrder: 0,
    opcodes: { READ: 2048, WRITE: 2048 }, bytes: { read: 64 * MiB, write: 64 * MiB }, links: 2048, readWriteLinks: 2048, sample: 'io_uring_link: ring ffff0001',
    ...extra, result: { pid },
  };
}

describe('io_uring Lab 3 judge', () => {
  it('links: every read linked passes, 90% is the floor, none fails with the requests and first events in the message', () => {
    const all = linked(trace());
    expect([all.fact, all.atLeast]).toEqual([2048, 1844]);
    const none = linked(trace({ links: 0, readWriteLinks: 0, sample: '', opcodes: { READV: 2048, WRITEV: 2048 } }, 9));
    expect(none.fact).toBeLessThan(none.atLeast);
    expect(none.message).toMatch(/^io_uring_link events on the ring of link_cp \(pid \d+\): 0, of which 0 queue a write request behind a read request;[\s\S]*\d+ READV/);
    // Every read linked, but to a NOP: the links are there, none of a write behind a read.
    const nops = linked(trace({ links: 2048, readWriteLinks: 0, opcodes: { READ: 2048, NOP: 2048, WRITE: 2048 } }, 9));
    expect(nops.fact).toBeLessThan(nops.atLeast);
    expect(nops.message).toMatch(/: 2048, of which 0 queue a write request behind a read request;/);
    expect(none.message).toMatch(/First events:\n\(none\)$/);
    // A copy with no read requests at all still needs one link.
    expect(linked(trace({ links: 0, readWriteLinks: 0, opcodes: { NOP: 2 } })).atLeast).toBe(1);
  });

  it('the baseline: uring_cp must have submitted read requests with io_uring_enter calls', () => {
    expect(baseline(trace({ enters: 4096, submitEnters: 4096 }), 'c/io_uring/02-uring-cp/uring_cp.c').ok).toBe(true);
    const nops = baseline(trace({ enters: 2048, submitEnters: 2048, opcodes: { NOP: 2048 } }), 'c/io_uring/02-uring-cp/uring_cp.c');
    expect(nops.ok).toBe(false);
    expect(nops.message).toMatch(/^uring_cp \(Lab 2\.2, c\/io_uring\/02-uring-cp\/uring_cp\.c\) made 2048 io_uring_enter calls \(2048 of them submitting requests\) and 0 read requests[\s\S]*finish Lab 2\.2 first/);
    expect(baseline(trace(), 'x').ok).toBe(false);
    expect(baseline(trace({ enters: 10, submitEnters: 0 }), 'x').ok).toBe(false);
  });

  it('submitting calls per block: one chain per call passes against the naive two per block, whatever the calls that only wait; a write submitted apart fails', () => {
    const naive = trace({ enters: 4096, submitEnters: 4096, links: 0 }, 1);
    expect(perBlock(naive)).toBe(2);
    expect(allPerBlock(naive)).toBe(2);
    expect(perBlock(trace({ enters: 9, submitEnters: 5, opcodes: {} }))).toBe(5);
    // One chain per call, and a call to wait for each write's completion apart: 2 calls per block in all, 1 submitting.
    const chained = fewerEnters(naive, trace({ enters: 4096, submitEnters: 2048 }, 2), 64 * MiB);
    expect([chained.fact, chained.atMost]).toEqual([1, 2 * ENTER_SHARE]);
    expect(chained.fact).toBeLessThanOrEqual(chained.atMost);
    const apart = fewerEnters(naive, trace({ enters: 4096, submitEnters: 4096 }, 2), 64 * MiB);
    expect(apart.fact).toBeGreaterThan(apart.atMost);
    expect(apart.message).toBe('on the same 67108864-byte file (syscalls:sys_enter_io_uring_enter of each pid and its to_submit, io_uring_submit_req on its ring):\n' +
      'uring_cp: 4096 of its 4096 io_uring_enter calls submitted requests, 2048 READ, 2048 WRITE; bytes done by read requests 67108864, by write requests 67108864 → 2.00 submitting calls per read request (2.00 calls in all)\n' +
      'link_cp: 4096 of its 4096 io_uring_enter calls submitted requests, 2048 READ, 2048 WRITE; bytes done by read requests 67108864, by write requests 67108864 → 2.00 submitting calls per read request (2.00 calls in all)\n' +
      'A linked read→write chain needs no system call between its read and its write: hand the kernel the read and its write in the same io_uring_enter ' +
      '(or several chains per call). At most 1.30 submitting calls per block (65% of the naive copy\'s).');
  });
});
