/**
 * writesToMap of extend/02-sysctl-guard: the writes into one map's value,
 * followed through recorded `bpftool prog dump xlated` of guards (the
 * reference, clever ones and a correct variant). Pure: recorded dumps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { counterWrites, writesToMap } from '../../../../helpers/kernel/bpf-map-writes.js';
import { parseCounterDump } from '../../../../helpers/kernel/bpftool.js';

const fixture = (name: string) => join(import.meta.dirname, '../../../fixtures/extend/02-sysctl-guard', name);

describe('writesToMap: the writes into one map\'s value, followed from map[id:N] in recorded bpftool prog dump xlated', () => {
  const dump = (name: string) => readFileSync(fixture(`xlated/${name}.txt`), 'utf8');
  const kinds = (name: string, id: number) => writesToMap(dump(name), id).map((w) => `${w.at} ${w.kind}`);

  it('the reference: one atomic add through the inlined array lookup', () => {
    expect(kinds('sysctl_guard', 1615)).toEqual(['72 atomic-add']);
  });
  it('a plain read-modify-write is a plain store', () => {
    expect(kinds('clever_nonatomic', 1616)).toEqual(['72 plain']);
  });
  it('an atomic add on a decoy map belongs to the decoy; the counter has the plain store', () => {
    expect({ decoy: kinds('clever_decoy_atomic', 1617), counter: kinds('clever_decoy_atomic', 1618) }).toEqual({ decoy: ['70 atomic-add'], counter: ['86 plain'] });
  });
  it('bpf_map_update_elem on the counter is a helper write; an atomic or is no add', () => {
    expect(kinds('clever_update_elem', 1619)).toEqual(['83 helper']);
  });
  it('a pointer returned by a BPF-to-BPF call is followed into the caller', () => {
    expect(kinds('variant_subprog_counter', 1622)).toEqual(['11 atomic-add']);
  });
  it('a bpf_for_each_map_elem callback gets a pointer into the value: its plain store counts, the helper call itself does not', () => {
    expect(kinds('clever_foreach_callback', 6666)).toEqual(['76 atomic-add', '89 plain']);
  });
  it('a pointer spilled to the stack and loaded by a subprogram through the slot\'s address is followed', () => {
    expect(kinds('clever_stack_laundered', 6667)).toEqual(['78 atomic-add', '87 plain']);
  });
  it('bpf_loop inlined by the verifier: the callback loads the pointer from the caller\'s slot', () => {
    expect(kinds('clever_loop_callback', 6668)).toEqual(['78 atomic-add', '110 plain']);
  });
  it('a plain increment between bpf_spin_lock and bpf_spin_unlock on the same value is locked; the counter is safe', () => {
    expect(kinds('correct_spin_lock_counter', 6669)).toEqual(['75 locked']);
    const { atomic, racy } = counterWrites(dump('correct_spin_lock_counter'), 6669);
    expect({ atomic: atomic.length, racy }).toEqual({ atomic: 1, racy: [] });
  });
  it('a store after bpf_spin_unlock, under a lock on another value or another map, or on only one path is plain', () => {
    const lines = (body: string[]) => [
      '   0: (18) r1 = map[id:5]', '   2: (07) r1 += 312', '   3: (bf) r2 = r10', '   4: (07) r2 += -4',
      '   5: (85) call bpf_map_lookup_elem#1', '   6: (bf) r7 = r0', '   7: (15) if r7 == 0x0 goto pc+30',
      '   8: (18) r1 = map[id:6]', '  10: (bf) r2 = r10', '  11: (07) r2 += -4', '  12: (85) call bpf_map_lookup_elem#1',
      '  13: (bf) r8 = r0', '  14: (15) if r8 == 0x0 goto pc+23', ...body,
    ].join('\n');
    const after = lines(['  15: (bf) r1 = r7', '  16: (85) call bpf_spin_lock#279056', '  17: (79) r1 = *(u64 *)(r7 +8)',
      '  18: (bf) r6 = r1', '  19: (bf) r1 = r7', '  20: (85) call bpf_spin_unlock#282032', '  21: (07) r6 += 1',
      '  22: (7b) *(u64 *)(r7 +8) = r6', '  23: (95) exit']);
    const otherMap = lines(['  15: (bf) r1 = r8', '  16: (85) call bpf_spin_lock#279056', '  17: (79) r1 = *(u64 *)(r7 +8)',
      '  18: (07) r1 += 1', '  19: (7b) *(u64 *)(r7 +8) = r1', '  20: (bf) r1 = r8', '  21: (85) call bpf_spin_unlock#282032', '  22: (95) exit']);
    const onePath = lines(['  15: (bf) r1 = r7', '  16: (15) if r9 == 0x0 goto pc+1', '  17: (85) call bpf_spin_lock#279056',
      '  18: (79) r1 = *(u64 *)(r7 +8)', '  19: (07) r1 += 1', '  20: (7b) *(u64 *)(r7 +8) = r1', '  21: (95) exit']);
    const spilled = lines(['  15: (7b) *(u64 *)(r10 -16) = r7', '  16: (bf) r1 = r7', '  17: (07) r1 += 0', '  18: (85) call bpf_spin_lock#279056',
      '  19: (79) r3 = *(u64 *)(r10 -16)', '  20: (79) r1 = *(u64 *)(r3 +8)', '  21: (07) r1 += 1', '  22: (7b) *(u64 *)(r3 +8) = r1',
      '  23: (bf) r1 = r7', '  24: (85) call bpf_spin_unlock#282032', '  25: (95) exit']);
    const k = (text: string) => writesToMap(text, 5).map((w) => `${w.at} ${w.kind}`);
    expect({ after: k(after), otherMap: k(otherMap), onePath: k(onePath), spilled: k(spilled) })
      .toEqual({ after: ['22 plain'], otherMap: ['19 plain'], onePath: ['20 plain'], spilled: ['22 locked'] });
  });
  it('a callback with an atomic add is an atomic add; a callback of a helper on another map writes nothing of this one', () => {
    const text = [
      '   0: (18) r1 = map[id:5]', '   2: (18) r2 = subprog[+5]', '   4: (b7) r3 = 0', '   5: (b7) r4 = 0',
      '   6: (85) call bpf_for_each_array_elem#1', '   7: (95) exit',
      '   8: (b7) r1 = 1', '   9: (db) lock *(u64 *)(r3 +0) += r1', '  10: (b7) r0 = 1', '  11: (95) exit',
    ].join('\n');
    expect(writesToMap(text, 5).map((w) => `${w.at} ${w.kind}`)).toEqual(['9 atomic-add']);
    expect(writesToMap(text, 6)).toEqual([]);
  });
  it('spills and fills through the stack, and a helper handed a pointer into the value', () => {
    const text = [
      '   0: (18) r1 = map[id:7]', '   2: (07) r1 += 312', '   3: (bf) r0 = r1', '   4: (7b) *(u64 *)(r10 -16) = r0',
      '   5: (b7) r0 = 0', '   6: (79) r6 = *(u64 *)(r10 -16)', '   7: (15) if r6 == 0x0 goto pc+4', '   8: (bf) r1 = r6',
      '   9: (b7) r2 = 8', '  10: (85) call bpf_probe_read_kernel#113', '  11: (7a) *(u64 *)(r6 +0) = 1', '  12: (95) exit',
    ].join('\n');
    expect(writesToMap(text, 7).map((w) => `${w.at} ${w.kind}`)).toEqual(['10 helper', '11 plain']);
    expect(writesToMap(text, 8)).toEqual([]);
  });
});

describe('parseCounterDump: a counter beside its bpf_spin_lock (bpftool -j map dump of a struct value)', () => {
  it('counts the struct\'s one number field; the lock is an object', () => {
    expect(parseCounterDump([{ key: 0, value: { lock: { val: 0 }, count: 3 } }]).get(0)).toBe(3);
    expect(parseCounterDump([{ key: 0, value: { a: 1, b: 2 } }]).get(0)).toBeNaN();
  });
});
