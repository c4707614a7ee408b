/**
 * io_uring Lab 2 — 登堂入室: copying a file with liburing.
 * uring_cp reads a block, waits, writes it, waits; uring_cp_pipelined keeps
 * several blocks in flight. Both must copy every byte (checked by hash), fail
 * loudly on a missing file, and really move the bytes through io_uring READ
 * and WRITE requests (io_uring tracepoints: the bytes those requests
 * completed); the naive copy has one request in flight at a time, the
 * pipelined copy several. What the programs print is never required.
 *
 * The lab's anatomy: experiment.ts makes the files and runs the copies (traced
 * or timed), copy-check.ts (shared with Lab 3) compares the files, judge.ts
 * reads the traces, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { readRequests } from '../../../helpers/kernel/io-uring-trace.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, need, requires } from '../../../helpers/harness/requires.js';
import { BIG_SIZE, BLOCK, copyMatrix, expectBytesThroughRing, expectErrorsReported, expectSameContent, mibPerSec } from '../copy-check.js';
import { build, prepareCopies, timedCopy, traceCopy, type CopySetup, type TracedCopy } from './experiment.js';
import * as judge from './judge.js';

const TRIALS = 3;

describe('io_uring Lab 2 — copying a file with liburing (登堂入室)', () => {
  requires(...labRequires(import.meta.url));
  let setup: CopySetup;

  beforeAll(async () => {
    setup = await prepareCopies();
  });

  it('uring_cp copies files of 0, 1, block−1, block, block+1 bytes and 64 MiB byte for byte', async () => {
    await copyMatrix(await build('uring_cp'), 'uring_cp', setup.dir, setup.files);
  });

  it('control (the given code opens the files): uring_cp exits non-zero with a message on stderr when the source is missing or the destination directory does not exist', async (ctx) => {
    await expectErrorsReported(ctx, await build('uring_cp'), setup.dir, setup.files.get(BLOCK)!);
  });

  it('uring_cp moves the data through io_uring READ and WRITE requests, one at a time: the tracepoints see its requests complete the whole file, never two in flight', async (ctx) => {
    await need(ctx, 'tracefs');
    const { src, dst, trace: t } = await traceCopy(setup, 'uring_cp', 'traced-naive.out', { enters: true });
    await expectSameContent('uring_cp with the io_uring tracepoints on', src, dst, t.result);
    recordMetric(ctx, { name: 'uring_cp io_uring_enter calls (64 MiB)', value: t.enters ?? 0, unit: 'calls', group: 'io_uring copy syscalls' });
    recordMetric(ctx, { name: 'uring_cp READ requests (64 MiB)', value: readRequests(t), unit: 'requests', group: 'io_uring copy syscalls' });
    expectBytesThroughRing('uring_cp', BIG_SIZE, t);
    const one = judge.oneAtATime(t);
    expect(one.fact, one.message).toBeLessThanOrEqual(one.atMost);
  });

  it('uring_cp_pipelined (several blocks in flight, completions in any order) copies the same files byte for byte', async () => {
    await copyMatrix(await build('uring_cp_pipelined'), 'uring_cp_pipelined', setup.dir, setup.files);
  });

  it('control (the given code opens the files): uring_cp_pipelined exits non-zero with a message on stderr when the source is missing or the destination directory does not exist', async (ctx) => {
    await expectErrorsReported(ctx, await build('uring_cp_pipelined'), setup.dir, setup.files.get(BLOCK)!);
  });

  it('uring_cp_pipelined keeps several requests in flight: the io_uring tracepoints see at least 2 submitted and not yet completed at once', async (ctx) => {
    await need(ctx, 'tracefs');
    const seen: Partial<Record<'uring_cp' | 'uring_cp_pipelined', TracedCopy>> = {};
    for (const name of ['uring_cp', 'uring_cp_pipelined'] as const) {
      // From a cold cache: reads from the disk take time, a pipeline has something to overlap.
      const c = seen[name] = await traceCopy(setup, name, `traced-${name}.out`, { cold: true });
      await expectSameContent(`${name} with the io_uring tracepoints on${name === 'uring_cp' ? ' (the baseline of this test: fix uring_cp.c first)' : ''}`, c.src, c.dst, c.trace.result);
    }
    const naive = seen.uring_cp!.trace, piped = seen.uring_cp_pipelined!.trace;
    recordMetric(ctx, { name: 'uring_cp (naive) most requests in flight', value: naive.maxInFlight, unit: 'requests', group: 'io_uring copy overlap' });
    recordMetric(ctx, { name: 'uring_cp_pipelined most requests in flight', value: piped.maxInFlight, unit: 'requests', group: 'io_uring copy overlap' });
    recordMetric(ctx, { name: 'uring_cp_pipelined completions out of submission order', value: piped.outOfOrder, unit: 'CQEs', group: 'io_uring copy overlap' });
    const p = judge.pipelined(naive, piped, BIG_SIZE);
    expect(p.submits.fact, p.submits.message).toBeGreaterThanOrEqual(p.submits.atLeast);
    expectBytesThroughRing('uring_cp_pipelined', BIG_SIZE, piped);
    expect(p.inFlight.fact, p.inFlight.message).toBeGreaterThanOrEqual(p.inFlight.atLeast);
  });

  it('records the throughput of the naive and the pipelined copy of 64 MiB (best of 3, page cache warm)', async (ctx) => {
    afterCorrectness(ctx, ['uring_cp copies files', 'uring_cp_pipelined (several blocks in flight'], 'the throughput');
    const best: Record<string, number> = {};
    for (let t = 0; t < TRIALS; t++) {
      for (const name of ['uring_cp', 'uring_cp_pipelined'] as const) {
        const { src, dst, result: r } = await timedCopy(setup, name);
        // A figure is recorded only for a copy that is right: a program that copied nothing is not fast.
        await expectSameContent(`${name} (timed)`, src, dst, r);
        best[name] = Math.max(best[name] ?? 0, mibPerSec(BIG_SIZE, r.durationMs));
      }
    }
    recordMetric(ctx, { name: 'uring_cp (naive) best of 3', value: best.uring_cp!, unit: 'MiB/s', group: 'io_uring copy 64 MiB' });
    recordMetric(ctx, { name: 'uring_cp_pipelined best of 3', value: best.uring_cp_pipelined!, unit: 'MiB/s', group: 'io_uring copy 64 MiB' });
    recordMetric(ctx, { name: 'pipelined / naive', value: best.uring_cp_pipelined! / best.uring_cp!, unit: 'x', group: 'io_uring copy 64 MiB' });
    // Timing on a shared VM is noisy: the figures are for the report, the assertions above are about content.
    expect(best.uring_cp_pipelined, 'the pipelined copy should have produced a figure').toBeGreaterThan(0);
  });
});
