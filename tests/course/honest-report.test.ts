/**
 * Honest reports (issue 12): a failed test's figures are withheld and said
 * to be "not measured"; the closing lines keep this run (its labs, its
 * sources) apart from the course total and from other runs writing the same
 * report; two runs at once do not lose each other's labs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildReport } from '../../helpers/course/report-model.js';
import { closingLines } from '../../helpers/course/report-console.js';
import { renderHtml } from '../../helpers/course/report-html.js';
import { lockReportDir } from '../../helpers/course/report-store.js';
import { fakeModule, LABS } from '../fixtures/lab-reporter/fake-run.js';

const NOW = new Date('2026-01-02T03:04:05Z');
const HOST = { hostname: 'testhost', kernel: '6.1.0-test', labSrc: '/home/student/labs', strict: false };
const fio = LABS.find((l) => l.id === 'io_uring/01-fio')!;
const env = LABS.find((l) => l.id === '00-environment')!;
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// A copy program that copied nothing is fast: the figure its failed test recorded must not reach the report.
const wrongCopy = fakeModule(fio, 'io_uring', [
  { name: 'copies byte for byte', state: 'failed', error: { message: 'uring_cp on a 1-byte file: the copy was wrong: the copy differs from the source: first differing byte at offset 0' } },
  { name: 'records the throughput of the naive copy', state: 'failed', metrics: [{ name: 'uring_cp best of 3', value: 16000, unit: 'MiB/s' }],
    error: { message: 'uring_cp (timed): the copy was wrong: the destination was not created\nmore' } },
  { name: 'counts requests', state: 'passed', metrics: [{ name: 'READ requests', value: 2048, unit: 'requests' }] },
]);

describe('figures of a wrong program are withheld', () => {
  const report = buildReport([wrongCopy], { labs: LABS, now: NOW, host: HOST });
  const lab = report.labs.find((l) => l.id === 'io_uring/01-fio')!;

  it('keeps the figures of passed tests only', () => {
    expect(lab.metrics.map((m) => m.name)).toEqual(['READ requests']);
    expect(JSON.stringify(report)).not.toContain('16000');
  });

  it('says which figures were not measured and why (the first line of the failure)', () => {
    expect(lab.notMeasured).toEqual([{ test: 'records the throughput of the naive copy', figures: ['uring_cp best of 3'], reason: 'uring_cp (timed): the copy was wrong: the destination was not created' }]);
    expect(renderHtml(report)).toContain('not measured (records the throughput of the naive copy: uring_cp best of 3): uring_cp (timed): the copy was wrong');
  });

  it('lists a failed measuring test even when it failed before recording anything', () => {
    const r = buildReport([fakeModule(fio, 'io_uring', [{ name: 'records the throughput', state: 'failed', error: { message: 'the copy was wrong' } }])], { labs: LABS, now: NOW, host: HOST });
    expect(r.labs.find((l) => l.id === fio.id)!.notMeasured).toEqual([{ test: 'records the throughput', figures: [], reason: 'the copy was wrong' }]);
  });
});

describe('the closing lines: this run apart from the course total', () => {
  const earlier = buildReport([fakeModule(env, 'env', [{ name: 'prints', state: 'passed' }])], { labs: LABS, now: new Date('2026-01-01T00:00:00Z'), host: { ...HOST, labSrc: null } });
  const report = buildReport([wrongCopy], { labs: LABS, now: NOW, host: HOST, previous: earlier });

  it('names the labs of this run, their results and the sources they ran against', () => {
    expect(report.thisRun).toEqual({ labs: [{ id: 'io_uring/01-fio', result: 'failed' }], labSrc: '/home/student/labs', passed: 0, failed: 1, skipped: 0, partial: 0 });
    expect(closingLines(report)[0]).toBe('this run, against LAB_SRC=/home/student/labs: io_uring/01-fio failed (0 passed, 1 failed)');
  });

  it('counts the course total apart, with the results from earlier runs and their sources marked', () => {
    expect(closingLines(report)[1]).toMatch(/^course total: 1 passed, 1 failed, .* 1 of these results are from earlier runs \(marked "earlier run" in the report; against the reference c\/\)$/);
    expect(renderHtml(report)).toContain('<b>This run</b>, against <code>LAB_SRC=/home/student/labs</code>: <a href="#lab-io_uring-01-fio">io_uring/01-fio</a> failed.');
  });

  it('ends with what was not measured in this run', () => {
    expect(closingLines(report)).toContain('io_uring/01-fio: not measured (records the throughput of the naive copy): uring_cp (timed): the copy was wrong: the destination was not created');
  });
});

describe('two runs writing one report', () => {
  it('take the report lock in turn: the second waits, then gets it once the first releases it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kl-lock-')); dirs.push(dir);
    const release = lockReportDir(dir);
    expect(() => lockReportDir(dir, 200)).toThrow(/another run holds/);
    release();
    lockReportDir(dir, 200)();
  });

  it('take over a lock left by a run that was killed while writing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kl-lock-')); dirs.push(dir);
    lockReportDir(dir); // never released
    expect(() => lockReportDir(dir, 200, 0)).not.toThrow();
  });
});
