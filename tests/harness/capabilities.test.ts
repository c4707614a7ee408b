import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CAPABILITY_IDS, probeAll, probeCgroups } from '../../helpers/harness/capabilities.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { doctorLines } from '../../scripts/doctor.js';
import type { LabInfo } from '../../helpers/course/labs.js';

describe('capabilities', () => {
  it('detects cgroup v1 cpu and memory hierarchies', async () => {
    const base = await makeTempDir('unit-cg');
    mkdirSync(join(base, 'cpu'));
    writeFileSync(join(base, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
    mkdirSync(join(base, 'memory'));
    writeFileSync(join(base, 'memory', 'memory.limit_in_bytes'), '9223372036854771712\n');
    expect(probeCgroups(base)).toMatchObject({ version: 1 });
  });

  it('accepts the merged cpu,cpuacct v1 directory (Ubuntu 20.04 style)', async () => {
    const base = await makeTempDir('unit-cg');
    mkdirSync(join(base, 'cpu,cpuacct'));
    writeFileSync(join(base, 'cpu,cpuacct', 'cpu.cfs_quota_us'), '-1\n');
    mkdirSync(join(base, 'memory'));
    writeFileSync(join(base, 'memory', 'memory.limit_in_bytes'), '1\n');
    expect(probeCgroups(base).detail).toContain('cpu,cpuacct');
  });

  it('reports no usable controllers for an empty tree', async () => {
    expect(probeCgroups(await makeTempDir('unit-cg'))).toMatchObject({ version: 0 });
  });

  it('probes every capability, and every missing one carries a fix', async () => {
    const caps = await probeAll();
    for (const id of CAPABILITY_IDS) {
      expect(caps[id].id).toBe(id);
      if (!caps[id].ok) expect(caps[id].fix, `${id} is missing and says no fix`).not.toBe('');
    }
    expect(caps.kernelRelease).toMatch(/^\d+\.\d+/);
  });
});

describe('doctor', () => {
  const fake = async () => {
    const caps = await probeAll();
    return {
      ...caps,
      bpftrace: { ...caps.bpftrace, ok: false, detail: 'bpftrace not found', fix: 'sudo apt install -y bpftrace' },
      kprobes: { ...caps.kprobes, ok: false, detail: 'no kprobes', fix: 'tracepoints instead', adaptable: true },
    };
  };
  const lab = (id: string, requires: LabInfo['requires'], adapts: LabInfo['adapts'] = []): LabInfo =>
    ({ id, area: 'x', order: 1, title: { zh: 'x', en: 'x' }, spec: 's', sources: [], requires, adapts });

  it('marks a missing capability that a lab requires as blocking, with its fix', async () => {
    const lines = doctorLines(await fake(), [lab('ebpf/01-bpftrace', ['bpftrace'], ['kprobes'])]);
    const line = lines.find((l) => l.id === 'bpftrace')!;
    expect(line.blocking).toBe(true);
    expect(line.text).toMatch(/^✗ bpftrace/);
    expect(line.text).toMatch(/needed by: ebpf\/01-bpftrace/);
    expect(line.text).toMatch(/fix: sudo apt install -y bpftrace/);
  });

  it('does not block on an adaptable capability or one no lab requires', async () => {
    const lines = doctorLines(await fake(), [lab('ebpf/01-bpftrace', ['tracefs'], ['kprobes'])]);
    expect(lines.find((l) => l.id === 'kprobes')).toMatchObject({ blocking: false });
    expect(lines.find((l) => l.id === 'kprobes')!.text).toMatch(/labs adapt: ebpf\/01-bpftrace/);
    expect(lines.find((l) => l.id === 'bpftrace')).toMatchObject({ blocking: false });
  });
});
