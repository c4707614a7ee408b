import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventLines, parseAttaching } from '../../helpers/kernel/bpftrace.js';

const recorded = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'ebpf', 'bpftrace-exits.txt'), 'utf8');

describe('bpftrace output', () => {
  it('finds the probe count in "Attaching N probes..."', () => {
    expect(parseAttaching(recorded)).toBe(1);
    expect(parseAttaching('Attaching 3 probes...\n')).toBe(3);
    expect(parseAttaching('stdin:1:1-10: ERROR: syntax error\n')).toBeUndefined();
  });

  it('keeps the event lines after the attach line, without the RLIMIT_MEMLOCK warning', () => {
    const lines = eventLines(recorded);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => /^PID \d+ exited \(.+\)$/.test(l)), lines.join('\n')).toBe(true);
  });
});
