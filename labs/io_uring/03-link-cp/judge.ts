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
 * What linking does, per block and so whatever the block size: the naive copy makes two io_uring_enter calls per block
 * (read, wait; write, wait); a linked chain needs one at most. Measured on 64 MiB (HOST-NOTES): the naive reference 2.0
 * per block, the linked reference 0.125, liburing's examples/link-cp 0.98 (2017 calls, 2048 blocks). 65% of the naive
 * figure (1.3) leaves link-cp 25% of room and fails a copy that links but still waits for each completion apart (2.0).
 */
export const ENTER_SHARE = 0.65;
/** Reads that must carry a link: all but those re-issued after a short read (none on a regular file in practice). */
export const LINKED_SHARE = 0.9;

/** The kernel linked (nearly) every read to its write: io_uring_link events ≥ atLeast. */
export function linked(t: Traced) {
  const reads = readRequests(t);
  return {
    fact: t.links,
    atLeast: Math.max(1, Math.ceil(reads * LINKED_SHARE)),
    message: `io_uring_link events on the ring of link_cp (pid ${t.result.pid}): ${t.links}; ${describeRequests(t)}. ` +
      `Each read must carry IOSQE_IO_LINK so that the kernel queues its write behind it (a read re-issued after a short read may go unlinked). ` +
      `First events:\n${t.sample || '(none)'}`,
  };
}

/** Lab 2.2's uring_cp (at `source`) is a baseline only if it made io_uring_enter calls and read requests. */
export function baseline(naive: Traced, source: string) {
  return {
    ok: (naive.enters ?? 0) > 0 && readRequests(naive) > 0,
    message: `uring_cp (Lab 2.2, ${source}) made ${naive.enters ?? 0} io_uring_enter calls and ${readRequests(naive)} read requests: ` +
      'it is the baseline of this test: finish Lab 2.2 first.',
  };
}

/** io_uring_enter calls per read request. */
export const perBlock = (t: Pick<RequestTrace, 'enters' | 'opcodes'>) => (t.enters ?? 0) / Math.max(1, readRequests(t));

/** link_cp's io_uring_enter calls per block against the naive copy's, on the same `size`-byte file: fact ≤ atMost. */
export function fewerEnters(naive: Traced, link: Traced, size: number) {
  const a = perBlock(naive);
  const line = (name: string, t: Traced) => `${name}: ${t.enters} io_uring_enter calls, ${describeRequests(t)} → ${perBlock(t).toFixed(2)} enters per read request`;
  return {
    fact: perBlock(link),
    atMost: ENTER_SHARE * a,
    message: `on the same ${size}-byte file (syscalls:sys_enter_io_uring_enter of each pid, io_uring_submit_req on its ring):\n` +
      `${line('uring_cp', naive)}\n${line('link_cp', link)}\n` +
      `A linked read→write chain needs no system call between its read and its write: submit the chain and wait for both completions in one io_uring_enter ` +
      `(or several chains per call). At most ${(ENTER_SHARE * a).toFixed(2)} enters per block (${ENTER_SHARE * 100}% of the naive copy's).`,
  };
}
