import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { byAction, bytesToNumber, hasAtomicUpdate, hooksClone, parseCounterDump, parsePerfShow } from '../../helpers/kernel/bpftool.js';

describe('bpftool map dump parsing', () => {
  it('reads a u32 -> u64 array map (recorded from xdp_counter after two dropped pings)', () => {
    const dump = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'ebpf', 'bpftool-map-dump.json'), 'utf8'));
    const counters = parseCounterDump(dump);
    expect(byAction(counters)).toEqual({ XDP_ABORTED: 0, XDP_DROP: 2, XDP_PASS: 0, XDP_TX: 0, XDP_REDIRECT: 0 });
  });

  it('falls back to the raw little-endian bytes when there is no BTF-formatted value', () => {
    expect(bytesToNumber(['0x10', '0x27', '0x00', '0x00'])).toBe(10_000);
    const counters = parseCounterDump([{ key: ['0x01', '0x00', '0x00', '0x00'], value: ['0xe8', '0x03', '0', '0', '0', '0', '0', '0'] }]);
    expect(counters.get(1)).toBe(1000);
  });

  it('sums a per-CPU map over its CPUs (the shape bpftool -j map dump printed for a percpu_array here)', () => {
    const cpu = (n: string) => ['0x' + n, '0x00', '0x00', '0x00', '0x00', '0x00', '0x00', '0x00'];
    const counters = parseCounterDump([{ key: ['0x01', '0x00', '0x00', '0x00'], values: [{ value: cpu('03') }, { value: cpu('04') }] }]);
    expect(counters.get(1)).toBe(7);
    expect(parseCounterDump([{ key: 0, values: [{ value: 2 }, { value: 5 }] }]).get(0)).toBe(7);
  });
});

describe('bpftool perf show parsing', () => {
  const recorded = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'ebpf', 'bpftool-perf-show.json'), 'utf8'));

  it("keeps one process's attachments (recorded while two hello_bcc_ringbuf.py ran, tracepoint mode)", () => {
    const mine = parsePerfShow(recorded, 3690);
    expect(mine.map((a) => [a.prog_id, a.tracepoint])).toEqual([[549, 'sys_enter_clone'], [549, 'sys_enter_clone3']]);
    expect(parsePerfShow(recorded, 1)).toEqual([]);
    expect(() => parsePerfShow({})).toThrow(/JSON array/);
  });

  it('recognises the clone hooks: the syscall tracepoints and the kprobe on __x64_sys_clone, not others', () => {
    expect(parsePerfShow(recorded).every(hooksClone)).toBe(true);
    expect(hooksClone({ pid: 1, fd: 3, prog_id: 2, fd_type: 'kprobe', func: '__x64_sys_clone3' })).toBe(true);
    expect(hooksClone({ pid: 1, fd: 3, prog_id: 2, fd_type: 'tracepoint', tracepoint: 'sys_enter_openat' })).toBe(false);
    expect(hooksClone({ pid: 1, fd: 3, prog_id: 2, fd_type: 'kprobe', func: 'do_exit' })).toBe(false);
  });
});

describe('hasAtomicUpdate', () => {
  it('finds the atomic add of an xlated dump (the sysctl guard on 6.18), and not a plain read-modify-write', () => {
    expect(hasAtomicUpdate('  71: (79) r1 = 1\n  72: (db) lock *(u64 *)(r0 +0) += r1\n  73: (bf) r0 = r6')).toBe(true);
    expect(hasAtomicUpdate('  12: (c3) r2 = atomic_fetch_add((u32 *)(r1 +0), r2)')).toBe(true);
    expect(hasAtomicUpdate('  71: (79) r1 = *(u64 *)(r0 +0)\n  72: (07) r1 += 1\n  73: (7b) *(u64 *)(r0 +0) = r1')).toBe(false);
  });
});
