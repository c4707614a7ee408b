/**
 * io_uring Lab 2 — 登堂入室: copying a file with liburing.
 * uring_cp reads a block, waits, writes it, waits; uring_cp_pipelined keeps
 * several blocks in flight. Both must copy every byte (checked by hash), fail
 * loudly on a missing file, and really move the bytes through io_uring READ
 * and WRITE requests (io_uring tracepoints: the bytes those requests
 * completed); the naive copy has one request in flight at a time, the
 * pipelined copy several. What the programs print is never required.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { describeRequests, readRequests, traceIoUringRequests } from '../../../helpers/kernel/io-uring-trace.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, need, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { copyProgramSource, type CopyProgram, BIG_SIZE, BLOCK, copyMatrix, dropPageCache, expectBytesThroughRing, expectErrorsReported, expectSameContent, makeSources, mibPerSec, runCopy } from '../copy-check.js';

const TRIALS = 3;
/** The largest block a pipelined copy may use and still count as moving the file through the ring (the reference: 64 KiB). */
const MAX_PIPELINE_BLOCK = 4 * 1024 * 1024;

const build = (name: CopyProgram) => buildProgram({ src: copyProgramSource(name), ldlibs: ['-luring'] }).then((b) => b.path);

describe('io_uring Lab 2 — copying a file with liburing (登堂入室)', () => {
  requires(...labRequires(import.meta.url));
  let dir = '';
  let files = new Map<number, string>();

  beforeAll(async () => {
    dir = await makeTempDir('uring-cp');
    files = await makeSources(dir);
  });

  it('uring_cp copies files of 0, 1, block−1, block, block+1 bytes and 64 MiB byte for byte', async () => {
    await copyMatrix(await build('uring_cp'), 'uring_cp', dir, files);
  });

  it('control (the given code opens the files): uring_cp exits non-zero with a message on stderr when the source is missing or the destination directory does not exist', async (ctx) => {
    await expectErrorsReported(ctx, await build('uring_cp'), dir, files.get(BLOCK)!);
  });

  it('uring_cp moves the data through io_uring READ and WRITE requests, one at a time: the tracepoints see its requests complete the whole file, never two in flight', async (ctx) => {
    await need(ctx, 'tracefs');
    const src = files.get(BIG_SIZE)!;
    const dst = `${dir}/traced-naive.out`;
    const t = await traceIoUringRequests(await build('uring_cp'), [src, dst], { enters: true });
    await expectSameContent('uring_cp with the io_uring tracepoints on', src, dst, t.result);
    recordMetric(ctx, { name: 'uring_cp io_uring_enter calls (64 MiB)', value: t.enters ?? 0, unit: 'calls', group: 'io_uring copy syscalls' });
    recordMetric(ctx, { name: 'uring_cp READ requests (64 MiB)', value: readRequests(t), unit: 'requests', group: 'io_uring copy syscalls' });
    expectBytesThroughRing('uring_cp', BIG_SIZE, t);
    expect(t.maxInFlight, `uring_cp (pid ${t.result.pid}): at most ${t.maxInFlight} requests in flight at once (${describeRequests(t)}). ` +
      'The naive copy submits one request and waits for its completion before the next; keeping several in flight is uring_cp_pipelined.').toBeLessThanOrEqual(1);
  });

  it('uring_cp_pipelined (several blocks in flight, completions in any order) copies the same files byte for byte', async () => {
    await copyMatrix(await build('uring_cp_pipelined'), 'uring_cp_pipelined', dir, files);
  });

  it('control (the given code opens the files): uring_cp_pipelined exits non-zero with a message on stderr when the source is missing or the destination directory does not exist', async (ctx) => {
    await expectErrorsReported(ctx, await build('uring_cp_pipelined'), dir, files.get(BLOCK)!);
  });

  it('uring_cp_pipelined keeps several requests in flight: the io_uring tracepoints see at least 2 submitted and not yet completed at once', async (ctx) => {
    await need(ctx, 'tracefs');
    const src = files.get(BIG_SIZE)!;
    const seen: Record<string, Awaited<ReturnType<typeof traceIoUringRequests>>> = {};
    for (const name of ['uring_cp', 'uring_cp_pipelined'] as const) {
      const dst = `${dir}/traced-${name}.out`;
      await dropPageCache(src); // reads from the disk take time: a pipeline has something to overlap
      seen[name] = await traceIoUringRequests(await build(name), [src, dst]);
      await expectSameContent(`${name} with the io_uring tracepoints on${name === 'uring_cp' ? ' (the baseline of this test: fix uring_cp.c first)' : ''}`, src, dst, seen[name]!.result);
    }
    const naive = seen.uring_cp!, piped = seen.uring_cp_pipelined!;
    recordMetric(ctx, { name: 'uring_cp (naive) most requests in flight', value: naive.maxInFlight, unit: 'requests', group: 'io_uring copy overlap' });
    recordMetric(ctx, { name: 'uring_cp_pipelined most requests in flight', value: piped.maxInFlight, unit: 'requests', group: 'io_uring copy overlap' });
    recordMetric(ctx, { name: 'uring_cp_pipelined completions out of submission order', value: piped.outOfOrder, unit: 'CQEs', group: 'io_uring copy overlap' });
    const evidence = (name: string, t: typeof piped) => `${name} (pid ${t.result.pid}): rings ${t.rings.length}, ` +
      `${t.submits} requests submitted, ${t.completes} completed, at most ${t.maxInFlight} in flight, ${t.outOfOrder} completed out of order`;
    const message = `io_uring:io_uring_submit_req / io_uring_complete on the rings each program created, copying ${BIG_SIZE} bytes from a cold cache:\n` +
      `${evidence('uring_cp', naive)}\n${evidence('uring_cp_pipelined', piped)}\nFirst events of uring_cp_pipelined:\n${piped.sample || '(none)'}`;
    expect(piped.submits, `${message}\nThe copy must move its ${Math.ceil(BIG_SIZE / (1024 * 1024))} MiB through the ring.`).toBeGreaterThanOrEqual(Math.ceil(BIG_SIZE / MAX_PIPELINE_BLOCK));
    expectBytesThroughRing('uring_cp_pipelined', BIG_SIZE, piped);
    expect(piped.maxInFlight, `${message}\nQueue several blocks' reads before waiting (NJOBS > 1), and keep the pipeline full.`).toBeGreaterThanOrEqual(2);
  });

  it('records the throughput of the naive and the pipelined copy of 64 MiB (best of 3, page cache warm)', async (ctx) => {
    afterCorrectness(ctx, ['uring_cp copies files', 'uring_cp_pipelined (several blocks in flight'], 'the throughput');
    const src = files.get(BIG_SIZE)!;
    const best: Record<string, number> = {};
    for (let t = 0; t < TRIALS; t++) {
      for (const name of ['uring_cp', 'uring_cp_pipelined'] as const) {
        const dst = `${dir}/speed-${name}.out`;
        const r = await runCopy(await build(name), src, dst);
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
