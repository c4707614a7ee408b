/**
 * Release registered where the resource is made. `defer(name, release)` ties
 * the release to the running test (vitest's onTestFinished, newest first, like
 * the kernel selftests' defer stack); outside a test (a beforeAll, a script)
 * it goes on a suite stack released by `releaseAll()`, which the labs setup
 * file calls after each spec file and on SIGINT/SIGTERM.
 *
 * LABS_KEEP=1 keeps every resource for debugging: each kept object is
 * printed with the command that removes it and listed in the run's `kept`
 * file; the global teardown then leaves the run alone, and the next ordinary
 * run (or `npm run clean`) reaps it.
 */
import { appendFileSync, realpathSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { activeContainment, programUid, showTempDir } from './contain.js';
import { destroyTempDir } from './destroy.js';
import { RESOURCE_PREFIX, runDir, runId } from './run-state.js';

export type Release = () => unknown | Promise<unknown>;

interface Entry {
  readonly name: string;
  readonly release: Release;
  /** The shell command that removes it by hand (printed when LABS_KEEP keeps it). */
  readonly removeCommand?: string;
  done: boolean;
}

const suiteStack: Entry[] = [];

export function keepResources(): boolean {
  return process.env.LABS_KEEP === '1';
}

async function releaseEntry(entry: Entry): Promise<void> {
  if (entry.done) return;
  entry.done = true;
  if (keepResources()) {
    const how = entry.removeCommand ?? 'npm run clean';
    console.warn(`[LABS_KEEP] kept ${entry.name}; remove with: ${how}`);
    try { appendFileSync(join(runDir(), 'kept'), `${entry.name}\t${how}\n`); } catch { /* no state dir */ }
    return;
  }
  await entry.release();
}

/** Register the release of a resource that was just made. Returns an idempotent release function. */
export function defer(name: string, release: Release, removeCommand?: string): () => Promise<void> {
  const entry: Entry = { name, release, removeCommand, done: false };
  let inTest = true;
  try {
    onTestFinished(() => releaseEntry(entry));
  } catch {
    inTest = false;
  }
  if (!inTest) suiteStack.push(entry);
  return () => releaseEntry(entry);
}

/**
 * Release everything on the suite stack, newest first. Errors are collected
 * and thrown together after every release has been tried.
 */
export async function releaseAll(): Promise<void> {
  const errors: unknown[] = [];
  while (suiteStack.length) {
    const entry = suiteStack.pop()!;
    try {
      await releaseEntry(entry);
    } catch (e) {
      errors.push(new Error(`releasing ${entry.name} failed: ${(e as Error).message}`, { cause: e }));
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} releases failed`);
}

/**
 * A temp directory `/tmp/kl-<run>-<label>-XXXXXX`, removed when the test (or suite) ends.
 * `hidden`: in the run's state directory instead, which a contained student program cannot see
 * (helpers/harness/contain.ts) — for what the harness alone writes and reads back (a strace log).
 * While the lab is contained, any other temp dir is writable by the student's program (its gid,
 * programUid, mode 1770): the program writes there and nowhere else of root's, and the files the
 * harness puts there stay root's (sticky: the program can read them, not replace them). The
 * namespace's /tmp is its own: each such dir is bound into it at its path (showTempDir).
 */
export async function makeTempDir(label = 'tmp', opts: { readonly hidden?: boolean } = {}): Promise<string> {
  // (the real path: a contained lab binds it into its namespace at that path, where a linked $TMPDIR may be hidden)
  const base = opts.hidden ? runDir() : realpathSync(tmpdir());
  if (opts.hidden) await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, `${RESOURCE_PREFIX}${runId()}-${label}-`));
  defer(`temp dir ${dir}`, () => {
    const d = destroyTempDir(dir);
    if (!d.gone) throw new Error(`temp dir ${dir} not removed: ${d.reason}`);
  }, `rm -rf ${dir}`);
  if (!opts.hidden && activeContainment()) {
    // root's, group the program's, sticky: the program makes its own files there, and cannot rename or remove the harness's
    await chown(dir, 0, programUid());
    await chmod(dir, 0o1770);
    // and at its path in the namespace, whose /tmp is its own
    await showTempDir(dir);
  }
  return dir;
}
