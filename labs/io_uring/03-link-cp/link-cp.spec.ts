/**
 * io_uring Lab 3 — 融会贯通: linked SQEs.
 * link_cp submits, per block, a read flagged IOSQE_IO_LINK followed by its
 * write, many blocks per io_uring_enter. It must copy every byte, the kernel
 * must really link the requests (the io_uring_link tracepoint fires once per
 * block), and it must need at most half the io_uring_enter calls of Lab 2's
 * naive copy on the same file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/compile.js';
import { labSource } from '../../../helpers/paths.js';
import { recordMetric } from '../../../helpers/report.js';
import { need, requires } from '../../../helpers/requires.js';
import { makeTempDir } from '../../../helpers/resources.js';
import { countSyscalls } from '../../../helpers/syscalls.js';
import { BIG_SIZE, BLOCK, copyMatrix, countTracepoint, expectErrorsNameTheFile, expectSameContent, makeSources } from '../copy-check.js';

const build = (name: string) => buildProgram({ src: labSource(`io_uring/${name}.c`), ldlibs: ['-luring'] }).then((b) => b.path);

describe('io_uring Lab 3 — linked SQEs (融会贯通)', () => {
  requires('root', 'cc', 'liburing', 'io_uring');
  let dir = '';
  let files = new Map<number, string>();

  beforeAll(async () => {
    dir = await makeTempDir('link-cp');
    files = await makeSources(dir);
  });

  it('link_cp copies files of 0, 1, block−1, block, block+1 bytes and 64 MiB byte for byte', async () => {
    await copyMatrix(await build('link_cp'), 'link_cp', dir, files);
  });

  it('link_cp exits non-zero with a message naming the file when the source is missing or the destination directory does not exist', async () => {
    await expectErrorsNameTheFile(await build('link_cp'), dir, files.get(BLOCK)!);
  });

  it('the kernel links each read to its write (io_uring:io_uring_link fires at least once per block)', async (ctx) => {
    await need(ctx, 'tracefs');
    const src = files.get(BIG_SIZE)!;
    const dst = `${dir}/traced.out`;
    const { count, sample, result } = await countTracepoint('io_uring/io_uring_link', await build('link_cp'), [src, dst]);
    await expectSameContent('link_cp with the io_uring_link tracepoint on', src, dst, result);
    const blocks = Math.ceil(BIG_SIZE / BLOCK);
    recordMetric(ctx, { name: 'io_uring_link events, link_cp 64 MiB', value: count, unit: 'events', group: 'io_uring linked SQEs' });
    // A program with bigger blocks has fewer of them: a link per 256 KiB at least.
    const minimum = Math.ceil(BIG_SIZE / (256 * 1024));
    expect(count, `io_uring_link events for ${result.command} (pid ${result.pid}): ${count}; ${blocks} blocks of ${BLOCK} bytes. ` +
      `A read without IOSQE_IO_LINK links nothing. First events:\n${sample || '(none)'}`).toBeGreaterThanOrEqual(minimum);
  });

  it('needs at most half the io_uring_enter calls of the naive uring_cp on the same 64 MiB file (strace -c)', async (ctx) => {
    await need(ctx, 'strace');
    const src = files.get(BIG_SIZE)!;
    const counts: Record<string, number> = {};
    for (const name of ['uring_cp', 'link_cp']) {
      const dst = `${dir}/enter-${name}.out`;
      const { summary, result } = await countSyscalls(await build(name), [src, dst], { only: ['io_uring_enter'], reject: false });
      await expectSameContent(`${name} under strace${name === 'uring_cp' ? ' (Lab 2 must be done first: it is the baseline)' : ''}`, src, dst, result);
      counts[name] = summary.calls('io_uring_enter');
    }
    recordMetric(ctx, { name: 'uring_cp (naive) io_uring_enter, 64 MiB', value: counts.uring_cp!, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp io_uring_enter, 64 MiB', value: counts.link_cp!, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp / naive io_uring_enter', value: counts.link_cp! / counts.uring_cp!, unit: 'ratio', group: 'io_uring linked SQEs' });
    expect(counts.uring_cp, `the naive copy made ${counts.uring_cp} io_uring_enter calls: it should make at least one per block`).toBeGreaterThan(0);
    expect(counts.link_cp, `strace -c -f -e trace=io_uring_enter on the same ${BIG_SIZE}-byte file: naive uring_cp ${counts.uring_cp} calls, ` +
      `link_cp ${counts.link_cp} calls; the linked copy must need at most half (${Math.floor(counts.uring_cp! / 2)})`).toBeLessThanOrEqual(counts.uring_cp! / 2);
  });
});
