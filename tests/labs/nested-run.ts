/**
 * The one way the unit tests run a lab spec on a workspace of their own: a
 * copy of the reference sources (or the starter) with some files replaced by
 * fixtures, in a nested vitest with LAB_SRC pointing there, as a student's run
 * would. The starter check, the wrong-program sets and each area's teeth tests
 * (tests/labs/*) all go through it. Root only, like the specs.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run, type RunResult } from '../../helpers/harness/exec.js';
import { readMountinfo } from '../../helpers/harness/mountinfo.js';
import { REFERENCE_SRC, REPO_ROOT } from '../../helpers/harness/paths.js';
import { writeStarter } from '../../scripts/starter.js';

/** Failures that mean the harness or the build broke, not the program's outcome. */
export const HARNESS_FAILURE = /CompileError|E_COMPILE|MarkerError|E_SOURCE|Cannot find module|SyntaxError: |Failed to load|ReferenceError/;
/**
 * For a starter, also bpftrace refusing the script: a starter's TODOs must load and fail on an assertion, whereas a
 * wrong program (a teeth fixture) may be one bpftrace refuses — its failure is then the student's outcome.
 */
export const STARTER_HARNESS_FAILURE = new RegExp(`${HARNESS_FAILURE.source}|bpftrace rejected`);

export interface NestedRunOptions {
  /** What the workspace starts from: the reference c/ (default) or the starter made from it. */
  readonly base?: 'reference' | 'starter';
  /** Path relative to c/ (as in lab.json `sources`) → fixture file put there. */
  readonly replace?: Readonly<Record<string, string>>;
  /** Only the tests whose name matches (vitest -t). */
  readonly only?: string;
  /** LABS_STRICT of the nested run (default true: a skip is a failure). */
  readonly strict?: boolean;
  /** Run the student's program outside the lab's containment (LABS_CONTAIN=0): a wrong program whose route the containment closes still tests the judge's own check behind it. */
  readonly uncontained?: boolean;
  /** Default 10 min. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface NestedTestResult {
  readonly title: string;
  readonly fullName: string;
  readonly status: string;
  readonly failureMessages: readonly string[];
}

export interface NestedRunResult {
  readonly tests: readonly NestedTestResult[];
  /** The spec file's status in vitest's JSON report ("passed", "failed"). */
  readonly status: string;
  /** The spec file's own error (a harness failure), if any. */
  readonly fileMessage: string;
  readonly run: RunResult;
}

interface JsonReport { testResults: { status: string; message: string; assertionResults: NestedTestResult[] }[] }

/**
 * Workspaces (`lab-fixture-<pid>-…` in the temp dir) and batch dirs (`.cache/teeth-batch/<pid>-…`) carry the pid of
 * the test process that made it. Its `finally` removes them; an interrupted or killed run skips that, so the next
 * run removes those of processes that are gone.
 */
const WORKSPACE_PREFIX = 'lab-fixture-';
const BATCH_DIR = join(REPO_ROOT, '.cache', 'teeth-batch');

const pidAlive = (pid: number) => existsSync(`/proc/${pid}`);

/**
 * Entries `<prefix><pid>-…` of `dir` whose process is gone and under which nothing is mounted (a lab's mount left
 * there must be seen, not deleted through). A name without a pid, or of a live process, is kept.
 */
export function staleByPid(dir: string, prefix: string, alive: (pid: number) => boolean = pidAlive, mounts?: readonly string[]): string[] {
  let names: string[] = [];
  try { names = readdirSync(dir); } catch { return []; }
  const points = mounts ?? readMountinfo('self').map((m) => m.mountPoint);
  return names.flatMap((name) => {
    const pid = Number(name.startsWith(prefix) ? name.slice(prefix.length).match(/^(\d+)-/)?.[1] : NaN);
    const path = join(dir, name);
    if (!Number.isInteger(pid) || alive(pid) || points.some((m) => m === path || m.startsWith(`${path}/`))) return [];
    return [path];
  });
}

let swept = false;
/** Once per process: remove the workspaces and batch dirs that runs no longer alive left behind. */
function sweepStale(): void {
  if (swept) return;
  swept = true;
  for (const d of [...staleByPid(tmpdir(), WORKSPACE_PREFIX), ...staleByPid(BATCH_DIR, '')]) rmSync(d, { recursive: true, force: true });
}

/** A student workspace in a temp dir: the reference c/ (or the starter made from it) with some files replaced. */
function makeWorkspace(base: NestedRunOptions['base'], replace: NestedRunOptions['replace']): string {
  sweepStale();
  const ws = mkdtempSync(join(tmpdir(), `${WORKSPACE_PREFIX}${process.pid}-`));
  if (base === 'starter') writeStarter(ws);
  else cpSync(REFERENCE_SRC, ws, { recursive: true });
  for (const [rel, fixture] of Object.entries(replace ?? {})) {
    mkdirSync(dirname(join(ws, rel)), { recursive: true });
    copyFileSync(fixture, join(ws, rel));
  }
  return ws;
}

export async function runSpecNested(spec: string, options: NestedRunOptions = {}): Promise<NestedRunResult> {
  const ws = makeWorkspace(options.base, options.replace);
  try {
    const out = join(ws, 'report.json');
    const r = await run('npx', ['vitest', 'run', '--project', 'labs', spec, '--reporter=json', `--outputFile=${out}`, ...(options.only ? ['-t', options.only] : [])], {
      cwd: REPO_ROOT,
      env: { LAB_SRC: ws, LABS_JUNIT: '', LABS_REPORT: 'off', LABS_STRICT: options.strict === false ? '0' : '1', CI: 'true', ...(options.uncontained ? { LABS_CONTAIN: '0' } : {}) },
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
      reject: false,
      signal: options.signal,
    });
    if (!existsSync(out)) throw new Error(`the nested run of ${spec} wrote no report:\n${r.stderr.slice(-3000)}`);
    const file = (JSON.parse(readFileSync(out, 'utf8')) as JsonReport).testResults[0];
    if (!file) throw new Error(`the nested run of ${spec} produced no results`);
    return { tests: file.assertionResults, status: file.status, fileMessage: file.message, run: r };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/** One workspace of a batch: what `runSpecNested` takes, with an id to find its result by. */
export interface BatchItem {
  readonly id: string;
  /** The lab spec this workspace runs, when it is not the batch's (the starter check runs every lab in one batch). */
  readonly spec?: string;
  readonly base?: 'reference' | 'starter';
  readonly replace?: Readonly<Record<string, string>>;
  /** Only the tests whose full name matches (as vitest -t, given per workspace by tests/labs/only-tests.ts selectTests). */
  readonly only?: string;
  /** As NestedRunOptions.uncontained, for this workspace's file. */
  readonly uncontained?: boolean;
}

/**
 * Several workspaces against one spec in ONE nested vitest: a wrapper spec file per workspace sets LAB_SRC (and the
 * tests to run) and imports the lab's spec, so vitest starts, probes the host and reaps once for all of them
 * instead of once each (~2.5 s a run here). Each wrapper still runs in a worker of its own, with the labs project's
 * setup files (host guard, release of what the file made) — as the file of a student's run would; one at a time, or
 * `workers` at once for a lab that shares the machine (lab.json "sharesMachine").
 * Returns each item's result by id; an item whose file produced no result is missing from the map (the caller runs
 * it alone).
 */
export async function runSpecBatch(spec: string, items: readonly BatchItem[], options: { strict?: boolean; timeoutMs?: number; signal?: AbortSignal; workers?: number } = {}): Promise<Map<string, NestedRunResult>> {
  const workers = Math.max(1, Math.min(options.workers ?? 1, items.length));
  sweepStale();
  const batchRel = join('.cache', 'teeth-batch', `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  const batch = join(REPO_ROOT, batchRel);
  mkdirSync(batch, { recursive: true });
  const spaces: string[] = [];
  try {
    const files = items.map((item, i) => {
      const ws = makeWorkspace(item.base, item.replace);
      spaces.push(ws);
      const file = join(batch, `w${String(i).padStart(3, '0')}.spec.ts`);
      const itemSpec = item.spec ?? spec;
      writeFileSync(file, `// ${item.id}: ${itemSpec} against ${ws}\nprocess.env.LAB_SRC = ${JSON.stringify(ws)};\nprocess.env.LABS_SPEC_FILE = ${JSON.stringify(join(REPO_ROOT, itemSpec))};\nimport { selectTests } from ${JSON.stringify(join(REPO_ROOT, 'tests/labs/only-tests.ts'))};\nselectTests(${JSON.stringify(item.only ?? '')});\nprocess.env.LABS_CONTAIN = ${JSON.stringify(item.uncontained ? '0' : process.env.LABS_CONTAIN ?? '')};\nawait import(${JSON.stringify(join(REPO_ROOT, itemSpec))});\n`);
      return file;
    });
    const config = join(batch, 'vitest.config.mjs');
    writeFileSync(config, `export default ${JSON.stringify({
      root: REPO_ROOT,
      test: {
        name: 'labs',
        include: [`${batchRel}/*.spec.ts`],
        // One file at a time, as the labs project runs; a lab whose lab.json says it shares the machine, `workers` at once.
        fileParallelism: workers > 1,
        maxWorkers: workers,
        globalSetup: ['helpers/harness/global-setup.ts'],
        setupFiles: ['helpers/harness/setup-labs.ts', 'helpers/course/grading-setup.ts', 'tests/labs/only-tests.ts'],
        testTimeout: 180_000,
        hookTimeout: 180_000,
        teardownTimeout: 60_000,
      },
    }, null, 2)};\n`);
    const out = join(batch, 'report.json');
    const r = await run('npx', ['vitest', 'run', '--config', config, '--reporter=json', `--outputFile=${out}`], {
      cwd: REPO_ROOT,
      env: { LABS_JUNIT: '', LABS_REPORT: 'off', LABS_STRICT: options.strict === false ? '0' : '1', CI: 'true' },
      timeoutMs: options.timeoutMs ?? (10 + 3 * Math.ceil(items.length / workers)) * 60_000,
      reject: false,
      signal: options.signal,
    });
    const results = new Map<string, NestedRunResult>();
    if (!existsSync(out)) return results;
    const report = JSON.parse(readFileSync(out, 'utf8')) as JsonReport & { testResults: { name: string }[] };
    for (const fileResult of report.testResults) {
      const at = files.indexOf(fileResult.name);
      if (at >= 0) results.set(items[at]!.id, { tests: fileResult.assertionResults, status: fileResult.status, fileMessage: fileResult.message, run: r });
    }
    return results;
  } finally {
    for (const ws of spaces) rmSync(ws, { recursive: true, force: true });
    rmSync(batch, { recursive: true, force: true });
  }
}
