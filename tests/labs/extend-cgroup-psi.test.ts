/**
 * Teeth of extend/03-cgroup-psi: three wrong programs a student might write
 * each fail the spec on the assertion that names their mistake; correct
 * programs in another style (key=value output, epoll) pass every test.
 * Runs the lab's spec (root, cgroups, PSI).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { HARNESS_FAILURE, runLabWith, type NestedTest } from './nested-lab.js';

const SPEC = 'labs/extend/03-cgroup-psi/cgroup-psi.spec.ts';
const CGWHERE = 'extend/03-cgroup-psi/cgwhere.c';
const PSIWATCH = 'extend/03-cgroup-psi/psiwatch.c';
const REF = (file: string) => join(REPO_ROOT, 'c', file);
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/extend/03-cgroup-psi', name);
const summary = (tests: NestedTest[]) => tests.map((t) => `${t.status}: ${t.name}${t.message ? `\n    ${t.message.split('\n')[0]}` : ''}`).join('\n');

const root = process.getuid?.() === 0;

describe.skipIf(!root)('extend/03-cgroup-psi against wrong and correct programs', { timeout: 400_000 }, () => {
  // Each wrong program replaces one source; the other is the reference, so only the named mistake can fail.
  const wrong = [
    { file: 'cgwhere_hardcoded_dirs.c', source: CGWHERE, other: PSIWATCH, what: 'hard-codes /sys/fs/cgroup/<controllers> as the directory',
      catches: /names for each hierarchy the directory that holds the process/ },
    { file: 'cgwhere_drops_last_line.c', source: CGWHERE, other: PSIWATCH, what: 'stops one line early and loses the 0:: line',
      catches: /names the one cgroup2 path \(hierarchy 0\)/ },
    { file: 'psiwatch_polls_total.c', source: PSIWATCH, other: CGWHERE, what: 'polls "some total" instead of holding a trigger',
      catches: /psiwatch holds a PSI trigger/ },
    // A helper playing the clever student wrote these; all three passed the spec of 2026-12-04 (the trigger's arguments were fixed).
    { file: 'clever_psiwatch_hardcode.c', source: PSIWATCH, other: CGWHERE, what: 'ignores <stall> and <window>: always "some 50000 2000000"',
      catches: /psiwatch asked for a stall the squeeze never reaches/ },
    { file: 'clever_psiwatch_sysfile.c', source: PSIWATCH, other: CGWHERE, what: 'holds the cgroup trigger for show, takes its events from /proc/pressure/memory',
      catches: /psiwatch reports stall events while the workload is squeezed/ },
    { file: 'clever_psiwatch_tagname.c', source: PSIWATCH, other: CGWHERE, what: 'never waits: prints events when the cgroup\'s name says it is the squeezed run',
      catches: /psiwatch reports stall events while the workload is squeezed/ },
  ];

  it.for(wrong)('$file ($what) fails the spec on an assertion', async ({ file, source, other, catches }, ctx) => {
    const tests = await runLabWith(SPEC, { [source]: fixture(file), [other]: REF(other) }, ctx.signal);
    const failed = tests.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.name).some((n) => catches.test(n)), `${file}: expected a failure matching ${catches}\n${summary(tests)}`).toBe(true);
    for (const t of failed) expect(t.message, `${file}: "${t.name}" failed for a harness reason`).not.toMatch(HARNESS_FAILURE);
    expect(tests.filter((t) => /^control:/.test(t.name)).map((t) => t.status), summary(tests)).toEqual(['passed', 'passed']);
  });

  it('cgwhere_keyvalue.c and psiwatch_epoll.c (key=value output, epoll) pass every test', async (ctx) => {
    const tests = await runLabWith(SPEC, { [CGWHERE]: fixture('cgwhere_keyvalue.c'), [PSIWATCH]: fixture('psiwatch_epoll.c') }, ctx.signal);
    expect(tests.filter((t) => t.status !== 'passed').map((t) => t.name), summary(tests)).toEqual([]);
  });
});
