import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCgroupMounts } from '../../../../helpers/harness/cgroup-mounts.js';
import { growthAround, parsePressure } from '../../../../labs/extend/03-cgroup-psi/psi.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../../fixtures/extend/03-cgroup-psi', name), 'utf8');

describe('pressure files (PSI)', () => {
  it('parses a cgroup\'s memory.pressure recorded here while squeezed: some and full, averages and total µs', () => {
    expect(parsePressure(fixture('memory-pressure-squeezed.txt'))).toEqual({
      some: { avg10: 2.78, avg60: 1.09, avg300: 0.26, total: 882136 },
      full: { avg10: 2.78, avg60: 1.09, avg300: 0.26, total: 882136 },
    });
  });

  it('parses /proc/pressure/cpu as recorded here, and a "some"-only file of an older kernel', () => {
    const p = parsePressure(fixture('proc-pressure-cpu.txt'));
    expect(p.some.total).toBeGreaterThanOrEqual(0);
    expect(parsePressure('some avg10=0.50 avg60=0.10 avg300=0.00 total=1234\n')).toEqual({ some: { avg10: 0.5, avg60: 0.1, avg300: 0, total: 1234 } });
  });

  it('refuses text that is no pressure file', () => {
    expect(() => parsePressure('hello\n')).toThrow(/not a pressure file/);
  });

  it('bounds the growth of some total over an interval by the samples around it', () => {
    const samples = [{ t: 10, some: 0, full: 0 }, { t: 11, some: 100, full: 0 }, { t: 12, some: 400, full: 0 }, { t: 13, some: 450, full: 0 }];
    expect(growthAround(samples, 11.5, 12)).toBe(300);
    expect(growthAround(samples, 9, 20)).toBe(450);
    expect(growthAround([], 0, 1)).toBe(0);
  });
});

describe('cgroup mounts: named hierarchies and roots', () => {
  it('keeps the name of a named v1 hierarchy and the root of each mount', () => {
    const m = parseCgroupMounts(readFileSync(join(import.meta.dirname, '../../../fixtures/extend/mountinfo-hybrid.txt'), 'utf8'));
    expect(m.find((x) => x.name === 'systemd')).toMatchObject({ version: 1, controllers: [], root: '/' });
    expect(m.filter((x) => x.version === 2).map((x) => x.root)).toContain('/');
    expect(parseCgroupMounts('50 31 0:32 /kl-1/x /mnt/m rw - cgroup cgroup rw,memory')[0]).toMatchObject({ root: '/kl-1/x', controllers: ['memory'] });
  });
});
