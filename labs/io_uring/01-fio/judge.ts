/**
 * io_uring Lab 2.1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts: fio's reports of each trial, the syscall counts under
 * strace, filefrag's extents) to what each test compares — `got` against
 * `want` — with the message that shows the evidence. Unit-tested on made-up
 * evidence in tests/lab-units/io_uring/01-fio/judge.test.ts.
 */
import { jobFileCommands, jobFileLines, shareAtDepth, type FioJobResult } from '../../../helpers/kernel/fio.js';
import { DEPTH, IO_PATH_SYSCALLS, RUNTIME_SEC, type EngineRun, type Extents, type SyscallCount, type TestFile, type Variant } from './experiment.js';

import type { Verdict } from '../../../helpers/harness/verdict.js';

export type { Verdict };


export function describeRun(engine: string, j: FioJobResult): string {
  return `${engine}: ${j.read.iops.toFixed(0)} IOPS, ${j.read.totalIos} I/Os in ${j.read.runtimeMs} ms, mean latency ${(j.read.latMeanNs / 1000).toFixed(1)} µs, ` +
    `p99 ${(j.read.clatP99Ns / 1000).toFixed(1)} µs, depth histogram ${JSON.stringify(j.iodepthLevel)}, options ${JSON.stringify(j.options)}`;
}

/** filefrag: a fallocated file is unwritten extents (reads return zeros without the disk); the file fio wrote has none. */
export function extentsControl(e: { fallocated: Extents; written: Extents }): Verdict<{ fallocatedUnwritten: boolean; writtenUnwritten: number }> {
  return {
    got: { fallocatedUnwritten: e.fallocated.unwritten > 0, writtenUnwritten: e.written.unwritten },
    want: { fallocatedUnwritten: true, writtenUnwritten: 0 },
    message: `filefrag -v ${e.fallocated.path}:\n${e.fallocated.text}\nthe test file must hold real data: filefrag -v ${e.written.path}:\n${e.written.text}`,
  };
}

/** A filesystem without unwritten extents (tmpfs, some FUSE) has nothing to show. */
export const noUnwrittenExtents = (e: Extents) => e.unwritten === 0 && !/unwritten/.test(e.text);

/** fio's integer option value: decimal or 0x hex (iodepth=0x40). NaN when absent or not a number. */
export function fioInt(v: string | undefined): number {
  if (v === undefined || !/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(v)) return Number.NaN;
  return Number(v.trim());
}

/** fio's size option in bytes: a number with an optional k/m/g suffix, "i" and "b" optional (4k, 4K, 4KiB, 4096); fio's default kb_base is 1024. */
export function fioSize(v: string | undefined): number {
  const m = v?.trim().match(/^(\d+)\s*([kmg]?)(i?b?)$/i);
  if (!m) return Number.NaN;
  return Number(m[1]) * 1024 ** ['', 'k', 'm', 'g'].indexOf(m[2]!.toLowerCase());
}

/** fio's time option in ms: seconds by default, or with a unit (us, ms, s, m, h, d). */
export function fioTimeMs(v: string | undefined): number {
  const m = v?.trim().match(/^(\d+)\s*(us|usec|ms|msec|s|sec|m|min|h|d)?$/i);
  if (!m) return Number.NaN;
  const unit: Record<string, number> = { us: 1e-3, usec: 1e-3, ms: 1, msec: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };
  return Number(m[1]) * unit[(m[2] ?? 's').toLowerCase()]!;
}

/**
 * The options fio echoes for the run (its JSON report: "global options" overlaid by the job's own, each name as fio
 * knows it — readwrite= shows as rw — and each value as written), read the way fio reads them, against the seed's job
 * on this engine: 4096 = 4k, 0x40 = 64, 2s = 2000ms = 2.
 */
export function seedJob(r: EngineRun): Verdict<Record<string, string | number | boolean>> {
  const o = r.job.options;
  const got = { ioengine: o.ioengine ?? '(none)', rw: o.rw ?? '(none)', bs: fioSize(o.bs ?? '4k'), iodepth: fioInt(o.iodepth ?? '1'), direct: fioInt(o.direct ?? '0') > 0, runtimeMs: fioTimeMs(o.runtime ?? '0') };
  const want: typeof got = { ioengine: r.engine, rw: 'randread', bs: 4096, iodepth: DEPTH, direct: true, runtimeMs: RUNTIME_SEC * 1000 };
  return {
    got,
    want,
    message: 'randread.fio should ask for the seed\'s job, its options read as fio reads them (fio\'s "global options" and the job\'s own, as its JSON report echoes them; ' +
      `fio's defaults where it names none): ${describeRun(r.engine, r.job)}`,
  };
}

/**
 * The options a job file of the seed's job may set (lower case, with fio's other names for them): the job's own,
 * fio's names for it, and a few that change nothing the lab measures. Any other option changes what fio runs in a way
 * its report may not show (buffered=1 undoes direct=1 while the report still echoes direct=1; percentage_random=0
 * makes every read sequential; bssplit= changes the block size; numjobs= the depth; filename= the file; size= the
 * region read: size=4k reads one cached block over and over — the spec gives the file and its size).
 */
export const SEED_JOB_OPTIONS: readonly string[] = [
  'rw', 'readwrite', 'bs', 'blocksize', 'iodepth', 'direct', 'runtime', 'timeout', 'time_based', 'ioengine',
  'name', 'description', 'group_reporting', 'thread', 'invalidate', 'randrepeat', 'randseed',
];

/** fio's other names for the seed's options (one option, however spelled). */
const OPTION_ALIASES: Readonly<Record<string, string>> = { readwrite: 'rw', blocksize: 'bs', timeout: 'runtime' };
const ONE_JOB = 'one job section, after at most one [global]';

/**
 * The job file's sections, as fio reads them: one job, after at most one [global]. A [global] after a job's section
 * reaches fio's report ("global options", where the last of two equal names wins in the spec's JSON parse) but not
 * that job, which fio built from the globals as they stood at its section; a second job runs beside the one judged.
 */
function sectionShape(text: string): string {
  const sections = text.split('\n').map((l) => l.trim()).filter((l) => /^\[[^\]]*\]$/.test(l)).map((l) => l.slice(1, -1).trim().toLowerCase());
  const jobs = sections.filter((n) => n !== 'global');
  const globalsFirst = sections.filter((n) => n === 'global').length <= 1 && (sections[0] === 'global' || !sections.includes('global'));
  return jobs.length === 1 && globalsFirst ? ONE_JOB : `sections ${sections.map((n) => `[${n}]`).join(', ') || '(none)'}`;
}

/**
 * The job file describes the seed's job and nothing else, as the harness read it before fio ran it: no line runs a
 * command or loads code (exec_prerun=, exec_postrun=, an ioengine= that is not built into fio — external:, a path,
 * exec —, program=, arguments=, include), which could rewrite fio's report — the evidence every other verdict
 * reads — while fio writes it; and no option outside the seed's job (SEED_JOB_OPTIONS; buffered= only as 0), which
 * could change what fio runs while its report echoes the seed's options; one job after at most one [global]
 * (sectionShape), each option set once, and time-based.
 */
export function onlyTheJob(t: Pick<TestFile, 'jobText'>): Verdict<{ commandLines: readonly string[]; otherOptions: readonly string[]; timeBased: boolean; sections: string; setTwice: readonly string[] }> {
  const commandLines = jobFileCommands(t.jobText);
  const lines = jobFileLines(t.jobText);
  const otherOptions = lines.filter((l) => !commandLines.includes(l.line) && l.name !== undefined
    && !SEED_JOB_OPTIONS.includes(l.name) && !(l.name === 'buffered' && fioInt(l.value) === 0)).map((l) => l.line);
  // fio does not echo a flag in its report: time_based is read here (its last setting; a bare flag or a non-zero value).
  const last = lines.filter((l) => l.name === 'time_based').at(-1);
  const timeBased = last !== undefined && (last.value === '' || fioInt(last.value) !== 0);
  const sections = sectionShape(t.jobText);
  const names = lines.flatMap((l) => (l.name && SEED_JOB_OPTIONS.includes(l.name) ? [OPTION_ALIASES[l.name] ?? l.name] : []));
  const setTwice = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
  return {
    got: { commandLines, otherOptions, timeBased, sections, setTwice },
    want: { commandLines: [], otherOptions: [], timeBased: true, sections: ONE_JOB, setTwice: [] },
    message: 'randread.fio must describe the seed\'s job and nothing else, so that fio\'s report (which the spec reads) is what ran' +
      (commandLines.length ? `; these lines run a command or load code (exec_prerun=, exec_postrun=, an ioengine= other than a built-in engine, program=, arguments=, include), which could rewrite that report: remove ${commandLines.map((l) => JSON.stringify(l)).join(', ')}` : '') +
      (sections === ONE_JOB ? '' : `; it must hold ${ONE_JOB} (fio builds a job from the globals as they stand at its section, and runs every job section), not ${sections}`) +
      (setTwice.length ? `; it sets ${setTwice.join(', ')} more than once (under fio's other names too): set each option once` : '') +
      (timeBased ? '' : '; it does not make the run time-based (the seed\'s job runs for exactly its runtime whatever the file size: fio(1), time_based)') +
      (otherOptions.length ? `; these options are not the seed's job (${SEED_JOB_OPTIONS.filter((o) => !['readwrite', 'blocksize', 'timeout', 'ioengine'].includes(o)).join(', ')}), and could change what fio runs while its report still echoes the seed's options: remove ${otherOptions.map((l) => JSON.stringify(l)).join(', ')}` : ''),
  };
}

/**
 * The figures of a time-based run at depth 64 hang together: it lasts its runtime, spends most of it at depth 64,
 * completes thousands of I/Os, and by Little's law (requests in flight = throughput × time in the system)
 * IOPS × mean latency ≈ 64.
 */
export function saneFigures(r: EngineRun): Verdict<Record<string, boolean>> {
  const j = r.job;
  const inFlight = j.read.iops * j.read.latMeanNs / 1e9;
  const got = {
    lastsItsRuntime: j.read.runtimeMs >= RUNTIME_SEC * 1000 * 0.9,
    mostlyAtDepth: shareAtDepth(j, DEPTH) > 90,
    thousandsOfIos: j.read.totalIos > 1000,
    hasP99: j.read.clatP99Ns > 0,
    littlesLaw: inFlight > DEPTH / 2 && inFlight < DEPTH * 1.5,
  };
  return {
    got,
    want: Object.fromEntries(Object.keys(got).map((k) => [k, true])),
    message: `trial ${r.trial + 1}, ${describeRun(r.engine, j)}\n` +
      `a time-based run lasts its runtime (${RUNTIME_SEC} s, at least 90 %): ${j.read.runtimeMs} ms; fio should spend most of the run (> 90 %) at depth ${DEPTH}: ${shareAtDepth(j, DEPTH)} %; ` +
      `a ${RUNTIME_SEC}-second run should complete thousands of I/Os: ${j.read.totalIos}; IOPS × mean latency should be ≈ ${DEPTH} requests in flight (${DEPTH / 2}–${DEPTH * 1.5}): ${inFlight.toFixed(1)}` +
      (j.read.totalIos === 0 && r.stderr?.trim() ? `\nthe job did no I/O; fio's stderr (an exec_prerun= that failed stops the job):\n${r.stderr.trim()}` : ''),
  };
}

/** Per variant: all system calls and the I/O-path ones (submit and reap), per I/O. */
export function perIo(counts: readonly SyscallCount[]): Record<Variant, { total: number; ioPath: number; line: string }> {
  return Object.fromEntries(counts.map((c) => {
    const s = c.summary;
    const ioPath = IO_PATH_SYSCALLS.reduce((n, name) => n + s.calls(name), 0);
    const per = { total: s.total / c.ios, ioPath: ioPath / c.ios };
    const top = s.rows.slice(0, 4).map((r) => `${r.name}=${r.calls}`).join(' ');
    const line = `${c.variant}: ${c.ios} I/Os; ${s.total} syscalls = ${per.total.toFixed(3)}/I/O; I/O path (io_submit=${s.calls('io_submit')} ` +
      `io_getevents=${s.calls('io_getevents')} io_uring_enter=${s.calls('io_uring_enter')}) = ${per.ioPath.toFixed(4)}/I/O; top: ${top}`;
    return [c.variant, { ...per, line }];
  })) as Record<Variant, { total: number; ioPath: number; line: string }>;
}

/**
 * SQPOLL: a kernel thread polls the SQ and fio polls the CQ, so submitting and reaping need (almost) no syscall:
 * under a tenth of libaio's I/O-path calls per I/O; everything fio does, start-up included (about 2 700 calls
 * whatever the engine), still under half.
 */
export function sqpollFewerSyscalls(counts: readonly SyscallCount[]): Verdict<{ ioPathUnderTenth: boolean; allUnderHalf: boolean }> {
  const p = perIo(counts);
  const [sq, aio] = [p['io_uring+sqpoll'], p.libaio];
  return {
    got: { ioPathUnderTenth: sq.ioPath < aio.ioPath / 10, allUnderHalf: sq.total < aio.total / 2 },
    want: { ioPathUnderTenth: true, allUnderHalf: true },
    message: `SQPOLL: a kernel thread polls the SQ and fio polls the CQ, so submitting and reaping need (almost) no syscall (under 1/10 of libaio's per I/O); all syscalls per I/O under 1/2:\n` +
      Object.values(p).map((v) => v.line).join('\n'),
  };
}
