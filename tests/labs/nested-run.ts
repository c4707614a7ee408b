/**
 * The one way the unit tests run a lab spec on a workspace of their own: a
 * copy of the reference sources (or the starter) with some files replaced by
 * fixtures, in a nested vitest with LAB_SRC pointing there, as a student's run
 * would. The starter check, the wrong-program sets and each area's teeth tests
 * (tests/labs/*) all go through it. Root only, like the specs.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run, type RunResult } from '../../helpers/harness/exec.js';
import { REFERENCE_SRC, REPO_ROOT } from '../../helpers/harness/paths.js';
import { writeStarter } from '../../scripts/starter.js';

/** Failures that mean the harness or the build broke, not the program's outcome. */
export const HARNESS_FAILURE = /CompileError|E_COMPILE|MarkerError|E_SOURCE|Cannot find module|SyntaxError: |Failed to load|ReferenceError/;

export interface NestedRunOptions {
  /** What the workspace starts from: the reference c/ (default) or the starter made from it. */
  readonly base?: 'reference' | 'starter';
  /** Path relative to c/ (as in lab.json `sources`) → fixture file put there. */
  readonly replace?: Readonly<Record<string, string>>;
  /** Only the tests whose name matches (vitest -t). */
  readonly only?: string;
  /** LABS_STRICT of the nested run (default true: a skip is a failure). */
  readonly strict?: boolean;
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
  /** The spec file's own error (a harness failure), if any. */
  readonly fileMessage: string;
  readonly run: RunResult;
}

interface JsonReport { testResults: { message: string; assertionResults: NestedTestResult[] }[] }

export async function runSpecNested(spec: string, options: NestedRunOptions = {}): Promise<NestedRunResult> {
  const ws = mkdtempSync(join(tmpdir(), 'lab-fixture-'));
  try {
    if (options.base === 'starter') writeStarter(ws);
    else cpSync(REFERENCE_SRC, ws, { recursive: true });
    for (const [rel, fixture] of Object.entries(options.replace ?? {})) {
      mkdirSync(dirname(join(ws, rel)), { recursive: true });
      copyFileSync(fixture, join(ws, rel));
    }
    const out = join(ws, 'report.json');
    const r = await run('npx', ['vitest', 'run', '--project', 'labs', spec, '--reporter=json', `--outputFile=${out}`, ...(options.only ? ['-t', options.only] : [])], {
      cwd: REPO_ROOT,
      env: { LAB_SRC: ws, LABS_JUNIT: '', LABS_REPORT: 'off', LABS_STRICT: options.strict === false ? '0' : '1', CI: 'true' },
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
      reject: false,
      signal: options.signal,
    });
    if (!existsSync(out)) throw new Error(`the nested run of ${spec} wrote no report:\n${r.stderr.slice(-3000)}`);
    const file = (JSON.parse(readFileSync(out, 'utf8')) as JsonReport).testResults[0];
    if (!file) throw new Error(`the nested run of ${spec} produced no results`);
    return { tests: file.assertionResults, fileMessage: file.message, run: r };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}
