/**
 * Teeth of extend/02-sysctl-guard: three wrong guards a student might write
 * each fail the spec on the assertion that catches them; a correct guard in
 * another style passes every test. Runs the lab's spec (root, cgroup2, BPF).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { HARNESS_FAILURE, runLabWith, type NestedTest } from './nested-lab.js';

const SPEC = 'labs/extend/02-sysctl-guard/sysctl-guard.spec.ts';
const SOURCE = 'extend/02-sysctl-guard/sysctl_guard.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/extend/02-sysctl-guard', name);
const failedNames = (tests: NestedTest[]) => tests.filter((t) => t.status === 'failed').map((t) => t.name);
const summary = (tests: NestedTest[]) => tests.map((t) => `${t.status}: ${t.name}${t.message ? `\n    ${t.message.split('\n')[0]}` : ''}`).join('\n');

const root = process.getuid?.() === 0;

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
  ];

  it.for(wrong)('$file ($what) fails the spec on an assertion', async ({ file, catches }, ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture(file) }, ctx.signal);
    const failed = tests.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.name).some((n) => catches.test(n)), `${file}: expected a failure matching ${catches}\n${summary(tests)}`).toBe(true);
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

  it('variant_base_name.c (base name, word compare) passes every test', async (ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture('variant_base_name.c') }, ctx.signal);
    expect(failedNames(tests), summary(tests)).toEqual([]);
    expect(tests.every((t) => t.status === 'passed'), summary(tests)).toBe(true);
  });
});
