/**
 * io_uring Lab 1 — 牛刀小试: fio, libaio vs io_uring.
 * The seed's runs (randread, 4 KiB, depth 64) on a file fio has written,
 * with O_DIRECT, alternating the engines over several short trials; then
 * the 思考 question answered by a count: system calls per I/O for libaio,
 * io_uring and io_uring with a kernel SQ polling thread (SQPOLL).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { median, runFio, shareAtDepth, type FioJob, type FioJobFile, type FioJobResult } from '../../../helpers/kernel/fio.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { run } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, need, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { parseStraceSummary, straceCountArgs } from '../../../helpers/kernel/syscalls.js';

const FILE_SIZE = '256M';
const DEPTH = 64;
const TRIALS = 3;
const RUNTIME_SEC = 2;
const ENGINES = ['libaio', 'io_uring'] as const;
/** The system calls that submit and reap I/O for the engines compared. */
const IO_PATH_SYSCALLS = ['io_submit', 'io_getevents', 'io_pgetevents', 'io_uring_enter'];

/** The student's job file (the seed's job: random 4 KiB reads, 64 in flight, O_DIRECT, for a fixed time) on one engine. */
const randread = (filename: string, ioengine: string, extra: Record<string, number> = {}): FioJobFile => ({
  name: `randread-${ioengine}${extra.sqthread_poll ? '-sqpoll' : ''}`, jobFile: labSource('io_uring/01-fio/randread.fio'),
  options: { filename, ioengine, size: FILE_SIZE, ...extra },
});

/** Unwritten extents of a file, from `filefrag -v` (FIEMAP). */
function unwrittenExtents(path: string): { count: number; text: string } {
  const r = spawnSync('filefrag', ['-v', path], { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { count: text.split('\n').filter((l) => /^\s*\d+:.*\bunwritten\b/.test(l)).length, text };
}

function describeRun(engine: string, j: FioJobResult): string {
  return `${engine}: ${j.read.iops.toFixed(0)} IOPS, ${j.read.totalIos} I/Os in ${j.read.runtimeMs} ms, mean latency ${(j.read.latMeanNs / 1000).toFixed(1)} µs, ` +
    `p99 ${(j.read.clatP99Ns / 1000).toFixed(1)} µs, depth histogram ${JSON.stringify(j.iodepthLevel)}, options ${JSON.stringify(j.options)}`;
}

describe('io_uring Lab 1 — fio: libaio vs io_uring (牛刀小试)', () => {
  requires(...labRequires(import.meta.url));
  let dir = '';
  let file = '';

  beforeAll(async () => {
    // On the real disk (not tmpfs: O_DIRECT needs a block-backed filesystem); fio writes every block first.
    dir = await makeTempDir('fio');
    file = join(dir, 'testfile.dat');
    await runFio({ name: 'lay-down', filename: file, rw: 'write', ioengine: 'psync', bs: '1M', size: FILE_SIZE, direct: true }, { outputDir: dir, timeoutMs: 120_000 });
  });

  it('control: a fallocated file is unwritten extents (reads return zeros without the disk); the file fio wrote has none', async (ctx) => {
    if (spawnSync('filefrag', ['-V']).error) skipOrFail(ctx, 'filefrag not found. Fix: sudo apt install -y e2fsprogs');
    const fresh = join(dir, 'fallocated.dat');
    await run('fallocate', ['-l', '16M', fresh]);
    const before = unwrittenExtents(fresh);
    const after = unwrittenExtents(file);
    if (before.count === 0 && !/unwritten/.test(before.text)) {
      // Filesystems without unwritten extents (tmpfs, some FUSE) have nothing to show here.
      skipOrFail(ctx, `this filesystem reports no unwritten extents for fallocate(1):\n${before.text}`);
    }
    expect(before.count, `filefrag -v ${fresh}:\n${before.text}`).toBeGreaterThan(0);
    expect(after.count, `the test file must hold real data: filefrag -v ${file}:\n${after.text}`).toBe(0);
  });

  it('runs randread 4k at depth 64 with O_DIRECT on both engines, alternating, with sane figures (IOPS × latency ≈ depth)', async (ctx) => {
    const runs: Record<string, FioJobResult[]> = { libaio: [], io_uring: [] };
    for (let t = 0; t < TRIALS; t++) {
      for (const engine of t % 2 ? [...ENGINES].reverse() : ENGINES) {
        const { job } = await runFio(randread(file, engine), { outputDir: dir });
        const facts = describeRun(engine, job);
        expect(job.options, `randread.fio should ask for the seed's job: ${facts}`).toMatchObject({ ioengine: engine, rw: 'randread', bs: '4k', iodepth: String(DEPTH), direct: '1', runtime: String(RUNTIME_SEC) });
        expect(job.read.runtimeMs, `a time-based run lasts its runtime (${RUNTIME_SEC} s): ${facts}`).toBeGreaterThanOrEqual(RUNTIME_SEC * 1000 * 0.9);
        expect(shareAtDepth(job, DEPTH), `fio should spend most of the run at depth ${DEPTH}: ${facts}`).toBeGreaterThan(90);
        expect(job.read.totalIos, `a ${RUNTIME_SEC}-second run should complete thousands of I/Os: ${facts}`).toBeGreaterThan(1000);
        expect(job.read.clatP99Ns, facts).toBeGreaterThan(0);
        // Little's law: requests in flight = throughput × time in the system. With 64 always queued it is ≈ 64.
        const inFlight = job.read.iops * job.read.latMeanNs / 1e9;
        expect(inFlight, `IOPS × mean latency should be ≈ ${DEPTH} requests in flight, got ${inFlight.toFixed(1)}: ${facts}`).toBeGreaterThan(DEPTH / 2);
        expect(inFlight, facts).toBeLessThan(DEPTH * 1.5);
        runs[engine]!.push(job);
      }
    }
    const med = (engine: string, f: (j: FioJobResult) => number) => median(runs[engine]!.map(f));
    for (const engine of ENGINES) {
      const group = `fio randread 4k QD${DEPTH} direct, median of ${TRIALS}`;
      recordMetric(ctx, { name: `${engine} IOPS`, value: med(engine, (j) => j.read.iops), unit: 'IOPS', group });
      recordMetric(ctx, { name: `${engine} mean latency`, value: med(engine, (j) => j.read.latMeanNs) / 1000, unit: 'µs', group });
      recordMetric(ctx, { name: `${engine} p99 latency`, value: med(engine, (j) => j.read.clatP99Ns) / 1000, unit: 'µs', group });
    }
    recordMetric(ctx, {
      name: 'io_uring / libaio IOPS', value: med('io_uring', (j) => j.read.iops) / med('libaio', (j) => j.read.iops), unit: 'x',
      group: `fio randread 4k QD${DEPTH} direct, median of ${TRIALS}`,
    });
  });

  it('control (answers 思考 by counting, whatever the job file): SQPOLL issues far fewer system calls per I/O than libaio (strace -c -f)', async (ctx) => {
    await need(ctx, 'strace');
    // The spec's own job on the command line, not the student's job file: a [global] section there (ioengine=psync…)
    // would override the engines compared here, and this control must hold whatever the job file says.
    const own = (ioengine: string, extra: Record<string, number> = {}): FioJob => ({
      name: `control-${ioengine}${extra.sqthread_poll ? '-sqpoll' : ''}`, filename: file, rw: 'randread', ioengine, size: FILE_SIZE,
      bs: '4k', iodepth: DEPTH, direct: true, runtimeSec: 2, timeBased: true, extra,
    });
    const variants = [
      { label: 'libaio', job: own('libaio') },
      { label: 'io_uring', job: own('io_uring') },
      { label: 'io_uring+sqpoll', job: own('io_uring', { sqthread_poll: 1 }) },
    ];
    const perIo: Record<string, { total: number; ioPath: number }> = {};
    const evidence: string[] = [];
    for (const v of variants) {
      const summaryFile = join(dir, `strace-${v.label}.txt`);
      const { job } = await runFio(v.job, { outputDir: dir, wrap: (f, a) => ({ file: 'strace', args: straceCountArgs(f, a, summaryFile) }) });
      const s = parseStraceSummary(readFileSync(summaryFile, 'utf8'));
      const ios = job.read.totalIos;
      const ioPath = IO_PATH_SYSCALLS.reduce((n, name) => n + s.calls(name), 0);
      perIo[v.label] = { total: s.total / ios, ioPath: ioPath / ios };
      const top = s.rows.slice(0, 4).map((r) => `${r.name}=${r.calls}`).join(' ');
      evidence.push(`${v.label}: ${ios} I/Os; ${s.total} syscalls = ${perIo[v.label]!.total.toFixed(3)}/I/O; I/O path (io_submit=${s.calls('io_submit')} ` +
        `io_getevents=${s.calls('io_getevents')} io_uring_enter=${s.calls('io_uring_enter')}) = ${perIo[v.label]!.ioPath.toFixed(4)}/I/O; top: ${top}`);
      const group = 'fio randread under strace -c -f';
      recordMetric(ctx, { name: `${v.label} I/O-path syscalls per I/O`, value: perIo[v.label]!.ioPath, unit: 'syscalls/I/O', group });
      recordMetric(ctx, { name: `${v.label} all syscalls per I/O (with fio's start-up)`, value: perIo[v.label]!.total, unit: 'syscalls/I/O', group });
    }
    const facts = evidence.join('\n');
    expect(perIo['io_uring+sqpoll']!.ioPath, `SQPOLL: a kernel thread polls the SQ and fio polls the CQ, so submitting and reaping need (almost) no syscall:\n${facts}`)
      .toBeLessThan(perIo.libaio!.ioPath / 10);
    // Everything fio does, start-up included (about 2 700 calls whatever the engine), still counts far less.
    expect(perIo['io_uring+sqpoll']!.total, `all syscalls per I/O:\n${facts}`).toBeLessThan(perIo.libaio!.total / 2);
  });
});
