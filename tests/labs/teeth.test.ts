/**
 * Teeth: every wrong program fails its lab on the test that names its mistake,
 * with a message that says why; every correct variant, written in another
 * style than the reference, passes every test. One runner for all of them
 * (tests/labs/fixtures.ts has the format). Root only, like the specs.
 *
 * TEETH=<lab id or its start> runs one lab's (or one area's) fixtures,
 * e.g. TEETH=net/01-epoll npx vitest run --project unit tests/labs/teeth.test.ts
 * A lab's fixtures run in one nested vitest (nested-run.ts runSpecBatch), one at a time, or two at a time where
 * the lab's lab.json says two runs share the machine ("sharesMachine"; TEETH_WORKERS=1 runs them one at a time);
 * TEETH_BATCH=0 runs each alone, as a student's run would start. A fixture whose
 * verdict does not hold runs once more, alone, and is then marked RETRIED
 * (annotation + log line); TEETH_RETRY=0 turns that off.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { run } from '../../helpers/harness/exec.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { skipOrFail, unmet } from '../../helpers/harness/requires.js';
import { listLabs } from '../../helpers/course/labs.js';
import { loadFixtures, selector, titleOf, untilPattern, type Fixture } from './fixtures.js';
import { HARNESS_FAILURE, runSpecBatch, runSpecNested, type NestedRunResult, type NestedTestResult } from './nested-run.js';

const all = loadFixtures();
const only = process.env.TEETH;
const chosen = only ? all.filter((f) => f.lab.startsWith(only)) : all;
const root = process.getuid?.() === 0;
/** Labs whose lab.json says two runs may share the machine: their fixtures run two at a time (TEETH_WORKERS=1: one). */
const sharing = new Set(listLabs().filter((l) => l.sharesMachine).map((l) => l.id));
const workersFor = (lab: string) => (sharing.has(lab) ? Math.max(1, Number(process.env.TEETH_WORKERS ?? 2) || 1) : 1);

/** The spec's tests in order, listed once per spec (vitest list: collects, runs nothing). */
const listings = new Map<string, Promise<string[]>>();
function listTests(spec: string): Promise<string[]> {
  if (!listings.has(spec)) {
    // To a file, not stdout: the global setup may print there first (e.g. what it reaped of an earlier run).
    const dir = mkdtempSync(join(tmpdir(), 'teeth-list-'));
    const out = join(dir, 'list.json');
    listings.set(spec, run('npx', ['vitest', 'list', '--project', 'labs', spec, `--json=${out}`], {
      cwd: REPO_ROOT, env: { LABS_JUNIT: '', LABS_REPORT: 'off', LABS_STRICT: '1', CI: 'true' }, timeoutMs: 120_000,
    }).then(() => (JSON.parse(readFileSync(out, 'utf8')) as { name: string }[]).map((t) => t.name))
      .finally(() => rmSync(dir, { recursive: true, force: true })));
  }
  return listings.get(spec)!;
}

const summary = (tests: readonly NestedTestResult[]) => tests
  .filter((t) => t.status !== 'skipped' && t.status !== 'pending')
  .map((t) => `${t.status}: ${t.title}${t.failureMessages.length ? `\n    ${t.failureMessages[0]!.split('\n').slice(0, 4).join('\n    ')}` : ''}`)
  .join('\n');

/**
 * A lab's fixtures run in one nested vitest (runSpecBatch: one start, one host probe, a worker per fixture), started
 * by the first of its tests to ask; a fixture the batch has no result for runs alone, as before.
 */
const batches = new Map<string, Promise<Map<string, NestedRunResult>>>();
function labBatch(lab: string, signal: AbortSignal): Promise<Map<string, NestedRunResult>> {
  if (!batches.has(lab)) {
    const fixtures = chosen.filter((x) => x.lab === lab);
    batches.set(lab, (async () => {
      const listed = await listTests(fixtures[0]!.spec);
      const items = fixtures.map((f) => ({ id: f.name, base: f.base, replace: f.replaces, only: f.expect === 'fail' ? untilPattern(f, listed) : undefined, uncontained: Boolean(f.uncontained) }));
      return runSpecBatch(fixtures[0]!.spec, items, { signal, workers: workersFor(lab) });
    })().catch(() => new Map()));
  }
  return batches.get(lab)!;
}

/**
 * A fixture whose verdict does not hold runs once more, alone (TEETH_RETRY=0: never). The labs draw random inputs
 * and run on a noisy machine, so a wrong program may now and then be caught by its test with another of the
 * test's reasons, or a correct variant miss a margin: a second run tells a rare draw from a spec that lost its
 * teeth. Never silent: the test carries an annotation (in the JUnit report) and the log a "[teeth] RETRIED" line
 * with the first run's reason, to be fixed like any failure.
 */
async function check(f: Fixture, signal: AbortSignal, ctx: TestContext): Promise<string> {
  const listed = await listTests(f.spec);
  const pattern = f.expect === 'fail' ? untilPattern(f, listed) : undefined;
  const alone = () => runSpecNested(f.spec, { base: f.base, replace: f.replaces, only: pattern, uncontained: Boolean(f.uncontained), timeoutMs: 15 * 60_000, signal });
  const r = process.env.TEETH_BATCH === '0' ? undefined : (await labBatch(f.lab, signal)).get(f.name);
  if (!r) console.log(`[teeth] ${f.lab}/${f.name}: run alone (${process.env.TEETH_BATCH === '0' ? 'TEETH_BATCH=0' : 'no result in its lab\'s batch'})`);
  const first = r ?? await alone();
  try {
    return judgeRun(f, listed, first);
  } catch (e) {
    if (process.env.TEETH_RETRY === '0' || signal.aborted) throw e;
    const why = f.expect === 'pass' ? correctVariantMisses(first) ?? firstRunReason(e) : firstRunReason(e);
    console.log(`[teeth] ${f.lab}/${f.name}: did not hold on its first run, running it once more: ${why}`);
    let verdict: string;
    try {
      verdict = judgeRun(f, listed, await alone());
    } catch (again) {
      if (again instanceof Error) again.message += `\n(its first run did not hold either: ${why})`;
      throw again;
    }
    const note = `RETRIED: held only on its second run; the first run: ${why}`;
    console.log(`[teeth] ${f.lab}/${f.name}: ${note}`);
    await ctx.annotate(note, 'retried');
    return `${verdict} (${note})`;
  }
}

/** The first lines of a verdict that did not hold (an assertion's message, then what it received). */
function firstRunReason(e: unknown): string {
  const lines = (e instanceof Error ? e.message : String(e)).split('\n').map((l) => l.trim()).filter(Boolean);
  // A correct variant's summary lists every test: keep its first line and the tests that failed, each with its first line.
  const failed = lines.flatMap((l, i) => (/^failed: /.test(l) ? [l, lines[i + 1] ?? ''] : []));
  return (failed.length ? [lines[0]!, ...failed] : lines.slice(0, 3)).join(' / ').slice(0, 600);
}

/**
 * What a correct variant's first run missed, whole (each failed test's title and message, up to 4000 characters):
 * a correct program that misses a margin is fixed from the evidence its message shows (a lab's table of figures).
 */
function correctVariantMisses(r: NestedRunResult): string | undefined {
  const failed = r.tests.filter((t) => t.status === 'failed');
  return failed.length ? failed.map((t) => `failed: ${t.title}\n${t.failureMessages.join('\n')}`).join('\n').slice(0, 4000) : undefined;
}

function judgeRun(f: Fixture, listed: readonly string[], r: NestedRunResult): string {
  expect(r.fileMessage, `${f.name}: the spec file failed to run`).not.toMatch(HARNESS_FAILURE);
  const tests = r.tests;
  const lines = summary(tests) || r.fileMessage;
  if (f.expect === 'pass') {
    expect(tests.filter((t) => t.status !== 'passed').map((t) => `${t.status}: ${t.title}`), `${f.name} is correct (${f.why}) but:\n${lines}`).toEqual([]);
    expect(tests.length, `${f.name}: the spec lists ${listed.length} tests`).toBe(listed.length);
    return `passed all ${tests.length} tests`;
  }
  const failed = tests.filter((t) => t.status === 'failed');
  expect(failed.length, `${f.name} (${f.why}) PASSED every test it ran:\n${lines}`).toBeGreaterThan(0);
  for (const t of failed) expect(t.failureMessages.join('\n'), `${f.name}: "${t.title}" failed for a harness reason`).not.toMatch(HARNESS_FAILURE);
  const said: string[] = [];
  for (const want of f.failing) {
    const re = selector(want.test);
    const hit = failed.find((t) => re.test(t.title));
    expect(hit, `${f.name} must fail "${want.test}":\n${lines}`).toBeDefined();
    if (want.message) {
      const got = hit!.failureMessages.join('\n');
      // the message it did give, in the assertion's own text: vitest cuts the received string to its first line
      const gave = got.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 4).join(' / ').slice(0, 400);
      expect(got, `${f.name}: "${hit!.title}" must say why; it said: ${gave}`).toMatch(selector(`/${want.message}/`));
    }
    said.push(`${hit!.title}: ${hit!.failureMessages[0]?.split('\n')[0] ?? ''}`);
  }
  for (const sel of f.passes) {
    const re = selector(sel);
    const bad = tests.filter((t) => re.test(titleOf(t.title)) && t.status !== 'passed');
    expect(bad.map((t) => `${t.status}: ${t.title}`), `${f.name} must still pass "${sel}":\n${lines}`).toEqual([]);
    expect(tests.some((t) => re.test(t.title)), `${f.name}: "${sel}" matched no test`).toBe(true);
  }
  return `failed as expected: ${said.join(' | ')}`;
}

describe('wrong programs fail their lab, correct variants pass it', () => {
  it('has fixtures, each well-formed (tests/labs/fixtures.ts)', () => {
    expect(all.length).toBeGreaterThan(0);
    if (only) expect(chosen.length, `TEETH=${only} matches no lab with fixtures`).toBeGreaterThan(0);
  });

  for (const lab of [...new Set(chosen.map((f) => f.lab))]) {
    describe.skipIf(!root && process.env.LABS_STRICT !== '1')(lab, () => {
      const fixtures = chosen.filter((x) => x.lab === lab);
      for (const f of fixtures) {
        // The first test of a lab waits for the whole batch.
        it(f.title, { timeout: (16 + 3 * fixtures.length) * 60_000 }, async (ctx) => {
          if (!root) throw new Error('the teeth run lab specs and need root');
          // Where the host lacks what the lab (or this program's mistake) needs, the lab's tests skip and the fixture proves
          // nothing: skipped with that reason (a failure under LABS_STRICT=1), as the labs project skips the lab.
          const reason = await unmet(f.requires);
          if (reason) skipOrFail(ctx, reason);
          console.log(`[teeth] ${f.lab}/${f.name}: ${await check(f, ctx.signal, ctx)}`);
        });
      }
    });
  }
});
