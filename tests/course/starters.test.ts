/**
 * Teeth: every lab marks what the student writes, and its starter (the
 * reference with those regions replaced by TODOs) builds and makes the lab's
 * spec FAIL on an assertion — not on a compile error or a harness error — and
 * earns 0 points: every test it passes anyway (a control, the given code's
 * part) is worth 0 in lab.json, or runs only after the lab's correctness tests.
 * Runs each lab spec against a starter workspace in a nested vitest (root only):
 * the labs that share the machine two at a time, then the others one at a time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { listLabs } from '../../helpers/course/labs.js';
import { pointsFor } from '../../helpers/course/grading.js';
import { findRegions } from '../../helpers/course/markers.js';
import { REFERENCE_SRC } from '../../helpers/harness/paths.js';
import { runSpecBatch, STARTER_HARNESS_FAILURE as HARNESS_FAILURE, type NestedRunResult } from '../labs/nested-run.js';

const labs = listLabs();
/** Each nested run (the sharing labs, then the others): ~6 min here in all, plus K3's kernel rebuild for its starter (~7 min) on a clean machine. */
const STARTERS_RUN_TIMEOUT_MS = 40 * 60_000;


/**
 * Every lab's spec against the starter, started by the first lab's test to ask; each test reads its lab's result.
 * One nested vitest (as a student's first `npm test` would run them: one start, one host probe) for the labs whose
 * lab.json says two runs share the machine, two at a time; then one for the others, one at a time
 * (tests/labs/nested-run.ts runSpecBatch: a starter workspace per lab).
 */
let starterRun: Promise<Map<string, NestedRunResult>> | undefined;
const STARTER_TEST = ': the starter builds, its spec fails on an assertion, and it earns 0 points';
function everyStarter(ctx: TestContext): Promise<Map<string, NestedRunResult>> {
  // The labs whose starter test this run runs (all, or those `-t` picked): their siblings' mode says.
  const chosen = new Set((ctx.task.suite?.tasks ?? []).filter((t) => t.mode === 'run' && t.name.endsWith(STARTER_TEST)).map((t) => t.name.slice(0, -STARTER_TEST.length).replace(/^'(.*)'$/, '$1')));
  const signal = ctx.signal;
  starterRun ??= (async () => {
    const picked = labs.filter((l) => chosen.has(l.id));
    if (!picked.length) throw new Error(`no lab matched the starter tests of this run (${[...chosen].join(', ')})`);
    const results = new Map<string, NestedRunResult>();
    for (const [group, workers] of [[picked.filter((l) => l.sharesMachine), 2], [picked.filter((l) => !l.sharesMachine), 1]] as const) {
      if (!group.length) continue;
      const items = group.map((l) => ({ id: l.id, spec: l.spec, base: 'starter' as const }));
      const got = await runSpecBatch(group[0]!.spec, items, { strict: false, workers, timeoutMs: STARTERS_RUN_TIMEOUT_MS, signal });
      for (const [id, r] of got) results.set(id, r);
    }
    return results;
  })();
  return starterRun;
}

describe('student starters', () => {
  it('lists at least Lab 0', () => {
    expect(labs.map((l) => l.id)).toContain('00-environment');
  });

  it.each(labs)('$id marks a student region in every source it lists', (lab) => {
    expect(lab.sources.length, `${lab.id}/lab.json lists no sources: a lab without a marked region is a defect`).toBeGreaterThan(0);
    for (const src of lab.sources) {
      const path = join(REFERENCE_SRC, src);
      expect(existsSync(path), `${lab.id} lists ${src}, which does not exist`).toBe(true);
      expect(findRegions(readFileSync(path, 'utf8'), src).length, `${src} has no LAB:BEGIN region`).toBeGreaterThan(0);
    }
  });

  it.for(labs)(`$id${STARTER_TEST}`, { timeout: 2 * STARTERS_RUN_TIMEOUT_MS + 60_000 }, async (lab, ctx) => {
    if (process.getuid?.() !== 0) {
      if (process.env.LABS_STRICT === '1') throw new Error('the starter check runs lab specs and needs root: sudo npm test');
      return;
    }
    const file = (await everyStarter(ctx)).get(lab.id);
    expect(file, `the nested run gave no result for ${lab.spec}`).toBeDefined();
    const { run: r } = file!;
    const tests = file!.tests;
    const failed = tests.filter((t) => t.status === 'failed');
    expect(file!.fileMessage, `the spec file itself failed to run on the starter:\n${file!.fileMessage}`).not.toMatch(HARNESS_FAILURE);
    // A starter that does not build (a compile error, bpftrace refusing the script) fails the file in a beforeAll:
    // vitest's JSON then has no message and every test skipped. That is no host skip: the error is in the run's output.
    expect(file!.status === 'failed' && failed.length === 0, `${lab.spec} failed outside its tests on the starter (every test skipped), so the starter does not get as far as an assertion:\n${(r.stdout + r.stderr).split('\n').filter((l) => /Error|ERROR|rejected|failed/.test(l)).slice(0, 12).join('\n')}`).toBe(false);
    if (tests.length && tests.every((t) => t.status === 'skipped' || t.status === 'pending')) return; // the lab skips on this host
    expect(failed.length, `the starter PASSED every test of ${lab.spec}: the spec has no teeth`).toBeGreaterThan(0);
    const first = failed[0]!;
    expect(first.failureMessages.join('\n'), `"${first.fullName}" failed for a harness reason, not on an assertion`).not.toMatch(HARNESS_FAILURE);
    const earning = tests.filter((t) => t.status === 'passed' && pointsFor(t.title, lab.points) > 0);
    expect(earning.map((t) => `${t.title} (${pointsFor(t.title, lab.points)} points)`),
      `the untouched starter of ${lab.id} earns points: make these tests worth 0 in lab.json (a control, the given code's part) or run them only after the lab's correctness tests (helpers/harness/gates.ts)`).toEqual([]);
  });
});
