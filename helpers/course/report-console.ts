/**
 * The lines a run of the labs project ends with (printed by the reporter):
 * this run, then the course total. Pure: from the report alone.
 */
import type { LabsReport } from './report-schema.js';

/**
 * The lines a run ends with: this run (its labs, its sources, its results:
 * never another run's, even one writing the same report at the same time),
 * then the course total, with the labs that come from earlier runs counted
 * apart. Pure.
 */
export function closingLines(report: LabsReport): string[] {
  const run = report.thisRun;
  // What c/ was (the reference, or the student's files in an edition) the run recorded in the report.
  const sources = (src: string | null | undefined) => (src ? `LAB_SRC=${src}` : report.host.defaultSources ?? 'the reference c/');
  const lines: string[] = [];
  if (report.tampering) {
    const t = report.tampering;
    lines.push(`TAMPERING: ${t.what ?? 'the course changed while it was graded'} (found after ${t.after}; ${t.count} ${t.what ? 'finding(s)' : 'file(s)'}: ${t.changes.slice(0, 3).join('; ')}${t.count > 3 ? '; …' : ''}): every lab from there on failed and scores 0`);
  }
  if (run && run.labs.length) {
    const each = run.labs.map((l) => `${l.id} ${l.result}`).join(', ');
    lines.push(`this run, against ${sources(run.labSrc)}: ${each} (${run.passed} passed, ${run.failed} failed${run.partial ? `, ${run.partial} partly skipped` : ''}${run.skipped ? `, ${run.skipped} skipped` : ''})`);
  } else {
    lines.push('this run: no lab spec ran');
  }
  const s = report.summary;
  const earlier = report.labs.filter((l) => l.fromEarlierRun);
  const srcs = [...new Set(earlier.map((l) => sources(l.labSrc)))];
  lines.push(`course total: ${s.passed} passed, ${s.failed} failed, ${s.partial} partly skipped, ${s.skipped} skipped, ${s.notRun} not run of ${s.labs} labs; ` +
    (earlier.length ? `${earlier.length} of these results are from earlier runs (marked "earlier run" in the report; against ${srcs.join(', ')})` : 'none from earlier runs'));
  const withheld = report.labs.filter((l) => !l.fromEarlierRun && (l.notMeasured?.length ?? 0) > 0);
  for (const l of withheld) for (const n of l.notMeasured!) lines.push(`${l.id}: not measured (${n.test}): ${n.reason}`);
  return lines;
}
