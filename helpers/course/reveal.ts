/**
 * Hints on request and answers after the work.
 *
 * A lab's guide (README.md) keeps its questions; what would give the work or
 * the thinking away lives beside it:
 *   labs/<id>/hints.md     further hints, `## <title>` each, shown one at a time by
 *                          `npm run lab -- hint <id>`; each one shown is recorded
 *   labs/<id>/answers.md   the model answers to the guide's 思考 questions, shown by
 *                          `npm run lab -- answers <id>` once the lab has passed here
 * In a student edition both are gzip'd (hints.md.gz, answers.md.gz) so that a
 * `cat` or a `grep` of the course does not show them by accident. That is a
 * fold, not a lock: the student owns the machine (docs/CLASSROOM.md says so).
 *
 * The record of hints shown is `.hints-used.json` in the student's sources
 * (LAB_SRC, or c/ in an edition): the student commits it with the work, the
 * report and the grade summary show it, and lab.json's `hintCost` (points
 * per hint, default 0) is taken off the lab's score (helpers/course/grading.ts).
 */
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { REFERENCE_SRC, REPO_ROOT } from '../harness/paths.js';

export type RevealKind = 'hints' | 'answers';

export interface Section {
  readonly title: string;
  readonly body: string;
}

/** The `## ` sections of a Markdown file (what comes before the first one is its preamble, dropped). */
export function parseSections(md: string): Section[] {
  const parts = md.split(/^## /m).slice(1);
  return parts.map((p) => {
    const nl = p.indexOf('\n');
    const title = (nl < 0 ? p : p.slice(0, nl)).trim();
    return { title, body: (nl < 0 ? '' : p.slice(nl + 1)).trim() };
  });
}

/** The file name of a kind in the course (plain) and in an edition (gzip'd). */
export const revealFile = (kind: RevealKind) => `${kind}.md`;
export const foldedFile = (kind: RevealKind) => `${kind}.md.gz`;

/** The edition's folded copy of a hints.md/answers.md (deterministic: no name, no time in the gzip header). */
export function fold(text: string | Buffer): Buffer {
  return gzipSync(Buffer.isBuffer(text) ? text : Buffer.from(text), { level: 9 });
}

/** A lab's hints or answers, from labs/<id>/ (plain or folded); [] when it has none. */
export function readSections(labId: string, kind: RevealKind, labsRoot = join(REPO_ROOT, 'labs')): Section[] {
  const dir = join(labsRoot, labId);
  const plain = join(dir, revealFile(kind));
  if (existsSync(plain)) return parseSections(readFileSync(plain, 'utf8'));
  const folded = join(dir, foldedFile(kind));
  if (existsSync(folded)) return parseSections(gunzipSync(readFileSync(folded)).toString('utf8'));
  return [];
}

// ---------------------------------------------------------------------------
// The record of hints shown

export const HINTS_RECORD = '.hints-used.json';

export interface HintRecord {
  /** Hints shown per lab id (the first n of its hints.md). */
  readonly [labId: string]: { readonly shown: number; readonly at: readonly string[] };
}

export function readHintRecord(sourceRoot: string): HintRecord {
  try {
    const raw = JSON.parse(readFileSync(join(sourceRoot, HINTS_RECORD), 'utf8')) as unknown;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return {};
    const out: Record<string, { shown: number; at: string[] }> = {};
    for (const [id, v] of Object.entries(raw as Record<string, unknown>)) {
      const shown = (v as { shown?: unknown })?.shown;
      const at = (v as { at?: unknown })?.at;
      if (typeof shown === 'number' && Number.isInteger(shown) && shown > 0) {
        out[id] = { shown, at: Array.isArray(at) ? at.filter((x): x is string => typeof x === 'string') : [] };
      }
    }
    return out;
  } catch {
    return {};
  }
}

/** Hints used per lab id, as the score reads them. */
export function hintsUsed(sourceRoot: string): Map<string, number> {
  return new Map(Object.entries(readHintRecord(sourceRoot)).map(([id, v]) => [id, v.shown]));
}

export interface HintStep {
  /** The hint shown now (1-based), or undefined when every hint was shown already. */
  readonly number?: number;
  readonly total: number;
  readonly hint?: Section;
  /** The hints shown before (to show again on request, not counted again). */
  readonly earlier: readonly Section[];
}

/**
 * Show the next hint of a lab and record it; `again` shows the ones already
 * shown without counting one more.
 */
export function nextHint(labId: string, sourceRoot: string, opts: { readonly again?: boolean; readonly labsRoot?: string; readonly now?: Date } = {}): HintStep {
  const hints = readSections(labId, 'hints', opts.labsRoot);
  const record = { ...readHintRecord(sourceRoot) } as Record<string, { shown: number; at: readonly string[] }>;
  const shown = Math.min(record[labId]?.shown ?? 0, hints.length);
  if (opts.again || shown >= hints.length) return { total: hints.length, earlier: hints.slice(0, shown) };
  record[labId] = { shown: shown + 1, at: [...(record[labId]?.at ?? []), (opts.now ?? new Date()).toISOString()] };
  writeFileSync(join(sourceRoot, HINTS_RECORD), `${JSON.stringify(record, null, 2)}\n`);
  return { number: shown + 1, total: hints.length, hint: hints[shown], earlier: hints.slice(0, shown) };
}

// ---------------------------------------------------------------------------
// Answers after the work

export type AnswersGate = { readonly open: true } | { readonly open: false; readonly why: string };

/**
 * Whether a lab's answers may be shown: its last result in this machine's
 * report passed (a "partial" result counts when nothing failed: the host
 * lacked something, the student's program did not), and it ran against the
 * sources asked about (the same LAB_SRC, or c/).
 */
export function answersGate(
  lab: { readonly id: string },
  report: Pick<LabsReportLike, 'labs'> | undefined,
  labSrc: string | null,
  cDir = REFERENCE_SRC,
): AnswersGate {
  const r = report?.labs.find((l) => l.id === lab.id);
  const run = `sudo ${labSrc ? `LAB_SRC=${labSrc} ` : ''}npm run lab -- ${lab.id}`;
  if (!r || r.result === 'not run') return { open: false, why: `no run of ${lab.id} is recorded on this machine (reports/labs.json; a run with LABS_REPORT=off records nothing): run it (${run}) and make it pass.` };
  if (!sameSources(r.labSrc ?? null, labSrc, cDir)) {
    return { open: false, why: `${lab.id} last ran against ${r.labSrc ? `LAB_SRC=${r.labSrc}` : 'c/'}, not ${labSrc ? `LAB_SRC=${labSrc}` : 'c/'}: run it against your own sources (${run}).` };
  }
  const failing = r.tests.filter((t) => t.state === 'failed').map((t) => t.name);
  const ok = r.result === 'passed' || (r.result === 'partial' && failing.length === 0 && r.errors.length === 0);
  if (ok) return { open: true };
  const what = failing.length
    ? `still failing (${failing.length}):\n${failing.map((n) => `  ✘ ${n}`).join('\n')}`
    : r.errors.length ? `an error outside its tests: ${(r.errors[0] ?? '').split('\n')[0]}` : `its last result was "${r.result}"`;
  return { open: false, why: `${lab.id} has not passed yet (last run ${r.ranAt ?? ''}) — ${what}\nThe answers come once it passes: ${run}` };
}

const realOrSelf = (p: string) => { try { return realpathSync(p); } catch { return p; } };

/** Two source roots (null: c/) are the same directory (an edition's ~/my-labs is a link to its c/). */
export function sameSources(a: string | null, b: string | null, cDir = REFERENCE_SRC): boolean {
  return realOrSelf(a ?? cDir) === realOrSelf(b ?? cDir);
}

// ---------------------------------------------------------------------------
// Passes per source directory: a run against another directory (a broken copy to try something)
// must not take back the answers the student's own sources earned.

export const PASSES_FILE = 'passed.json';

type Passes = Record<string, Record<string, string>>;

function readPasses(reportDir: string): Passes {
  try {
    const raw = JSON.parse(readFileSync(join(reportDir, PASSES_FILE), 'utf8')) as unknown;
    return typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw as Passes : {};
  } catch {
    return {};
  }
}

/** Record the labs a run passed (nothing failed, no error) against `sourceRoot`, in reports/passed.json. */
export function recordPasses(report: Pick<LabsReportLike, 'labs'>, sourceRoot: string, reportDir: string): void {
  const passes = readPasses(reportDir);
  const key = realOrSelf(sourceRoot);
  const mine = { ...(passes[key] ?? {}) };
  let changed = false;
  for (const l of report.labs as LabsReportLike['labs']) {
    if ((l as { fromEarlierRun?: boolean }).fromEarlierRun || !l.ranAt) continue;
    const failing = l.tests.some((t) => t.state === 'failed') || l.errors.length > 0;
    if (!failing && (l.result === 'passed' || l.result === 'partial') && l.tests.some((t) => t.state === 'passed')) { mine[l.id] = l.ranAt; changed = true; }
  }
  if (!changed) return;
  passes[key] = mine;
  try { writeFileSync(join(reportDir, PASSES_FILE), `${JSON.stringify(passes, null, 2)}\n`); } catch { /* a read-only report dir: the report still gates */ }
}

/** When the lab passed against these sources (from reports/passed.json), if it ever did. */
export function passedAgainst(labId: string, sourceRoot: string, reportDir: string): string | undefined {
  return readPasses(reportDir)[realOrSelf(sourceRoot)]?.[labId];
}

interface LabsReportLike {
  readonly labs: readonly {
    readonly id: string;
    readonly result: string;
    readonly ranAt?: string;
    readonly labSrc?: string | null;
    readonly errors: readonly string[];
    readonly tests: readonly { readonly name: string; readonly state: string }[];
  }[];
}
