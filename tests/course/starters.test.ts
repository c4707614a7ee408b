/**
 * Teeth: every lab marks what the student writes, and its starter (the
 * reference with those regions replaced by TODOs) builds and makes the lab's
 * spec FAIL on an assertion — not on a compile error or a harness error — and
 * earns 0 points: every test it passes anyway (a control, the given code's
 * part) is worth 0 in lab.json, or runs only after the lab's correctness tests.
 * Runs each lab spec against a starter workspace in a nested vitest (root only).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { run, type RunResult } from '../../helpers/harness/exec.js';
import { listLabs } from '../../helpers/course/labs.js';
import { pointsFor } from '../../helpers/course/grading.js';
import { findRegions } from '../../helpers/course/markers.js';
import { REFERENCE_SRC, REPO_ROOT } from '../../helpers/harness/paths.js';
import { writeStarter } from '../../scripts/starter.js';

const labs = listLabs();
/** The nested run of every lab: ~6 min here, plus K3's kernel rebuild for its starter (~7 min) on a clean machine. */
const STARTERS_RUN_TIMEOUT_MS = 40 * 60_000;

interface JsonAssertion { title: string; fullName: string; status: string; failureMessages: string[] }
interface JsonReport { testResults: { name: string; status: string; message: string; assertionResults: JsonAssertion[] }[] }

/** Failures that mean the harness or the build broke, not the student's outcome. */
const HARNESS_FAILURE = /CompileError|E_COMPILE|bpftrace rejected|MarkerError|E_SOURCE|Cannot find module|SyntaxError: |Failed to load|ReferenceError/;

let workspace = '';
/**
 * Every lab's spec against the starter in ONE nested run of the labs project (as a student's first `npm test`
 * would run them: one vitest start, one host probe), started by the first lab's test to ask; each test reads its
 * spec's file from the JSON report.
 */
let starterRun: Promise<{ r: RunResult; report?: JsonReport }> | undefined;
const STARTER_TEST = ': the starter builds, its spec fails on an assertion, and it earns 0 points';
function everyStarter(ctx: TestContext): Promise<{ r: RunResult; report?: JsonReport }> {
  // The labs whose starter test this run runs (all, or those `-t` picked): their siblings' mode says.
  const chosen = new Set((ctx.task.suite?.tasks ?? []).filter((t) => t.mode === 'run' && t.name.endsWith(STARTER_TEST)).map((t) => t.name.slice(0, -STARTER_TEST.length).replace(/^'(.*)'$/, '$1')));
  const signal = ctx.signal;
  starterRun ??= (async () => {
    const out = join(workspace, 'starters.json');
    const specs = labs.filter((l) => chosen.has(l.id)).map((l) => l.spec);
    if (!specs.length) throw new Error(`no lab matched the starter tests of this run (${[...chosen].join(', ')})`);
    const r = await run('npx', ['vitest', 'run', '--project', 'labs', ...specs, '--reporter=json', `--outputFile=${out}`], {
      cwd: REPO_ROOT,
      env: { LAB_SRC: workspace, LABS_JUNIT: '', LABS_REPORT: 'off', LABS_STRICT: '0', CI: 'true' },
      timeoutMs: STARTERS_RUN_TIMEOUT_MS,
      reject: false,
      signal,
    });
    return { r, report: existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) as JsonReport : undefined };
  })();
  return starterRun;
}

describe('student starters', () => {
  beforeAll(() => {
    workspace = mkdtempSync(join(tmpdir(), 'starter-check-'));
    writeStarter(workspace);
  });
  afterAll(() => rmSync(workspace, { recursive: true, force: true }));

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

  it.for(labs)(`$id${STARTER_TEST}`, { timeout: STARTERS_RUN_TIMEOUT_MS + 60_000 }, async (lab, ctx) => {
    if (process.getuid?.() !== 0) {
      if (process.env.LABS_STRICT === '1') throw new Error('the starter check runs lab specs and needs root: sudo npm test');
      return;
    }
    const { r, report } = await everyStarter(ctx);
    expect(report, `the nested run wrote no report:\n${r.stderr.slice(-3000)}`).toBeDefined();
    const file = report!.testResults.find((f) => resolve(f.name) === resolve(REPO_ROOT, lab.spec));
    expect(file, 'the spec produced no results').toBeDefined();
    const tests = file!.assertionResults;
    const failed = tests.filter((t) => t.status === 'failed');
    expect(file!.message, `the spec file itself failed to run on the starter:\n${file!.message}`).not.toMatch(HARNESS_FAILURE);
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
