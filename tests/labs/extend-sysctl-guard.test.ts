/**
 * Teeth of extend/02-sysctl-guard: three wrong guards a student might write
 * each fail the spec on the assertion that catches them; a correct guard in
 * another style passes every test. Runs the lab's spec (root, cgroup2, BPF).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { writesToMap } from '../../labs/extend/02-sysctl-guard/map-writes.js';
import { HARNESS_FAILURE, runLabWith, type NestedTest } from './nested-lab.js';

const SPEC = 'labs/extend/02-sysctl-guard/sysctl-guard.spec.ts';
const SOURCE = 'extend/02-sysctl-guard/sysctl_guard.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/extend/02-sysctl-guard', name);
const failedNames = (tests: NestedTest[]) => tests.filter((t) => t.status === 'failed').map((t) => t.name);
const summary = (tests: NestedTest[]) => tests.map((t) => `${t.status}: ${t.name}${t.message ? `\n    ${t.message.split('\n')[0]}` : ''}`).join('\n');

const root = process.getuid?.() === 0;

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

describe.skipIf(!root)('extend/02-sysctl-guard against wrong and correct guards', { timeout: 400_000 }, () => {
  const wrong = [
    { file: 'deny_all_writes.c', what: 'refuses every write, never checks the name', catches: /writing other sysctls succeeds/ },
    { file: 'deny_reads_too.c', what: 'refuses reads of the guarded sysctl too', catches: /reading net\.ipv4\.ip_forward works/ },
    { file: 'counts_every_access.c', what: 'counts reads as well as refused writes', catches: /counter map denied_writes .* counts exactly the refused writes/ },
    // A helper playing the clever student wrote these against the spec of 2026-12-04; all six passed it then.
    { file: 'clever_prefix.c', what: 'compares a prefix of the name', catches: /writing other sysctls succeeds/ },
    { file: 'clever_length.c', what: 'compares only the name\'s length', catches: /writing other sysctls succeeds/ },
    { file: 'clever_allowlist.c', what: 'allows only the one decoy the spec wrote', catches: /writing other sysctls succeeds/ },
    { file: 'clever_substr.c', what: 'refuses every name with "forward" in it', catches: /writing other sysctls succeeds/ },
    { file: 'clever_changeonly.c', what: 'refuses only writes that change the value', catches: /a write to net\.ipv4\.ip_forward fails with EPERM/ },
    { file: 'clever_nonatomic.c', what: 'counts without an atomic add on a shared map', catches: /counter map denied_writes .* counts exactly the refused writes/ },
    { file: 'clever_only_0_1_values.c', what: 'refuses only the values "0" and "1"', catches: /a write to net\.ipv4\.ip_forward fails with EPERM/ },
    { file: 'clever_only_sysctl_tool.c', what: 'refuses only writers named sysctl', catches: /a write to net\.ipv4\.ip_forward fails with EPERM/ },
    // Issue #27: these passed the spec of 2026-12-05 (any atomic instruction anywhere passed; the other names were fixed).
    { file: 'clever_decoy_atomic.c', what: 'an atomic add on a decoy map, a plain read-modify-write on denied_writes',
      catches: /counter map denied_writes .* counts exactly the refused writes/, message: /other writes: \d+: \(7b\) \*\(u64 \*\)\(r\d \+0\) = r\d+  \(a plain store\)/ },
    { file: 'clever_update_elem.c', what: 'an atomic or of 0 on denied_writes for show, the count written back with bpf_map_update_elem',
      catches: /counter map denied_writes .* counts exactly the refused writes/, message: /other writes: \d+: \(85\) call array_map_update_elem#\d+  \(a helper writes the value/ },
    { file: 'clever_allowlist_spec_names.c', what: 'refuses every write but to the five names the spec always wrote',
      catches: /writing other sysctls succeeds/, message: /picked at random/ },
  ];

  it.for(wrong as { file: string; what: string; catches: RegExp; message?: RegExp }[])('$file ($what) fails the spec on an assertion', async ({ file, catches, message }, ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture(file) }, ctx.signal);
    const failed = tests.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.name).some((n) => catches.test(n)), `${file}: expected a failure matching ${catches}\n${summary(tests)}`).toBe(true);
    if (message) expect(failed.find((t) => catches.test(t.name))?.message, `${file}: the failure must say why`).toMatch(message);
    for (const t of failed) expect(t.message, `${file}: "${t.name}" failed for a harness reason`).not.toMatch(HARNESS_FAILURE);
    // The host check counts only once the guard refuses what it must: then it must pass (no wrong guard touches the host).
    const refuses = tests.find((t) => /a write to net\.ipv4\.ip_forward fails with EPERM/.test(t.name))?.status === 'passed';
    expect(tests.find((t) => /host's own sysctls unchanged/.test(t.name))?.status, summary(tests)).toBe(refuses ? 'passed' : 'failed');
  });

  it('verifier_map_value_overrun.c (counts one word past its map value): the verifier\'s rejection is said once, naming the source, its key line and a note; the later tests are "not run"', async (ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture('verifier_map_value_overrun.c') }, ctx.signal);
    const messages = tests.map((t) => t.message ?? '').join('\n');
    expect(messages.match(/verifier log:/g)?.length, summary(tests)).toBe(1);
    expect(messages, summary(tests)).toMatch(/the BPF verifier rejected \S+sysctl_guard\.c \(the object \S+\): invalid access to map value, value_size=8 off=8[\s\S]*note: the access is outside a map value/);
    const notRun = tests.filter((t) => /not run: \S+sysctl_guard\.c did not load/.test(t.message ?? ''));
    expect(notRun.length, summary(tests)).toBeGreaterThanOrEqual(3);
    expect(tests.filter((t) => t.status === 'passed' && !/^compiles/.test(t.name)).map((t) => t.name), summary(tests)).toEqual([]);
  });

  it.for(['variant_base_name.c (base name, word compare)', 'variant_subprog_counter.c (BPF-to-BPF calls; the counter pointer returned by one)'])('%s passes every test', async (what, ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture(what.split(' ')[0]!) }, ctx.signal);
    expect(failedNames(tests), summary(tests)).toEqual([]);
    expect(tests.every((t) => t.status === 'passed'), summary(tests)).toBe(true);
  });
});
