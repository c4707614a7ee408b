/**
 * The results report: a vitest reporter that, after every run of the labs
 * project, writes reports/labs.json and a self-contained reports/labs.html
 * (inline CSS and SVG, no scripts, no fonts: it opens offline). Per lab: its
 * result, each test's state with the failure message and where it failed,
 * skip reasons, how the host adapted it, and every figure it measured
 * (recordMetric) as tables and bar charts per group.
 *
 * Labs that this run did not touch keep their last result from the previous
 * labs.json, marked as such, so `npm run lab -- <name>` updates one row of a
 * report that still shows the whole course. LABS_REPORT_DIR moves the output;
 * LABS_REPORT=off writes nothing (nested runs, e.g. the starter check).
 */
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Reporter, TestModule } from 'vitest/node';
import { courseOrder, listLabs, type LabInfo } from './labs.js';
import { REPO_ROOT, STATE_DIR } from './paths.js';
import type { Metric } from './report.js';

// ---------------------------------------------------------------------------
// The report's shape (reports/labs.json)

export type TestState = 'passed' | 'failed' | 'skipped' | 'pending';
export type LabResult = 'passed' | 'failed' | 'skipped' | 'partial' | 'not run';

export interface TestReport {
  readonly name: string;
  readonly fullName: string;
  readonly state: TestState;
  readonly durationMs?: number;
  /** The assertion message (and diff) of a failed test, without colours. */
  readonly failure?: string;
  /** Where the failure was raised in the spec, e.g. "labs/ebpf/01-x/x.spec.ts:42:7". */
  readonly failedAt?: string;
  readonly skipReason?: string;
  readonly adaptations: readonly string[];
  readonly metrics: readonly Metric[];
}

export interface LabMetric extends Metric {
  /** The test that measured it. */
  readonly test: string;
}

export interface LabReport {
  readonly id: string;
  readonly area: string;
  readonly order: number;
  readonly title: { readonly zh: string; readonly en: string };
  readonly spec: string;
  readonly result: LabResult;
  /** True when the host changed the lab (see adaptations). */
  readonly adapted: boolean;
  /** When the result was produced (ISO time); absent for "not run". */
  readonly ranAt?: string;
  /** The sources this result was produced from: a LAB_SRC workspace, or null for the reference c/. */
  readonly labSrc?: string | null;
  /** The result comes from an earlier run's labs.json, not this run. */
  readonly fromEarlierRun?: boolean;
  readonly durationMs?: number;
  readonly counts: { readonly passed: number; readonly failed: number; readonly skipped: number };
  readonly adaptations: readonly string[];
  readonly skipReasons: readonly string[];
  /** Errors outside any test (collection errors, a failed beforeAll). */
  readonly errors: readonly string[];
  readonly tests: readonly TestReport[];
  readonly metrics: readonly LabMetric[];
}

export interface CapabilitySummary {
  readonly id: string;
  readonly title: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly fix: string;
}

export interface LabsReport {
  readonly schema: 1;
  readonly generatedAt: string;
  /** vitest's verdict on this run. */
  readonly runResult: 'passed' | 'failed' | 'interrupted';
  readonly host: {
    readonly hostname: string;
    readonly kernel: string;
    /** The student workspace the specs ran against, or null for the reference c/. */
    readonly labSrc: string | null;
    readonly strict: boolean;
    readonly capabilities?: readonly CapabilitySummary[];
  };
  readonly summary: {
    readonly labs: number;
    readonly ranThisRun: number;
    readonly passed: number;
    readonly failed: number;
    readonly skipped: number;
    readonly partial: number;
    readonly notRun: number;
    readonly adapted: number;
  };
  readonly labs: readonly LabReport[];
  /** Spec files of the labs project that no lab.json names. */
  readonly unmapped: readonly LabReport[];
  readonly unhandledErrors: readonly string[];
}

// ---------------------------------------------------------------------------
// What the reporter reads from vitest (structural, so tests can feed fakes)

interface ErrorLike {
  readonly message?: string;
  readonly stack?: string;
  readonly diff?: string;
  readonly name?: string;
}

export interface TestCaseLike {
  readonly name: string;
  readonly fullName: string;
  meta(): { metrics?: Metric[]; adaptations?: string[]; skipReason?: string };
  result(): { readonly state: TestState; readonly errors?: ReadonlyArray<ErrorLike>; readonly note?: string };
  annotations(): ReadonlyArray<{ readonly message: string; readonly type: string }>;
  diagnostic(): { readonly duration: number } | undefined;
}

export interface TestModuleLike {
  readonly moduleId: string;
  readonly project: { readonly name: string };
  errors(): ReadonlyArray<ErrorLike>;
  readonly children: { allTests(): Iterable<TestCaseLike> };
  diagnostic(): { readonly duration: number };
}

export interface BuildOptions {
  readonly labs: readonly LabInfo[];
  /** Repository root the lab specs are relative to. */
  readonly root?: string;
  readonly runResult?: LabsReport['runResult'];
  readonly unhandledErrors?: ReadonlyArray<ErrorLike>;
  readonly previous?: LabsReport;
  readonly now?: Date;
  readonly host?: Partial<LabsReport['host']>;
}

// ---------------------------------------------------------------------------
// Course order

/** Areas in the seed's order (the kernel build/QEMU/GDB labs last); others after, by name. */
// ---------------------------------------------------------------------------
// Building the report

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const MAX_MESSAGE = 12_000;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

function clip(s: string, max = MAX_MESSAGE): string {
  return s.length <= max ? s : `${s.slice(0, max)}\n… (${s.length - max} more characters; the full text is in the terminal output)`;
}

function errorText(e: ErrorLike): string {
  const head = stripAnsi(e.message ?? String(e)).trimEnd();
  const diff = e.diff ? `\n\n${stripAnsi(e.diff).trimEnd()}` : '';
  return clip(head + diff);
}

/** The first stack frame inside the spec file: where the student should look. */
function failureSite(e: ErrorLike | undefined, specAbs: string, root: string): string | undefined {
  if (!e?.stack) return undefined;
  for (const line of stripAnsi(e.stack).split('\n')) {
    const m = line.match(/(\/[^\s()]+):(\d+):(\d+)/);
    if (m && m[1] === specAbs) return `${relative(root, m[1])}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

function uniq<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

function labResult(counts: LabReport['counts'], errors: number): LabResult {
  if (counts.failed > 0 || errors > 0) return 'failed';
  const total = counts.passed + counts.skipped;
  if (total === 0) return 'not run';
  if (counts.skipped === total) return 'skipped';
  if (counts.skipped > 0) return 'partial';
  return 'passed';
}

function testReport(t: TestCaseLike, specAbs: string, root: string): TestReport {
  const r = t.result();
  const meta = t.meta() ?? {};
  const adaptations = uniq([...(meta.adaptations ?? []), ...t.annotations().filter((a) => a.type === 'adapted').map((a) => a.message)]);
  const errors = r.errors ?? [];
  const skipReason = r.state === 'skipped' ? (meta.skipReason ?? r.note) : undefined;
  const duration = t.diagnostic()?.duration;
  return {
    name: t.name,
    fullName: t.fullName,
    state: r.state,
    ...(duration !== undefined ? { durationMs: Math.round(duration) } : {}),
    ...(r.state === 'failed' && errors.length ? { failure: errors.map(errorText).join('\n\n---\n\n') } : {}),
    ...(r.state === 'failed' ? { failedAt: failureSite(errors[0], specAbs, root) } : {}),
    ...(skipReason ? { skipReason: stripAnsi(skipReason) } : {}),
    adaptations,
    metrics: (meta.metrics ?? []).map((m) => ({ ...m })),
  };
}

function moduleReport(mod: TestModuleLike, lab: Omit<LabReport, 'result' | 'adapted' | 'counts' | 'adaptations' | 'skipReasons' | 'errors' | 'tests' | 'metrics'>, root: string, ranAt: string): LabReport {
  const specAbs = resolve(root, lab.spec);
  const tests = [...mod.children.allTests()].map((t) => testReport(t, specAbs, root));
  const counts = {
    passed: tests.filter((t) => t.state === 'passed').length,
    failed: tests.filter((t) => t.state === 'failed').length,
    skipped: tests.filter((t) => t.state === 'skipped').length,
  };
  const errors = mod.errors().map(errorText);
  const adaptations = uniq(tests.flatMap((t) => t.adaptations));
  return {
    ...lab,
    result: labResult(counts, errors.length),
    adapted: adaptations.length > 0,
    ranAt,
    durationMs: Math.round(mod.diagnostic().duration),
    counts,
    adaptations,
    skipReasons: uniq(tests.flatMap((t) => (t.skipReason ? [t.skipReason] : []))),
    errors,
    tests,
    metrics: tests.flatMap((t) => t.metrics.map((m) => ({ ...m, test: t.name }))),
  };
}

function notRun(lab: LabInfo): LabReport {
  return {
    id: lab.id, area: lab.area, order: lab.order, title: lab.title, spec: lab.spec,
    result: 'not run', adapted: false, counts: { passed: 0, failed: 0, skipped: 0 },
    adaptations: [], skipReasons: [], errors: [], tests: [], metrics: [],
  };
}

function summarize(labs: readonly LabReport[], ranThisRun: number): LabsReport['summary'] {
  const n = (r: LabResult) => labs.filter((l) => l.result === r).length;
  return {
    labs: labs.length, ranThisRun,
    passed: n('passed'), failed: n('failed'), skipped: n('skipped'), partial: n('partial'), notRun: n('not run'),
    adapted: labs.filter((l) => l.adapted).length,
  };
}

/** Turn the modules of one run into the report (pure: no file access). */
export function buildReport(modules: readonly TestModuleLike[], opts: BuildOptions): LabsReport {
  const root = opts.root ?? REPO_ROOT;
  const now = (opts.now ?? new Date()).toISOString();
  const labSrc = opts.host?.labSrc !== undefined ? opts.host.labSrc : (process.env.LAB_SRC ? resolve(process.env.LAB_SRC) : null);
  const bySpec = new Map(opts.labs.map((l) => [resolve(root, l.spec), l]));
  const ran = new Map<string, LabReport>();
  const unmapped: LabReport[] = [];
  for (const mod of modules) {
    const lab = bySpec.get(resolve(mod.moduleId));
    if (lab) {
      ran.set(lab.id, moduleReport(mod, { id: lab.id, area: lab.area, order: lab.order, title: lab.title, spec: lab.spec, labSrc }, root, now));
    } else {
      const spec = relative(root, mod.moduleId);
      unmapped.push(moduleReport(mod, { id: spec, area: '?', order: Number.MAX_SAFE_INTEGER, title: { zh: '', en: spec }, spec, labSrc }, root, now));
    }
  }
  const earlier = new Map((opts.previous?.labs ?? []).map((l) => [l.id, l]));
  const labs = courseOrder(opts.labs).map((lab) => {
    const fresh = ran.get(lab.id);
    if (fresh) return fresh;
    const old = earlier.get(lab.id);
    // Keep an earlier result only while the lab still has the same spec.
    if (old && old.result !== 'not run' && old.spec === lab.spec) {
      return { ...old, id: lab.id, area: lab.area, order: lab.order, title: lab.title, fromEarlierRun: true };
    }
    return notRun(lab);
  });
  return {
    schema: 1,
    generatedAt: now,
    runResult: opts.runResult ?? (labs.some((l) => l.result === 'failed' && !l.fromEarlierRun) ? 'failed' : 'passed'),
    host: {
      hostname: opts.host?.hostname ?? hostname(),
      kernel: opts.host?.kernel ?? release(),
      labSrc,
      strict: opts.host?.strict ?? process.env.LABS_STRICT === '1',
      ...(opts.host?.capabilities ? { capabilities: opts.host.capabilities } : {}),
    },
    summary: summarize(labs, ran.size),
    labs,
    unmapped,
    unhandledErrors: (opts.unhandledErrors ?? []).map(errorText),
  };
}

/**
 * Combine reports (e.g. one per CI shard): each lab takes its newest result
 * that was actually run; labs no report ran stay "not run".
 */
export function mergeReports(reports: readonly LabsReport[], now = new Date()): LabsReport {
  if (!reports.length) throw new Error('mergeReports: no reports given');
  const byId = new Map<string, LabReport>();
  for (const rep of reports) {
    for (const lab of rep.labs) {
      const have = byId.get(lab.id);
      const better = !have
        || (have.result === 'not run' && lab.result !== 'not run')
        || (lab.result !== 'not run' && !lab.fromEarlierRun && (have.fromEarlierRun || (lab.ranAt ?? '') > (have.ranAt ?? '')));
      if (better) byId.set(lab.id, lab);
    }
  }
  const labs = courseOrder([...byId.values()]);
  const first = reports[0]!;
  const runResult = reports.some((r) => r.runResult === 'interrupted') ? 'interrupted'
    : reports.some((r) => r.runResult === 'failed') ? 'failed' : 'passed';
  return {
    schema: 1,
    generatedAt: now.toISOString(),
    runResult,
    host: { ...first.host, hostname: uniq(reports.map((r) => r.host.hostname)).join(', ') },
    summary: summarize(labs, labs.filter((l) => l.result !== 'not run' && !l.fromEarlierRun).length),
    labs,
    unmapped: reports.flatMap((r) => r.unmapped),
    unhandledErrors: reports.flatMap((r) => r.unhandledErrors),
  };
}

// ---------------------------------------------------------------------------
// HTML

const esc = (s: string | number) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));

export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 1 ? 2 : 4;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

const RESULT_LABEL: Record<LabResult, string> = {
  passed: '✔ passed', failed: '✘ failed', skipped: '⊘ skipped', partial: '◐ partly skipped', 'not run': '· not run',
};
const STATE_LABEL: Record<TestState, string> = { passed: '✔', failed: '✘', skipped: '⊘', pending: '…' };
const PALETTE = ['#3b6fd8', '#e07b24', '#2e9e5b', '#b0439c', '#c9a227', '#2aa1b3', '#d0453b', '#6b5fd3'];

const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '-');

/** A horizontal bar chart of same-unit figures, as inline SVG. */
export function barChart(title: string, unit: string, items: ReadonlyArray<{ readonly label: string; readonly value: number }>): string {
  const labelW = 260;
  const barW = 380;
  const valueW = 140;
  const rowH = 26;
  const top = 28;
  const width = labelW + barW + valueW;
  const height = top + rowH * items.length + 8;
  const max = Math.max(0, ...items.map((i) => (Number.isFinite(i.value) ? i.value : 0)));
  const rows = items.map((it, i) => {
    const w = max > 0 && Number.isFinite(it.value) && it.value > 0 ? Math.max(1, (it.value / max) * barW) : 0;
    const y = top + i * rowH;
    const label = it.label.length > 38 ? `${it.label.slice(0, 37)}…` : it.label;
    return `<g class="bar"><title>${esc(it.label)}: ${esc(formatValue(it.value))} ${esc(unit)}</title>`
      + `<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${esc(label)}</text>`
      + `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="3" fill="${PALETTE[i % PALETTE.length]}" data-value="${it.value}"/>`
      + `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 17}" class="v">${esc(formatValue(it.value))} ${esc(unit)}</text></g>`;
  });
  return `<svg class="chart" role="img" aria-label="${esc(title)} (${esc(unit)})" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`
    + `<text x="0" y="16" class="ct">${esc(title)} — ${esc(unit)}</text>${rows.join('')}</svg>`;
}

function metricsSection(lab: LabReport): string {
  if (!lab.metrics.length) return '';
  const groups = new Map<string, LabMetric[]>();
  for (const m of lab.metrics) {
    const g = m.group ?? 'Measured';
    groups.set(g, [...(groups.get(g) ?? []), m]);
  }
  const parts = [...groups].map(([group, ms]) => {
    const table = `<table class="metrics"><thead><tr><th>figure</th><th class="num">value</th><th>unit</th><th>measured by</th></tr></thead><tbody>`
      + ms.map((m) => `<tr><td>${esc(m.name)}</td><td class="num">${esc(formatValue(m.value))}</td><td>${esc(m.unit)}</td><td class="muted">${esc(m.test)}</td></tr>`).join('')
      + '</tbody></table>';
    const units = uniq(ms.map((m) => m.unit));
    const charts = units
      .map((u) => ms.filter((m) => m.unit === u))
      .filter((same) => same.length >= 2)
      .map((same) => barChart(group, same[0]!.unit, same.map((m) => ({ label: m.name, value: m.value }))))
      .join('');
    return `<div class="group" data-group="${esc(group)}"><h4>${esc(group)}</h4>${charts}${table}</div>`;
  });
  return `<h3>Measured</h3>${parts.join('')}`;
}

function testsTable(lab: LabReport): string {
  if (!lab.tests.length) return '';
  const rows = lab.tests.map((t) => {
    const details: string[] = [];
    if (t.failure) {
      details.push(`<details class="failure" open><summary>what was expected, what happened${t.failedAt ? ` — look at <code>${esc(t.failedAt)}</code>` : ''}</summary><pre>${esc(t.failure)}</pre></details>`);
    }
    if (t.skipReason) details.push(`<div class="skip">skipped: ${esc(t.skipReason)}</div>`);
    for (const a of t.adaptations) details.push(`<div class="adapt">adapted: ${esc(a)}</div>`);
    return `<tr class="t-${t.state}"><td class="st" title="${t.state}">${STATE_LABEL[t.state]}</td><td>${esc(t.name)}${details.join('')}</td><td class="num muted">${esc(formatMs(t.durationMs))}</td></tr>`;
  });
  return `<table class="tests"><tbody>${rows.join('')}</tbody></table>`;
}

function labSection(lab: LabReport): string {
  const when = lab.fromEarlierRun && lab.ranAt ? `<p class="muted">result from an earlier run (${esc(lab.ranAt)}); not run this time.</p>` : '';
  const adaptations = lab.adaptations.length
    ? `<div class="box adapt"><b>How this host changed the lab</b><ul>${lab.adaptations.map((a) => `<li>${esc(a)}</li>`).join('')}</ul></div>` : '';
  const skips = lab.skipReasons.length
    ? `<div class="box skip"><b>Skipped here because</b><ul>${lab.skipReasons.map((a) => `<li>${esc(a)}</li>`).join('')}</ul></div>` : '';
  const errors = lab.errors.length
    ? `<div class="box fail"><b>Errors outside the tests</b>${lab.errors.map((e) => `<pre>${esc(e)}</pre>`).join('')}</div>` : '';
  return `<section class="lab r-${slug(lab.result)}" id="lab-${slug(lab.id)}" data-lab="${esc(lab.id)}" data-result="${esc(lab.result)}">`
    + `<h2><span class="badge r-${slug(lab.result)}">${RESULT_LABEL[lab.result]}</span> ${esc(lab.title.en)} <span class="zh">${esc(lab.title.zh)}</span></h2>`
    + `<p class="muted">${esc(lab.area)} · <code>${esc(lab.spec)}</code>${lab.durationMs !== undefined ? ` · ${esc(formatMs(lab.durationMs))}` : ''}`
    + `${lab.labSrc === undefined ? '' : lab.labSrc ? ` · ran against <code>LAB_SRC=${esc(lab.labSrc)}</code>` : ' · ran against the reference <code>c/</code>'}</p>`
    + when + errors + skips + adaptations + testsTable(lab) + metricsSection(lab) + '</section>';
}

const CSS = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#667085;--bg:#fff;--card:#f6f7f9;--line:#d9dde3;--ok:#1f8a4c;--bad:#c62f2f;--skip:#8a6d00;--adapt:#2a62b8}
@media (prefers-color-scheme:dark){:root{--fg:#e4e7ec;--muted:#98a2b3;--bg:#14171c;--card:#1d2128;--line:#343a45;--ok:#4cc27d;--bad:#f06a6a;--skip:#d9b42c;--adapt:#6ea1f0}}
*{box-sizing:border-box}body{margin:0 auto;max-width:1100px;padding:24px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;color:var(--fg);background:var(--bg)}
h1{margin:0 0 4px}h2{font-size:20px;margin:0 0 4px}h3{margin:18px 0 6px;font-size:16px}h4{margin:12px 0 6px;font-size:14px}
code,pre{font:13px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,monospace}pre{white-space:pre-wrap;word-break:break-word;background:var(--card);border:1px solid var(--line);padding:8px;border-radius:6px;margin:6px 0;overflow:auto;max-height:420px}
.muted{color:var(--muted)}.zh{color:var(--muted);font-weight:normal}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}th{font-size:13px;color:var(--muted);font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.summary{display:flex;gap:10px;flex-wrap:wrap;margin:12px 0}.chip{background:var(--card);border:1px solid var(--line);border-radius:16px;padding:3px 12px}
section.lab{border:1px solid var(--line);border-left:6px solid var(--line);border-radius:8px;padding:14px 16px;margin:16px 0;background:var(--bg)}
section.r-passed{border-left-color:var(--ok)}section.r-failed{border-left-color:var(--bad)}section.r-skipped,section.r-partial{border-left-color:var(--skip)}
.badge{font-size:13px;border-radius:12px;padding:2px 9px;vertical-align:middle;border:1px solid currentColor;font-weight:600}.r-passed.badge,.badge.r-passed{color:var(--ok)}.badge.r-failed{color:var(--bad)}.badge.r-skipped,.badge.r-partial{color:var(--skip)}.badge.r-not-run{color:var(--muted)}
.box{border-radius:6px;padding:6px 10px;margin:8px 0;background:var(--card)}.box ul{margin:4px 0 0;padding-left:20px}.box.adapt{border-left:4px solid var(--adapt)}.box.skip{border-left:4px solid var(--skip)}.box.fail{border-left:4px solid var(--bad)}
.tests .st{width:24px;font-weight:700}.t-passed .st{color:var(--ok)}.t-failed .st{color:var(--bad)}.t-skipped .st{color:var(--skip)}
div.skip{color:var(--skip);font-size:13px}div.adapt{color:var(--adapt);font-size:13px}details.failure summary{cursor:pointer;color:var(--bad);font-size:13px}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0}svg.chart text{font:12px system-ui,sans-serif;fill:var(--fg)}svg.chart .ct{font-weight:600}svg.chart .v{fill:var(--muted)}
.overview td:first-child{white-space:nowrap}a{color:var(--adapt)}
`;

export function renderHtml(report: LabsReport): string {
  const s = report.summary;
  const labs = [...report.labs, ...report.unmapped];
  const overview = `<table class="overview"><thead><tr><th>result</th><th>lab</th><th>area</th><th class="num">tests ✔/✘/⊘</th><th>host</th><th class="num">time</th></tr></thead><tbody>`
    + labs.map((l) => `<tr data-lab="${esc(l.id)}"><td><span class="badge r-${slug(l.result)}">${RESULT_LABEL[l.result]}</span></td>`
      + `<td><a href="#lab-${slug(l.id)}">${esc(l.title.en)}</a> <span class="zh">${esc(l.title.zh)}</span>${l.fromEarlierRun ? ' <span class="muted">(earlier run)</span>' : ''}</td>`
      + `<td>${esc(l.area)}</td><td class="num">${l.counts.passed}/${l.counts.failed}/${l.counts.skipped}</td>`
      + `<td>${l.adapted ? 'adapted' : ''}</td><td class="num muted">${esc(formatMs(l.durationMs))}</td></tr>`).join('')
    + '</tbody></table>';
  const caps = report.host.capabilities?.length
    ? `<details><summary>Host capabilities (${report.host.capabilities.filter((c) => c.ok).length}/${report.host.capabilities.length} present)</summary><table><tbody>`
      + report.host.capabilities.map((c) => `<tr><td>${c.ok ? '✔' : '✘'}</td><td><code>${esc(c.id)}</code> ${esc(c.title)}</td><td>${esc(c.detail)}${c.fix ? `<div class="muted">fix: <code>${esc(c.fix)}</code></div>` : ''}</td></tr>`).join('')
      + '</tbody></table></details>' : '';
  const unhandled = report.unhandledErrors.length
    ? `<section class="lab r-failed"><h2>Unhandled errors</h2>${report.unhandledErrors.map((e) => `<pre>${esc(e)}</pre>`).join('')}</section>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Kernel labs — ${esc(report.runResult)} (${s.passed}/${s.labs} passed)</title><style>${CSS}</style></head>
<body data-run-result="${esc(report.runResult)}">
<h1>Kernel labs — results</h1>
<p class="muted">${esc(report.generatedAt)} · ${esc(report.host.hostname)} · kernel ${esc(report.host.kernel)} · sources: ${report.host.labSrc ? `<code>${esc(report.host.labSrc)}</code> (LAB_SRC)` : 'reference <code>c/</code>'}${report.host.strict ? ' · LABS_STRICT=1' : ''}</p>
<div class="summary" id="summary"><span class="chip">${s.labs} labs</span><span class="chip">ran now: ${s.ranThisRun}</span><span class="chip">✔ passed ${s.passed}</span><span class="chip">✘ failed ${s.failed}</span><span class="chip">◐ partly skipped ${s.partial}</span><span class="chip">⊘ skipped ${s.skipped}</span><span class="chip">· not run ${s.notRun}</span><span class="chip">adapted ${s.adapted}</span></div>
${overview}
${caps}
${unhandled}
${labs.map(labSection).join('\n')}
<p class="muted">Written by helpers/lab-reporter.ts; the same data is in labs.json.</p>
</body></html>
`;
}

// ---------------------------------------------------------------------------
// Files

export function readReport(file: string): LabsReport | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as LabsReport;
    return r.schema === 1 && Array.isArray(r.labs) ? r : undefined;
  } catch {
    return undefined;
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** Hand the files to the user who ran `sudo`, so they can open and delete them. */
function giveToSudoUser(paths: readonly string[]): void {
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  if (process.getuid?.() !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid) || !process.env.SUDO_UID) return;
  for (const p of paths) { try { chownSync(p, uid, gid); } catch { /* not ours to fix */ } }
}

/** Write labs.json and labs.html into `dir`; returns the HTML path. */
export function writeReport(report: LabsReport, dir: string): { json: string; html: string } {
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'labs.json');
  const html = join(dir, 'labs.html');
  writeAtomic(json, `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(html, renderHtml(report));
  giveToSudoUser([...(created ? [dir] : []), json, html]);
  return { json, html };
}

export function reportDir(): string {
  return process.env.LABS_REPORT_DIR ? resolve(process.env.LABS_REPORT_DIR) : join(REPO_ROOT, 'reports');
}

// ---------------------------------------------------------------------------
// The reporter

export interface LabReporterOptions {
  /** Output directory (default: LABS_REPORT_DIR or <repo>/reports). */
  readonly outputDir?: string;
  /** Where the lab.json files are (default <repo>/labs). */
  readonly labsRoot?: string;
  /** The vitest project whose modules are labs (default "labs"). */
  readonly project?: string;
  /** Repository root lab specs are relative to (default the repository). */
  readonly root?: string;
  /** Keep labs this run skipped from the previous labs.json (default true). */
  readonly keepEarlier?: boolean;
  /** Print where the report is (default true). */
  readonly announce?: boolean;
}

function loadCachedCapabilities(): CapabilitySummary[] | undefined {
  const id = process.env.LABS_RUN_ID;
  if (!id) return undefined;
  try {
    const caps = JSON.parse(readFileSync(join(STATE_DIR, id, 'capabilities.json'), 'utf8')) as Record<string, unknown>;
    return Object.values(caps)
      .filter((c): c is CapabilitySummary => typeof c === 'object' && c !== null && 'ok' in c && 'id' in c)
      .map(({ id: cid, title, ok, detail, fix }) => ({ id: cid, title, ok, detail, fix }));
  } catch {
    return undefined;
  }
}

export default class LabReporter implements Reporter {
  private readonly opts: LabReporterOptions;
  private capabilities: CapabilitySummary[] | undefined;

  constructor(opts: LabReporterOptions = {}) {
    this.opts = opts;
  }

  onTestModuleStart(): void {
    // The global setup has probed the host by now; its cache file lives while the run does.
    this.capabilities ??= loadCachedCapabilities();
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<ErrorLike>, reason: LabsReport['runResult']): void {
    // A nested run (tests/starters.test.ts runs specs against the starter) must not overwrite the student's report.
    if (process.env.LABS_REPORT === 'off') return;
    const project = this.opts.project ?? 'labs';
    const root = this.opts.root ?? REPO_ROOT;
    let labs: LabInfo[];
    try {
      labs = listLabs(this.opts.labsRoot);
    } catch (e) {
      console.error(`[lab-reporter] cannot list the labs, no report written: ${(e as Error).message}`);
      return;
    }
    const specs = new Set(labs.map((l) => resolve(root, l.spec)));
    const mods = testModules.filter((m) => m.project.name === project || specs.has(resolve(m.moduleId)));
    if (!mods.length) return; // a run of the unit project only
    const dir = this.opts.outputDir ? resolve(this.opts.outputDir) : reportDir();
    const previous = this.opts.keepEarlier === false ? undefined : readReport(join(dir, 'labs.json'));
    const report = buildReport(mods as unknown as TestModuleLike[], {
      labs, root, runResult: reason, unhandledErrors, previous,
      ...(this.capabilities ? { host: { capabilities: this.capabilities } } : {}),
    });
    try {
      const { html } = writeReport(report, dir);
      if (this.opts.announce !== false) {
        const s = report.summary;
        const shown = relative(process.cwd(), html);
        console.log(`\n[kernel-labs] report: ${shown.startsWith('..') ? html : shown}  (open ${pathToFileURL(html).href} in a browser)\n`
          + `[kernel-labs] ${s.passed} passed, ${s.failed} failed, ${s.partial} partly skipped, ${s.skipped} skipped, ${s.notRun} not run; ${s.adapted} adapted to this host`);
      }
    } catch (e) {
      console.error(`[lab-reporter] could not write the report to ${dir}: ${(e as Error).message}`);
    }
  }
}
