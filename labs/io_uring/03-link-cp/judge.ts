/**
 * io_uring Lab 3's verdicts: pure functions from the traced copies
 * (experiment.ts `TracedCopy`'s trace) to the facts each test asserts, with
 * the message that shows the kernel's evidence (io_uring_link events,
 * requests by opcode, io_uring_enter calls per read request). Unit-tested on
 * made-up traces in tests/lab-units/io_uring/03-link-cp/judge.test.ts.
 */
import type { RunResult } from '../../../helpers/harness/exec.js';
import { describeRequests, readRequests, type RequestTrace } from '../../../helpers/kernel/io-uring-trace.js';

type Traced = RequestTrace & { readonly result: Pick<RunResult, 'pid'> };

/**
 * What linking saves, per block and so whatever the block size: the naive copy must hand the kernel each block's write
 * in a call of its own, after its read completed (two submitting io_uring_enter calls per block: read; write); a linked
 * chain goes in one call with its read (one at most, fewer with several chains per call). Judged on the calls that submit
 * (to_submit > 0), not on all calls: how many calls a program makes only to wait depends on when the completions come
 * (a correct program that waits for one completion at a time made 1.30 to 1.88 calls per block in all on an idle
 * 2-core VM, fewer under load), so a limit on all calls failed it by chance. Expected on 64 MiB: the naive reference
 * 2.0 submitting calls per block, the linked reference 0.125, one chain per call 1.0. 65% of the naive figure (1.3)
 * leaves one chain per call 30% of room.
 */
export const ENTER_SHARE = 0.65;
/** Reads that must carry a link: all but those re-issued after a short read (none on a regular file in practice). */
export const LINKED_SHARE = 0.9;

/** The kernel linked (nearly) every read to its write: io_uring_link events that queue a write behind a read ≥ atLeast. */
export function linked(t: Traced) {
  const reads = readRequests(t);
  return {
    fact: t.readWriteLinks,
    atLeast: Math.max(1, Math.ceil(reads * LINKED_SHARE)),
    message: `io_uring_link events on the ring of link_cp (pid ${t.result.pid}): ${t.links}, of which ${t.readWriteLinks} queue a write request behind a read request; ${describeRequests(t)}. ` +
      `Each read must carry IOSQE_IO_LINK, with its write as the next SQE, so that the kernel queues the write behind it (a read re-issued after a short read may go unlinked). ` +
      `First events:\n${t.sample || '(none)'}`,
  };
}

/** Lab 2.2's uring_cp (at `source`) is a baseline only if it submitted read requests with io_uring_enter calls. */
export function baseline(naive: Traced, source: string) {
  return {
    ok: (naive.submitEnters ?? 0) > 0 && readRequests(naive) > 0,
    message: `uring_cp (Lab 2.2, ${source}) made ${naive.enters ?? 0} io_uring_enter calls (${naive.submitEnters ?? 0} of them submitting requests) and ${readRequests(naive)} read requests: ` +
      'it is the baseline of this test, the naive copy that submits each request itself: finish Lab 2.2 first.',
  };
}

/** io_uring_enter calls that submit requests (to_submit > 0), per read request. */
export const perBlock = (t: Pick<RequestTrace, 'submitEnters' | 'opcodes'>) => (t.submitEnters ?? 0) / Math.max(1, readRequests(t));
/** All io_uring_enter calls (submitting or only waiting), per read request: a figure for the report and messages. */
export const allPerBlock = (t: Pick<RequestTrace, 'enters' | 'opcodes'>) => (t.enters ?? 0) / Math.max(1, readRequests(t));

/** link_cp's submitting io_uring_enter calls per block against the naive copy's, on the same `size`-byte file: fact ≤ atMost. */
export function fewerEnters(naive: Traced, link: Traced, size: number) {
  const a = perBlock(naive);
  const line = (name: string, t: Traced) => `${name}: ${t.submitEnters} of its ${t.enters} io_uring_enter calls submitted requests, ${describeRequests(t)} → ${perBlock(t).toFixed(2)} submitting calls per read request (${allPerBlock(t).toFixed(2)} calls in all)`;
  return {
    fact: perBlock(link),
    atMost: ENTER_SHARE * a,
    message: `on the same ${size}-byte file (syscalls:sys_enter_io_uring_enter of each pid and its to_submit, io_uring_submit_req on its ring):\n` +
      `${line('uring_cp', naive)}\n${line('link_cp', link)}\n` +
      `A linked read→write chain needs no system call between its read and its write: hand the kernel the read and its write in the same io_uring_enter ` +
      `(or several chains per call). At most ${(ENTER_SHARE * a).toFixed(2)} submitting calls per block (${ENTER_SHARE * 100}% of the naive copy's).`,
  };
}
