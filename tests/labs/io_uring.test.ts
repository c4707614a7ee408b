/**
 * Teeth and fairness of io_uring Labs 2 and 3: each wrong program of
 * tests/fixtures/io_uring/<lab>/wrong-*.c, put in place of the student's
 * file, makes the test that should catch it fail (with the kernel's evidence
 * in the message); each correct program written in another style
 * (correct-*.c) passes every test of its lab.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ran, runSpecWith, summarize } from './lab-workspace.js';

const FIX = join(import.meta.dirname, '../fixtures/io_uring');
const root = process.getuid?.() === 0;
const LONG = { timeout: 10 * 60_000 };

describe.skipIf(!root)('io_uring Lab 2 (uring_cp.c) against programs of our own', () => {
  const spec = 'labs/io_uring/02-uring-cp/uring-cp.spec.ts';
  const file = 'io_uring/02-uring-cp/uring_cp.c';

  it('a correct naive copy in another style (128 KiB blocks, ring of 2, perror errors, prints nothing) passes every test', LONG, async ({ signal }) => {
    const r = await runSpecWith(spec, { [file]: join(FIX, '02-uring-cp/correct-bigblock-perror.c') }, { signal });
    expect(ran(r).length, summarize(r)).toBeGreaterThan(4);
    expect(ran(r).every((t) => t.status === 'passed'), summarize(r)).toBe(true);
  });

  it('a correct pipelined copy in another style (batches of 6 reads then 6 writes of 256 KiB, no state machine, perror errors) passes every test', LONG, async ({ signal }) => {
    const r = await runSpecWith(spec, { 'io_uring/02-uring-cp/uring_cp_pipelined.c': join(FIX, '02-uring-cp/correct-pipelined-batches.c') }, { signal });
    expect(ran(r).length, summarize(r)).toBeGreaterThan(4);
    expect(ran(r).every((t) => t.status === 'passed'), summarize(r)).toBe(true);
  });

  it('a correct pipelined copy whose completion queue overflows (CQ of 16, 24 requests before reaping: the kernel keeps the rest on its overflow list; perror("open input") without the path) passes every test', LONG, async ({ signal }) => {
    const r = await runSpecWith(spec, { 'io_uring/02-uring-cp/uring_cp_pipelined.c': join(FIX, '02-uring-cp/correct-cq-overflow.c') }, { signal });
    expect(ran(r).length, summarize(r)).toBeGreaterThan(4);
    expect(ran(r).every((t) => t.status === 'passed'), summarize(r)).toBe(true);
  });

  it.for([
    ['wrong-pread-with-nops.c', 'moves the data through io_uring READ and WRITE', /bytes done by read requests 0, by write requests 0/],
    ['wrong-hardcoded-size.c', 'uring_cp copies files', /the copy differs from the source/],
    ['wrong-off-by-one.c', 'uring_cp copies files', /the copy differs from the source: first differing byte at offset 0 \(source 1 bytes/],
  ] as const)('%s fails "%s…"', LONG, async ([fixture, test, message], { signal }) => {
    const r = await runSpecWith(spec, { [file]: join(FIX, '02-uring-cp', fixture) }, { only: test, signal });
    const failed = r.tests.filter((t) => t.status === 'failed');
    expect(failed.length, summarize(r)).toBeGreaterThan(0);
    expect(failed[0]!.failureMessages.join('\n'), summarize(r)).toMatch(message);
  });
});

describe.skipIf(!root)('io_uring Lab 3 (link_cp.c) against programs of our own', () => {
  const spec = 'labs/io_uring/03-link-cp/link-cp.spec.ts';
  const file = 'io_uring/03-link-cp/link_cp.c';

  it('a correct linked copy in another style (one chain per io_uring_enter, 64 KiB blocks, perror errors, prints nothing) passes every test', LONG, async ({ signal }) => {
    const r = await runSpecWith(spec, { [file]: join(FIX, '03-link-cp/correct-one-chain-perror.c') }, { signal });
    expect(ran(r).length, summarize(r)).toBeGreaterThan(3);
    expect(ran(r).every((t) => t.status === 'passed'), summarize(r)).toBe(true);
  });

  it('a correct linked copy in liburing-examples style (READV → WRITEV chains, 16 in flight, resubmitted on -ECANCELED, perror without the path) passes every test', LONG, async ({ signal }) => {
    const r = await runSpecWith(spec, { [file]: join(FIX, '03-link-cp/correct-readv-link-cancel.c') }, { signal });
    expect(ran(r).length, summarize(r)).toBeGreaterThan(3);
    expect(ran(r).every((t) => t.status === 'passed'), summarize(r)).toBe(true);
  });

  it('a uring_cp that moves no data through io_uring (Lab 2.2 not done) makes the enter comparison say to finish Lab 2.2 first', LONG, async ({ signal }) => {
    const r = await runSpecWith(spec, { 'io_uring/02-uring-cp/uring_cp.c': join(FIX, '02-uring-cp/wrong-pread-with-nops.c') }, { only: 'linking saves', signal });
    const failed = r.tests.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.failureMessages.join('\n')).join('\n'), summarize(r)).toMatch(/uring_cp \(Lab 2\.2.*finish Lab 2\.2 first/s);
  });

  it.for([
    ['wrong-batched-unlinked.c', 'the kernel links each read', /io_uring_link events on the ring of link_cp \(pid \d+\): 0;/],
    ['wrong-readv-unlinked.c', 'the kernel links each read', /io_uring_link events on the ring of link_cp \(pid \d+\): 0;.*\d+ READV/s],
    ['wrong-linked-nops-copy-file-range.c', 'the kernel links each read', /bytes done by read requests 0, by write requests 0/],
    ['wrong-off-by-one.c', 'link_cp copies files', /the copy differs from the source/],
  ] as const)('%s fails "%s…"', LONG, async ([fixture, test, message], { signal }) => {
    const r = await runSpecWith(spec, { [file]: join(FIX, '03-link-cp', fixture) }, { only: test, signal });
    const failed = r.tests.filter((t) => t.status === 'failed');
    expect(failed.length, summarize(r)).toBeGreaterThan(0);
    expect(failed[0]!.failureMessages.join('\n'), summarize(r)).toMatch(message);
  });
});
