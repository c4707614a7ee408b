/**
 * Paths Lab 3 — 存储管理: descriptors, open files and the file system's view
 * (seed 003 存储管理 1–4, 001 §4, 002 "df -h").
 * The student's `descriptors` answers commands on stdin. On a small ext4
 * image the spec makes (random size, random `mkfs.ext4 -m`, loop device,
 * `kl-` temp dir): `df` must give statfs's figures, with available = free −
 * reserved as `dumpe2fs -h` shows; `share` must show one open file reached
 * through dup and fork (kcmp KCMP_FILE, fdinfo pos moved by the child's read
 * and by the spec's own seeks through pidfd_getfd) and a second open that is
 * a file of its own; `unlinked` must hold a file with no name whose blocks
 * statfs still counts and du does not, until `close`. Every fact is read
 * from the kernel; the program's own words are only pointers (fd numbers, a pid).
 *
 * The lab's anatomy: experiment.ts runs the program and collects the evidence
 * (`Run`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { prepareDescriptors, runDescriptors, type DescriptorsSetup, type Run } from './experiment.js';
import * as judge from './judge.js';

let setup: DescriptorsSetup;
let ran: Promise<Run> | undefined;
/** The program's one run, shared by the tests (the first test to ask starts it). */
async function once(ctx: TestContext): Promise<Run> {
  if (setup.unavailable) skipOrFail(ctx, setup.unavailable);
  return (ran ??= runDescriptors(setup));
}

describe('Paths Lab 3 — descriptors, open files and df (存储管理)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await prepareDescriptors();
  });

  it('df: size, used and available are statfs\'s figures for the image (random size and -m), and available = free − reserved as dumpe2fs -h shows', async (ctx) => {
    const r = await once(ctx);
    const v = judge.dfFresh(r, setup);
    expect(v.facts, v.message).toEqual(v.expected);
    recordMetric(ctx, { name: 'reserved for root (mkfs -m + ext4 pool)', value: v.facts.reserved, unit: `bytes (-m ${setup.plan.reservePct})`, group: 'df' });
  });

  it('df: the figures come from statfs(2) called by the program itself; no process it starts runs a program (df, stat -f)', async (ctx) => {
    const v = judge.mechanism(await once(ctx));
    expect(v.facts, v.message).toEqual(v.expected);
  });

  it('dup and fork share one open file: one struct file (kcmp), the child\'s read moves every offset, and the spec\'s seeks through one show in the others', async (ctx) => {
    const v = judge.shared(await once(ctx));
    expect(v.facts, v.message).toEqual(v.expected);
  });

  it('a second open(2) of the same path is an open file of its own: kcmp differs and its offset stays 0', async (ctx) => {
    const v = judge.separate(await once(ctx));
    expect(v.facts, v.message).toEqual(v.expected);
  });

  it('an unlinked open file keeps its data: fd link "<path> (deleted)", nlink 0, every byte allocated, its blocks still counted by statfs', async (ctx) => {
    const v = judge.deletedHeld(await once(ctx));
    expect(v.facts, v.message).toEqual(v.expected);
  });

  it('du and df differ by exactly the deleted-but-open file, and the program\'s df counts it', async (ctx) => {
    const r = await once(ctx);
    const v = judge.duVsDf(r);
    expect(v.facts, v.message).toEqual(v.expected);
    if (typeof v.facts.gapGrowth === 'number') recordMetric(ctx, { name: 'df used − du grew by', value: v.facts.gapGrowth, unit: `bytes (file: ${r.plan.deletedBytes})`, group: 'df' });
  });

  it('the space comes back at the last close: statfs used drops by the file\'s blocks and no descriptor still holds it', async (ctx) => {
    const v = judge.lastClose(await once(ctx));
    expect(v.facts, v.message).toEqual(v.expected);
  });

  it('at the end of its input the child ends and the program exits 0', async (ctx) => {
    afterCorrectness(ctx, ['dup and fork share one open file'], 'ending the child');
    const v = judge.ending(await once(ctx));
    expect(v.facts, v.message).toEqual(v.expected);
  });
});
