/**
 * io_uring Lab 2.1's experiment: fio runs the student's job file
 * (c/io_uring/01-fio/randread.fio: the seed's randread, 4 KiB, depth 64,
 * O_DIRECT) on a file fio has written, alternating libaio and io_uring over
 * several short trials; then the spec's own job under `strace -c -f` on
 * libaio, io_uring and io_uring with a kernel SQ polling thread (SQPOLL),
 * counting system calls per I/O; and filefrag's view (FIEMAP) of a
 * fallocated file against the one fio wrote. It returns fio's reports and the
 * counts; no verdicts here: judge.ts and the spec decide.
 *
 * The job file is the student's code (fio's `exec_prerun=` runs shell
 * commands, `ioengine=external:` loads a library, `filename=` opens any
 * path): lab.json names fio in `contain.interpreters`, so every fio command
 * given the job file runs contained as the student's program
 * (helpers/harness/contain.ts), in `dir` (the test file, read-only to it, and
 * the reports it writes). The harness's own fio runs (the lay-down, the
 * counts) keep the host's view and write what the harness reads back to
 * `own`, out of the contained program's sight: a link it left in `dir` under
 * a name the harness writes next (`strace-libaio.txt`) would otherwise lead
 * a root process to another file.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../helpers/harness/exec.js';
import { studentInputCopy } from '../../../helpers/harness/contain.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { runFio, type FioJob, type FioJobFile, type FioJobResult } from '../../../helpers/kernel/fio.js';
import { parseStraceSummary, straceCountArgs, type SyscallSummary } from '../../../helpers/kernel/syscalls.js';

export const FILE_SIZE = '256M';
export const DEPTH = 64;
export const TRIALS = 3;
export const RUNTIME_SEC = 2;
export const ENGINES = ['libaio', 'io_uring'] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * The file fio reads, in a directory of the run on the real disk (not tmpfs: O_DIRECT needs a block-backed filesystem)
 * that the student's contained fio sees; `own`, the harness's directory beside it (same filesystem), hidden from it.
 */
export interface TestFile {
  readonly dir: string; readonly file: string; readonly own: string; readonly jobFile: string;
  /** The job file's text as the harness read it before any of its runs (judge.ts onlyTheJob reads its options). */
  readonly jobText: string;
}

/** fio writes every block of the file first, so that no read finds an unwritten extent. */
export async function layDown(): Promise<TestFile> {
  const dir = await makeTempDir('fio');
  const own = await makeTempDir('fio-own', { hidden: true });
  const file = join(dir, 'testfile.dat');
  await runFio({ name: 'lay-down', filename: file, rw: 'write', ioengine: 'psync', bs: '1M', size: FILE_SIZE, direct: true }, { outputDir: own, timeoutMs: 120_000 });
  // the student's job file as the contained fio reads it (a copy in `dir` while contained: helpers/harness/contain.ts)
  const jobFile = await studentInputCopy(labSource('io_uring/01-fio/randread.fio'), dir);
  // Read before fio ever runs the job (nothing of the student's runs yet that could change the copy).
  return { dir, file, own, jobFile, jobText: readFileSync(jobFile, 'utf8') };
}

/** Unwritten extents of a file, from `filefrag -v` (FIEMAP). */
export interface Extents { readonly path: string; readonly unwritten: number; readonly text: string }

function unwrittenExtents(path: string): Extents {
  const r = spawnSync('filefrag', ['-v', path], { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { path, unwritten: text.split('\n').filter((l) => /^\s*\d+:.*\bunwritten\b/.test(l)).length, text };
}

export const hasFilefrag = () => !spawnSync('filefrag', ['-V']).error;

/** A 16 MiB file made by fallocate(1) next to the test file, and the test file, as filefrag sees them. */
export async function extents(t: TestFile): Promise<{ fallocated: Extents; written: Extents }> {
  const fresh = join(t.own, 'fallocated.dat');
  await run('fallocate', ['-l', '16M', fresh]);
  return { fallocated: unwrittenExtents(fresh), written: unwrittenExtents(t.file) };
}

/** The student's job file on one engine; the spec gives the file, the engine and the size on the command line. */
const randread = (t: TestFile, ioengine: string): FioJobFile => ({
  name: `randread-${ioengine}`, jobFile: t.jobFile, options: { filename: t.file, ioengine, size: FILE_SIZE },
});

/** One run of the student's job; `stderr`, the end of fio's (what its `exec_prerun=` printed there too). */
export interface EngineRun { readonly engine: Engine; readonly trial: number; readonly job: FioJobResult; readonly stderr?: string }

/**
 * TRIALS trials per engine, the engines alternating and their order swapped each trial. `stop` ends the series
 * after a run it refuses (a job file that is not the seed's job need not run six times to show it).
 */
export async function runEngines(t: TestFile, stop: (r: EngineRun) => boolean = () => false): Promise<EngineRun[]> {
  const runs: EngineRun[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    for (const engine of trial % 2 ? [...ENGINES].reverse() : ENGINES) {
      const { job, result } = await runFio(randread(t, engine), { outputDir: t.dir });
      runs.push({ engine, trial, job, stderr: result.stderr.slice(-1500) });
      if (stop(runs.at(-1)!)) return runs;
    }
  }
  return runs;
}

/** The system calls that submit and reap I/O for the engines compared. */
export const IO_PATH_SYSCALLS = ['io_submit', 'io_getevents', 'io_pgetevents', 'io_uring_enter'];

export type Variant = 'libaio' | 'io_uring' | 'io_uring+sqpoll';
export interface SyscallCount { readonly variant: Variant; readonly ios: number; readonly summary: SyscallSummary }

/**
 * The spec's own job on the command line, not the student's job file (a [global] section there could override the
 * engines compared), under `strace -c -f`: libaio, io_uring and io_uring with SQPOLL.
 */
export async function countSyscalls(t: TestFile): Promise<SyscallCount[]> {
  const own = (ioengine: string, extra: Record<string, number> = {}): FioJob => ({
    name: `control-${ioengine}${extra.sqthread_poll ? '-sqpoll' : ''}`, filename: t.file, rw: 'randread', ioengine, size: FILE_SIZE,
    bs: '4k', iodepth: DEPTH, direct: true, runtimeSec: RUNTIME_SEC, timeBased: true, extra,
  });
  const variants: [Variant, FioJob][] = [['libaio', own('libaio')], ['io_uring', own('io_uring')], ['io_uring+sqpoll', own('io_uring', { sqthread_poll: 1 })]];
  const out: SyscallCount[] = [];
  for (const [variant, job] of variants) {
    const summaryFile = join(t.own, `strace-${variant}.txt`);
    const r = await runFio(job, { outputDir: t.own, wrap: (f, a) => ({ file: 'strace', args: straceCountArgs(f, a, summaryFile) }) });
    out.push({ variant, ios: r.job.read.totalIos, summary: parseStraceSummary(readFileSync(summaryFile, 'utf8')) });
  }
  return out;
}
