/**
 * The results report: what helpers/course/reporter.ts makes of a run — first
 * from recorded-looking TestModule objects (fixtures/lab-reporter/fake-run.ts),
 * then from a real vitest run of a demo lab that records figures, adapts,
 * skips and fails through the harness API.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { courseOrder } from '../../helpers/course/labs.js';
import LabReporter from '../../helpers/course/reporter.js';
import { buildReport, mergeReports, type LabReport, type LabsReport } from '../../helpers/course/report-model.js';
import { renderHtml } from '../../helpers/course/report-html.js';
import { readReport, writeReport } from '../../helpers/course/report-store.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { KPROBE_ADAPTATION, KVM_SKIP, LABS, MODULES } from '../fixtures/lab-reporter/fake-run.js';

const NOW = new Date('2026-01-02T03:04:05Z');
const HOST = { hostname: 'testhost', kernel: '6.1.0-test', labSrc: null, strict: false };
const tmpDirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'kl-reporter-test-')); tmpDirs.push(d); return d; };
afterAll(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

function lab(report: LabsReport, id: string): LabReport {
  const found = report.labs.find((l) => l.id === id);
  if (!found) throw new Error(`no lab ${id} in report: ${report.labs.map((l) => l.id).join(', ')}`);
  return found;
}

describe('buildReport: one entry per lab with results, skips, adaptations and figures', () => {
  const report = buildReport(MODULES, { labs: LABS, runResult: 'failed', now: NOW, host: HOST });

  it('lists every lab of the course in order, those this run did not touch as "not run"', () => {
    expect(report.labs.map((l) => [l.id, l.result])).toEqual([
      ['00-environment', 'failed'],
      ['ebpf/01-exec-tracer', 'passed'],
      ['io_uring/01-fio', 'passed'],
      ['cloud/03-kvm', 'skipped'],
      ['kernel/K9-never-run', 'not run'],
    ]);
    expect(report.summary).toEqual({ labs: 5, ranThisRun: 4, passed: 2, failed: 1, skipped: 1, partial: 0, notRun: 1, adapted: 1 });
    expect(report.unmapped).toEqual([]);
  });

  it("keeps a failure's message and diff without terminal colours, and where in the spec it failed", () => {
    const t = lab(report, '00-environment').tests[1]!;
    expect(t.state).toBe('failed');
    expect(t.failure).toContain('release=? pid=0 ppid=0 raw_pid=-1');
    expect(t.failure).toContain('+   "pid": "0",');
    expect(t.failure).not.toMatch(/\u001b\[/);
    expect(t.failedAt).toBe('labs/00-environment/environment.spec.ts:53:51');
  });

  it('gives the skip reason (with its fix) for each skipped test and for the lab', () => {
    const kvm = lab(report, 'cloud/03-kvm');
    expect(kvm.tests.map((t) => t.skipReason)).toEqual([KVM_SKIP, KVM_SKIP]);
    expect(kvm.skipReasons).toEqual([KVM_SKIP]);
  });

  it('says how the host adapted a lab, once, though both meta and annotations carry it', () => {
    const ebpf = lab(report, 'ebpf/01-exec-tracer');
    expect(ebpf.adapted).toBe(true);
    expect(ebpf.adaptations).toEqual([KPROBE_ADAPTATION]);
    expect(ebpf.tests[0]!.adaptations).toEqual([KPROBE_ADAPTATION]);
  });

  it('collects every figure with the test that measured it', () => {
    const fio = lab(report, 'io_uring/01-fio');
    expect(fio.metrics).toHaveLength(8);
    expect(fio.metrics[1]).toEqual({ name: 'io_uring IOPS (randread 4k QD64)', value: 349_000, unit: 'IOPS', group: 'fio randread 4k', test: 'io_uring reaches at least the IOPS of libaio' });
  });

  it('counts a failed beforeAll (an error outside the tests) as a failed lab', () => {
    const broken = buildReport([{ ...MODULES[2]!, errors: () => [{ message: 'beforeAll: fio --version failed' }], children: { allTests: () => [] } }], { labs: LABS, now: NOW, host: HOST });
    const fio = lab(broken, 'io_uring/01-fio');
    expect(fio.result).toBe('failed');
    expect(fio.errors).toEqual(['beforeAll: fio --version failed']);
  });

  it('reports spec files that no lab.json names, instead of dropping them', () => {
    const stray = buildReport([{ ...MODULES[0]!, moduleId: join(REPO_ROOT, 'labs/zz/stray.spec.ts') }], { labs: LABS, now: NOW, host: HOST });
    expect(stray.unmapped.map((u) => [u.spec, u.result])).toEqual([['labs/zz/stray.spec.ts', 'failed']]);
  });
});

describe('courseOrder', () => {
  it("orders labs as the seed's course: by area, then their order within it (lab.json orders restart per area)", () => {
    const mk = (id: string, area: string, order: number) => ({ id, area, order });
    const labs = [mk('kernel/K1', 'kernel', 1), mk('cloud/01', 'cloud', 1), mk('zz/01', 'zz', 1), mk('ebpf/02', 'ebpf', 2), mk('io_uring/01', 'io_uring', 1),
      mk('ebpf/01', 'ebpf', 1), mk('aa/01', 'aa', 1), mk('00-environment', 'general', 0)];
    expect(courseOrder(labs).map((l) => l.id)).toEqual(['00-environment', 'ebpf/01', 'ebpf/02', 'io_uring/01', 'cloud/01', 'kernel/K1', 'aa/01', 'zz/01']);
  });
});

describe('earlier results and CI shards', () => {
  const full = buildReport(MODULES, { labs: LABS, now: NOW, host: HOST });

  it('keeps the last result of labs this run did not touch, marked as from an earlier run', () => {
    const later = new Date('2026-01-02T04:00:00Z');
    const one = buildReport([MODULES[0]!], { labs: LABS, previous: full, now: later, host: { ...HOST, labSrc: '/home/s/my-labs' } });
    expect(lab(one, '00-environment')).toMatchObject({ result: 'failed', ranAt: later.toISOString(), labSrc: '/home/s/my-labs' });
    // Which sources each result came from: the student's workspace now, the reference earlier.
    expect(lab(one, 'io_uring/01-fio').labSrc).toBeNull();
    expect(renderHtml(one)).toContain('ran against <code>LAB_SRC=/home/s/my-labs</code>');
    expect(renderHtml(one)).toContain('ran against the reference <code>c/</code>');
    expect(lab(one, '00-environment').fromEarlierRun).toBeUndefined();
    expect(lab(one, 'io_uring/01-fio')).toMatchObject({ result: 'passed', fromEarlierRun: true, ranAt: NOW.toISOString() });
    expect(one.summary.ranThisRun).toBe(1);
    expect(renderHtml(one)).toContain('result from an earlier run (2026-01-02T03:04:05.000Z)');
  });

  it('drops an earlier result when the lab now has a different spec', () => {
    const moved = LABS.map((l) => (l.id === 'io_uring/01-fio' ? { ...l, spec: 'labs/io_uring/01-fio/renamed.spec.ts' } : l));
    const one = buildReport([MODULES[0]!], { labs: moved, previous: full, now: NOW, host: HOST });
    expect(lab(one, 'io_uring/01-fio').result).toBe('not run');
  });

  it('merges shard reports: each lab from the shard that ran it', () => {
    const shard1 = buildReport(MODULES.slice(0, 2), { labs: LABS, runResult: 'failed', now: NOW, host: { ...HOST, hostname: 'runner-1' } });
    const shard2 = buildReport(MODULES.slice(2), { labs: LABS, runResult: 'passed', now: NOW, host: { ...HOST, hostname: 'runner-2' } });
    const merged = mergeReports([shard1, shard2], NOW);
    expect(merged.labs.map((l) => [l.id, l.result])).toEqual(full.labs.map((l) => [l.id, l.result]));
    expect(merged.runResult).toBe('failed');
    expect(merged.host.hostname).toBe('runner-1, runner-2');
    expect(merged.summary).toEqual(full.summary);
  });
});

describe('renderHtml: a self-contained page', () => {
  const html = renderHtml(buildReport(MODULES, { labs: LABS, runResult: 'failed', now: NOW, host: HOST }));

  it('loads nothing from elsewhere: no scripts, stylesheets, fonts, images or URLs', () => {
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|@font-face/i);
    const urls = html.match(/(?:https?|ftp):\/\/[^\s"'<>]+/g) ?? [];
    expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg')).toEqual([]);
  });

  it('escapes what tests print', () => {
    expect(html).toContain('workload &lt;with&gt; &quot;quotes&quot; &amp; ampersands');
    expect(html).not.toContain('<with>');
  });

  it('draws one bar chart per group and unit with at least two figures, bars scaled to the largest', () => {
    const charts = [...html.matchAll(/<svg class="chart"[^>]*aria-label="([^"]+)"/g)].map((m) => m[1]);
    expect(charts).toEqual([
      'exec events (events)',
      'fio randread 4k (IOPS)',
      'fio randread 4k (µs)',
      'syscalls per 64 MiB copy (syscalls)',
    ]);
    const iops = html.slice(html.indexOf('aria-label="fio randread 4k (IOPS)"')).split('</svg>')[0]!;
    const widths = [...iops.matchAll(/<rect [^>]*width="([\d.]+)"[^>]*data-value="(\d+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(widths).toEqual([[Number(((268_000 / 349_000) * 380).toFixed(1)), 268_000], [380, 349_000]]);
  });

  it('tabulates every figure, the failure with where to look, the skip reason and the adaptation', () => {
    expect(html).toContain('<td class="num">349,000</td><td>IOPS</td>');
    expect(html).toContain('<td class="num">1.3</td><td>ratio</td>');
    expect(html).toContain('look at <code>labs/00-environment/environment.spec.ts:53:51</code>');
    expect(html).toContain('release=? pid=0 ppid=0 raw_pid=-1');
    expect(html).toContain(`skipped: ${KVM_SKIP}`);
    expect(html).toContain(KPROBE_ADAPTATION);
    expect(html).toContain('通用准备工作');
  });

  it('is written to labs.json and labs.html and read back', () => {
    const dir = tmp();
    const report = buildReport(MODULES, { labs: LABS, now: NOW, host: HOST });
    const files = writeReport(report, dir);
    expect(readReport(files.json)).toEqual(report);
    expect(readFileSync(files.html, 'utf8')).toBe(renderHtml(report));
  });
});

describe('LabReporter in a real vitest run', () => {
  it('writes the demo lab: figures, adaptation, skip reason and the failed assertion with its evidence', async () => {
    const out = tmp();
    const fixture = join(REPO_ROOT, 'tests', 'fixtures', 'lab-reporter');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VITEST|LABS_STRICT|LABS_JUNIT|LABS_RUN_ID|LAB_SRC)/.test(k)));
    const child = spawn(join(REPO_ROOT, 'node_modules', '.bin', 'vitest'),
      ['run', '--root', fixture, '--config', join(fixture, 'vitest.fixture.config.ts')],
      { cwd: REPO_ROOT, env: { ...env, LABS_REPORT_DIR: out, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(code, `the demo lab fails one test on purpose, so vitest exits 1:\n${output}`).toBe(1);

    const report = readReport(join(out, 'labs.json'));
    expect(report, `no labs.json in ${out}; vitest said:\n${output}`).toBeDefined();
    const demo = lab(report!, 'demo/01-figures');
    expect(demo).toMatchObject({
      result: 'failed', adapted: true, counts: { passed: 1, failed: 1, skipped: 1 },
      adaptations: ['kprobes absent: a tracepoint instead'],
      skipReasons: ['missing demo-cap: not on this host. Fix: sudo apt install demo'],
    });
    expect(demo.metrics.map((m) => [m.name, m.value, m.unit, m.group])).toEqual([
      ['engine A', 1000, 'IOPS', 'engines'], ['engine B', 2500, 'IOPS', 'engines'], ['B / A', 2.5, 'ratio', 'engines'],
    ]);
    const failed = demo.tests.find((t) => t.state === 'failed')!;
    expect(failed.failure).toContain('tracepoint saw 3 events: [exec, exec, exec]: expected 3 to be 4');
    expect(failed.failedAt).toMatch(/^tests\/fixtures\/lab-reporter\/labs\/demo\/01-figures\/figures\.fixture\.ts:\d+:\d+$/);
    const html = readFileSync(join(out, 'labs.html'), 'utf8');
    expect(html).toContain('aria-label="engines (IOPS)"');
    expect(html).toContain('报告演示');
  }, 120_000);

  it('writes nothing with LABS_REPORT=off (nested runs such as the starter check)', () => {
    const out = tmp();
    const saved = { dir: process.env.LABS_REPORT_DIR, off: process.env.LABS_REPORT };
    process.env.LABS_REPORT_DIR = out;
    process.env.LABS_REPORT = 'off';
    try {
      const reporter = new LabReporter({ labsRoot: join(REPO_ROOT, 'tests', 'fixtures', 'lab-reporter', 'labs'), announce: false });
      reporter.onTestRunEnd([{ ...MODULES[0]!, moduleId: join(REPO_ROOT, 'tests/fixtures/lab-reporter/labs/demo/01-figures/figures.fixture.ts') }] as never, [], 'passed');
      expect(existsSync(join(out, 'labs.json'))).toBe(false);
      delete process.env.LABS_REPORT;
      reporter.onTestRunEnd([{ ...MODULES[0]!, moduleId: join(REPO_ROOT, 'tests/fixtures/lab-reporter/labs/demo/01-figures/figures.fixture.ts') }] as never, [], 'passed');
      expect(readReport(join(out, 'labs.json'))?.labs.map((l) => [l.id, l.result])).toEqual([['demo/01-figures', 'failed']]);
    } finally {
      if (saved.dir === undefined) delete process.env.LABS_REPORT_DIR; else process.env.LABS_REPORT_DIR = saved.dir;
      if (saved.off === undefined) delete process.env.LABS_REPORT; else process.env.LABS_REPORT = saved.off;
    }
  });
});
