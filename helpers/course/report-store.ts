/**
 * Where the report lives and how it is read and written: reports/labs.json
 * and reports/labs.html (LABS_REPORT_DIR moves them), written atomically and
 * handed to the user who ran sudo.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../harness/paths.js';
import type { LabsReport } from './report-model.js';
import { renderHtml } from './report-html.js';

// ---------------------------------------------------------------------------
// Files

export function readReport(file: string): LabsReport | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as LabsReport;
    return r.schema === 1 && Array.isArray(r.labs) ? r : undefined;
  } catch {
    return undefined;
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** Hand the files to the user who ran `sudo`, so they can open and delete them. */
function giveToSudoUser(paths: readonly string[]): void {
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  if (process.getuid?.() !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid) || !process.env.SUDO_UID) return;
  for (const p of paths) { try { chownSync(p, uid, gid); } catch { /* not ours to fix */ } }
}

/** Write labs.json and labs.html into `dir`; returns the HTML path. */
export function writeReport(report: LabsReport, dir: string): { json: string; html: string } {
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'labs.json');
  const html = join(dir, 'labs.html');
  writeAtomic(json, `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(html, renderHtml(report));
  giveToSudoUser([...(created ? [dir] : []), json, html]);
  return { json, html };
}

/**
 * Hold `<dir>/labs.lock` (a directory: mkdir is atomic) while a run reads,
 * merges and writes the report, so that two runs in one checkout do not
 * lose each other's labs. Waits up to `waitMs`; a lock older than `staleMs`
 * (a run killed while writing) is taken over. Returns the release function.
 */
export function lockReportDir(dir: string, waitMs = 10_000, staleMs = 60_000): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'labs.lock');
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(lock);
      return () => { try { rmdirSync(lock); } catch { /* already gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try { if (Date.now() - statSync(lock).mtimeMs > staleMs) { rmdirSync(lock); continue; } } catch { continue; }
      if (Date.now() > until) throw new Error(`another run holds ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

export function reportDir(): string {
  return process.env.LABS_REPORT_DIR ? resolve(process.env.LABS_REPORT_DIR) : join(REPO_ROOT, 'reports');
}

