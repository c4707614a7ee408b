/**
 * The cgroup interface file parsers (helpers/harness/cgroup-files.ts) and
 * /proc/<pid>/cgroup (helpers/kernel/cgroup-limits.ts), on text recorded on
 * this machine (cgroup v1 hybrid: cpu.stat and memory.oom_control of v1).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCgroupProcs, parseKeyed, pidsIn } from '../../helpers/harness/cgroup-files.js';
import { parseProcCgroup, parseProcCgroupEntries } from '../../helpers/kernel/cgroup-limits.js';

describe('cgroup.procs', () => {
  it('one pid a line, in order; empty file → none', () => {
    expect(parseCgroupProcs('24531\n24532\n1234\n')).toEqual([24531, 24532, 1234]);
    expect(parseCgroupProcs('')).toEqual([]);
  });

  it('pidsIn reads <dir>/cgroup.procs, and nothing once the directory is gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kl-test-procs-'));
    try {
      writeFileSync(join(dir, 'cgroup.procs'), '7\n8\n');
      expect(pidsIn(dir)).toEqual([7, 8]);
    } finally { rmSync(dir, { recursive: true, force: true }); }
    expect(pidsIn(dir)).toEqual([]);
  });
});

describe('flat keyed files', () => {
  it('reads cpu.stat and memory.oom_control (recorded)', () => {
    expect(parseKeyed('nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n'))
      .toEqual({ nr_periods: 0, nr_throttled: 0, throttled_time: 0, nr_bursts: 0, burst_time: 0 });
    expect(parseKeyed('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n')).toEqual({ oom_kill_disable: 0, under_oom: 0, oom_kill: 3 });
  });

  it('reads v2 memory.events / pids.events and leaves out values that are not integers', () => {
    expect(parseKeyed('low 0\nhigh 12\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n')).toMatchObject({ max: 40, oom_kill: 1 });
    expect(parseKeyed('max 2\n')).toEqual({ max: 2 });
    expect(parseKeyed('some avg10=0.00 total=1\nanon 4096\n')).toEqual({ anon: 4096 });
  });
});

describe('/proc/<pid>/cgroup', () => {
  const RECORDED = '9:name=systemd:/\n8:pids:/\n4:memory:/process_api/026cd459bc6519b45b4cf62799a571b0\n1:cpu:/\n0::/\n';

  it('one entry per line: hierarchy id, controllers (name= kept), path, the raw line', () => {
    const e = parseProcCgroupEntries(RECORDED);
    expect(e.map((x) => x.id)).toEqual([9, 8, 4, 1, 0]);
    expect(e[0]).toEqual({ id: 9, controllers: ['name=systemd'], path: '/', raw: '9:name=systemd:/' });
    expect(e[2]!.path).toBe('/process_api/026cd459bc6519b45b4cf62799a571b0');
    expect(e[4]).toEqual({ id: 0, controllers: [], path: '/', raw: '0::/' });
    expect(parseProcCgroupEntries('3:cpu,cpuacct:/kl-1\n\ngarbage\n')).toEqual([{ id: 3, controllers: ['cpu', 'cpuacct'], path: '/kl-1', raw: '3:cpu,cpuacct:/kl-1' }]);
  });

  it('the per-controller view built on it', () => {
    expect(parseProcCgroup(RECORDED)).toEqual({ v2: '/', v1: { 'name=systemd': '/', pids: '/', memory: '/process_api/026cd459bc6519b45b4cf62799a571b0', cpu: '/' } });
  });
});
