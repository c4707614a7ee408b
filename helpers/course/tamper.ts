/**
 * Tampering: what is graded must not change while it grades (issue #29).
 *
 * A student's program runs as root in the middle of a run; it could rewrite
 * the specs, helpers or vitest that the later lab files load. The reporter
 * runs in vitest's main process, loaded before any lab ran: it takes a
 * fingerprint of the course at the start and compares after every lab file.
 * From the first difference on, every lab is failed with "tampering: …"
 * (it scores 0), the report and the CI summary say so first, and the run
 * exits non-zero.
 *
 * The fingerprint is each file's inode, size, mtime and ctime (nanoseconds),
 * not a hash: it costs milliseconds per lab file, and user space cannot set a
 * file's ctime — a file rewritten and then put back, or replaced by a copy,
 * still differs. Not covered (said in docs/CLASSROOM.md): changes made and
 * undone before the run starts, the student's own sources (c/ or LAB_SRC:
 * theirs to change), and a process that outlives the run and rewrites the
 * report after vitest exits.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../harness/paths.js';

/** What is graded with: the course's own files (relative to the repository), and the runtime. */
export const GRADED_PATHS: readonly string[] = [
  'labs', 'helpers', 'scripts', 'node_modules', '.ci', 'vitest.config.ts', 'package.json', 'package-lock.json', 'tsconfig.json',
];

/** Inside those, what a run writes itself. */
const RUN_WRITES = /^node_modules\/(\.vite|\.vite-temp|\.vitest|\.cache|\.kernel-labs-lock)(\/|$)/;

export type Fingerprint = ReadonlyMap<string, string>;

const stamp = (s: BigIntStats) => `${s.mode.toString(8)}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;

/** The fingerprint of the graded files under `root` and of the given absolute paths (e.g. the node binary). */
export function fingerprint(root = REPO_ROOT, extra: readonly string[] = [process.execPath]): Fingerprint {
  const out = new Map<string, string>();
  const visit = (abs: string) => {
    const rel = relative(root, abs) || abs;
    if (RUN_WRITES.test(rel)) return;
    let st: BigIntStats;
    try { st = lstatSync(abs, { bigint: true }); } catch { return; }
    if (st.isDirectory()) {
      // A directory's own ctime changes when an entry is added or removed; the entries are compared one by one.
      let names: string[];
      try { names = readdirSync(abs); } catch { return; }
      for (const n of names) visit(join(abs, n));
      return;
    }
    out.set(rel, stamp(st));
  };
  for (const p of GRADED_PATHS) visit(join(root, p));
  for (const p of extra) {
    try { out.set(p, stamp(lstatSync(p, { bigint: true }))); } catch { /* gone: it will show as removed */ }
  }
  return out;
}

/** What differs between two fingerprints: "changed: x", "added: y", "removed: z", sorted. */
export function fingerprintDiff(before: Fingerprint, after: Fingerprint): string[] {
  const out: string[] = [];
  for (const [p, s] of after) {
    const was = before.get(p);
    if (was === undefined) out.push(`added: ${p}`);
    else if (was !== s) out.push(`changed: ${p}`);
  }
  for (const p of before.keys()) if (!after.has(p)) out.push(`removed: ${p}`);
  return out.sort();
}

export interface Tampering {
  /** The spec during (or after) which the course changed, or a process escaped. */
  readonly after: string;
  /** What was found, when it is not a change of the course's files: e.g. "a process of the run outlived its lab". */
  readonly what?: string;
  /** The first differences found (at most 20). */
  readonly changes: readonly string[];
  /** How many differences in all. */
  readonly count: number;
}

/** What a tampering finding is, in words: the course's files changed, or what `what` says. */
export const tamperingWhat = (t: Pick<Tampering, 'what'>): string => t.what ?? 'the course changed while it was graded';

/** The message a tampered lab fails with. */
export function tamperingMessage(t: Tampering): string {
  const rule = t.what ? 'your program must not leave its lab\'s sandbox (the harness killed what it left)' : 'your program must change nothing outside its own files';
  return `tampering: ${tamperingWhat(t)} (found after ${t.after}): ${t.changes.slice(0, 5).join('; ')}`
    + `${t.count > 5 ? `; and ${t.count - 5} more` : ''}. Every lab from there on scores 0: ${rule}.`;
}

/**
 * Watches the course through a run: `check(spec)` after each lab file; `tampering` once something changed.
 * The specs checked from then on are `tainted`.
 */
export class TamperWatch {
  private readonly baseline: Fingerprint;
  private found: Tampering | undefined;
  readonly tainted = new Set<string>();

  constructor(private readonly root = REPO_ROOT, private readonly extra: readonly string[] = [process.execPath]) {
    this.baseline = fingerprint(root, extra);
  }

  get tampering(): Tampering | undefined {
    return this.found;
  }

  /** Record a finding made by other means (a survivor) after `spec`, unless the course was already found changed. */
  flag(spec: string, what: string, changes: readonly string[]): Tampering | undefined {
    if (!this.found && changes.length) this.found = { after: spec, what, changes: changes.slice(0, 20), count: changes.length };
    if (this.found) this.tainted.add(spec);
    return this.found;
  }

  check(spec: string): Tampering | undefined {
    if (!this.found) {
      const diff = fingerprintDiff(this.baseline, fingerprint(this.root, this.extra));
      if (diff.length) this.found = { after: spec, changes: diff.slice(0, 20), count: diff.length };
    }
    if (this.found) this.tainted.add(spec);
    return this.found;
  }
}
