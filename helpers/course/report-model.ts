/**
 * The results report's data model (reports/labs.json): what one run of the
 * labs project says per lab (its result, each test's state, failure message
 * and site, skip reasons, adaptations, figures), built from vitest's test
 * modules, and merged with earlier runs so the report shows the whole course.
 * Labs that a run did not touch keep their last result, marked as such.
 */
import { hostname, release } from 'node:os';
import { relative, resolve } from 'node:path';
import { courseOrder, type LabInfo } from './labs.js';
import { defaultSourcesLabel } from './sources.js';
import type { Metric } from '../harness/metrics.js';
import { REPO_ROOT } from '../harness/paths.js';
import type { LabScore } from './grading.js';

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
  /** Figures of a passed test only: a failed test's figures describe a wrong program and are withheld. */
  readonly metrics: readonly Metric[];
  /** Names of the figures a failed test recorded and the report withholds. */
  readonly withheld?: readonly string[];
}

/** A test that measures but failed: its figures are not in the report, and why. */
export interface NotMeasured {
  readonly test: string;
  /** The figures it had recorded before failing (none when it failed before measuring). */
  readonly figures: readonly string[];
  /** The first line of its failure, e.g. "uring_cp (timed): the copy was wrong: …". */
  readonly reason: string;
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
  /** Points earned of the lab's total (helpers/course/grading.ts); absent when the lab did not run. */
  readonly score?: LabScore;
  /** Failed tests that measure (they recorded figures, or their name says they record some): "not measured". */
  readonly notMeasured?: readonly NotMeasured[];
  /** The kernel release this result was produced on (set when results of several kernels are merged). */
  readonly kernel?: string;
  /** Where it ran: this machine, or the guest pass (npm run test:guest). */
  readonly ranOn?: 'host' | 'guest';
  /** The guest pass's result for this lab, kept beside the host's (helpers/course/guest-report.ts). */
  readonly guest?: LabReport;
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
    /** What the sources are when labSrc is null: the reference c/, or the student's own files in an edition. */
    readonly defaultSources?: string;
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
  /**
   * This run alone (never earlier runs, never another run writing the same
   * report at the same time): which labs it ran, against which sources, and
   * their results. `summary` is the course total.
   */
  readonly thisRun?: {
    readonly labs: readonly { readonly id: string; readonly result: LabResult }[];
    /** The sources they ran against: a LAB_SRC workspace, or null for the reference c/. */
    readonly labSrc: string | null;
    readonly passed: number;
    readonly failed: number;
    readonly skipped: number;
    readonly partial: number;
  };
  readonly labs: readonly LabReport[];
  /** The course changed while it was graded (helpers/course/tamper.ts): every lab from `after` on failed. */
  readonly tampering?: { readonly after: string; readonly changes: readonly string[]; readonly count: number };
  /** Spec files of the labs project that no lab.json names. */
  readonly unmapped: readonly LabReport[];
  readonly unhandledErrors: readonly string[];
}

// ---------------------------------------------------------------------------
// What the reporter reads from vitest (structural, so tests can feed fakes)

export interface ErrorLike {
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
  readonly children: {
    allTests(): Iterable<TestCaseLike>;
    /** Suites, whose errors are those of their hooks (a failed beforeAll: a build error, a verifier rejection). */
    allSuites?(): Iterable<{ errors(): ReadonlyArray<ErrorLike> }>;
  };
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
      hostname: opts.host?.hostname ?? hostname(),
      kernel: opts.host?.kernel ?? release(),
      labSrc,
      defaultSources: defaultSourcesLabel(),
      strict: opts.host?.strict ?? process.env.LABS_STRICT === '1',
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


/**
 * The lines a run ends with: this run (its labs, its sources, its results:
 * never another run's, even one writing the same report at the same time),
 * then the course total, with the labs that come from earlier runs counted
 * apart. Pure.
 */
export function closingLines(report: LabsReport): string[] {
  const run = report.thisRun;
  const sources = (src: string | null | undefined) => (src ? `LAB_SRC=${src}` : defaultSourcesLabel());
  const lines: string[] = [];
  if (report.tampering) {
    const t = report.tampering;
    lines.push(`TAMPERING: the course changed while it was graded (found after ${t.after}; ${t.count} file(s): ${t.changes.slice(0, 3).join('; ')}${t.count > 3 ? '; …' : ''}): every lab from there on failed and scores 0`);
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
