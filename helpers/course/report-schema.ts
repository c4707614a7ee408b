/**
 * The results report's schema (reports/labs.json): what one run of the labs
 * project says per lab (its result, each test's state, failure message and
 * site, skip reasons, adaptations, figures, its score), and the structural
 * view of vitest's test modules the report is built from. Types only: the
 * build and merge are report-model.ts, the closing lines report-console.ts,
 * the points grading.ts.
 */
import type { Metric } from '../harness/metrics.js';

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
  /**
   * The course changed while it was graded, or a process of the run outlived its lab (`what`;
   * helpers/course/tamper.ts, survivors.ts): every lab from `after` on failed.
   */
  readonly tampering?: { readonly after: string; readonly what?: string; readonly changes: readonly string[]; readonly count: number };
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

// ---------------------------------------------------------------------------
// A lab's points (computed by helpers/course/grading.ts)

export interface LabScore {
  /** Points earned: the passed tests' points (0 when the lab had an error outside its tests). */
  readonly earned: number;
  /** Points of every test the run knew of. */
  readonly total: number;
  /** Points lost to failed tests. */
  readonly failedPoints: number;
  /** Points not earned because the host lacked something (skipped tests). */
  readonly skippedPoints: number;
  readonly tests: { readonly passed: number; readonly failed: number; readonly skipped: number };
  /** Why the lab earned 0 whatever its tests did (errors outside the tests). */
  readonly zeroed?: string;
  /** The run was strict (LABS_STRICT=1): skips were failures. */
  readonly strict: boolean;
  /** Hints shown for this lab (helpers/course/reveal.ts), when any. */
  readonly hints?: number;
  /** Points they cost (hints × lab.json's hintCost), already taken off `earned`. */
  readonly hintPoints?: number;
}
