/**
 * Setup file of a batch of nested lab runs (tests/labs/nested-run.ts runSpecBatch): the wrapper of each workspace
 * names the tests it wants in LABS_ONLY_TESTS (a regular expression over the test's full name, as vitest -t); the
 * others are skipped, as -t would skip them.
 */
import { beforeEach } from 'vitest';

beforeEach((ctx) => {
  const only = process.env.LABS_ONLY_TESTS;
  if (!only) return;
  const names: string[] = [];
  for (let t: { name: string; suite?: unknown } | undefined = ctx.task; t; t = t.suite as typeof t) if (t.name) names.unshift(t.name);
  if (!new RegExp(only).test(names.join(' '))) ctx.skip();
});
