/**
 * Teeth of extend/01-module: three wrong modules a student might write each
 * fail the spec on the assertion that catches them; a correct module in
 * another style (proc_ops, module_param_named) passes every test. Each run
 * boots the Debian guest once (~30 s here).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { HARNESS_FAILURE, runLabWith, type NestedTest } from './nested-lab.js';

const SPEC = 'labs/extend/01-module/module.spec.ts';
const SOURCE = 'extend/01-module/labmod.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/extend/01-module', name);
const summary = (tests: NestedTest[]) => tests.map((t) => `${t.status}: ${t.name}${t.message ? `\n    ${t.message.split('\n')[0]}` : ''}`).join('\n');

const root = process.getuid?.() === 0;

describe.skipIf(!root)('extend/01-module against wrong and correct modules', { timeout: 600_000 }, () => {
  const wrong = [
    { file: 'hardcoded.c', what: 'ignores the parameters in /proc/labmod', catches: /\/proc\/labmod reflects the parameters/ },
    { file: 'off_by_one.c', what: 'shows times + 1 lines', catches: /\/proc\/labmod reflects the parameters/ },
    { file: 'no_proc_remove.c', what: 'leaves /proc/labmod behind after rmmod', catches: /rmmod labmod succeeds, exit logs a line, and \/proc\/labmod and \/sys\/module\/labmod are gone/ },
  ];

  it.for(wrong)('$file ($what) fails the spec on an assertion', async ({ file, catches }, ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture(file) }, ctx.signal);
    const failed = tests.filter((t) => t.status === 'failed');
    expect(failed.some((t) => catches.test(t.name)), `${file}: expected a failure matching ${catches}\n${summary(tests)}`).toBe(true);
    for (const t of failed) expect(t.message, `${file}: "${t.name}" failed for a harness reason`).not.toMatch(HARNESS_FAILURE);
  });

  it('variant_proc_ops.c (proc_ops read, module_param_named, printk) passes every test', async (ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture('variant_proc_ops.c') }, ctx.signal);
    expect(tests.filter((t) => t.status !== 'passed').map((t) => t.name), summary(tests)).toEqual([]);
  });
});
