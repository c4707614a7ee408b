/**
 * The results report (reports/labs.json) built from vitest's test modules,
 * and merged with earlier runs so the report shows the whole course. Labs
 * that a run did not touch keep their last result, marked as such. Pure: the
 * caller says which host, sources and strictness the run had (the reporter
 * reads them from the environment). The schema is report-schema.ts (its types
 * are re-exported here), the run's closing lines report-console.ts.
 */
import { relative, resolve } from 'node:path';
import { courseOrder, type LabInfo } from './labs.js';
import { REPO_ROOT } from '../harness/paths.js';
import type { ErrorLike, LabReport, LabResult, LabsReport, NotMeasured, TestCaseLike, TestModuleLike, TestReport } from './report-schema.js';

export type * from './report-schema.js';

export interface BuildOptions {
  readonly labs: readonly LabInfo[];
  /** Repository root the lab specs are relative to. */
  readonly root?: string;
  readonly runResult?: LabsReport['runResult'];
  readonly unhandledErrors?: ReadonlyArray<ErrorLike>;
  readonly previous?: LabsReport;
  readonly now?: Date;
  /**
   * The host, sources and strictness of the run (the reporter reads them from the environment: runHost() in
   * reporter.ts). What is not given: hostname and kernel "unknown", labSrc null (c/), not strict.
   */
  readonly host?: Partial<LabsReport['host']>;
}

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

export function uniq<T>(xs: Iterable<T>): T[] {
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
    ...(r.state === 'failed'
      ? { metrics: [], withheld: (meta.metrics ?? []).map((m) => m.name) }
      : { metrics: (meta.metrics ?? []).map((m) => ({ ...m })) }),
  };
}

/** Tests that record figures: they recorded some, or their name says so ("records …", "measures …"). */
const MEASURING = /\b(records?|measures?)\b/i;

function notMeasured(tests: readonly TestReport[]): NotMeasured[] {
  return tests.filter((t) => t.state === 'failed' && ((t.withheld?.length ?? 0) > 0 || MEASURING.test(t.name)))
    .map((t) => ({ test: t.name, figures: t.withheld ?? [], reason: (t.failure ?? '').split('\n')[0]!.slice(0, 300) }));
}

function moduleReport(mod: TestModuleLike, lab: Omit<LabReport, 'result' | 'adapted' | 'counts' | 'adaptations' | 'skipReasons' | 'errors' | 'tests' | 'metrics'>, root: string, ranAt: string): LabReport {
  const specAbs = resolve(root, lab.spec);
  const tests = [...mod.children.allTests()].map((t) => testReport(t, specAbs, root));
  const counts = {
    passed: tests.filter((t) => t.state === 'passed').length,
    failed: tests.filter((t) => t.state === 'failed').length,
    skipped: tests.filter((t) => t.state === 'skipped').length,
  };
  // A failed beforeAll leaves the tests skipped and its error on the suite: a lab whose student program did not
  // build failed (it is not a skip: under LABS_STRICT=1 that would be counted against the host).
  const suiteErrors = [...(mod.children.allSuites?.() ?? [])].flatMap((s) => s.errors());
  const errors = uniq([...mod.errors(), ...suiteErrors].map(errorText));
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
    notMeasured: notMeasured(tests),
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

/**
 * The report of a run during which the course changed (helpers/course/tamper.ts): every lab of this run whose
 * spec is in `tainted` failed, with the tampering said first among its errors (it then scores 0). Pure.
 */
export function markTampered(report: LabsReport, tampering: NonNullable<LabsReport['tampering']>, tainted: ReadonlySet<string>, message: string): LabsReport {
  const labs = report.labs.map((l) => (tainted.has(l.spec) && !l.fromEarlierRun ? { ...l, result: 'failed' as const, errors: [message, ...l.errors] } : l));
  const ran = labs.filter((l) => report.thisRun?.labs.some((x) => x.id === l.id));
  return {
    ...report, tampering, runResult: 'failed', labs,
    summary: summarize(labs, report.summary.ranThisRun),
    ...(report.thisRun ? { thisRun: thisRunOf(ran, report.thisRun.labSrc) } : {}),
  };
}

function thisRunOf(ran: readonly LabReport[], labSrc: string | null): NonNullable<LabsReport['thisRun']> {
  const n = (r: LabResult) => ran.filter((l) => l.result === r).length;
  return { labs: courseOrder(ran).map((l) => ({ id: l.id, result: l.result })), labSrc, passed: n('passed'), failed: n('failed'), skipped: n('skipped'), partial: n('partial') };
}

/** Turn the modules of one run into the report (pure: no file access, no environment). */
export function buildReport(modules: readonly TestModuleLike[], opts: BuildOptions): LabsReport {
  const root = opts.root ?? REPO_ROOT;
  const now = (opts.now ?? new Date()).toISOString();
  const labSrc = opts.host?.labSrc ?? null;
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
    const old = earlier.get(lab.id);
    // A host run keeps the guest pass's result beside its own.
    if (fresh) return old?.guest ? { ...fresh, guest: old.guest } : fresh;
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
      hostname: opts.host?.hostname ?? 'unknown',
      kernel: opts.host?.kernel ?? 'unknown',
      labSrc,
      ...(opts.host?.defaultSources !== undefined ? { defaultSources: opts.host.defaultSources } : {}),
      strict: opts.host?.strict ?? false,
      ...(opts.host?.capabilities ? { capabilities: opts.host.capabilities } : {}),
    },
    summary: summarize(labs, ran.size),
    thisRun: thisRunOf([...ran.values()], labSrc),
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
  // The newest guest pass result of each lab stays beside whichever host result won.
  for (const rep of reports) {
    for (const lab of rep.labs) {
      const have = byId.get(lab.id);
      if (have && lab.guest && (!have.guest || (lab.guest.ranAt ?? '') > (have.guest.ranAt ?? ''))) byId.set(lab.id, { ...have, guest: lab.guest });
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
    thisRun: thisRunOf(labs.filter((l) => l.result !== 'not run' && !l.fromEarlierRun), first.host.labSrc),
    labs,
    unmapped: reports.flatMap((r) => r.unmapped),
    unhandledErrors: reports.flatMap((r) => r.unhandledErrors),
  };
}
