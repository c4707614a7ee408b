/** io_uring Lab 2.1's verdicts (labs/io_uring/01-fio/judge.ts) on fio reports and strace summaries recorded on this machine. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { EngineRun, SyscallCount } from '../../../../labs/io_uring/01-fio/experiment.js';
import { extentsControl, fioInt, fioSize, fioTimeMs, onlyTheJob, saneFigures, seedJob, sqpollFewerSyscalls } from '../../../../labs/io_uring/01-fio/judge.js';
import { parseFioJson, type FioJobResult } from '../../../../helpers/kernel/fio.js';
import { parseStraceSummary } from '../../../../helpers/kernel/syscalls.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', '..', '..', 'fixtures', 'io_uring', name), 'utf8');
const uring = parseFioJson(fixture('fio-randread-io_uring.json')).jobs[0]!;
const run = (job: FioJobResult, engine: EngineRun['engine'] = 'io_uring'): EngineRun => ({ engine, trial: 0, job });

describe('io_uring Lab 2.1 judge', () => {
  it('accepts the seed\'s job on its engine, and names the option that differs', () => {
    expect(holds(seedJob(run(uring)))).toBe(true);
    expect(holds(seedJob(run(uring, 'libaio')))).toBe(false);
    const buffered = seedJob(run({ ...uring, options: { ...uring.options, direct: '0' } }));
    expect(buffered.got).toMatchObject({ direct: false });
    expect(buffered.message).toMatch(/read as fio reads them/);
    // Written another way, as fio echoes it: the same job.
    expect(holds(seedJob(run({ ...uring, options: { ...uring.options, bs: '4096', iodepth: '0x40', runtime: '2000ms' } })))).toBe(true);
    expect(holds(seedJob(run({ ...uring, options: { ...uring.options, bs: '4KiB', runtime: '2s' } })))).toBe(true);
    expect(seedJob(run({ ...uring, options: { ...uring.options, iodepth: '32' } })).got).toMatchObject({ iodepth: 32 });
  });

  it('reads fio\'s values as fio does', () => {
    expect([fioSize('4k'), fioSize('4K'), fioSize('4KiB'), fioSize('4096'), fioSize('1m'), fioSize('x')]).toEqual([4096, 4096, 4096, 4096, 1 << 20, Number.NaN]);
    expect([fioInt('64'), fioInt('0x40'), fioInt('6 4')]).toEqual([64, 64, Number.NaN]);
    expect([fioTimeMs('2'), fioTimeMs('2s'), fioTimeMs('2000ms'), fioTimeMs('2000000us'), fioTimeMs('1m')]).toEqual([2000, 2000, 2000, 2000, 60_000]);
  });

  it('accepts a recorded QD64 run and refuses one whose figures break Little\'s law or the depth', () => {
    expect(holds(saneFigures(run(uring)))).toBe(true);
    const shallow = saneFigures(run({ ...uring, iodepthLevel: { '1': 100 }, read: { ...uring.read, latMeanNs: uring.read.latMeanNs / 60 } }));
    expect(shallow.got).toMatchObject({ mostlyAtDepth: false, littlesLaw: false });
    expect(saneFigures(run({ ...uring, read: { ...uring.read, runtimeMs: 900 } })).got.lastsItsRuntime).toBe(false);
  });

  it('finds SQPOLL far below libaio in syscalls per I/O on the recorded straces', () => {
    const c = (variant: SyscallCount['variant'], file: string, ios: number): SyscallCount => ({ variant, ios, summary: parseStraceSummary(fixture(file)) });
    const counts = [c('libaio', 'strace-c-fio-libaio.txt', 150_000), c('io_uring', 'strace-c-fio-io_uring.txt', 150_000), c('io_uring+sqpoll', 'strace-c-fio-sqpoll.txt', 150_000)];
    const v = sqpollFewerSyscalls(counts);
    expect(v.got, v.message).toEqual(v.want);
    // Swapped: libaio's counts under the SQPOLL name.
    expect(holds(sqpollFewerSyscalls([{ ...counts[2]!, variant: 'libaio' }, counts[1]!, { ...counts[0]!, variant: 'io_uring+sqpoll' }]))).toBe(false);
  });

  it('wants unwritten extents in the fallocated file and none in the written one', () => {
    const e = (path: string, unwritten: number) => ({ path, unwritten, text: `${unwritten} unwritten` });
    expect(holds(extentsControl({ fallocated: e('a', 1), written: e('b', 0) }))).toBe(true);
    expect(holds(extentsControl({ fallocated: e('a', 1), written: e('b', 3) }))).toBe(false);
  });

  it('refuses a job file that runs a command or loads code, or sets an option outside the seed\'s job, naming the lines; the seed\'s job in any spelling holds', () => {
    const ref = readFileSync(join(import.meta.dirname, '../../../../c/io_uring/01-fio/randread.fio'), 'utf8');
    expect(holds(onlyTheJob({ jobText: ref }))).toBe(true);
    expect(holds(onlyTheJob({ jobText: '[global]\nreadwrite=randread\nblocksize=4096\niodepth=0x40\ndirect=1\nbuffered=0\nruntime=2000ms\ntime_based=1\n[randread]\nname=x\n' }))).toBe(true);
    const v = onlyTheJob({ jobText: '[global]\nrw=randread\nexec_prerun=sh -c "mv a b"\nioengine=exec;\nbuffered=1\npercentage_random=0\nbssplit=64k/100\ninclude x.fio\n' });
    expect(v.got).toEqual({ commandLines: ['exec_prerun=sh -c "mv a b"', 'ioengine=exec;', 'include x.fio'], otherOptions: ['buffered=1', 'percentage_random=0', 'bssplit=64k/100'], timeBased: false, sections: 'sections [global]', setTwice: [] });
    expect(v.message).toMatch(/run a command or load code .*remove "exec_prerun=sh -c \\"mv a b\\"", "ioengine=exec;", "include x.fio"; .*it does not make the run time-based .*; these options are not the seed's job .*remove "buffered=1", "percentage_random=0", "bssplit=64k\/100"/);
    // fio reads a line in 8 KiB pieces: what follows 8191 characters of a description (or of a comment) is a line of its own to fio.
    const seed = '[global]\nrw=randread\nbs=4k\niodepth=64\ndirect=1\nruntime=2\ntime_based\n';
    const split = onlyTheJob({ jobText: `${seed}description=${'A'.repeat(8179)}percentage_random=0\n#${' '.repeat(8190)}exec_prerun=x\n` });
    expect(split.got.commandLines.map((l) => l.replace(/^(.{12}).*(\(a line of \d+ characters\))$/, '$1 $2'))).toEqual(['description= (a line of 8210 characters)', '#            (a line of 8204 characters)']);
    expect(split.got.otherOptions).toEqual([]);
    // A [global] after the job's section reaches the report, not the job (a third helper's find); a second job runs beside the judged one.
    expect(onlyTheJob({ jobText: `${seed}[randread]\n[global]\nrw=read\n` }).got).toMatchObject({ sections: 'sections [global], [randread], [global]', setTwice: ['rw'] });
    expect(onlyTheJob({ jobText: `${seed}[randread]\n[extra]\n` }).got.sections).toBe('sections [global], [randread], [extra]');
    expect(onlyTheJob({ jobText: `${seed}readwrite=read\n[randread]\n` }).got.setTwice).toEqual(['rw']);
    expect(onlyTheJob({ jobText: `${seed}[randread]\n` }).got).toMatchObject({ sections: 'one job section, after at most one [global]', setTwice: [] });
    expect(onlyTheJob({ jobText: `${seed}size=4k\n` }).got.otherOptions).toEqual(['size=4k']);
    expect(onlyTheJob({ jobText: `${seed}time_based=0\n` }).got.timeBased).toBe(false);
    expect(onlyTheJob({ jobText: `${seed}description=a\x01b\n` }).got.commandLines).toEqual(['description=a\\u0001b… (a line of 15 characters with a control character)']);
  });
});
