/**
 * The student edition: the course without its solutions, graded by CI.
 *
 *   npm run edition -- student <dir> [--force]   write a student repository into <dir>
 *   npm run edition -- update <dir>              bring its specs, helpers and guides up to date
 *
 * An edition holds the specs, helpers, guides (labs/…/README.md), scripts and
 * the workflow of this repository (each lab's hints.md and answers.md gzip'd:
 * `npm run lab -- hint|answers` shows them), and in c/ the starters (`writeStarter`):
 * no LAB:BEGIN region, no git history, no unit test or fixture (tests/ holds
 * correct programs as fixtures), no instructor docs (docs/AUTHORING.md shows a
 * region with its answer). Its `npm test` runs the labs against its own c/.
 * Its .classroom/manifest.json lists the sha256 of what it was made with.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { MANIFEST_PATH, readManifest, sha256, type Manifest } from '../helpers/course/classroom.js';
import { REPO_ROOT } from '../helpers/harness/paths.js';
import { writeStarter } from './starter.js';
import { fold } from '../helpers/course/reveal.js';

export interface EditionFile {
  readonly data: Buffer;
  readonly mode: number;
}

/** path (with /) → content: the whole edition, manifest included. */
export type Edition = Map<string, EditionFile>;

/** What is copied from the course as it is (prefixes); everything else is left out. */
const SHIPPED = ['labs/', 'helpers/', 'scripts/', '.ci/run', 'tsconfig.json', 'vitest.config.ts', 'package-lock.json', '.gitignore'];
/** …except these: the instructor's tools (they read the reference c/ or do what a lab asks) and the workflow's template. */
const NOT_SHIPPED = ['scripts/starter.ts', 'scripts/edition.ts', 'scripts/classroom/', 'scripts/bench/'];
const WORKFLOW_TEMPLATE = 'scripts/classroom/grade.yml';
/**
 * c/.gitignore of an edition: the guides build programs where the sources are (`gcc -o uring_cp …` in the
 * lab's directory); those are not the student's work and must not be pushed. Sources, notes and the hint
 * record are.
 */
export const C_GITIGNORE = `# Only sources are your work: what the guides' commands build here (gcc -o <program>, clang -o x.o) is not pushed.
# Add an exception (!<name>) for another file of yours that should be.
*
!*/
${['c', 'h', 'sh', 'bt', 'py', 'fio', 'gdb', 'tbl', 'md', 'txt'].map((e) => `!*.${e}`).join('\n')}
!.gitignore
!.hints-used.json
`;

/** Shipped folded (helpers/course/reveal.ts). */
const FOLDED = /^labs\/(?:.+\/)?(?:hints|answers)\.md$/;
const WORKFLOW_PATH = '.github/workflows/grade.yml';

/** The course's files: git's tracked and untracked-but-not-ignored files, else a walk. */
function courseFiles(root: string): string[] {
  const r = spawnSync('git', ['-C', root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' });
  if (r.status === 0) return [...new Set(r.stdout.split('\0').filter((f) => f && existsSync(join(root, f)) && statSync(join(root, f)).isFile()))];
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (['node_modules', '.git', '.cache', 'reports'].includes(e.name)) return [];
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.isFile() ? [relative(root, p).split(sep).join('/')] : [];
  });
  return walk(root);
}

export function isShipped(path: string): boolean {
  return SHIPPED.some((p) => path === p || (p.endsWith('/') && path.startsWith(p)))
    && !NOT_SHIPPED.some((p) => path === p || (p.endsWith('/') && path.startsWith(p)));
}

/** package.json for students: `npm test` runs the labs only (the edition has no unit tests), no instructor commands. */
export function studentPackageJson(text: string): string {
  const pkg = JSON.parse(text) as { scripts: Record<string, string>; [k: string]: unknown };
  const scripts = { ...pkg.scripts };
  scripts.test = 'node scripts/require-root.mjs && vitest run --project labs';
  for (const k of ['test:unit', 'edition']) delete scripts[k];
  // The guides' workspace (npm run starter -- ~/my-labs) becomes a link to c/ (scripts/edition-starter.ts).
  scripts.starter = 'tsx scripts/edition-starter.ts';
  return `${JSON.stringify({ ...pkg, scripts }, null, 2)}\n`;
}

/** The course table of the course's README (its rows link to labs/…/README.md, which the edition has). */
function courseTable(readme: string): string {
  const m = readme.match(/## The course\n([\s\S]*?)\n## /);
  return (m?.[1] ?? '').trim();
}

export function studentReadme(courseReadme: string): string {
  return `# Kernel labs — 内核实验 (student edition)

Hands-on Linux kernel experiments, each one a [vitest](https://vitest.dev) spec whose assertions are the
verification criteria. You write the parts marked \`TODO\` in \`c/\`; a lab passes when the kernel shows that
your program did the job. Every lab fails until you do the work.

## Start here

On a Linux VM (Ubuntu 22.04 / Debian 12, x86-64) with Node.js 20+:

\`\`\`sh
sudo npm run setup     # once: system packages, npm ci, tracefs, kernel headers for BCC (safe to re-run)
sudo npm test          # every lab, against your c/
\`\`\`

One lab at a time, again on every save: \`sudo npm run lab -- 00-environment --watch\`.
\`npm run labs -- list\` lists the labs and what this machine can do; \`npm run doctor\` names what is missing and the fix.
Each run writes \`reports/labs.html\` (open it in a browser) and prints your points per lab.

## The course

${courseTable(courseReadme)}

Each lab's guide is the \`README.md\` next to its spec (\`labs/<area>/<lab>/README.md\`); the files you edit are
its \`sources\` in \`lab.json\`, under \`c/\`.

> **Your workspace is this repository's \`c/\`**: CI grades \`c/\`, nothing else. The guides were written for a
> workspace \`~/my-labs\`: run \`npm run starter -- ~/my-labs\` once here, and \`~/my-labs\` becomes a link to \`c/\`,
> so that every command of every guide (\`cd ~/my-labs/…\`, \`sudo LAB_SRC=~/my-labs npm run lab -- …\`) works as
> written, on the files CI grades. Without the link, edit the files in \`c/\` and leave \`LAB_SRC\` out
> (\`sudo npm run lab -- io_uring/01-fio\`).
>
> Stuck? \`npm run lab -- hint <lab>\` shows the lab's next hint (the report counts them). The answers to each
> guide's questions: \`npm run lab -- answers <lab>\`, once the lab passes on your machine.

## Grading

Each test (each verification sentence) is worth points (\`"points"\` in the lab's \`lab.json\`, 1 each unless it
says otherwise). Every push runs the labs on your instructor's runners (\`.github/workflows/grade.yml\`) with
\`LABS_STRICT=1\`: a test this machine would skip (a missing capability) counts as failed there. The run's
summary page shows your points per lab, and the report is attached to the run as the artifact \`labs-report\`.

**Edit only \`c/\`.** The specs, helpers, guides and the workflow are what you are graded with: a push that
changes any of them is flagged in the summary for your instructor. When the course gains a lab or a fix, your
instructor updates this repository with \`npm run edition -- update\`; your work in \`c/\` is kept.
`;
}

function gitCommit(root: string): string | undefined {
  const r = spawnSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The whole student edition of the course at `root`, in memory. */
export function buildEdition(root = REPO_ROOT, now = new Date()): Edition {
  const out: Edition = new Map();
  const put = (path: string, data: Buffer | string, mode = 0o644) => out.set(path, { data: Buffer.isBuffer(data) ? data : Buffer.from(data), mode });
  for (const f of courseFiles(root)) {
    if (!isShipped(f)) continue;
    const abs = join(root, f);
    // A lab's further hints and model answers are folded (gzip'd): shown by `npm run lab -- hint|answers`, not by a grep.
    if (FOLDED.test(f)) { put(`${f}.gz`, fold(readFileSync(abs))); continue; }
    put(f, readFileSync(abs), statSync(abs).mode & 0o777);
  }
  put('package.json', studentPackageJson(readFileSync(join(root, 'package.json'), 'utf8')));
  put('README.md', studentReadme(readFileSync(join(root, 'README.md'), 'utf8')));
  put(WORKFLOW_PATH, readFileSync(join(root, WORKFLOW_TEMPLATE)));
  // c/: the starters, made by the same code as `npm run starter`.
  const tmp = mkdtempSync(join(tmpdir(), 'kl-edition-'));
  try {
    writeStarter(tmp, join(root, 'c'));
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
    for (const abs of walk(tmp)) put(`c/${relative(tmp, abs).split(sep).join('/')}`, readFileSync(abs), statSync(abs).mode & 0o777);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  put('c/.gitignore', C_GITIGNORE);
  const commit = gitCommit(root);
  return sealEdition(out, { ...(commit ? { commit } : {}), builtAt: now.toISOString() });
}

/** (Re)write the edition's manifest from its files. */
export function sealEdition(edition: Edition, course: Manifest['course']): Edition {
  const files: Record<string, string> = {};
  const starters: Record<string, string> = {};
  for (const [p, f] of [...edition].sort(([a], [b]) => a.localeCompare(b))) {
    if (p !== MANIFEST_PATH) (p.startsWith('c/') ? starters : files)[p] = sha256(f.data);
  }
  const manifest: Manifest = { schema: 1, course, files, starters };
  edition.set(MANIFEST_PATH, { data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), mode: 0o644 });
  return edition;
}

function writeOne(dir: string, path: string, f: EditionFile): void {
  const abs = join(dir, path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, f.data);
  chmodSync(abs, f.mode);
}

export function writeEdition(dir: string, edition: Edition): void {
  for (const [p, f] of edition) writeOne(dir, p, f);
}

// ---------------------------------------------------------------------------
// Updating an edition

export interface Conflict {
  readonly path: string;
  readonly why: string;
}

export interface UpdatePlan {
  /** Files written (new, or unchanged by the student and changed upstream). */
  readonly write: readonly string[];
  /** Files removed upstream that the student had not changed. */
  readonly remove: readonly string[];
  /** Left as they are; the upstream version goes to .classroom/upstream/<path>. */
  readonly conflicts: readonly Conflict[];
  /** Student files in c/ no lab of the course uses any more (kept). */
  readonly orphans: readonly string[];
}

const hashAt = (dir: string, p: string) => (existsSync(join(dir, p)) ? sha256(readFileSync(join(dir, p))) : undefined);

/** What `update` does to `dir` (made as edition `old`) to bring it to `fresh`: pure apart from reading dir. */
export function planUpdate(dir: string, old: Manifest, fresh: Edition): UpdatePlan {
  const write: string[] = [];
  const remove: string[] = [];
  const conflicts: Conflict[] = [];
  const orphans: string[] = [];
  for (const [p, f] of fresh) {
    if (p === MANIFEST_PATH) continue;
    const now = hashAt(dir, p);
    const next = sha256(f.data);
    if (now === next) continue;
    const base = p.startsWith('c/') ? old.starters[p] : old.files[p];
    if (now === undefined || now === base) { write.push(p); continue; }
    // The student's work on a starter that has not changed upstream since the edition was made or updated.
    if (p.startsWith('c/') && next === base) continue;
    conflicts.push({
      path: p,
      why: p.startsWith('c/')
        ? (base === undefined ? 'a new starter upstream, and you already have a file of that name' : 'you edited it, and its starter changed upstream')
        : (base === undefined ? 'new upstream, and you already have a file of that name'
          : next === base ? 'changed here: it stays flagged as a change to what is graded' : 'changed both here and upstream'),
    });
  }
  for (const [p, h] of Object.entries(old.files)) {
    if (fresh.has(p)) continue;
    const now = hashAt(dir, p);
    if (now === undefined) continue;
    if (now === h) remove.push(p);
    else conflicts.push({ path: p, why: 'removed upstream, but changed here' });
  }
  for (const p of Object.keys(old.starters)) if (!fresh.has(p) && existsSync(join(dir, p))) orphans.push(p);
  return { write, remove, conflicts, orphans };
}

export function applyUpdate(dir: string, fresh: Edition, plan: UpdatePlan): void {
  for (const p of plan.write) writeOne(dir, p, fresh.get(p)!);
  for (const p of plan.remove) rmSync(join(dir, p), { force: true });
  rmSync(join(dir, '.classroom', 'upstream'), { recursive: true, force: true });
  for (const c of plan.conflicts) {
    const f = fresh.get(c.path);
    if (f) writeOne(join(dir, '.classroom', 'upstream'), c.path, f);
  }
  writeOne(dir, MANIFEST_PATH, fresh.get(MANIFEST_PATH)!);
}

// ---------------------------------------------------------------------------
// CLI

const USAGE = `usage:
  npm run edition -- student <dir> [--force]   write a student repository (starters in c/, no solutions)
  npm run edition -- update <dir> [--dry-run]  bring an edition's specs, helpers and guides up to date; c/ work is kept`;

export function main(argv: readonly string[]): number {
  const [cmd, ...rest] = argv;
  const target = rest.find((a) => !a.startsWith('--'));
  if (!target || (cmd !== 'student' && cmd !== 'update')) {
    console.error(USAGE);
    return 2;
  }
  const dir = resolve(process.env.INIT_CWD ?? process.cwd(), target);
  if (cmd === 'student') {
    if (existsSync(dir) && readdirSync(dir).length && !rest.includes('--force')) {
      console.error(`${dir} exists and is not empty: pass --force to write over it, or \`npm run edition -- update ${target}\` to update an edition.`);
      return 2;
    }
    const ed = buildEdition();
    writeEdition(dir, ed);
    const starters = [...ed.keys()].filter((p) => p.startsWith('c/')).length;
    console.log(`Wrote the student edition to ${dir}: ${ed.size} files, ${starters} of them starters in c/.\n`
      + `Next: cd ${dir} && git init -b main && git add -A && git commit -m "Kernel labs, student edition" && git remote add origin <url> && git push -u origin main\n`
      + 'See docs/CLASSROOM.md.');
    return 0;
  }
  const old = readManifest(dir);
  if (!old) {
    console.error(`${dir} has no ${MANIFEST_PATH}: it is not a student edition (make one with npm run edition -- student <dir>).`);
    return 2;
  }
  const fresh = buildEdition();
  const plan = planUpdate(dir, old, fresh);
  const dry = rest.includes('--dry-run');
  if (!dry) applyUpdate(dir, fresh, plan);
  const verb = dry ? 'would update' : 'updated';
  console.log(`${verb} ${plan.write.length} files, removed ${plan.remove.length}${dry ? ' (dry run)' : ''}:`);
  for (const p of plan.write) console.log(`  ${existsSync(join(dir, p)) || !dry ? 'M' : 'A'} ${p}`);
  for (const p of plan.remove) console.log(`  D ${p}`);
  for (const p of plan.orphans) console.log(`  kept ${p} (no lab uses it any more)`);
  if (plan.conflicts.length) {
    console.log(`\n${plan.conflicts.length} conflict(s), left as they are${dry ? '' : ` (the upstream version is in .classroom/upstream/<path>)`}:`);
    for (const c of plan.conflicts) console.log(`  C ${c.path}: ${c.why}`);
    return 1;
  }
  return 0;
}

if (resolve(process.argv[1] ?? '') === resolve(new URL(import.meta.url).pathname)) process.exitCode = main(process.argv.slice(2));

// ---------------------------------------------------------------------------
// The leak check (tests/course/edition.test.ts)

/** A line worth looking for: at least 12 characters and two words of three letters or more (not `if (fd < 0) {`). */
const nonTrivial = (n: string) => n.length >= 12 && (n.match(/[A-Za-z_][A-Za-z0-9_]{2,}/g) ?? []).length >= 2;
const normalize = (l: string) => l.trim().replace(/\s+/g, ' ');

/**
 * The marked solution text of the reference c/: every line between a LAB:BEGIN
 * and its LAB:STARTER (or LAB:END) that is not trivial (see nonTrivial) and that
 * appears nowhere in c/ outside a region or in a STARTER part (such a line is in
 * the starters anyway: `close(fd);`, a shared include, the starter's own code).
 */
export function solutionLines(root = REPO_ROOT): Map<string, string> {
  const src = join(root, 'c');
  const inside = new Map<string, string>();
  const outside = new Set<string>();
  const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const abs of walk(src)) {
    const buf = readFileSync(abs);
    if (buf.includes(0)) continue;
    const rel = relative(src, abs);
    let state: 'out' | 'solution' | 'starter' = 'out';
    buf.toString('utf8').split('\n').forEach((line, i) => {
      const m = line.match(/^\s*(?:\/\/|#)\s*LAB:(BEGIN|STARTER|END)\b/);
      if (m) { state = m[1] === 'BEGIN' ? 'solution' : m[1] === 'STARTER' ? 'starter' : 'out'; return; }
      const n = normalize(line);
      if (state === 'solution') { if (nonTrivial(n) && !inside.has(n)) inside.set(n, `c/${rel}:${i + 1}`); }
      // STARTER lines are in the starters on purpose (uncommented there).
      else if (state === 'starter') outside.add(normalize(line.replace(/^\s*(\/\/|#) ?/, '')));
      else outside.add(n);
    });
  }
  for (const n of outside) inside.delete(n);
  return inside;
}

export interface Leak {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  /** Where the solution line is in the reference. */
  readonly from: string;
}

/** Every line of an edition that is a line of marked solution text. */
export function findLeaks(edition: Edition, solution = solutionLines()): Leak[] {
  const leaks: Leak[] = [];
  for (const [file, f] of edition) {
    if (f.data.includes(0)) continue;
    f.data.toString('utf8').split('\n').forEach((line, i) => {
      const from = solution.get(normalize(line));
      if (from) leaks.push({ file, line: i + 1, text: line.trim(), from });
    });
  }
  return leaks;
}
