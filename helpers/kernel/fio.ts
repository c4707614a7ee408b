/**
 * fio, the Flexible I/O Tester: building a job's command line, running it
 * with JSON output, and reading the figures a lab needs (IOPS, bandwidth,
 * mean and p99 latency, how deep the queue really was) from fio's
 * `--output-format=json` report, typed.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../harness/errors.js';
import { run, type RunResult } from '../harness/exec.js';
import { makeTempDir } from '../harness/resources.js';

/** One fio job, as command-line options. Defaults in FIO_DEFAULTS. */
export interface FioJob {
  readonly name: string;
  /** The file fio reads or writes. */
  readonly filename: string;
  /** e.g. "randread", "read", "write". */
  readonly rw: string;
  /** e.g. "libaio", "io_uring", "psync". */
  readonly ioengine: string;
  /** Size of the file region, e.g. "256M". */
  readonly size: string;
  /** Block size, e.g. "4k". Default 4k. */
  readonly bs?: string;
  /** Requests kept in flight. Default 1. */
  readonly iodepth?: number;
  /** O_DIRECT (bypass the page cache). Default true. */
  readonly direct?: boolean;
  /** Stop after this many seconds (with timeBased: run exactly that long). Default none. */
  readonly runtimeSec?: number;
  /** Keep going over the file until runtimeSec is up. Default false. */
  readonly timeBased?: boolean;
  /** Further options without the leading "--", e.g. { sqthread_poll: 1 }. */
  readonly extra?: Readonly<Record<string, string | number>>;
}

/** A job described by a fio job file, with options given on the command line (they become its global options). */
export interface FioJobFile {
  readonly name: string;
  /** Path of the .fio job file. */
  readonly jobFile: string;
  /** e.g. { filename: '/d/f', ioengine: 'io_uring', size: '256M' }. */
  readonly options: Readonly<Record<string, string | number>>;
}

/** One line of a fio job file that is not blank, a comment or a section header. */
export interface JobFileLine {
  /** The line, trimmed. */
  readonly line: string;
  /** The option's name, lower case; undefined for a line that does not read as `name`, `name=value` or `include <file>`. */
  readonly name?: string;
  /** The value as fio reads it: up to the first `;` (fio ends a value there), trimmed; '' for a flag. */
  readonly value?: string;
}

/** The longest job-file line the labs accept (fio itself reads at most 8191 characters a line; see jobFileCommands). */
export const JOB_LINE_MAX = 1000;

/**
 * The option lines of a fio job file (fio skips lines that start with `#` or `;`, and reads `[…]` as a section); a line
 * over JOB_LINE_MAX is left out (jobFileCommands names it).
 */
export function jobFileLines(text: string): JobFileLine[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && l.length <= JOB_LINE_MAX && !l.startsWith('#') && !l.startsWith(';') && !/^\[[^\]]*\]$/.test(l)).map((line) => {
    const m = line.match(/^([A-Za-z_]+)\s*(?:=(.*))?$/) ?? line.match(/^(include)\s+(.*)$/i);
    return m ? { line, name: m[1]!.toLowerCase(), value: (m[2] ?? '').split(';')[0]!.trim() } : { line };
  });
}

/** fio 3.33's engines built into the binary that the labs may name; any other `ioengine=` value is a library fio loads (a path, `external:…`) or `exec`. */
export const FIO_BUILTIN_ENGINES: readonly string[] = ['libaio', 'io_uring', 'psync', 'sync', 'vsync', 'pvsync', 'pvsync2', 'posixaio', 'mmap', 'null'];

/**
 * The lines of a fio job file that run a command or load code rather than describe I/O: `exec_prerun=` and
 * `exec_postrun=` (system(3), as fio's user), an `ioengine=` that is not a built-in engine (`external:<lib>`, or a
 * path: a shared object loaded into fio; `exec`: runs `program=` with `arguments=`), `program=`, `arguments=`, and
 * `include` (another file's options, unseen here); a line that does not read as an option is listed too, and so is
 * a line longer than JOB_LINE_MAX or with a control character (comments included), which fio may read otherwise. What those
 * run could rewrite fio's own report while fio writes it, so a lab that judges that report refuses a job file with
 * them. Names are compared in lower case and a value ends at `;`, as fio reads it: a superset of what fio runs.
 */
export function jobFileCommands(text: string): string[] {
  // fio reads a job file with fgets() into 8 KiB: a longer line reaches it as two, the second a line of its own that a
  // reader splitting at '\n' never sees (even behind a '#'). No option needs such a line, nor a control character.
  const control = (l: string) => /[\x00-\x08\x0b-\x1f\x7f]/.test(l.replace(/\r$/, ''));
  const unreadable = text.split('\n').filter((l) => l.length > JOB_LINE_MAX || control(l))
    .map((l) => `${JSON.stringify(l.slice(0, 60)).slice(1, -1)}… (a line of ${l.length} characters${control(l) ? ' with a control character' : ''})`);
  return [...unreadable, ...jobFileLines(text).filter(({ name, value }) => name === undefined
    || ['exec_prerun', 'exec_postrun', 'include', 'program', 'arguments'].includes(name)
    || (name === 'ioengine' && !FIO_BUILTIN_ENGINES.includes(value!.toLowerCase()))).map((l) => l.line)];
}

export const FIO_DEFAULTS = { bs: '4k', iodepth: 1, direct: true, timeBased: false } as const;

/** fio's command-line arguments for a job (JSON report written to `output`). */
export function fioArgs(job: FioJob | FioJobFile, output?: string): string[] {
  if ('jobFile' in job) {
    return [...Object.entries(job.options).map(([k, v]) => `--${k}=${v}`), '--output-format=json', ...(output ? [`--output=${output}`] : []), job.jobFile];
  }
  const args = [
    `--name=${job.name}`,
    `--filename=${job.filename}`,
    `--rw=${job.rw}`,
    `--ioengine=${job.ioengine}`,
    `--size=${job.size}`,
    `--bs=${job.bs ?? FIO_DEFAULTS.bs}`,
    `--iodepth=${job.iodepth ?? FIO_DEFAULTS.iodepth}`,
    `--direct=${(job.direct ?? FIO_DEFAULTS.direct) ? 1 : 0}`,
  ];
  if (job.runtimeSec !== undefined) args.push(`--runtime=${job.runtimeSec}`);
  if (job.timeBased ?? FIO_DEFAULTS.timeBased) args.push('--time_based');
  for (const [k, v] of Object.entries(job.extra ?? {})) args.push(`--${k}=${v}`);
  args.push('--output-format=json');
  if (output) args.push(`--output=${output}`);
  return args;
}

/** One direction (read or write) of a job's results. */
export interface FioDirection {
  readonly ioBytes: number;
  /** Completed I/Os. */
  readonly totalIos: number;
  readonly iops: number;
  readonly bwBytesPerSec: number;
  /** Mean total latency (submission to completion), ns. */
  readonly latMeanNs: number;
  /** 99th percentile completion latency, ns (0 when fio reported no percentiles). */
  readonly clatP99Ns: number;
  readonly runtimeMs: number;
}

export interface FioJobResult {
  readonly name: string;
  /** fio's error code for the job (0 = none). */
  readonly error: number;
  /** The options fio ran the job with, as it echoes them: the report's "global options" overlaid by the job's own. */
  readonly options: Readonly<Record<string, string>>;
  readonly read: FioDirection;
  readonly write: FioDirection;
  /** Share of the run (%) fio spent at each queue-depth bucket: "1", "2", … "32", ">=64". */
  readonly iodepthLevel: Readonly<Record<string, number>>;
  readonly usrCpu: number;
  readonly sysCpu: number;
}

export interface FioReport {
  readonly version: string;
  readonly jobs: readonly FioJobResult[];
}

type Json = Record<string, unknown>;
const num = (o: Json | undefined, k: string): number => {
  const v = o?.[k];
  return typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : 0;
};
const obj = (o: Json | undefined, k: string): Json | undefined => {
  const v = o?.[k];
  return v && typeof v === 'object' ? (v as Json) : undefined;
};

function direction(d: Json | undefined): FioDirection {
  const pct = obj(obj(d, 'clat_ns'), 'percentile');
  return {
    ioBytes: num(d, 'io_bytes'),
    totalIos: num(d, 'total_ios'),
    iops: num(d, 'iops'),
    bwBytesPerSec: num(d, 'bw_bytes'),
    latMeanNs: num(obj(d, 'lat_ns'), 'mean'),
    clatP99Ns: num(pct, '99.000000'),
    runtimeMs: num(d, 'runtime'),
  };
}

/**
 * Parse fio's JSON report. fio may print notes ("fio: …") before the JSON
 * when stdout is the report: everything before the first "{" line is skipped.
 */
export function parseFioJson(text: string): FioReport {
  const start = text.search(/^\{/m);
  if (start < 0) throw new LabError(`fio printed no JSON report:\n${text.slice(0, 2000)}`, { code: 'E_COMMAND' });
  let raw: Json;
  try {
    raw = JSON.parse(text.slice(start)) as Json;
  } catch (e) {
    throw new LabError(`fio's JSON report does not parse (${(e as Error).message}):\n${text.slice(start, start + 2000)}`, { code: 'E_COMMAND', cause: e });
  }
  const jobs = Array.isArray(raw.jobs) ? (raw.jobs as Json[]) : [];
  const strings = (o: Json | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, String(v)]));
  const global = strings(obj(raw, 'global options'));
  return {
    version: String(raw['fio version'] ?? ''),
    jobs: jobs.map((j) => ({
      name: String(j.jobname ?? ''),
      error: num(j, 'error'),
      options: { ...global, ...strings(obj(j, 'job options')) },
      read: direction(obj(j, 'read')),
      write: direction(obj(j, 'write')),
      iodepthLevel: Object.fromEntries(Object.entries(obj(j, 'iodepth_level') ?? {}).map(([k, v]) => [k, Number(v)])),
      usrCpu: num(j, 'usr_cpu'),
      sysCpu: num(j, 'sys_cpu'),
    })),
  };
}

/**
 * fio's iodepth_level bucket that holds `depth`: buckets are 1, 2, 4, 8, 16,
 * 32 and ">=64"; a depth between two buckets is counted in the lower one.
 */
export function depthBucket(depth: number): string {
  if (depth >= 64) return '>=64';
  let b = 1;
  while (b * 2 <= depth) b *= 2;
  return String(b);
}

/** The share of the run (%) a job spent with `depth` requests in flight (its bucket). */
export function shareAtDepth(job: FioJobResult, depth: number): number {
  return job.iodepthLevel[depthBucket(depth)] ?? 0;
}

export interface FioRun {
  readonly report: FioReport;
  readonly job: FioJobResult;
  readonly result: RunResult;
  readonly command: string;
}

/**
 * Run one fio job and parse its report. The report goes to a file (not
 * stdout) so a wrapper such as strace cannot mix into it: pass `wrap` to run
 * fio under another program (`wrap(fioFile, fioArgs)` returns file + args).
 */
export async function runFio(
  job: FioJob | FioJobFile,
  opts: { readonly timeoutMs?: number; readonly outputDir?: string; readonly wrap?: (file: string, args: string[]) => { file: string; args: string[] } } = {},
): Promise<FioRun> {
  const dir = opts.outputDir ?? (await makeTempDir('fio'));
  const output = join(dir, `${job.name}-${process.hrtime.bigint()}.json`);
  const base = { file: 'fio', args: fioArgs(job, output) };
  const { file, args } = opts.wrap ? opts.wrap(base.file, base.args) : base;
  const timeoutMs = opts.timeoutMs ?? ((('runtimeSec' in job ? job.runtimeSec : undefined) ?? 30) * 1000 + 60_000);
  const result = await run(file, args, { timeoutMs });
  const text = await readReport(output).catch((e: Error) => {
    throw new LabError(`fio left no report to read at ${output} (${e.message}): ${result.command}\n${result.stderr.slice(-2000)}`, { code: 'E_COMMAND', cause: e });
  });
  const report = parseFioJson(text);
  const found = report.jobs[0];
  if (!found) throw new LabError(`fio reported no job for ${result.command}`, { code: 'E_COMMAND' });
  if (found.error !== 0) throw new LabError(`fio job ${found.name} ended with error ${found.error}: ${result.command}\n${result.stderr}`, { code: 'E_COMMAND' });
  return { report, job: found, result, command: result.command };
}

/**
 * fio's report, read as root without following a link, and only if it is a regular file: where fio runs contained (Lab 2.1: the student's job file is
 * its code, helpers/harness/contain.ts), the file is the program's, and a link it put at the path must not lead the
 * harness to another file (whose text a parse error would quote).
 */
async function readReport(path: string): Promise<string> {
  // O_NONBLOCK: a FIFO put at the path must not hold the harness (a regular file's reads never block anyway).
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw new Error('not a regular file');
    return await fh.readFile('utf8');
  } finally { await fh.close(); }
}

export function median(values: readonly number[]): number {
  if (!values.length) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
