/**
 * io_uring Lab 3 — 融会贯通: linked SQEs.
 * link_cp submits, per block, a read flagged IOSQE_IO_LINK followed by its
 * write, many blocks per io_uring_enter. It must copy every byte, the kernel
 * must really link the requests (the io_uring_link tracepoint queues each
 * block's write behind its read), the bytes must go through its READ and WRITE
 * requests, and per block it must hand the kernel its requests in clearly fewer
 * io_uring_enter calls than Lab 2's naive copy (the syscall tracepoint's
 * to_submit, any block size). What it prints is never required.
 *
 * The lab's anatomy: experiment.ts makes the files and runs the traced copies,
 * copy-check.ts (shared with Lab 2) compares the files, judge.ts reads the
 * traces, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, need, requires } from '../../../helpers/harness/requires.js';
import { BIG_SIZE, BLOCK, copyMatrix, copyProgramSource, expectBytesThroughRing, expectErrorsReported, expectSameContent } from '../copy-check.js';
import { build, prepareCopies, traceCopy, type CopySetup, type TracedCopy } from './experiment.js';
import * as judge from './judge.js';

describe('io_uring Lab 3 — linked SQEs (融会贯通)', () => {
  requires(...labRequires(import.meta.url));
  let setup: CopySetup;

  beforeAll(async () => {
    setup = await prepareCopies();
  });

  it('link_cp copies files of 0, 1, block−1, block, block+1 bytes and 64 MiB byte for byte', async () => {
    await copyMatrix(await build('link_cp'), 'link_cp', setup.dir, setup.files);
  });

  it('control (the given code opens the files): link_cp exits non-zero with a message on stderr when the source is missing or the destination directory does not exist', async (ctx) => {
    await expectErrorsReported(ctx, await build('link_cp'), setup.dir, setup.files.get(BLOCK)!);
  });

  it('the kernel links each read to its write: io_uring:io_uring_link fires for (nearly) every read request, and the read and write requests complete the whole file', async (ctx) => {
    await need(ctx, 'tracefs');
    const { src, dst, trace: t } = await traceCopy(setup, 'link_cp', 'traced.out');
    await expectSameContent('link_cp with the io_uring tracepoints on', src, dst, t.result);
    expectBytesThroughRing('link_cp', BIG_SIZE, t);
    recordMetric(ctx, { name: 'io_uring_link events, link_cp 64 MiB', value: t.links, unit: 'events', group: 'io_uring linked SQEs' });
    const l = judge.linked(t);
    expect(l.fact, l.message).toBeGreaterThanOrEqual(l.atLeast);
  });

  it('linking saves a system call per block: link_cp hands the kernel its blocks in at most 65% of the submitting io_uring_enter calls per block of the naive uring_cp, since a linked write needs no call of its own (syscall and io_uring tracepoints)', async (ctx) => {
    await need(ctx, 'tracefs');
    const seen: Partial<Record<'uring_cp' | 'link_cp', TracedCopy>> = {};
    for (const name of ['uring_cp', 'link_cp'] as const) {
      const c = seen[name] = await traceCopy(setup, name, `enter-${name}.out`, { enters: true });
      if (name === 'uring_cp') {
        const b = judge.baseline(c.trace, copyProgramSource('uring_cp'));
        if (!b.ok) expect.fail(b.message);
      }
      await expectSameContent(name === 'uring_cp' ? `uring_cp (Lab 2.2, the baseline: finish ${copyProgramSource('uring_cp')} first)` : 'link_cp with the tracepoints on', c.src, c.dst, c.trace.result);
    }
    const naive = seen.uring_cp!.trace, link = seen.link_cp!.trace;
    recordMetric(ctx, { name: 'uring_cp (naive) io_uring_enter, 64 MiB', value: naive.enters ?? 0, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp io_uring_enter, 64 MiB', value: link.enters ?? 0, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'uring_cp (naive) submitting io_uring_enter, 64 MiB', value: naive.submitEnters ?? 0, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp submitting io_uring_enter, 64 MiB', value: link.submitEnters ?? 0, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp / naive submitting io_uring_enter per block', value: judge.perBlock(link) / judge.perBlock(naive), unit: 'ratio', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp / naive io_uring_enter per block (all calls)', value: judge.allPerBlock(link) / judge.allPerBlock(naive), unit: 'ratio', group: 'io_uring linked SQEs' });
    const f = judge.fewerEnters(naive, link, BIG_SIZE);
    expect(f.fact, f.message).toBeLessThanOrEqual(f.atMost);
  });
});
