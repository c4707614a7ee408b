/**
 * The tests a workspace of a batch of nested lab runs wants (tests/labs/nested-run.ts runSpecBatch): its wrapper
 * names them in LABS_ONLY_TESTS (a regular expression over the test's full name, as vitest -t) and calls
 * `selectTests` before it imports the lab's spec.
 *
 * `selectTests` gives the pattern to this worker's runner as its -t, which the runner applies when it collects the
 * file: a describe whose tests are all left out is skipped whole, its beforeAll (a part of the lab's experiment)
 * included — a wrong program that fails in the first part of a lab does not run the rest of the experiment, as with
 * -t on the command line. The runner's config is vitest's worker state, not a public API: where it is not there, the
 * beforeEach below (this file is also the batch's setup file) still skips each test the pattern leaves out, as -t
 * would, only after the describes' beforeAll ran.
 */
import { beforeEach } from 'vitest';

interface WorkerState { config?: { testNamePattern?: RegExp | string } }

/** Run only the tests whose full name matches `pattern` (empty: all) in this file, as vitest -t would. */
export function selectTests(pattern: string): void {
  process.env.LABS_ONLY_TESTS = pattern;
  const state = (globalThis as { __vitest_worker__?: WorkerState }).__vitest_worker__;
  if (state?.config) state.config.testNamePattern = pattern ? new RegExp(pattern) : undefined;
}

beforeEach((ctx) => {
  const only = process.env.LABS_ONLY_TESTS;
  if (!only) return;
  const names: string[] = [];
  for (let t: { name: string; suite?: unknown } | undefined = ctx.task; t; t = t.suite as typeof t) if (t.name) names.unshift(t.name);
  if (!new RegExp(only).test(names.join(' '))) ctx.skip();
});
