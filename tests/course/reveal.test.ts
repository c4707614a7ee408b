/**
 * Issue 28: hints on request (recorded, shown in the score), answers after the
 * work, and guides that hold neither (helpers/course/reveal.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { listLabs } from '../../helpers/course/labs.js';
import { answersGate, fold, HINTS_RECORD, hintsUsed, nextHint, parseSections, passedAgainst, readSections, recordPasses } from '../../helpers/course/reveal.js';
import { formatScore, gradeTable, scoreLab, scoreReport } from '../../helpers/course/grading.js';
import type { LabReport, LabsReport, TestReport } from '../../helpers/course/report-model.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'kl-reveal-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const HINTS = '# Hints — a/01-x\n\npreamble\n\n## Where to look\n\nread ptrace(2)\n\n## Which calls\n\nthe calls\nsecond line\n';

function labsRoot(): string {
  const root = tempDir();
  mkdirSync(join(root, 'a', '01-x'), { recursive: true });
  writeFileSync(join(root, 'a', '01-x', 'hints.md'), HINTS);
  mkdirSync(join(root, 'a', '02-y'), { recursive: true });
  writeFileSync(join(root, 'a', '02-y', 'answers.md.gz'), fold('# Answers\n\n## 1. Why?\n\nBecause.\n'));
  return root;
}

describe('hints.md and answers.md', () => {
  it('are read as their ## sections, in order, plain or folded (gzip, as in an edition)', () => {
    expect(parseSections(HINTS)).toEqual([{ title: 'Where to look', body: 'read ptrace(2)' }, { title: 'Which calls', body: 'the calls\nsecond line' }]);
    const root = labsRoot();
    expect(readSections('a/01-x', 'hints', root).map((s) => s.title)).toEqual(['Where to look', 'Which calls']);
    expect(readSections('a/02-y', 'answers', root)).toEqual([{ title: '1. Why?', body: 'Because.' }]);
    expect(readSections('a/02-y', 'hints', root)).toEqual([]);
  });

  it('a hint is shown one at a time and recorded in the sources; --again shows those seen without counting', () => {
    const root = labsRoot();
    const src = tempDir();
    const now = new Date('2026-12-04T10:00:00Z');
    const one = nextHint('a/01-x', src, { labsRoot: root, now });
    expect([one.number, one.total, one.hint?.title, one.earlier.length]).toEqual([1, 2, 'Where to look', 0]);
    expect(JSON.parse(readFileSync(join(src, HINTS_RECORD), 'utf8'))).toEqual({ 'a/01-x': { shown: 1, at: ['2026-12-04T10:00:00.000Z'] } });
    expect(nextHint('a/01-x', src, { labsRoot: root, again: true })).toMatchObject({ total: 2, earlier: [{ title: 'Where to look' }] });
    expect(hintsUsed(src).get('a/01-x')).toBe(1);
    expect(nextHint('a/01-x', src, { labsRoot: root }).hint?.title).toBe('Which calls');
    const done = nextHint('a/01-x', src, { labsRoot: root });
    expect(done.hint).toBeUndefined();
    expect(hintsUsed(src).get('a/01-x')).toBe(2);
  });

  it('a broken or hand-edited record counts nothing it cannot read', () => {
    const src = tempDir();
    writeFileSync(join(src, HINTS_RECORD), '{"a/01-x": {"shown": "lots"}, "b": {"shown": 2}, "c": {"shown": -1}}');
    expect([...hintsUsed(src)]).toEqual([['b', 2]]);
    writeFileSync(join(src, HINTS_RECORD), 'not json');
    expect(hintsUsed(src).size).toBe(0);
  });
});

const t = (name: string, state: TestReport['state']) => ({ name, state });
const labResult = (result: string, tests: { name: string; state: string }[], labSrc: string | null = null, errors: string[] = []) =>
  ({ labs: [{ id: 'a/01-x', result, tests, labSrc, errors, ranAt: '2026-12-04T10:00:00.000Z' }] });

describe('answers after the work', () => {
  it('open once the lab passed here, against the same sources', () => {
    expect(answersGate({ id: 'a/01-x' }, labResult('passed', [t('works', 'passed')]), null)).toEqual({ open: true });
    expect(answersGate({ id: 'a/01-x' }, labResult('passed', [t('works', 'passed')], '/home/s/labs'), '/home/s/labs')).toEqual({ open: true });
    // a host that lacks something: skipped, nothing failed
    expect(answersGate({ id: 'a/01-x' }, labResult('partial', [t('works', 'passed'), t('kvm part', 'skipped')]), null).open).toBe(true);
  });

  it('stay closed, saying what still fails, when it did not pass, did not run, or ran against other sources', () => {
    const failing = answersGate({ id: 'a/01-x' }, labResult('failed', [t('works', 'passed'), t('follows every child', 'failed')]), null);
    expect(failing.open).toBe(false);
    expect(!failing.open && failing.why).toContain('✘ follows every child');
    const none = answersGate({ id: 'a/01-x' }, undefined, null);
    expect(!none.open && none.why).toMatch(/no run of a\/01-x is recorded on this machine .*LABS_REPORT=off records nothing/);
    const reference = answersGate({ id: 'a/01-x' }, labResult('passed', [t('works', 'passed')], null), '/home/s/labs');
    expect(!reference.open && reference.why).toMatch(/last ran against c\/, not LAB_SRC=\/home\/s\/labs/);
    const broken = answersGate({ id: 'a/01-x' }, labResult('partial', [t('works', 'skipped')], null, ['beforeAll failed']), null);
    expect(broken.open).toBe(false);
  });
});

describe('passes per source directory', () => {
  it('a pass against the student\'s sources keeps the answers open after a run against a broken copy; a failed or earlier result records nothing', () => {
    const reports = tempDir();
    const mine = tempDir();
    const broken = tempDir();
    recordPasses(labResult('passed', [t('works', 'passed')], mine), mine, reports);
    recordPasses(labResult('failed', [t('works', 'failed')], broken), broken, reports);
    expect(passedAgainst('a/01-x', mine, reports)).toBe('2026-12-04T10:00:00.000Z');
    expect(passedAgainst('a/01-x', broken, reports)).toBeUndefined();
    recordPasses({ labs: [{ ...labResult('passed', [t('works', 'passed')]).labs[0]!, fromEarlierRun: true } as never] }, broken, reports);
    expect(passedAgainst('a/01-x', broken, reports)).toBeUndefined();
  });
});

describe('hints in the score', () => {
  const test = (name: string, state: TestReport['state']): TestReport => ({ name, fullName: name, state, adaptations: [], metrics: [] });
  const lab = (tests: TestReport[]): LabReport => ({
    id: 'a/01-x', area: 'a', order: 1, title: { zh: 'x', en: 'X' }, spec: 'labs/a/01-x/x.spec.ts', result: 'failed', adapted: false,
    counts: { passed: 2, failed: 1, skipped: 0 }, adaptations: [], skipReasons: [], errors: [], tests, metrics: [],
  });
  const tests = [test('a', 'passed'), test('b', 'passed'), test('c', 'failed')];

  it('are shown; they cost lab.json hintCost points each (default 0), never below 0', () => {
    expect(formatScore(scoreLab(lab(tests), undefined, true, { used: 2, cost: 0 })!)).toBe('2/3 (2 hints)');
    expect(formatScore(scoreLab(lab(tests), undefined, true, { used: 1, cost: 0.5 })!)).toBe('1.5/3 (1 hint: −0.5)');
    expect(scoreLab(lab(tests), undefined, true, { used: 5, cost: 1 })!.earned).toBe(0);
    expect(scoreLab(lab(tests), undefined, true)!.hints).toBeUndefined();
  });

  it('reach the report and the instructor table from the sources record', () => {
    const r: LabsReport = {
      schema: 1, generatedAt: '', runResult: 'failed', host: { hostname: 'h', kernel: 'k', labSrc: null, strict: true },
      summary: { labs: 1, ranThisRun: 1, passed: 0, failed: 1, skipped: 0, partial: 0, notRun: 0, adapted: 0 },
      labs: [lab(tests)], unmapped: [], unhandledErrors: [],
    };
    const scored = scoreReport(r, [{ id: 'a/01-x', hintCost: 1 }], new Map([['a/01-x', 1]]));
    expect(scored.labs[0]!.score).toMatchObject({ earned: 1, hints: 1, hintPoints: 1 });
    expect(gradeTable([{ name: 's1', report: scored }], [{ id: 'a/01-x' }])).toMatch(/1\/3 h1/);
  });
});

describe("the course's guides, hints and answers", () => {
  const labs = listLabs();
  it.each(labs)('$id: the guide holds no model answer and no further hint (they are in answers.md / hints.md)', (lab) => {
    const md = readFileSync(join(REPO_ROOT, 'labs', lab.id, 'README.md'), 'utf8');
    expect(md).not.toMatch(/<details>/);
    expect(md).not.toMatch(/Second hint|If you are stuck/i);
  });

  it.each(labs)('$id: its hints.md and answers.md parse, and the guide points to them', (lab) => {
    const md = readFileSync(join(REPO_ROOT, 'labs', lab.id, 'README.md'), 'utf8');
    const hints = readSections(lab.id, 'hints');
    const answers = readSections(lab.id, 'answers');
    for (const s of [...hints, ...answers]) expect(s.body.length, `${lab.id}: "${s.title}" is empty`).toBeGreaterThan(20);
    if (hints.length) expect(md).toContain(`npm run lab -- hint ${lab.id}`);
    if (answers.length) expect(md).toContain(`npm run lab -- answers ${lab.id}`);
  });

  it('every folded copy unfolds to its source', () => {
    const text = '## x\n\nsome answer\n';
    expect(gunzipSync(fold(text)).toString()).toBe(text);
    expect(fold(text).equals(fold(text)), 'the same bytes every time (the manifest hashes them)').toBe(true);
  });
});
