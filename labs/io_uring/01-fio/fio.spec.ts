/**
 * io_uring Lab 1 — 牛刀小试: fio, libaio vs io_uring.
 * The seed's runs (randread, 4 KiB, depth 64) on a file fio has written,
 * with O_DIRECT, alternating the engines over several short trials; then
 * the 思考 question answered by a count: system calls per I/O for libaio,
 * io_uring and io_uring with a kernel SQ polling thread (SQPOLL).
 *
 * The lab's anatomy: experiment.ts runs fio and collects its reports and the
 * counts, judge.ts turns them into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { median } from '../../../helpers/kernel/fio.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, need, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { countSyscalls, DEPTH, ENGINES, extents, hasFilefrag, layDown, runEngines, TRIALS, type TestFile } from './experiment.js';
import * as judge from './judge.js';
import { holds, holdsQuietly } from '../../../helpers/harness/verdict.js';

describe('io_uring Lab 1 — fio: libaio vs io_uring (牛刀小试)', () => {
  requires(...labRequires(import.meta.url));
  let t: TestFile;

  beforeAll(async () => {
    t = await layDown();
  });

  it('control: a fallocated file is unwritten extents (reads return zeros without the disk); the file fio wrote has none', async (ctx) => {
    if (!hasFilefrag()) skipOrFail(ctx, 'filefrag not found. Fix: sudo apt install -y e2fsprogs');
    const e = await extents(t);
    if (judge.noUnwrittenExtents(e.fallocated)) skipOrFail(ctx, `this filesystem reports no unwritten extents for fallocate(1):\n${e.fallocated.text}`);
    holds(judge.extentsControl(e));
  });

  it('runs randread 4k at depth 64 with O_DIRECT on both engines, alternating, with sane figures (IOPS × latency ≈ depth), and nothing but the job', async (ctx) => {
    const runs = await runEngines(t, (r) => !holdsQuietly(judge.seedJob(r)) || !holdsQuietly(judge.saneFigures(r)));
    for (const r of runs) {
      holds(judge.seedJob(r));
      holds(judge.saneFigures(r));
    }
    // After the runs' own verdicts (what fio did, contained), before any figure is kept: fio's reports are evidence
    // only from a job file that runs nothing while fio writes them.
    holds(judge.onlyTheJob(t));
    const group = `fio randread 4k QD${DEPTH} direct, median of ${TRIALS}`;
    const med = (engine: string, f: (r: (typeof runs)[number]) => number) => median(runs.filter((r) => r.engine === engine).map(f));
    for (const engine of ENGINES) {
      recordMetric(ctx, { name: `${engine} IOPS`, value: med(engine, (r) => r.job.read.iops), unit: 'IOPS', group });
      recordMetric(ctx, { name: `${engine} mean latency`, value: med(engine, (r) => r.job.read.latMeanNs) / 1000, unit: 'µs', group });
      recordMetric(ctx, { name: `${engine} p99 latency`, value: med(engine, (r) => r.job.read.clatP99Ns) / 1000, unit: 'µs', group });
    }
    recordMetric(ctx, { name: 'io_uring / libaio IOPS', value: med('io_uring', (r) => r.job.read.iops) / med('libaio', (r) => r.job.read.iops), unit: 'x', group });
  });

  it('control (answers 思考 by counting, whatever the job file): SQPOLL issues far fewer system calls per I/O than libaio (strace -c -f)', async (ctx) => {
    await need(ctx, 'strace');
    const counts = await countSyscalls(t);
    const group = 'fio randread under strace -c -f';
    for (const [variant, p] of Object.entries(judge.perIo(counts))) {
      recordMetric(ctx, { name: `${variant} I/O-path syscalls per I/O`, value: p.ioPath, unit: 'syscalls/I/O', group });
      recordMetric(ctx, { name: `${variant} all syscalls per I/O (with fio's start-up)`, value: p.total, unit: 'syscalls/I/O', group });
    }
    holds(judge.sqpollFewerSyscalls(counts));
  });
});
