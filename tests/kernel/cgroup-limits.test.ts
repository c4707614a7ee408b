import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProcCgroup } from '../../helpers/kernel/cgroup-limits.js';

describe('/proc/<pid>/cgroup', () => {
  it('parses a v1 host (recorded here): one path per controller, and the empty v2 line', () => {
    const text = readFileSync(join(import.meta.dirname, '../fixtures/cloud/02-cgroup/proc-cgroup-v1.txt'), 'utf8');
    const p = parseProcCgroup(text);
    expect(p.v1.memory).toMatch(/^\//);
    expect(p.v1.cpu).toBe('/');
    expect(p.v1['name=systemd']).toBe('/');
    expect(p.v2).toBe('/');
  });

  it('splits joined controllers (cpu,cpuacct) and reads a v2-only host', () => {
    expect(parseProcCgroup('3:cpu,cpuacct:/kl-1-cpu\n2:memory:/kl-1-mem\n0::/user.slice\n')).toEqual({ v2: '/user.slice', v1: { cpu: '/kl-1-cpu', cpuacct: '/kl-1-cpu', memory: '/kl-1-mem' } });
    expect(parseProcCgroup('0::/kl-2-oom\n')).toEqual({ v2: '/kl-2-oom', v1: {} });
  });
});
