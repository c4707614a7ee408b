/**
 * helpers/course/grading.ts: points per test from lab.json, a lab's score,
 * the score lines, the CI summary, the LMS lines and the instructor's table.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listLabs } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import {
  checkPointsSpec, courseScore, formatScore, gradeTable, lmsLines, markdownSummary, pointsFor, scoreLab, scoreLines, scoreReport,
} from '../../helpers/course/grading.js';
import type { LabReport, LabsReport, TestReport } from '../../helpers/course/report-model.js';

const test = (name: string, state: TestReport['state'], extra: Partial<TestReport> = {}): TestReport =>
  ({ name, fullName: `Lab > ${name}`, state, adaptations: [], metrics: [], ...extra });

function lab(id: string, tests: TestReport[], extra: Partial<LabReport> = {}): LabReport {
  const n = (s: string) => tests.filter((t) => t.state === s).length;
  const counts = { passed: n('passed'), failed: n('failed'), skipped: n('skipped') };
  return {
    id, area: 'general', order: 0, title: { zh: '实验', en: `Lab ${id}` }, spec: `labs/${id}/x.spec.ts`,
    result: counts.failed ? 'failed' : counts.skipped ? (counts.passed ? 'partial' : 'skipped') : tests.length ? 'passed' : 'not run',
    adapted: false, counts, adaptations: [], skipReasons: [], errors: [], tests, metrics: [], ranAt: '2026-11-23T16:00:00.000Z', ...extra,
  };
}

function report(labs: LabReport[], strict = true): LabsReport {
  return {
    schema: 1, generatedAt: '2026-11-23T16:00:00.000Z', runResult: 'failed',
    host: { hostname: 'h', kernel: '6.18', labSrc: null, strict },
    summary: { labs: labs.length, ranThisRun: labs.length, passed: 0, failed: 0, skipped: 0, partial: 0, notRun: 0, adapted: 0 },
    labs, unmapped: [], unhandledErrors: [],
  };
}

describe('pointsFor', () => {
  const spec = { 'builds the student program': 3, 'builds': 2, 'drops every': 5, 'runs as root': 0 };
  it('takes an exact test name first, then the longest prefix, else 1 point', () => {
    expect(pointsFor('builds the student program', spec)).toBe(3);
    expect(pointsFor('builds the student program, which reports this kernel', spec)).toBe(3);
    expect(pointsFor('builds a second program', spec)).toBe(2);
    expect(pointsFor('drops every ICMP echo while attached', spec)).toBe(5);
    expect(pointsFor('runs as root, as the labs need', spec)).toBe(0);
    expect(pointsFor('counts the packets', spec)).toBe(1);
    expect(pointsFor('anything', undefined)).toBe(1);
    expect(pointsFor('control: has tracefs mounted', undefined), 'a control test checks the machine: 0 unless named').toBe(0);
    expect(pointsFor('control: has tracefs mounted', { 'control: has tracefs': 2 })).toBe(2);
    expect(pointsFor('control (the given code opens the files): uring_cp exits non-zero', undefined), 'control with its reason in parentheses').toBe(0);
    expect(pointsFor('controls the fan (not a control test)', undefined)).toBe(1);
  });

  it('rejects points that are not numbers >= 0', () => {
    expect(checkPointsSpec({ a: 1, b: 0 })).toEqual([]);
    expect(checkPointsSpec(undefined)).toEqual([]);
    expect(checkPointsSpec({ a: -1, b: '2' })).toHaveLength(2);
    expect(checkPointsSpec([1])).toHaveLength(1);
  });
});

describe('scoreLab', () => {
  const spec = { 'a ': 3 };
  it('earns the points of passed tests; failed and skipped points are counted apart', () => {
    const s = scoreLab(lab('x', [test('a one', 'passed'), test('a two', 'failed'), test('b', 'skipped'), test('c', 'passed')]), spec, false)!;
    expect(s).toMatchObject({ earned: 4, total: 8, failedPoints: 3, skippedPoints: 1, tests: { passed: 2, failed: 1, skipped: 1 }, strict: false });
    expect(formatScore(s)).toBe('4/8 (1 skipped)');
  });

  it('scores a lab with an error outside its tests 0, and says why', () => {
    const s = scoreLab(lab('x', [test('a one', 'passed')], { errors: ['beforeAll failed'] }), spec, true)!;
    expect(s.earned).toBe(0);
    expect(s.total).toBe(3);
    expect(formatScore(s)).toBe('0/3 (0: 1 error(s) outside the tests)');
  });

  it('gives no score to a lab that did not run', () => {
    expect(scoreLab(lab('x', []), undefined, true)).toBeUndefined();
  });
});

describe('scoreReport and what a run prints', () => {
  const r = scoreReport(report([
    lab('00-environment', [test('runs as root', 'passed'), test('builds the student program', 'failed'), test('makes the calls', 'passed')]),
    lab('ebpf/03-xdp', [test('drops', 'passed'), test('counts', 'passed')]),
    lab('cloud/03-kvm', []),
  ]), [{ id: '00-environment', points: { 'runs as root': 0, 'builds': 3, 'makes': 2 } }, { id: 'ebpf/03-xdp' }]);

  it('puts a score on every lab that ran, from its lab.json points', () => {
    expect(r.labs.map((l) => l.score && `${l.score.earned}/${l.score.total}`)).toEqual(['2/5', '2/2', undefined]);
    expect(courseScore(r)).toEqual({ earned: 4, total: 7, labs: 2 });
  });

  it('prints points/total per lab and the total', () => {
    expect(scoreLines(r)).toEqual([
      '[score] 00-environment  2/5',
      '[score] ebpf/03-xdp     2/2',
      '[score] total           4/7',
    ]);
    const loose = scoreLines(scoreReport(report([lab('x', [test('a', 'passed')])], false), []));
    expect(loose.at(-1)).toMatch(/not strict: CI grades with LABS_STRICT=1/);
  });

  it('renders the CI summary as Markdown, and flags changes outside c/', () => {
    const md = markdownSummary(r, { changedOutsideC: ['labs/ebpf/03-xdp/xdp.spec.ts'], revision: 'abc123' });
    expect(md).toContain('## Kernel labs: 4/7 points (abc123)');
    expect(md).toContain('| 00-environment · Lab 00-environment | failed | 2/5 | 2/1/0 |');
    expect(md).toContain('| cloud/03-kvm · Lab cloud/03-kvm | not run | – | 0/0/0 |');
    expect(md).toMatch(/> \[!WARNING\]\n> This push changes what is graded: 1 file\(s\) outside `c\/`/);
    expect(md).toContain('> - changed: `labs/ebpf/03-xdp/xdp.spec.ts`');
    expect(md).toContain('<summary>Failed tests</summary>');
    expect(markdownSummary(r)).not.toContain('WARNING');
  });

  it('writes one JSON line per lab that ran, for an LMS', () => {
    const lines = lmsLines(r, { repository: 'org/student-1', revision: 'abc', changedOutsideC: true }).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ lab: '00-environment', earned: 2, total: 5, strict: true, repository: 'org/student-1', revision: 'abc', changedOutsideC: true });
  });

  it('tabulates several students: points per lab, the total, strictness and changes outside c/', () => {
    const other = scoreReport(report([lab('00-environment', [test('builds the student program', 'passed'), test('x', 'skipped')])], false), [{ id: '00-environment', points: { builds: 3 } }]);
    const table = gradeTable([
      { name: 'alice', report: r },
      { name: 'bob', report: other, changedOutsideC: ['vitest.config.ts'] },
      { name: 'carol', report: undefined },
    ], [{ id: '00-environment' }, { id: 'ebpf/03-xdp' }]);
    const rows = table.split('\n');
    expect(rows[0]).toMatch(/^student\s+00-environment\s+ebpf\/03-xdp\s+total\s+strict\s+outside c\/$/);
    expect(rows[1]).toMatch(/^alice\s+2\/5\s+2\/2\s+4\/7\s+yes$/);
    expect(rows[2]).toMatch(/^bob\s+3\/4\*\s+–\s+3\/4\s+NO\s+1 changed$/);
    expect(rows[3]).toMatch(/^carol\s+\?\s+\?\s+no report/);
  });
});

describe('lab.json points tables', () => {
  const itNames = (spec: string) => [...readFileSync(join(REPO_ROOT, spec), 'utf8').matchAll(/\bit(?:\.\w+)*\(\s*(['"`])((?:\\.|(?!\1).)*)\1/g)].map((m) => m[2]!.replace(/\\(.)/g, '$1'));
  it.for(listLabs().filter((l) => l.points))('$id: points are numbers >= 0, each naming a test of its spec', (lab) => {
    expect(checkPointsSpec(lab.points)).toEqual([]);
    const names = itNames(lab.spec);
    for (const key of Object.keys(lab.points!)) {
      expect(names.some((n) => n.startsWith(key)), `"${key}" names no test of ${lab.spec} (tests: ${names.join(' | ')})`).toBe(true);
    }
  });
});

describe('a student program that does not build (issue 29: strict grading)', () => {
  it('fails its lab (the beforeAll error is the lab\'s), scores 0, and its skipped tests count as failed, not as the host\'s skips', async () => {
    const { buildReport } = await import('../../helpers/course/report-model.js');
    const skippedTest = (name: string) => ({
      name, fullName: `Lab > ${name}`, meta: () => ({}), result: () => ({ state: 'skipped' as const }), annotations: () => [], diagnostic: () => undefined,
    });
    const mod = {
      moduleId: join(REPO_ROOT, 'labs/x/01-y/y.spec.ts'), project: { name: 'labs' }, errors: () => [],
      children: {
        allTests: () => [skippedTest('counts the calls'), skippedTest('follows children')],
        allSuites: () => [{ errors: () => [{ name: 'CompileError', message: 'Compile failed at y.c:3: gcc …\ny.c:3:9: error: expected expression' }] }],
      },
      diagnostic: () => ({ duration: 12 }),
    };
    const labs = [{ id: 'x/01-y', area: 'x', order: 1, title: { zh: 'y', en: 'Y' }, spec: 'labs/x/01-y/y.spec.ts', sources: ['x/01-y/y.c'], requires: [] }];
    const r = scoreReport(buildReport([mod], { labs, root: REPO_ROOT, host: { strict: true, labSrc: null } }), labs);
    const l = r.labs.find((x) => x.id === 'x/01-y')!;
    expect(l.result).toBe('failed');
    expect(l.errors[0]).toMatch(/^Compile failed at y\.c:3/);
    expect(l.score).toMatchObject({ earned: 0, total: 2, failedPoints: 2, skippedPoints: 0 });
    expect(formatScore(l.score!)).toBe('0/2 (0: 1 error(s) outside the tests)');
  });
});
