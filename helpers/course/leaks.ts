/**
 * Solution leaks (issue 21): a line the student must write (inside a
 * `LAB:BEGIN` region of a reference source) must not appear in any guide,
 * in docs/, or in any other file of the student workspace.
 *
 * The rule for a "non-trivial" solution line, so that `return 0;` or `}`
 * never count as a leak:
 *   - the marker lines and the region's LAB:STARTER part (which the starter
 *     hands out on purpose) are not solution lines;
 *   - a line that is only a comment (`//`, `#`, `/*`, `*`) is not either;
 *   - whitespace is collapsed (runs of blanks become one space) on both sides
 *     before comparing, so re-indenting a leaked line does not hide it;
 *   - a line needs at least MIN_SIGNIFICANT non-blank characters to count;
 *   - generic plumbing is not an answer: a bare jump (`goto cleanup;`,
 *     `break;`, `return -1;`, `return -EINVAL;`) or a line that only reports an error
 *     (`fprintf(stderr, …)`, `perror(…)`, Lab 3.3's given `report_exit(…)`), since every C file of the course
 *     has them and the message text is the student's choice;
 *   - a line the same reference file hands out anyway (outside its regions,
 *     or in a region's LAB:STARTER part) is given code, not an answer.
 * A leak is a solution line found as a substring of another text's
 * whitespace-collapsed lines (so `code` in a README table counts).
 */
import { findRegions, toStarter } from './markers.js';

/** Lines shorter than this (non-blank characters) are too generic to be an answer (`return 0;`, `} else {`). */
export const MIN_SIGNIFICANT = 12;

export interface SolutionLine {
  readonly file: string;
  readonly line: number;
  /** The line with whitespace collapsed. */
  readonly text: string;
}

export interface Leak extends SolutionLine {
  /** Where it appears (a README, a docs page, a starter file). */
  readonly where: string;
  readonly whereLine: number;
}

export function normalize(line: string): string {
  return line.trim().replace(/\s+/g, ' ');
}

/** Jumps and error reports: the same in every program, not the answer to a TODO. */
const PLUMBING = /^(goto \w+;|break;|continue;|return -?(\d+|E[A-Z]+|NULL);|(f?printf\(stderr|perror\(|warn\(|err\(|report_exit\().*)$/;

function isComment(t: string): boolean {
  return /^(\/\/|#|\/\*|\*)/.test(t);
}

export function significant(t: string): number {
  return t.replace(/\s/g, '').length;
}

/** The non-trivial solution lines of one reference source. */
export function solutionLines(text: string, file: string): SolutionLine[] {
  const lines = text.split('\n');
  const regions = findRegions(text, file);
  const inSolution = new Set<number>();
  for (const r of regions) {
    for (let n = r.begin + 1; n < r.end; n++) {
      if (/^\s*(\/\/|#)\s*LAB:STARTER\b/.test(lines[n - 1] ?? '')) break; // the rest is starter text
      inSolution.add(n);
    }
  }
  // What the student gets from this file anyway: its starter version.
  const given = toStarter(text, file).split('\n').map(normalize);
  const out: SolutionLine[] = [];
  let inReport = false; // inside a multi-line error report
  for (const n of [...inSolution].sort((a, b) => a - b)) {
    const t = normalize(lines[n - 1] ?? '');
    const report: boolean = inReport || PLUMBING.test(t);
    inReport = report && !/;$/.test(t);
    if (!t || isComment(t) || report || significant(t) < MIN_SIGNIFICANT) continue;
    if (given.some((g) => g.includes(t))) continue;
    out.push({ file, line: n, text: t });
  }
  return out;
}

/** Every solution line that appears in `text` (named `where`). */
export function findLeaks(solutions: readonly SolutionLine[], text: string, where: string): Leak[] {
  const lines = text.split('\n').map(normalize);
  const leaks: Leak[] = [];
  for (const s of solutions) {
    const i = lines.findIndex((l) => l.includes(s.text));
    if (i >= 0) leaks.push({ ...s, where, whereLine: i + 1 });
  }
  return leaks;
}
