import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { byAction, bytesToNumber, parseCounterDump } from '../helpers/bpftool.js';

describe('bpftool map dump parsing', () => {
  it('reads a u32 -> u64 array map (recorded from xdp_counter after two dropped pings)', () => {
    const dump = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'ebpf', 'bpftool-map-dump.json'), 'utf8'));
    const counters = parseCounterDump(dump);
    expect(byAction(counters)).toEqual({ XDP_ABORTED: 0, XDP_DROP: 2, XDP_PASS: 0, XDP_TX: 0, XDP_REDIRECT: 0 });
  });

  it('falls back to the raw little-endian bytes when there is no BTF-formatted value', () => {
    expect(bytesToNumber(['0x10', '0x27', '0x00', '0x00'])).toBe(10_000);
    const counters = parseCounterDump([{ key: ['0x01', '0x00', '0x00', '0x00'], value: ['0xe8', '0x03', '0', '0', '0', '0', '0', '0'] }]);
    expect(counters.get(1)).toBe(1000);
  });
});
