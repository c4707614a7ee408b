/**
 * Issue 29: a run notices when what is graded changes while it grades
 * (helpers/course/tamper.ts); the end-to-end route (a Lab 0 program that
 * rewrites a later spec) is in tests/course/edition.test.ts.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, copyFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprint, fingerprintDiff, TamperWatch, tamperingMessage } from '../../helpers/course/tamper.js';
import { markdownSummary, gradeTable } from '../../helpers/course/grading.js';
import type { LabsReport } from '../../helpers/course/report-model.js';
import { closingLines } from '../../helpers/course/report-console.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function course(): string {
  const root = mkdtempSync(join(tmpdir(), 'kl-tamper-'));
  dirs.push(root);
  for (const d of ['labs/a', 'helpers', 'node_modules/vitest', 'node_modules/.vite', 'c', 'reports']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'labs/a/a.spec.ts'), 'spec a\n');
  writeFileSync(join(root, 'labs/a/b.spec.ts'), 'spec b\n');
  writeFileSync(join(root, 'helpers/h.ts'), 'helper\n');
  writeFileSync(join(root, 'node_modules/vitest/index.js'), 'vitest\n');
  writeFileSync(join(root, 'package.json'), '{}\n');
  return root;
}

describe('the course fingerprint', () => {
  it('sees a graded file changed, added or removed, and not the run\'s own writes (c/, reports/, vite cache)', () => {
    const root = course();
    const before = fingerprint(root, []);
    writeFileSync(join(root, 'c/prog.c'), 'the student\'s work\n');
    writeFileSync(join(root, 'reports/labs.json'), '{}\n');
    writeFileSync(join(root, 'node_modules/.vite/results.json'), '{}\n');
    expect(fingerprintDiff(before, fingerprint(root, []))).toEqual([]);
    writeFileSync(join(root, 'labs/a/b.spec.ts'), 'it.skip()\n');
    writeFileSync(join(root, 'helpers/shim.ts'), 'x\n');
    unlinkSync(join(root, 'node_modules/vitest/index.js'));
    expect(fingerprintDiff(before, fingerprint(root, []))).toEqual([
      'added: helpers/shim.ts', 'changed: labs/a/b.spec.ts', 'removed: node_modules/vitest/index.js',
    ]);
  });

  it('sees a file rewritten and put back, same bytes (its ctime moved), or swapped for a copy (another inode)', () => {
    const root = course();
    const before = fingerprint(root, []);
    const spec = join(root, 'labs/a/b.spec.ts');
    copyFileSync(spec, `${spec}.orig`);
    writeFileSync(spec, 'it.skip()\n');
    renameSync(`${spec}.orig`, spec);
    expect(fingerprintDiff(before, fingerprint(root, []))).toEqual(['changed: labs/a/b.spec.ts']);
  });

  it('TamperWatch taints the lab file during which it changed and every later one', () => {
    const root = course();
    const w = new TamperWatch(root, []);
    expect(w.check('labs/a/a.spec.ts')).toBeUndefined();
    writeFileSync(join(root, 'labs/a/b.spec.ts'), 'it.skip()\n');
    const t = w.check('labs/x/1.spec.ts')!;
    expect(t).toMatchObject({ after: 'labs/x/1.spec.ts', changes: ['changed: labs/a/b.spec.ts'], count: 1 });
    w.check('labs/x/2.spec.ts');
    expect([...w.tainted]).toEqual(['labs/x/1.spec.ts', 'labs/x/2.spec.ts']);
    expect(tamperingMessage(t)).toMatch(/^tampering: the course changed while it was graded \(found after labs\/x\/1\.spec\.ts\): changed: labs\/a\/b\.spec\.ts\. Every lab from there on scores 0/);
  });

  it('the summary, the closing lines and the instructor table say it first', () => {
    const report: LabsReport = {
      schema: 1, generatedAt: '', runResult: 'failed', host: { hostname: 'h', kernel: 'k', labSrc: null, strict: true },
      summary: { labs: 0, ranThisRun: 0, passed: 0, failed: 0, skipped: 0, partial: 0, notRun: 0, adapted: 0 },
      labs: [], unmapped: [], unhandledErrors: [], tampering: { after: 'labs/x/1.spec.ts', changes: ['changed: labs/a/b.spec.ts'], count: 1 },
    };
    expect(markdownSummary(report).split('\n').slice(2, 4).join('\n')).toMatch(/\[!CAUTION\]\n> \*\*Tampering\*\*/);
    expect(closingLines(report)[0]).toMatch(/^TAMPERING: /);
    expect(gradeTable([{ name: 's', report }], [])).toMatch(/TAMPERED/);
  });

  it('markTampered fails the tainted labs of this run and recounts the summary and this run, earlier results untouched', async () => {
    const { markTampered } = await import('../../helpers/course/report-model.js');
    const lab = (id: string, extra: object = {}) => ({
      id, area: 'a', order: 1, title: { zh: id, en: id }, spec: `labs/${id}/x.spec.ts`, result: 'passed' as const, adapted: false,
      counts: { passed: 1, failed: 0, skipped: 0 }, adaptations: [], skipReasons: [], errors: [], tests: [], metrics: [], ...extra,
    });
    const report: LabsReport = {
      schema: 1, generatedAt: '', runResult: 'passed', host: { hostname: 'h', kernel: 'k', labSrc: null, strict: true },
      summary: { labs: 3, ranThisRun: 2, passed: 3, failed: 0, skipped: 0, partial: 0, notRun: 0, adapted: 0 },
      thisRun: { labs: [{ id: 'a/1', result: 'passed' }, { id: 'a/2', result: 'passed' }], labSrc: null, passed: 2, failed: 0, skipped: 0, partial: 0 },
      labs: [lab('a/1'), lab('a/2'), lab('a/3', { fromEarlierRun: true })], unmapped: [], unhandledErrors: [],
    };
    const t = { after: 'labs/a/2/x.spec.ts', changes: ['changed: labs/a/1/x.spec.ts'], count: 1 };
    const r = markTampered(report, t, new Set(['labs/a/2/x.spec.ts', 'labs/a/3/x.spec.ts']), 'tampering: …');
    expect(r.labs.map((l) => l.result)).toEqual(['passed', 'failed', 'passed']);
    expect(r.labs[1]!.errors).toEqual(['tampering: …']);
    expect(r.summary).toMatchObject({ passed: 2, failed: 1, ranThisRun: 2 });
    expect(r.thisRun).toMatchObject({ passed: 1, failed: 1 });
    expect(r.runResult).toBe('failed');
  });
});

