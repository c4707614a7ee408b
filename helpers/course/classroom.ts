/**
 * A student edition's manifest (.classroom/manifest.json): the sha256 of every
 * file the edition was made with, the student's sources in c/ apart (they are
 * the starters the student edits). CI compares the pushed tree with it to flag
 * a push that changes what is graded (anything but c/), `npm run edition --
 * update` to tell the student's edits from upstream changes, and `npm run labs
 * -- grade` to read several editions' reports.
 */
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { LabsReport } from './report-model.js';
import { gradeTable, type StudentReport } from './grading.js';

export const MANIFEST_PATH = '.classroom/manifest.json';

export interface Manifest {
  readonly schema: 1;
  /** The course the edition was made from (the instructor's commit, when known). */
  readonly course: { readonly commit?: string; readonly builtAt: string };
  /** sha256 of each file outside c/ (specs, helpers, guides, workflow…), by path. */
  readonly files: Readonly<Record<string, string>>;
  /** sha256 of each starter file in c/ as the edition wrote it. */
  readonly starters: Readonly<Record<string, string>>;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function readManifest(dir: string): Manifest | undefined {
  return readManifestFile(join(dir, MANIFEST_PATH));
}

export function readManifestFile(file: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
    return m.schema === 1 && m.files && m.starters ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Directories never part of what is graded (installed, generated, or the manifest's own folder). */
const UNGRADED = ['node_modules', '.git', '.cache', 'reports', '.classroom'];

/** Under c/ (the student's work), or not graded at all. */
export function isStudentPath(path: string): boolean {
  return path === 'c' || path.startsWith('c/');
}

function walk(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    const rel = relative(root, p).split(sep).join('/');
    if (UNGRADED.includes(rel.split('/')[0]!)) return [];
    if (e.isDirectory()) return walk(root, p);
    return e.isFile() ? [rel] : [];
  });
}

/** The files of a student repository: git's tracked files when it is a checkout, else every file. */
export function repositoryFiles(dir: string): string[] {
  if (existsSync(join(dir, '.git'))) {
    const r = spawnSync('git', ['-C', dir, 'ls-files', '-z'], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.split('\0').filter((f) => f && !UNGRADED.includes(f.split('/')[0]!) && existsSync(join(dir, f)));
  }
  return walk(dir);
}

export interface TreeCheck {
  /** Outside c/: files whose content differs from the manifest. */
  readonly changed: readonly string[];
  /** Outside c/: files the manifest does not list. */
  readonly added: readonly string[];
  /** Files the manifest lists that are gone. */
  readonly missing: readonly string[];
}

/** Compare a student repository with its manifest: what changed outside c/. */
export function checkTree(dir: string, manifest: Manifest, files = repositoryFiles(dir)): TreeCheck {
  const present = new Set(files);
  const changed: string[] = [];
  const added: string[] = [];
  for (const f of files) {
    if (isStudentPath(f)) continue;
    const want = manifest.files[f];
    if (want === undefined) added.push(f);
    else if (sha256(readFileSync(join(dir, f))) !== want) changed.push(f);
  }
  const missing = Object.keys(manifest.files).filter((f) => !present.has(f));
  return { changed: changed.sort(), added: added.sort(), missing: missing.sort() };
}

/** Changed and added files together, as the summary and the grade table show them. */
export function outsideC(check: TreeCheck): string[] {
  return [...check.changed, ...check.added.map((f) => `${f} (added)`)];
}

function readJson(file: string): LabsReport | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as LabsReport;
    return r.schema === 1 && Array.isArray(r.labs) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One student repository for `labs grade`: its report (reports/labs.json, or
 * the directory given is the reports folder, or a labs.json file) and what
 * changed outside c/ according to its manifest (or `trusted`, the instructor's copy).
 */
export function readStudent(path: string, trusted?: Manifest): StudentReport & { readonly reportFile?: string } {
  const abs = resolve(path);
  const isFile = existsSync(abs) && statSync(abs).isFile();
  const candidates = isFile ? [abs] : [join(abs, 'reports', 'labs.json'), join(abs, 'labs.json')];
  const reportFile = candidates.find((f) => existsSync(f));
  const report = reportFile ? readJson(reportFile) : undefined;
  const repo = isFile ? undefined : abs;
  // The instructor's own copy of the manifest, when given: a student could rewrite the one in the repository.
  const manifest = repo ? (trusted ?? readManifest(repo)) : undefined;
  const changed = repo && manifest ? outsideC(checkTree(repo, manifest)) : undefined;
  return {
    name: basename(isFile ? join(abs, '..', '..') : abs),
    report,
    ...(changed ? { changedOutsideC: changed } : {}),
    ...(reportFile ? { reportFile } : {}),
  };
}

// ---------------------------------------------------------------------------
// npm run labs -- grade <dir>… [--run]

/** Run a student repository's labs strictly (its own vitest and node_modules), writing its reports/. */
export function runStudentLabs(dir: string): Promise<number> {
  return new Promise((done, fail) => {
    const bin = join(dir, 'node_modules', '.bin', 'vitest');
    if (!existsSync(bin)) { fail(new Error(`${dir}: no node_modules (run \`npm ci\` there first, or \`sudo npm run setup\`)`)); return; }
    const child = spawn(bin, ['run', '--project', 'labs'], { cwd: dir, stdio: 'inherit', env: { ...process.env, LABS_STRICT: '1', LAB_SRC: '', LABS_REPORT_DIR: '' } });
    child.on('error', fail);
    child.on('exit', (code) => done(code ?? 1));
  });
}

/** The `grade` subcommand: a table of points per lab and student; --run runs each repository's labs first. */
export async function gradeCommand(args: readonly string[], labs: readonly { readonly id: string }[]): Promise<number> {
  const mi = args.indexOf('--manifest');
  const manifestFile = mi >= 0 ? args[mi + 1] : undefined;
  const dirs = args.filter((a, i) => !a.startsWith('--') && !(mi >= 0 && i === mi + 1));
  if (!dirs.length) {
    console.error('usage: npm run labs -- grade <student repository or labs.json>… [--run] [--json] [--manifest <the edition\'s .classroom/manifest.json>]');
    return 2;
  }
  let trusted: Manifest | undefined;
  if (manifestFile) {
    trusted = readManifestFile(resolve(manifestFile));
    if (!trusted) { console.error(`${manifestFile}: not an edition manifest (.classroom/manifest.json)`); return 2; }
  }
  if (args.includes('--run')) {
    if (process.getuid?.() !== 0) { console.error('grade --run runs the labs: run it as root (sudo).'); return 1; }
    for (const d of dirs) {
      // Check first, run after: the student's code runs as root, and a push that changes what is graded is not run.
      const m = trusted ?? readManifest(resolve(d));
      const changed = m ? outsideC(checkTree(resolve(d), m)) : [];
      if (!m) { console.log(`[grade] not running ${d}: it has no edition manifest to check it against (pass --manifest <the edition's .classroom/manifest.json>)`); continue; }
      if (changed.length) { console.log(`[grade] not running ${d}: it changes what is graded (${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', …' : ''}); its last report, if any, is shown flagged`); continue; }
      console.log(`[grade] running the labs of ${d}`);
      await runStudentLabs(resolve(d));
    }
  }
  const students = dirs.map((d) => readStudent(d, trusted));
  if (args.includes('--json')) {
    console.log(JSON.stringify(students.map((s) => ({ name: s.name, reportFile: s.reportFile, changedOutsideC: s.changedOutsideC ?? [],
      labs: (s.report?.labs ?? []).map((l) => ({ id: l.id, result: l.result, score: l.score })) })), null, 2));
  } else {
    console.log(gradeTable(students, labs));
    for (const s of students) if (s.changedOutsideC?.length) console.log(`\n${s.name}: changed outside c/: ${s.changedOutsideC.join(', ')}`);
  }
  return students.some((s) => !s.report) ? 1 : 0;
}
