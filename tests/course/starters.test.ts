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
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../helpers/harness/exec.js';
import { listLabs } from '../../helpers/course/labs.js';
import { pointsFor } from '../../helpers/course/grading.js';
import { findRegions } from '../../helpers/course/markers.js';
import { REFERENCE_SRC, REPO_ROOT } from '../../helpers/harness/paths.js';
import { writeStarter } from '../../scripts/starter.js';

const labs = listLabs();
/** One nested lab run; K3's starter means a kernel rebuild (~7 min here) on a clean machine. */
const NESTED_RUN_TIMEOUT_MS = 30 * 60_000;

interface JsonAssertion { title: string; fullName: string; status: string; failureMessages: string[] }
interface JsonReport { testResults: { name: string; status: string; message: string; assertionResults: JsonAssertion[] }[] }

/** Failures that mean the harness or the build broke, not the student's outcome. */
const HARNESS_FAILURE = /CompileError|E_COMPILE|bpftrace rejected|MarkerError|E_SOURCE|Cannot find module|SyntaxError: |Failed to load|ReferenceError/;

describe('student starters', () => {
  let workspace = '';
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

  it.for(labs)('$id: the starter builds, its spec fails on an assertion, and it earns 0 points', { timeout: NESTED_RUN_TIMEOUT_MS + 60_000 }, async (lab, ctx) => {
    if (process.getuid?.() !== 0) {
      if (process.env.LABS_STRICT === '1') throw new Error('the starter check runs lab specs and needs root: sudo npm test');
      return;
    }
    const out = join(workspace, `${lab.id.replace(/\//g, '_')}.json`);
    const r = await run('npx', ['vitest', 'run', '--project', 'labs', lab.spec, '--reporter=json', `--outputFile=${out}`], {
      cwd: REPO_ROOT,
      env: { LAB_SRC: workspace, LABS_JUNIT: '', LABS_REPORT: 'off', LABS_STRICT: '0', CI: 'true' },
      timeoutMs: NESTED_RUN_TIMEOUT_MS,
      reject: false,
      signal: ctx.signal,
    });
    expect(existsSync(out), `the nested run wrote no report:\n${r.stderr.slice(-3000)}`).toBe(true);
    const report = JSON.parse(readFileSync(out, 'utf8')) as JsonReport;
    const file = report.testResults[0];
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
