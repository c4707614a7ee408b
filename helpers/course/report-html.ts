/**
 * The results report as one self-contained HTML page (inline CSS and SVG, no
 * scripts, no fonts: it opens offline): per lab its result, each test with
 * the failure message and spec line, skip reasons, adaptations and every
 * figure as tables and bar charts per group.
 */
import { formatScore } from './grading.js';
import { isStudentEdition } from './sources.js';

/** What c/ is when LAB_SRC is unset: the reference here, the student's own files in an edition. */
const sourcesHtml = () => (isStudentEdition() ? 'your files in <code>c/</code> (student edition)' : 'the reference <code>c/</code>');
import { uniq, type LabMetric, type LabReport, type LabResult, type LabsReport, type TestState } from './report-model.js';

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

/**
 * Fonts with Chinese glyphs, as a stock desktop has them: Noto CJK (Ubuntu, Debian's
 * fonts-noto-cjk), WenQuanYi and Droid Sans Fallback (older Debian/Ubuntu), PingFang
 * (macOS), Microsoft YaHei (Windows). Without any, the titles fall back to boxes.
 */
export const CJK_FONTS = '"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","WenQuanYi Micro Hei","WenQuanYi Zen Hei","Droid Sans Fallback","PingFang SC","Microsoft YaHei"';

/** Values that span two orders of magnitude or more are drawn on a log scale (else the small bars vanish). */
export function useLogScale(values: readonly number[]): boolean {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0);
  return pos.length >= 2 && pos.length === values.filter((v) => Number.isFinite(v)).length && Math.max(...pos) / Math.min(...pos) >= 100;
}

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
  const log = useLogScale(items.map((i) => i.value));
  // On a log scale the smallest value gets a tenth of the width, the largest all of it.
  const min = log ? Math.min(...items.map((i) => i.value)) : 0;
  const frac = (v: number) => (log ? Math.log10((v / min) * 10) / Math.log10((max / min) * 10) : v / max);
  const rows = items.map((it, i) => {
    const w = max > 0 && Number.isFinite(it.value) && it.value > 0 ? Math.max(1, frac(it.value) * barW) : 0;
    const y = top + i * rowH;
    const label = it.label.length > 38 ? `${it.label.slice(0, 37)}…` : it.label;
    return `<g class="bar"><title>${esc(it.label)}: ${esc(formatValue(it.value))} ${esc(unit)}</title>`
      + `<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${esc(label)}</text>`
      + `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="3" fill="${PALETTE[i % PALETTE.length]}" data-value="${it.value}"/>`
      + `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 17}" class="v">${esc(formatValue(it.value))} ${esc(unit)}</text></g>`;
  });
  return `<svg class="chart" role="img" aria-label="${esc(title)} (${esc(unit)})" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">`
    + `<text x="0" y="16" class="ct">${esc(title)} — ${esc(unit)}${log ? ' (log scale)' : ''}</text>${rows.join('')}</svg>`;
}

function metricsSection(lab: LabReport): string {
  const missing = (lab.notMeasured ?? []).map((n) => `<li>not measured (${esc(n.test)}${n.figures.length ? `: ${esc(n.figures.join(', '))}` : ''}): ${esc(n.reason)}</li>`);
  const notMeasured = missing.length ? `<div class="box fail"><b>Figures withheld: the program failed the test that measures it</b><ul>${missing.join('')}</ul></div>` : '';
  if (!lab.metrics.length) return notMeasured ? `<h3>Measured</h3>${notMeasured}` : '';
  const groups = new Map<string, LabMetric[]>();
  for (const m of lab.metrics) {
    const g = m.group ?? 'Measured';
    groups.set(g, [...(groups.get(g) ?? []), m]);
  }
  const parts = [...groups].map(([group, ms]) => {
    // Which test measured: said once under the group when one test measured all of it, else per row, shortened.
    const tests = uniq(ms.map((m) => m.test));
    const byOne = tests.length === 1;
    const short = (t: string) => (t.length > 60 ? `${t.slice(0, 59)}…` : t);
    const table = `${byOne ? `<p class="muted by">measured by: ${esc(tests[0]!)}</p>` : ''}<table class="metrics"><thead><tr><th>figure</th><th class="num">value</th><th>unit</th>${byOne ? '' : '<th>measured by</th>'}</tr></thead><tbody>`
      + ms.map((m) => `<tr><td>${esc(m.name)}</td><td class="num">${esc(formatValue(m.value))}</td><td>${esc(m.unit)}</td>${byOne ? '' : `<td class="muted" title="${esc(m.test)}">${esc(short(m.test))}</td>`}</tr>`).join('')
      + '</tbody></table>';
    const units = uniq(ms.map((m) => m.unit));
    const charts = units
      .map((u) => ms.filter((m) => m.unit === u))
      .filter((same) => same.length >= 2)
      .map((same) => barChart(group, same[0]!.unit, same.map((m) => ({ label: m.name, value: m.value }))))
      .join('');
    return `<div class="group" data-group="${esc(group)}"><h4>${esc(group)}</h4>${charts}${table}</div>`;
  });
  return `<h3>Measured</h3>${notMeasured}${parts.join('')}`;
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

/** The guest pass's result beside the host's (npm run test:guest; helpers/course/guest-report.ts). */
function guestBox(lab: LabReport): string {
  const g = lab.guest;
  if (!g) return '';
  const lists = [...g.errors.map((e) => `<pre>${esc(e)}</pre>`), ...[...g.skipReasons, ...g.adaptations].map((a) => `<div class="muted">${esc(a)}</div>`)].join('');
  return `<div class="box guest" data-guest-result="${esc(g.result)}"><b>In the guest pass</b> (kernel <code>${esc(g.kernel ?? '?')}</code>${g.ranAt ? `, ${esc(g.ranAt)}` : ''}): `
    + `<span class="badge r-${slug(g.result)}">${RESULT_LABEL[g.result]}</span> ${g.counts.passed}/${g.counts.failed}/${g.counts.skipped}${lists}${g.tests.length ? testsTable(g) : ''}</div>`;
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
    + `${lab.labSrc === undefined ? '' : lab.labSrc ? ` · ran against <code>LAB_SRC=${esc(lab.labSrc)}</code>` : ` · ran against ${sourcesHtml()}`}</p>`
    + `${lab.kernel ? `<p class="muted">on this host, kernel <code>${esc(lab.kernel)}</code></p>` : ''}`
    + when + errors + skips + adaptations + testsTable(lab) + guestBox(lab) + metricsSection(lab) + '</section>';
}

const CSS = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#667085;--bg:#fff;--card:#f6f7f9;--line:#d9dde3;--ok:#1f8a4c;--bad:#c62f2f;--skip:#8a6d00;--adapt:#2a62b8}
@media (prefers-color-scheme:dark){:root{--fg:#e4e7ec;--muted:#98a2b3;--bg:#14171c;--card:#1d2128;--line:#343a45;--ok:#4cc27d;--bad:#f06a6a;--skip:#d9b42c;--adapt:#6ea1f0}}
*{box-sizing:border-box}body{margin:0 auto;max-width:1100px;padding:24px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",${CJK_FONTS},sans-serif;color:var(--fg);background:var(--bg)}
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
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0}svg.chart text{font:12px system-ui,"Noto Sans",${CJK_FONTS},sans-serif;fill:var(--fg)}svg.chart .ct{font-weight:600}svg.chart .v{fill:var(--muted)}
.overview td:first-child{white-space:nowrap}a{color:var(--adapt)}
`;

/** This run apart from the course total: its labs and results, the sources they ran against. */
function thisRunLine(report: LabsReport): string {
  const run = report.thisRun;
  if (!run) return '';
  const labs = run.labs.map((l) => `<a href="#lab-${slug(l.id)}">${esc(l.id)}</a> ${esc(l.result)}`).join(', ') || 'no lab';
  return `<p id="this-run"><b>This run</b>, against ${run.labSrc ? `<code>LAB_SRC=${esc(run.labSrc)}</code>` : sourcesHtml()}: ${labs}. `
    + `The rest of the page is the course total; results from earlier runs are marked "(earlier run)".</p>`;
}

export function renderHtml(report: LabsReport): string {
  const s = report.summary;
  const labs = [...report.labs, ...report.unmapped];
  const overview = `<table class="overview"><thead><tr><th>result</th><th>lab</th><th>area</th><th class="num">tests ✔/✘/⊘</th><th class="num">points</th><th>host</th><th class="num">time</th></tr></thead><tbody>`
    + labs.map((l) => `<tr data-lab="${esc(l.id)}"><td><span class="badge r-${slug(l.result)}">${RESULT_LABEL[l.result]}</span></td>`
      + `<td><a href="#lab-${slug(l.id)}">${esc(l.title.en)}</a> <span class="zh">${esc(l.title.zh)}</span>${l.fromEarlierRun ? ' <span class="muted">(earlier run)</span>' : ''}</td>`
      + `<td>${esc(l.area)}</td><td class="num">${l.counts.passed}/${l.counts.failed}/${l.counts.skipped}</td>`
      + `<td class="num score">${l.score ? esc(formatScore(l.score)) : ''}</td>`
      + `<td>${l.adapted ? 'adapted' : ''}${l.guest ? ` · guest <span class="badge r-${slug(l.guest.result)}">${RESULT_LABEL[l.guest.result]}</span>` : ''}</td><td class="num muted">${esc(formatMs(l.durationMs))}</td></tr>`).join('')
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
<p class="muted">${esc(report.generatedAt)} · ${esc(report.host.hostname)} · kernel ${esc(report.host.kernel)} · sources: ${report.host.labSrc ? `<code>${esc(report.host.labSrc)}</code> (LAB_SRC)` : esc(report.host.defaultSources ?? 'the reference c/')}${report.host.strict ? ' · LABS_STRICT=1' : ''}</p>
${thisRunLine(report)}
<div class="summary" id="summary"><span class="chip">course total: ${s.labs} labs</span><span class="chip">ran now: ${s.ranThisRun}</span><span class="chip">✔ passed ${s.passed}</span><span class="chip">✘ failed ${s.failed}</span><span class="chip">◐ partly skipped ${s.partial}</span><span class="chip">⊘ skipped ${s.skipped}</span><span class="chip">· not run ${s.notRun}</span><span class="chip">adapted ${s.adapted}</span></div>
${overview}
${caps}
${unhandled}
${labs.map(labSection).join('\n')}
<p class="muted">Written by helpers/course/report-html.ts; the same data is in labs.json.</p>
</body></html>
`;
}

