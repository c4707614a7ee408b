/**
 * Grading: every verification sentence (every `it`) of a lab carries points.
 * `lab.json` sets them with `"points": {"<test name or prefix>": 3}` (an exact
 * test name wins over a prefix, the longest prefix over a shorter one; a test
 * it does not name is worth DEFAULT_POINTS, and a `control:` test, which checks
 * the machine rather than the student's work, 0). A passed test earns its points;
 * a failed one earns 0; a skipped one earns 0 and is counted apart (the host
 * lacked something: under LABS_STRICT=1, which CI grades with, a skip is a
 * failure). An error outside any test (the spec did not load, a beforeAll
 * failed, a resource leaked) scores the whole lab 0.
 *
 * Pure functions over the report (reports/labs.json): the score of a lab, the
 * score lines a run prints, the Markdown of a CI job summary, the JSON lines an
 * LMS reads, and the instructor's table over several student repositories.
 */
import type { LabInfo } from './labs.js';
import type { LabReport, LabScore, LabsReport, TestReport } from './report-schema.js';

export type { LabScore } from './report-schema.js';

/** What a test is worth when lab.json does not say. */
export const DEFAULT_POINTS = 1;

export type PointsSpec = Readonly<Record<string, number>>;

/** Hints used for a lab, and what each costs (lab.json "hintCost", default 0). */
export interface HintUse {
  readonly used: number;
  readonly cost: number;
}

/**
 * A test whose name starts so checks the machine or the given code (it passes on an untouched starter):
 * worth 0 unless lab.json says. "control:" or "control (why): ".
 */
export const CONTROL_PREFIX = /^control(?: \([^)]*\))?:/;

export function isControlTest(testName: string): boolean {
  return CONTROL_PREFIX.test(testName);
}

/** The points of one test: exact name, else the longest prefix, else 0 for a control test, else DEFAULT_POINTS. */
export function pointsFor(testName: string, spec: PointsSpec | undefined): number {
  const fallback = isControlTest(testName) ? 0 : DEFAULT_POINTS;
  if (!spec) return fallback;
  if (Object.hasOwn(spec, testName)) return spec[testName]!;
  let best: string | undefined;
  for (const key of Object.keys(spec)) {
    if (testName.startsWith(key) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? fallback : spec[best]!;
}

/** Problems with a lab.json `points` table (not a number ≥ 0). */
export function checkPointsSpec(spec: unknown): string[] {
  if (spec === undefined) return [];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return ['"points" must be an object {"<test name or prefix>": <points>}'];
  return Object.entries(spec).filter(([, v]) => typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    .map(([k, v]) => `"points"."${k}" must be a number >= 0, not ${JSON.stringify(v)}`);
}

/** The score of one lab's result; undefined for a lab that did not run. */
export function scoreLab(lab: Pick<LabReport, 'result' | 'tests' | 'errors'>, spec: PointsSpec | undefined, strict: boolean, hints?: HintUse): LabScore | undefined {
  if (lab.result === 'not run') return undefined;
  const sum = (tests: readonly TestReport[]) => tests.reduce((s, t) => s + pointsFor(t.name, spec), 0);
  const by = (state: TestReport['state']) => lab.tests.filter((t) => t.state === state);
  const passed = by('passed'), failed = by('failed'), skipped = by('skipped');
  const zeroed = lab.errors.length ? `${lab.errors.length} error(s) outside the tests` : undefined;
  const used = hints && hints.used > 0 ? hints.used : 0;
  const hintPoints = used * Math.max(0, hints?.cost ?? 0);
  return {
    earned: zeroed ? 0 : Math.max(0, sum(passed) - hintPoints),
    total: sum(lab.tests),
    // An error outside the tests (a build that failed in beforeAll) is why its tests were skipped: not the host.
    failedPoints: zeroed ? sum(failed) + sum(skipped) : sum(failed),
    skippedPoints: zeroed ? 0 : sum(skipped),
    tests: { passed: passed.length, failed: failed.length, skipped: skipped.length },
    ...(zeroed ? { zeroed } : {}),
    strict,
    ...(used ? { hints: used, ...(hintPoints ? { hintPoints } : {}) } : {}),
  };
}

type Scored = LabReport & { readonly score?: LabScore };

/**
 * The report with a `score` on every lab that ran (a lab's points come from its lab.json;
 * `hints`: hints shown per lab id, from the student's .hints-used.json).
 */
export function scoreReport(report: LabsReport, labs: readonly Pick<LabInfo, 'id' | 'points' | 'hintCost'>[], hints: ReadonlyMap<string, number> = new Map()): LabsReport {
  const points = new Map(labs.map((l) => [l.id, l.points]));
  const cost = new Map(labs.map((l) => [l.id, l.hintCost ?? 0]));
  const withScore = (l: LabReport): LabReport => {
    const used = hints.get(l.id) ?? 0;
    const score = scoreLab(l, points.get(l.id), report.host.strict, used ? { used, cost: cost.get(l.id) ?? 0 } : undefined);
    const { score: _old, ...rest } = l as Scored;
    return (score ? { ...rest, score } : rest) as LabReport;
  };
  return { ...report, labs: report.labs.map(withScore), unmapped: report.unmapped.map(withScore) };
}

export interface CourseScore {
  readonly earned: number;
  readonly total: number;
  readonly labs: number;
}

/** Sum over the labs that ran. */
export function courseScore(report: LabsReport): CourseScore {
  const scored = report.labs.filter((l) => l.score);
  return {
    earned: scored.reduce((s, l) => s + l.score!.earned, 0),
    total: scored.reduce((s, l) => s + l.score!.total, 0),
    labs: scored.length,
  };
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0+$/, ''));

/** `3/6` with the skipped points said apart. */
export function formatScore(s: LabScore): string {
  const extra = [
    s.skippedPoints ? `${fmt(s.skippedPoints)} skipped` : '',
    s.hints ? `${s.hints} hint${s.hints === 1 ? '' : 's'}${s.hintPoints ? `: −${fmt(s.hintPoints)}` : ''}` : '',
    s.zeroed ? `0: ${s.zeroed}` : '',
  ].filter(Boolean).join(', ');
  return `${fmt(s.earned)}/${fmt(s.total)}${extra ? ` (${extra})` : ''}`;
}

/** The lines a run prints: one per lab that ran, then the total. */
export function scoreLines(report: LabsReport): string[] {
  const ran = report.labs.filter((l) => l.score && !l.fromEarlierRun);
  if (!ran.length) return [];
  const w = Math.max(...ran.map((l) => l.id.length));
  const lines = ran.map((l) => `[score] ${l.id.padEnd(w)}  ${formatScore(l.score!)}`);
  const c = courseScore({ ...report, labs: ran });
  lines.push(`[score] ${'total'.padEnd(w)}  ${fmt(c.earned)}/${fmt(c.total)}${report.host.strict ? '' : '  (not strict: CI grades with LABS_STRICT=1, where a skip is a failure)'}`);
  return lines;
}

// ---------------------------------------------------------------------------
// CI: the job summary and the LMS lines

export interface SummaryOptions {
  /** Files outside c/ that differ from the edition's manifest (they change what is graded). */
  readonly changedOutsideC?: readonly string[];
  /** Files the manifest lists that are gone. */
  readonly missing?: readonly string[];
  /** e.g. the commit graded. */
  readonly revision?: string;
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The Markdown of `$GITHUB_STEP_SUMMARY`: a score table per lab, the flags, then the failures in short. */
export function markdownSummary(report: LabsReport, opts: SummaryOptions = {}): string {
  const out: string[] = [];
  const c = courseScore(report);
  out.push(`## Kernel labs: ${fmt(c.earned)}/${fmt(c.total)} points${opts.revision ? ` (${mdCell(opts.revision)})` : ''}`, '');
  if (report.tampering) {
    const t = report.tampering;
    out.push('> [!CAUTION]', `> **Tampering**: ${t.what ?? 'the course changed while it was graded'} (found after \`${mdCell(t.after)}\`, ${t.count} ${t.what ? 'finding(s)' : 'file(s)'}); every lab from there on failed and scores 0.`);
    for (const c of t.changes.slice(0, 10)) out.push(`> - ${mdCell(c)}`);
    out.push('');
  }
  const tampered = [...(opts.changedOutsideC ?? []), ...(opts.missing ?? [])];
  if (tampered.length) {
    out.push(`> [!WARNING]`, `> This push changes what is graded: ${tampered.length} file(s) outside \`c/\` differ from the edition's manifest.`);
    for (const f of opts.changedOutsideC ?? []) out.push(`> - changed: \`${mdCell(f)}\``);
    for (const f of opts.missing ?? []) out.push(`> - missing: \`${mdCell(f)}\``);
    out.push('');
  }
  if (!report.host.strict) out.push('> Not a strict run (LABS_STRICT=1 unset): skipped tests were not counted as failures.', '');
  out.push('| lab | result | points | tests ✔/✘/⊘ |', '|---|---|---:|---:|');
  for (const l of report.labs) {
    const s = l.score;
    out.push(`| ${mdCell(`${l.id} · ${l.title.en}`)} | ${l.result} | ${s ? mdCell(formatScore(s)) : '–'} | ${l.counts.passed}/${l.counts.failed}/${l.counts.skipped} |`);
  }
  const failed = report.labs.flatMap((l) => l.tests.filter((t) => t.state === 'failed').map((t) => ({ l, t })));
  if (failed.length) {
    out.push('', '<details><summary>Failed tests</summary>', '');
    for (const { l, t } of failed) {
      const first = (t.failure ?? '').split('\n').find((x) => x.trim()) ?? '';
      out.push(`- **${mdCell(l.id)}** ${mdCell(t.name)}${t.failedAt ? ` (\`${t.failedAt}\`)` : ''}: ${mdCell(first.slice(0, 300))}`);
    }
    out.push('', '</details>');
  }
  const errs = report.labs.filter((l) => l.errors.length);
  if (errs.length) out.push('', ...errs.map((l) => `- **${mdCell(l.id)}**: error outside the tests (scores 0): ${mdCell((l.errors[0] ?? '').split('\n')[0]!.slice(0, 300))}`));
  return `${out.join('\n')}\n`;
}

export interface LmsLine {
  readonly lab: string;
  readonly title: string;
  readonly result: LabReport['result'];
  readonly earned: number;
  readonly total: number;
  readonly skippedPoints: number;
  readonly strict: boolean;
  /** Hints the student asked for (npm run lab -- hint). */
  readonly hints: number;
  readonly ranAt?: string;
  readonly repository?: string;
  readonly revision?: string;
  readonly changedOutsideC: boolean;
}

/** One JSON object per lab that ran, for an LMS to read (reports/scores.jsonl). */
export function lmsLines(report: LabsReport, meta: { readonly repository?: string; readonly revision?: string; readonly changedOutsideC?: boolean } = {}): string[] {
  return report.labs.filter((l) => l.score).map((l) => JSON.stringify({
    lab: l.id, title: l.title.en, result: l.result,
    earned: l.score!.earned, total: l.score!.total, skippedPoints: l.score!.skippedPoints, strict: l.score!.strict,
    hints: l.score!.hints ?? 0,
    ...(l.ranAt ? { ranAt: l.ranAt } : {}),
    ...(meta.repository ? { repository: meta.repository } : {}),
    ...(meta.revision ? { revision: meta.revision } : {}),
    changedOutsideC: meta.changedOutsideC ?? false,
  } satisfies LmsLine));
}

// ---------------------------------------------------------------------------
// The instructor's table

export interface StudentReport {
  /** A name for the row (the directory's name). */
  readonly name: string;
  readonly report: LabsReport | undefined;
  /** Files outside c/ that differ from the edition's manifest. */
  readonly changedOutsideC?: readonly string[];
}

/** One row per student, one column per lab (earned/total, `–` not run), then the total and the flags. */
export function gradeTable(students: readonly StudentReport[], labs: readonly Pick<LabInfo, 'id'>[]): string {
  const header = ['student', ...labs.map((l) => l.id), 'total', 'strict', 'outside c/'];
  const rows = students.map((s) => {
    if (!s.report) return [s.name, ...labs.map(() => '?'), 'no report', '', ''];
    const byId = new Map(s.report.labs.map((l) => [l.id, l]));
    const cells = labs.map((l) => {
      const sc = byId.get(l.id)?.score;
      return sc ? `${fmt(sc.earned)}/${fmt(sc.total)}${sc.skippedPoints ? '*' : ''}${sc.hints ? ` h${sc.hints}` : ''}` : '–';
    });
    const c = courseScore(s.report);
    return [s.name, ...cells, `${fmt(c.earned)}/${fmt(c.total)}`, s.report.host.strict ? 'yes' : 'NO',
      [s.changedOutsideC?.length ? `${s.changedOutsideC.length} changed` : '', s.report.tampering ? 'TAMPERED' : ''].filter(Boolean).join(', ')];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line), '', '–: not run   *: some points skipped (host lacked a capability)   hN: N hints used   ?: no report'].join('\n');
}
