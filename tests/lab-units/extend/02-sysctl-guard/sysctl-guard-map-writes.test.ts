/**
 * writesToMap of extend/02-sysctl-guard: the writes into one map's value,
 * followed through recorded `bpftool prog dump xlated` of guards (the
 * reference, clever ones and a correct variant). Pure: recorded dumps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writesToMap } from '../../../../helpers/kernel/bpf-map-writes.js';

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
