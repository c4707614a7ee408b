/**
 * io_uring Lab 3 — 融会贯通: linked SQEs.
 * link_cp submits, per block, a read flagged IOSQE_IO_LINK followed by its
 * write, many blocks per io_uring_enter. It must copy every byte, the kernel
 * must really link the requests (the io_uring_link tracepoint fires once per
 * block), the bytes must go through its READ and WRITE requests, and per block it
 * must need clearly fewer io_uring_enter calls than Lab 2's naive copy (the
 * syscall tracepoint, any block size). What it prints is never required.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, need, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { describeRequests, readRequests, traceIoUringRequests } from '../../../helpers/kernel/io-uring-trace.js';
import { copyProgramSource, type CopyProgram, BIG_SIZE, BLOCK, copyMatrix, expectBytesThroughRing, expectErrorsReported, expectSameContent, makeSources } from '../copy-check.js';

/**
 * What linking does, per block and so whatever the block size: the naive copy makes two io_uring_enter calls per block
 * (read, wait; write, wait); a linked chain needs one at most. Measured on 64 MiB (HOST-NOTES): the naive reference 2.0
 * per block, the linked reference 0.125, liburing's examples/link-cp 0.98 (2017 calls, 2048 blocks). 65% of the naive
 * figure (1.3) leaves link-cp 25% of room and fails a copy that links but still waits for each completion apart (2.0).
 */
const ENTER_SHARE = 0.65;
/** Reads that must carry a link: all but those re-issued after a short read (none on a regular file in practice). */
const LINKED_SHARE = 0.9;

const build = (name: CopyProgram) => buildProgram({ src: copyProgramSource(name), ldlibs: ['-luring'] }).then((b) => b.path);

describe('io_uring Lab 3 — linked SQEs (融会贯通)', () => {
  requires(...labRequires(import.meta.url));
  let dir = '';
  let files = new Map<number, string>();

  beforeAll(async () => {
    dir = await makeTempDir('link-cp');
    files = await makeSources(dir);
  });

  it('link_cp copies files of 0, 1, block−1, block, block+1 bytes and 64 MiB byte for byte', async () => {
    await copyMatrix(await build('link_cp'), 'link_cp', dir, files);
  });

  it('control (the given code opens the files): link_cp exits non-zero with a message on stderr when the source is missing or the destination directory does not exist', async (ctx) => {
    await expectErrorsReported(ctx, await build('link_cp'), dir, files.get(BLOCK)!);
  });

  it('the kernel links each read to its write: io_uring:io_uring_link fires for (nearly) every read request, and the read and write requests complete the whole file', async (ctx) => {
    await need(ctx, 'tracefs');
    const src = files.get(BIG_SIZE)!;
    const dst = `${dir}/traced.out`;
    const t = await traceIoUringRequests(await build('link_cp'), [src, dst]);
    await expectSameContent('link_cp with the io_uring tracepoints on', src, dst, t.result);
    expectBytesThroughRing('link_cp', BIG_SIZE, t);
    const reads = readRequests(t);
    recordMetric(ctx, { name: 'io_uring_link events, link_cp 64 MiB', value: t.links, unit: 'events', group: 'io_uring linked SQEs' });
    expect(t.links, `io_uring_link events on the ring of link_cp (pid ${t.result.pid}): ${t.links}; ${describeRequests(t)}. ` +
      `Each read must carry IOSQE_IO_LINK so that the kernel queues its write behind it (a read re-issued after a short read may go unlinked). ` +
      `First events:\n${t.sample || '(none)'}`).toBeGreaterThanOrEqual(Math.max(1, Math.ceil(reads * LINKED_SHARE)));
  });

  it('linking saves a system call per block: link_cp needs per block at most 65% of the io_uring_enter calls per block of the naive uring_cp (syscall and io_uring tracepoints)', async (ctx) => {
    await need(ctx, 'tracefs');
    const src = files.get(BIG_SIZE)!;
    const seen: Record<string, Awaited<ReturnType<typeof traceIoUringRequests>>> = {};
    for (const name of ['uring_cp', 'link_cp'] as const) {
      const dst = `${dir}/enter-${name}.out`;
      seen[name] = await traceIoUringRequests(await build(name), [src, dst], { enters: true });
      const t = seen[name]!;
      if (name === 'uring_cp' && !((t.enters ?? 0) > 0 && readRequests(t) > 0)) {
        expect.fail(`uring_cp (Lab 2.2, ${copyProgramSource('uring_cp')}) made ${t.enters ?? 0} io_uring_enter calls and ${readRequests(t)} read requests: ` +
          'it is the baseline of this test: finish Lab 2.2 first.');
      }
      await expectSameContent(name === 'uring_cp' ? `uring_cp (Lab 2.2, the baseline: finish ${copyProgramSource('uring_cp')} first)` : 'link_cp with the tracepoints on', src, dst, t.result);
    }
    const perBlock = (t: (typeof seen)[string] | undefined) => (t!.enters ?? 0) / Math.max(1, readRequests(t!));
    const naive = perBlock(seen.uring_cp), linked = perBlock(seen.link_cp);
    recordMetric(ctx, { name: 'uring_cp (naive) io_uring_enter, 64 MiB', value: seen.uring_cp!.enters ?? 0, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp io_uring_enter, 64 MiB', value: seen.link_cp!.enters ?? 0, unit: 'calls', group: 'io_uring linked SQEs' });
    recordMetric(ctx, { name: 'link_cp / naive io_uring_enter per block', value: linked / naive, unit: 'ratio', group: 'io_uring linked SQEs' });
    const line = (name: string, t: (typeof seen)[string] | undefined) => `${name}: ${t!.enters} io_uring_enter calls, ${describeRequests(t!)} → ${perBlock(t).toFixed(2)} enters per read request`;
    expect(linked, `on the same ${BIG_SIZE}-byte file (syscalls:sys_enter_io_uring_enter of each pid, io_uring_submit_req on its ring):\n` +
      `${line('uring_cp', seen.uring_cp)}\n${line('link_cp', seen.link_cp)}\n` +
      `A linked read→write chain needs no system call between its read and its write: submit the chain and wait for both completions in one io_uring_enter ` +
      `(or several chains per call). At most ${(ENTER_SHARE * naive).toFixed(2)} enters per block (${ENTER_SHARE * 100}% of the naive copy's).`).toBeLessThanOrEqual(ENTER_SHARE * naive);
  });
});
