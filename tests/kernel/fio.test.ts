/**
 * helpers/kernel/fio.ts against fio 3.33's real JSON reports (recorded on the
 * project's VM: randread 4k QD64 direct for 2 s with libaio and io_uring, a job
 * file run with SQPOLL, and the sequential write that lays the test file down first).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { depthBucket, fioArgs, jobFileCommands, jobFileLines, median, parseFioJson, shareAtDepth } from '../../helpers/kernel/fio.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'io_uring', name), 'utf8');

describe('parseFioJson', () => {
  it('reads IOPS, I/O count, mean and p99 latency and the depth histogram of a randread job', () => {
    const report = parseFioJson(fixture('fio-randread-libaio.json'));
    expect(report.version).toBe('fio-3.33');
    const job = report.jobs[0]!;
    expect(job.name).toBe('r');
    expect(job.error).toBe(0);
    expect(job.options).toMatchObject({ ioengine: 'libaio', iodepth: '64', rw: 'randread', bs: '4k', direct: '1' });
    expect(job.read.iops).toBeCloseTo(71333.833, 2);
    expect(job.read.totalIos).toBe(142739);
    expect(job.read.latMeanNs).toBeCloseTo(896264.8, 0);
    expect(job.read.clatP99Ns).toBe(6520832);
    expect(job.write.totalIos).toBe(0);
    expect(shareAtDepth(job, 64)).toBeGreaterThan(99.9);
  });

  it('reads the io_uring job and a write job', () => {
    const uring = parseFioJson(fixture('fio-randread-io_uring.json')).jobs[0]!;
    expect(uring.options.ioengine).toBe('io_uring');
    expect(uring.read.totalIos).toBe(180004);
    expect(uring.read.clatP99Ns).toBe(1318912);
    const write = parseFioJson(fixture('fio-write-libaio.json')).jobs[0]!;
    expect(write.write.ioBytes).toBe(128 * 1024 * 1024);
    expect(write.write.bwBytesPerSec).toBeGreaterThan(0);
    expect(write.read.totalIos).toBe(0);
  });

  it('skips the notes fio prints before the JSON, and names the problem when there is no JSON', () => {
    const text = `fio: note: both iodepth >= 1 and synchronous I/O engine are selected\n${fixture('fio-randread-io_uring.json')}`;
    expect(parseFioJson(text).jobs[0]!.read.totalIos).toBe(180004);
    expect(() => parseFioJson('fio: failed to open file')).toThrow(/no JSON report:\nfio: failed to open file/);
  });
});

describe('fio job files', () => {
  it('merges the report\'s global options (command line + [global]) under the job\'s', () => {
    const job = parseFioJson(fixture('fio-jobfile-sqpoll.json')).jobs[0]!;
    expect(job.name).toBe('randread');
    expect(job.options).toMatchObject({ ioengine: 'io_uring', sqthread_poll: '1', rw: 'randread', iodepth: '64', direct: '1', runtime: '1' });
    expect(job.read.totalIos).toBe(8237);
  });

  it('puts the command-line options before the job file', () => {
    expect(fioArgs({ name: 'r', jobFile: '/c/randread.fio', options: { filename: '/d/f', ioengine: 'libaio', size: '256M' } }, '/d/o.json'))
      .toEqual(['--filename=/d/f', '--ioengine=libaio', '--size=256M', '--output-format=json', '--output=/d/o.json', '/c/randread.fio']);
  });
});

describe('fio helpers', () => {
  it('builds the command line of a job', () => {
    expect(fioArgs({ name: 'x', filename: '/d/f', rw: 'randread', ioengine: 'io_uring', size: '64M', iodepth: 64, runtimeSec: 2, timeBased: true, extra: { sqthread_poll: 1 } }, '/d/o.json'))
      .toEqual(['--name=x', '--filename=/d/f', '--rw=randread', '--ioengine=io_uring', '--size=64M', '--bs=4k', '--iodepth=64', '--direct=1',
        '--runtime=2', '--time_based', '--sqthread_poll=1', '--output-format=json', '--output=/d/o.json']);
  });

  it('maps a depth to its fio bucket and takes medians', () => {
    expect([1, 3, 8, 48, 64, 128].map(depthBucket)).toEqual(['1', '2', '8', '32', '>=64', '>=64']);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });

  it('names the job file lines that run a command or load code (exec_prerun/postrun, an engine that is not built in, exec, include), not the I/O options', () => {
    const job = [
      '[global]', 'rw=randread', 'bs=4k', '; exec_prerun=commented out', '# include other.fio', 'ioengine=io_uring', 'ioengine=libaio ;x',
      '  Exec_Prerun = sh -c "sleep 1 &"', 'exec_postrun=true', 'ioengine=external:/tmp/x.so', 'ioengine = exec', 'program=/bin/true',
      'ioengine=exec;', 'ioengine=/home/x/forge.so', 'arguments=-c id', 'include other.fio', '[randread]', 'filename=/tmp/exec_prerun',
      'description=ioengine=exec', 'what is this',
    ].join('\n');
    expect(jobFileCommands(job)).toEqual(['Exec_Prerun = sh -c "sleep 1 &"', 'exec_postrun=true', 'ioengine=external:/tmp/x.so', 'ioengine = exec', 'program=/bin/true',
      'ioengine=exec;', 'ioengine=/home/x/forge.so', 'arguments=-c id', 'include other.fio', 'what is this']);
    expect(jobFileCommands(readFileSync(join(import.meta.dirname, '../../c/io_uring/01-fio/randread.fio'), 'utf8'))).toEqual([]);
    expect(jobFileLines('[global]\n time_based \nrw = randread;x\n')).toEqual([{ line: 'time_based', name: 'time_based', value: '' }, { line: 'rw = randread;x', name: 'rw', value: 'randread' }]);
  });
});
