/**
 * The student's and instructor's front door to the labs.
 *
 *   npm run labs -- list [--json]        every lab: area, titles, status on this host (ready / adapted / skipped + why)
 *   sudo npm run lab -- <name>           run one lab's spec (<name>: a lab id or any part of it or of its title)
 *   sudo npm run lab -- <name> --watch   …and run it again whenever its sources (c/… or LAB_SRC) or its spec change
 *   npm run labs -- merge <labs.json…> [-o <dir>]   one report from several (CI shards)
 *   npm run labs -- grade <dir>… [--run]             points per lab of several student editions (helpers/course/classroom.ts)
 *   npm run lab -- hint <name> [--again]  the lab's next hint, recorded in the sources' .hints-used.json (helpers/course/reveal.ts)
 *   npm run lab -- answers <name>         the model answers to the guide's questions, once the lab has passed here
 *
 * Anything else after <name> goes to vitest (e.g. `-t "drops every"`).
 * Remember that sudo drops environment variables: `sudo LAB_SRC=~/my-labs npm run lab -- <name>`.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { chownSync, existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { probeAll, type Capabilities, type CapabilityId } from '../helpers/harness/capabilities.js';
import { mergeReports, type LabResult, type LabsReport } from '../helpers/course/report-model.js';
import { readReport, reportDir, writeReport } from '../helpers/course/report-store.js';
import { courseOrder, listLabs, type LabInfo } from '../helpers/course/labs.js';
import { sourcesBanner, defaultSourcesLabel, findWorkspaces, isStudentEdition } from '../helpers/course/sources.js';
import { answersGate, HINTS_RECORD, nextHint, passedAgainst, readSections } from '../helpers/course/reveal.js';
import { createInterface } from 'node:readline/promises';
import { pinStudentSources, REFERENCE_SRC, REPO_ROOT, studentSources } from '../helpers/harness/paths.js';
import { gradeCommand } from '../helpers/course/classroom.js';
import { checkDigest, DIGEST_TAG, digestProblems, parseDigest } from '../helpers/course/report-digest.js';

// ---------------------------------------------------------------------------
// Status on this host

export type LabStatus = 'ready' | 'adapted' | 'skipped';

export interface LabRow {
  readonly id: string;
  readonly area: string;
  readonly order: number;
  readonly title: { readonly zh: string; readonly en: string };
  readonly spec: string;
  readonly status: LabStatus;
  /** Why skipped (missing capability, what was found, the fix) or how it adapts. */
  readonly reasons: readonly string[];
  readonly seconds?: number;
  /** The lab's result in the last report, when there is one. */
  readonly lastResult?: LabResult;
}

export interface StatusOptions {
  /**
   * Count `root` as present: `labs list` runs without sudo, the labs with it.
   * (Default: true when not root.)
   */
  readonly assumeSudo?: boolean;
}

type CapLookup = Pick<Capabilities, CapabilityId>;

/** ready / adapted / skipped for one lab, from its lab.json and the probed capabilities. */
export function labStatus(lab: LabInfo, caps: CapLookup, opts: StatusOptions = {}): Pick<LabRow, 'status' | 'reasons'> {
  const present = (id: CapabilityId) => caps[id].ok || (id === 'root' && opts.assumeSudo === true);
  const missing = lab.requires.filter((id) => !present(id));
  if (missing.length) {
    return {
      status: 'skipped',
      reasons: missing.map((id) => `missing ${id} (${caps[id].title}): ${caps[id].detail}. Fix: ${caps[id].fix}`),
    };
  }
  const adapts = (lab.adapts ?? []).filter((id) => !present(id));
  if (adapts.length) {
    return { status: 'adapted', reasons: adapts.map((id) => `no ${id} here (${caps[id].detail}): the lab works around it`) };
  }
  return { status: 'ready', reasons: [] };
}

export function labRows(labs: readonly LabInfo[], caps: CapLookup, opts: StatusOptions = {}, last?: LabsReport): LabRow[] {
  const results = new Map((last?.labs ?? []).filter((l) => l.result !== 'not run').map((l) => [l.id, l.result]));
  return courseOrder(labs).map((lab) => ({
    id: lab.id, area: lab.area, order: lab.order, title: lab.title, spec: lab.spec,
    ...labStatus(lab, caps, opts),
    ...(lab.seconds !== undefined ? { seconds: lab.seconds } : {}),
    ...(results.has(lab.id) ? { lastResult: results.get(lab.id)! } : {}),
  }));
}

const MARK: Record<LabStatus, string> = { ready: '✔', adapted: '◐', skipped: '⊘' };
const COLOR: Record<LabStatus, number> = { ready: 32, adapted: 33, skipped: 31 };

/** The `labs list` text (pure, for the tests). */
export function formatList(rows: readonly LabRow[], opts: { readonly color?: boolean; readonly header?: string } = {}): string {
  const paint = (code: number, s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const idW = Math.max(4, ...rows.map((r) => r.id.length));
  const out: string[] = [];
  if (opts.header) out.push(opts.header, '');
  let area: string | undefined;
  for (const r of rows) {
    if (r.area !== area) {
      area = r.area;
      out.push(paint(1, area));
    }
    const status = paint(COLOR[r.status], `${MARK[r.status]} ${r.status.padEnd(7)}`);
    const extra = [r.seconds !== undefined ? `~${r.seconds} s` : '', r.lastResult ? `last run: ${r.lastResult}` : ''].filter(Boolean).join(', ');
    out.push(`  ${status}  ${r.id.padEnd(idW)}  ${r.title.en} · ${r.title.zh}${extra ? `  (${extra})` : ''}`);
    for (const why of r.reasons) out.push(`  ${' '.repeat(9)}  ${' '.repeat(idW)}  ${paint(2, why)}`);
  }
  const n = (s: LabStatus) => rows.filter((r) => r.status === s).length;
  out.push('', `${rows.length} labs: ${n('ready')} ready, ${n('adapted')} adapted, ${n('skipped')} skipped on this host.`);
  out.push('Run one:  sudo npm run lab -- <id or part of it>      (re-run on every save: add --watch)');
  out.push('Against your workspace:  sudo LAB_SRC=~/my-labs npm run lab -- <id>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Choosing labs

/**
 * Labs a query names: an exact id wins; else every lab whose id, spec or title
 * contains it (case-insensitive).
 */
export function matchLabs(query: string, labs: readonly LabInfo[]): LabInfo[] {
  const q = query.replace(/\/+$/, '').replace(/^labs\//, '').toLowerCase();
  const exact = labs.filter((l) => l.id.toLowerCase() === q);
  if (exact.length) return exact;
  return labs.filter((l) => [l.id, l.spec, l.title.en, l.title.zh].some((s) => s.toLowerCase().includes(q)));
}

/** Directories whose changes re-run the lab: its sources (in `srcRoot`) and its spec. */
export function watchTargets(labs: readonly LabInfo[], srcRoot: string, root = REPO_ROOT): string[] {
  const dirs = labs.flatMap((l) => [...l.sources.map((s) => dirname(join(srcRoot, s))), dirname(join(root, l.spec))]);
  return [...new Set(dirs)].filter((d) => existsSync(d));
}

// ---------------------------------------------------------------------------
// Watching

export interface Watcher {
  close(): void;
  /** Resolves when the current run (if any) has finished. */
  idle(): Promise<void>;
}

export interface WatchOptions {
  readonly dirs: readonly string[];
  /** Runs the lab; resolves with its exit code. */
  readonly run: (changed: readonly string[]) => Promise<number>;
  readonly debounceMs?: number;
  readonly log?: (line: string) => void;
}

const EDITOR_NOISE = /(^\.|~$|\.sw[a-p]x?$|^4913$|\.tmp$|^#.*#$)/;

/**
 * Re-run on change: debounced, never two runs at once (a change during a run
 * queues exactly one more), editors' temporary files ignored. The directories
 * are watched rather than the files, so saving by rename (vim, VS Code) works.
 */
export function watchAndRun(opts: WatchOptions): Watcher {
  const log = opts.log ?? ((l: string) => console.log(l));
  const debounce = opts.debounceMs ?? 300;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let pending = new Set<string>();
  let closed = false;

  const start = () => {
    timer = undefined;
    if (running || closed || !pending.size) return;
    const changed = [...pending];
    pending = new Set();
    running = opts.run(changed).then(
      (code) => { log(`[watch] ${code === 0 ? 'passed' : `exit ${code}`}; waiting for changes (Ctrl-C to stop)`); },
      (e: unknown) => { log(`[watch] the run failed to start: ${(e as Error).message}`); },
    ).finally(() => {
      running = undefined;
      if (pending.size) start();
    });
  };

  const watchers: FSWatcher[] = opts.dirs.map((dir) => watch(dir, (_event, name) => {
    const file = name ? join(dir, name.toString()) : dir;
    if (name && EDITOR_NOISE.test(basename(name.toString()))) return;
    pending.add(file);
    if (running) return; // picked up when the run ends
    if (timer) clearTimeout(timer);
    timer = setTimeout(start, debounce);
  }));

  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
    async idle() {
      while (running) await running;
    },
  };
}

// ---------------------------------------------------------------------------
// Running

function vitestBin(): string {
  return join(REPO_ROOT, 'node_modules', '.bin', 'vitest');
}

function runVitest(specs: readonly string[], forward: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(vitestBin(), ['run', '--project', 'labs', ...specs, ...forward], { cwd: REPO_ROOT, stdio: 'inherit', env });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolveRun(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

const USAGE = `usage:
  npm run labs -- list [--json]              every lab and its status on this host
  sudo npm run lab -- <name> [--watch]       run one lab (an id like ebpf/01-bpftrace, or any part of an id or title)
  npm run labs -- merge <labs.json>… [-o <dir>]   merge reports (e.g. from CI shards)
  npm run labs -- grade <dir>… [--run]       points per lab of student editions (their reports/labs.json)
  npm run lab -- hint <name> [--again]       the lab's next hint (recorded; --again shows those you had, not counted)
  npm run lab -- answers <name>              the answers to the guide's questions, once the lab has passed here
  npm run labs -- verify-reports <log> [--dir <reports>]   the reports match the sha256 the run printed in its log (- reads stdin)
  (sudo drops environment variables: put them after it, e.g. sudo LAB_SRC=~/my-labs npm run lab -- <name>)`;

async function list(args: readonly string[]): Promise<number> {
  const labs = listLabs();
  const caps = await probeAll();
  const asRoot = process.getuid?.() === 0;
  const rows = labRows(labs, caps, { assumeSudo: !asRoot }, readReport(join(reportDir(), 'labs.json')));
  if (args.includes('--json')) {
    console.log(JSON.stringify({ kernel: caps.kernelRelease, asRoot, labs: rows }, null, 2));
    return 0;
  }
  const header = `Kernel labs on kernel ${caps.kernelRelease} (cgroups: ${caps.cgroupInfo.detail})`
    + (asRoot ? '' : '\nProbed without root: the labs run with sudo; capabilities only root can probe (kvm, bcc…) may show as missing: sudo npm run labs -- list');
  console.log(formatList(rows, { color: Boolean(process.stdout.isTTY), header }));
  return 0;
}

/** The one lab a query names, or an error message. */
function oneLab(query: string | undefined, labs: readonly LabInfo[]): LabInfo | string {
  if (!query) return `${USAGE}\n\nlabs: ${labs.map((l) => l.id).join(', ')}`;
  const chosen = matchLabs(query, labs);
  if (chosen.length === 1) return chosen[0]!;
  if (!chosen.length) return `No lab matches "${query}". The labs are:\n${labs.map((l) => `  ${l.id}  ${l.title.en} · ${l.title.zh}`).join('\n')}`;
  return `"${query}" names ${chosen.length} labs (${chosen.map((l) => l.id).join(', ')}): name one.`;
}

/**
 * The student's sources for the hint record and the answers' gate: LAB_SRC, c/ in an edition,
 * else the one workspace found where npm run starter puts them.
 */
function workspaceSources(): { root: string; labSrc: string | null } | string {
  const labSrc = studentSources();
  if (labSrc) return existsSync(labSrc) ? { root: labSrc, labSrc } : `LAB_SRC=${labSrc} does not exist. Make your workspace first: npm run starter -- ${labSrc}`;
  if (isStudentEdition()) return { root: REFERENCE_SRC, labSrc: null };
  const found = findWorkspaces(listLabs());
  if (found.length === 1) return { root: found[0]!, labSrc: found[0]! };
  return found.length
    ? `Several workspaces (${found.join(', ')}): say which, e.g. LAB_SRC=${found[0]} npm run lab -- …`
    : 'Hints and answers belong to your workspace, and none was found: make one (npm run starter -- ~/my-labs) and name it, e.g. LAB_SRC=~/my-labs npm run lab -- hint <lab>.';
}

async function hint(args: readonly string[]): Promise<number> {
  const lab = oneLab(args.find((a) => !a.startsWith('-')), listLabs());
  if (typeof lab === 'string') { console.error(lab); return 2; }
  const src = workspaceSources();
  if (typeof src === 'string') { console.error(src); return 2; }
  const again = args.includes('--again');
  // A hint is recorded once shown: at a terminal, ask first (--yes skips the question).
  if (!again && process.stdin.isTTY && !args.includes('--yes')) {
    const peek = nextHint(lab.id, src.root, { again: true });
    if (peek.earlier.length < peek.total) {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question(`Show hint ${peek.earlier.length + 1} of ${peek.total} for ${lab.id}? It is recorded, and the report shows hints used. [y/N] `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) { console.log('No hint shown, nothing recorded.'); return 0; }
    }
  }
  const step = nextHint(lab.id, src.root, { again });
  const cost = lab.hintCost ?? 0;
  const show = (n: number, h: { title: string; body: string }) => console.log(`\n── Hint ${n} of ${step.total} for ${lab.id}: ${h.title}\n\n${h.body}\n`);
  if (!step.total) { console.log(`${lab.id} has no further hints: its guide's steps, the TODOs and the man pages they name are the way in. A failing test's message says what the kernel showed.`); return 0; }
  if (step.hint) {
    show(step.number!, step.hint);
    const record = join(src.root, HINTS_RECORD);
    // Written as the student when run through sudo, so that the next hint works without it.
    const uid = Number(process.env.SUDO_UID), gid = Number(process.env.SUDO_GID);
    if (process.getuid?.() === 0 && uid > 0) { try { chownSync(record, uid, Number.isInteger(gid) ? gid : uid); } catch { /* not ours to fix */ } }
    console.log(`Recorded in ${record} (${step.number} of ${step.total} hints used for this lab; ${cost ? `each costs ${cost} point${cost === 1 ? '' : 's'}` : 'hints cost no points here'}; the report shows them).`
      + (step.number! < step.total ? ` The next one: npm run lab -- hint ${lab.id}` : ''));
    return 0;
  }
  if (args.includes('--again')) {
    if (!step.earlier.length) { console.log(`No hint of ${lab.id} shown yet: npm run lab -- hint ${lab.id}`); return 0; }
    step.earlier.forEach((h, i) => show(i + 1, h));
    return 0;
  }
  console.log(`You have seen all ${step.total} hint${step.total === 1 ? '' : 's'} of ${lab.id}: npm run lab -- hint ${lab.id} --again shows them again (not counted).`);
  return 0;
}

function answers(args: readonly string[]): number {
  const lab = oneLab(args.find((a) => !a.startsWith('-')), listLabs());
  if (typeof lab === 'string') { console.error(lab); return 2; }
  const src = workspaceSources();
  if (typeof src === 'string') { console.error(src); return 2; }
  const all = readSections(lab.id, 'answers');
  if (!all.length) { console.log(`${lab.id}'s guide has no questions with model answers.`); return 0; }
  // Passed against these sources once (reports/passed.json), whatever ran since; else the last report says why not.
  const passedAt = passedAgainst(lab.id, src.root, reportDir());
  const gate = passedAt ? { open: true as const } : answersGate(lab, readReport(join(reportDir(), 'labs.json')), src.labSrc);
  if (!gate.open) { console.log(gate.why); return 1; }
  console.log(`Answers to the questions of ${lab.id} (${lab.title.en} · ${lab.title.zh}) — compare them with yours:`);
  for (const a of all) console.log(`\n── ${a.title}\n\n${a.body}`);
  return 0;
}

async function runLab(args: readonly string[]): Promise<number> {
  if (args[0] === 'hint' || args[0] === 'hints') return hint(args.slice(1));
  if (args[0] === 'answers' || args[0] === 'answer') return answers(args.slice(1));
  // `npm run lab x --watch` (without `--`) hands --watch to npm, which passes it on as npm_config_watch.
  const watchMode = args.includes('--watch') || args.includes('-w') || process.env.npm_config_watch === 'true';
  const rest = args.filter((a) => a !== '--watch' && a !== '-w');
  const query = rest.find((a) => !a.startsWith('-'));
  const forward = rest.filter((a) => a !== query);
  const labs = listLabs();
  if (!query) {
    console.error(`${USAGE}\n\nlabs: ${labs.map((l) => l.id).join(', ')}`);
    return 2;
  }
  const chosen = matchLabs(query, labs);
  if (!chosen.length) {
    console.error(`No lab matches "${query}". The labs are:\n${labs.map((l) => `  ${l.id}  ${l.title.en} · ${l.title.zh}`).join('\n')}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    const given = studentSources();
    console.error(`The kernel labs must run as root. Run: sudo ${given ? `LAB_SRC=${given} ` : ''}npm run lab -- ${args.join(' ')}`);
    return 1;
  }
  // Resolved once, here; vitest and its workers get the absolute path (whatever their working directory).
  const env: NodeJS.ProcessEnv = { ...process.env };
  const labSrc = pinStudentSources(env);
  const srcRoot = labSrc ?? REFERENCE_SRC;
  if (labSrc && !existsSync(labSrc)) {
    console.error(`LAB_SRC=${labSrc} does not exist. Make your workspace first: npm run starter -- ${labSrc}`);
    return 2;
  }
  console.log(`[lab] ${chosen.map((l) => `${l.id} (${l.title.en} · ${l.title.zh})`).join(', ')} against ${labSrc ? `LAB_SRC=${labSrc}` : defaultSourcesLabel()}`);
  // The sudo trap: a workspace exists but LAB_SRC did not reach us. Say so before anything else runs.
  for (const line of sourcesBanner(labs, env).slice(1)) console.log(line);
  env.LABS_SOURCES_ANNOUNCED = '1';
  const specs = chosen.map((l) => l.spec);
  const code = await runVitest(specs, forward, env);
  if (!watchMode) return code;

  const dirs = watchTargets(chosen, srcRoot);
  console.log(`[watch] ${code === 0 ? 'passed' : `exit ${code}`}; watching ${dirs.map((d) => relative(process.cwd(), d) || d).join(', ')} (Ctrl-C to stop)`);
  const w = watchAndRun({
    dirs,
    run: (changed) => {
      console.log(`\n[watch] changed: ${changed.map((f) => relative(srcRoot, f).startsWith('..') ? relative(REPO_ROOT, f) : relative(srcRoot, f)).join(', ')}; running ${chosen.map((l) => l.id).join(', ')} again`);
      return runVitest(specs, forward, env);
    },
  });
  await new Promise<void>((done) => {
    const stop = () => {
      w.close();
      // vitest got the same Ctrl-C (same process group) and releases what the run holds.
      void w.idle().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

function merge(args: readonly string[]): number {
  let outDir: string | undefined;
  const inputs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-o') outDir = args[++i];
    else inputs.push(args[i]!);
  }
  const reports = inputs.map((f) => ({ f, r: readReport(f) }));
  const bad = reports.filter((x) => !x.r).map((x) => x.f);
  if (!inputs.length || bad.length) {
    console.error(bad.length ? `not a labs report: ${bad.join(', ')}` : USAGE);
    return 2;
  }
  const merged = mergeReports(reports.map((x) => x.r!));
  const { html } = writeReport(merged, resolve(outDir ?? reportDir()));
  const s = merged.summary;
  console.log(`merged ${inputs.length} reports into ${html}: ${s.passed} passed, ${s.failed} failed, ${s.partial} partly skipped, ${s.skipped} skipped, ${s.notRun} not run`);
  return s.failed ? 1 : 0;
}

/** `verify-reports <log> [--dir d]`: the files of d (default reports/) against the digest line of the run's log. */
function verifyReports(args: readonly string[]): number {
  let dir: string | undefined;
  const logs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--dir') dir = args[++i];
    else logs.push(args[i]!);
  }
  if (logs.length !== 1) { console.error(USAGE); return 2; }
  const where = resolve(dir ?? reportDir());
  let log: string;
  try { log = readFileSync(logs[0] === '-' ? 0 : logs[0]!, 'utf8'); } catch (e) { console.error(`cannot read the log: ${(e as Error).message}`); return 2; }
  const entries = parseDigest(log);
  if (!entries?.length) {
    console.error(`tampering or no report: the log has no "${DIGEST_TAG}" line (vitest prints it as it exits, after writing the reports)`);
    return 1;
  }
  const check = checkDigest(where, entries);
  const problems = digestProblems(where, check);
  for (const p of problems) console.error(p);
  if (!problems.length) console.log(`reports verified: ${check.ok.join(', ')} in ${where} match the sha256 the run printed`);
  return problems.length ? 1 : 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'list': case 'ls': case undefined: return list(args);
    case 'run': return runLab(args);
    case 'merge': return merge(args);
    case 'grade': return gradeCommand(args, listLabs());
    case 'hint': case 'hints': return hint(args);
    case 'answers': case 'answer': return answers(args);
    case 'verify-reports': return verifyReports(args);
    case '-h': case '--help': case 'help': console.log(USAGE); return 0;
    default:
      // `npm run labs -- <name>` runs it, like `npm run lab -- <name>`.
      return runLab(argv);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(REPO_ROOT, 'scripts', 'labs.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
