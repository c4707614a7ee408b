/**
 * io_uring Lab 2's verdicts: pure functions from the traced copies
 * (experiment.ts `TracedCopy`'s trace) to the facts each test asserts, with
 * the message that shows the kernel's evidence (requests, bytes, most in
 * flight, completions out of order). Unit-tested on made-up traces in
 * tests/lab-units/io_uring/02-uring-cp/judge.test.ts.
 */
import type { RunResult } from '../../../helpers/harness/exec.js';
import { describeRequests, type RequestTrace } from '../../../helpers/kernel/io-uring-trace.js';

type Traced = RequestTrace & { readonly result: Pick<RunResult, 'pid'> };

/** The largest block a pipelined copy may use and still count as moving the file through the ring (the reference: 64 KiB). */
export const MAX_PIPELINE_BLOCK = 4 * 1024 * 1024;

/** The naive copy waits for each request before the next: never two in flight (fact ≤ `atMost`). */
export function oneAtATime(t: Traced) {
  return {
    fact: t.maxInFlight,
    atMost: 1,
    message: `uring_cp (pid ${t.result.pid}): at most ${t.maxInFlight} requests in flight at once (${describeRequests(t)}). ` +
      'The naive copy submits one request and waits for its completion before the next; keeping several in flight is uring_cp_pipelined.',
  };
}

/**
 * The pipelined copy of `size` bytes from a cold cache, beside the naive one: enough requests to have moved the file
 * through the ring (`submits` ≥ atLeast), and at least 2 of them in flight at once (`inFlight` ≥ atLeast).
 */
export function pipelined(naive: Traced, piped: Traced, size: number) {
  const evidence = (name: string, t: Traced) => `${name} (pid ${t.result.pid}): rings ${t.rings.length}, ` +
    `${t.submits} requests submitted, ${t.completes} completed, at most ${t.maxInFlight} in flight, ${t.outOfOrder} completed out of order`;
  const message = `io_uring:io_uring_submit_req / io_uring_complete on the rings each program created, copying ${size} bytes from a cold cache:\n` +
    `${evidence('uring_cp', naive)}\n${evidence('uring_cp_pipelined', piped)}\nFirst events of uring_cp_pipelined:\n${piped.sample || '(none)'}`;
  return {
    submits: { fact: piped.submits, atLeast: Math.ceil(size / MAX_PIPELINE_BLOCK), message: `${message}\nThe copy must move its ${Math.ceil(size / (1024 * 1024))} MiB through the ring.` },
    inFlight: { fact: piped.maxInFlight, atLeast: 2, message: `${message}\nQueue several blocks' reads before waiting (NJOBS > 1), and keep the pipeline full.` },
  };
}
