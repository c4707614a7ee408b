/**
 * The report's digest (issue #29): a graded program that outlives the run
 * could rewrite reports/ after vitest exits (the JUnit file CI counts, the
 * labs.json the grade job merges). The one thing it cannot rewrite is the job
 * log, which the runner streams off the machine as the run goes. So vitest's
 * main process, as it exits, prints the sha256 of every report file it wrote
 * to that log, and `npm run labs -- verify-reports <log>` compares a reports
 * directory (the one on disk, or the artifact the workflow uploaded) with the
 * digest in the log: a file changed, added to the digest's list or removed
 * after the run is named.
 *
 * The digest is printed from an `exit` handler: by then every reporter's
 * onTestRunEnd has returned (vitest's JUnit reporter writes its file there, in
 * parallel with ours), and a write to a pipe or a terminal is synchronous on
 * Linux, so the line is in the log before the process is gone.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';

export const DIGEST_TAG = '[kernel-labs] reports sha256:';

export interface DigestEntry {
  /** The file's name in its reports directory (a basename). */
  readonly name: string;
  readonly sha256: string;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The log line for these files (those that exist; a name may appear once). */
export function digestLine(paths: readonly string[]): string {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const p of paths) {
    const name = basename(p);
    if (seen.has(name) || !existsSync(p)) continue;
    seen.add(name);
    parts.push(`${name}=${sha256File(p)}`);
  }
  return `${DIGEST_TAG} ${parts.join(' ')}`;
}

/** Print the digest line of these files to stdout when the process exits (once per path set). */
let pending: string[] | undefined;
export function printDigestAtExit(paths: readonly string[]): void {
  const first = pending === undefined;
  pending = [...new Set([...(pending ?? []), ...paths])];
  if (!first) return;
  process.once('exit', () => {
    try {
      writeSync(1, `${digestLine(pending ?? [])}\n`);
    } catch (e) {
      try { writeSync(2, `[kernel-labs] could not print the reports' digest: ${(e as Error).message}\n`); } catch { /* stdout and stderr gone */ }
    }
  });
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/**
 * The digest a log holds: the entries of its LAST digest line (a log of
 * several runs, e.g. a student's terminal, speaks for the last one). A
 * GitHub log prefixes each line with a timestamp; colours are stripped.
 */
export function parseDigest(log: string): DigestEntry[] | undefined {
  let last: string | undefined;
  for (const raw of log.split('\n')) {
    const line = raw.replace(ANSI, '');
    const at = line.indexOf(DIGEST_TAG);
    if (at >= 0) last = line.slice(at + DIGEST_TAG.length);
  }
  if (last === undefined) return undefined;
  const entries: DigestEntry[] = [];
  for (const word of last.trim().split(/\s+/).filter(Boolean)) {
    const m = /^([^=\s/]+)=([0-9a-f]{64})$/.exec(word);
    if (m) entries.push({ name: m[1]!, sha256: m[2]! });
  }
  return entries;
}

export interface DigestCheck {
  readonly ok: readonly string[];
  /** In the digest, but the file differs. */
  readonly changed: readonly string[];
  /** In the digest, but not in the directory. */
  readonly missing: readonly string[];
}

export function checkDigest(dir: string, entries: readonly DigestEntry[]): DigestCheck {
  const ok: string[] = [];
  const changed: string[] = [];
  const missing: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (!existsSync(p)) missing.push(e.name);
    else if (sha256File(p) === e.sha256) ok.push(e.name);
    else changed.push(e.name);
  }
  return { ok, changed, missing };
}

/** One line per finding, for the terminal and CI's log; empty when every file matches. */
export function digestProblems(dir: string, check: DigestCheck): string[] {
  return [
    ...check.changed.map((n) => `tampering: ${join(dir, n)} changed after the run (its sha256 differs from the one vitest printed as it exited)`),
    ...check.missing.map((n) => `tampering: ${join(dir, n)} was removed after the run (vitest printed its sha256 as it exited)`),
  ];
}
