/**
 * Where things are: the repository, the reference sources (or the student's
 * workspace named by LAB_SRC), the build cache and per-run state.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabError } from './errors.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Reference solutions shipped with the suite. */
export const REFERENCE_SRC = join(REPO_ROOT, 'c');

/** Build cache (compiled programs, BPF objects, vmlinux.h); safe to delete. */
export const CACHE_DIR = process.env.LABS_CACHE_DIR ?? join(REPO_ROOT, '.cache');

/** Per-run state (live run markers, spawned process groups, probe cache). */
export const STATE_DIR = process.env.LABS_STATE_DIR ?? join(tmpdir(), 'kernel-labs-state');

/** The home of the user who ran sudo (or this user's): where `~` in LAB_SRC points. */
export function invokingHome(env: NodeJS.ProcessEnv = process.env): string {
  const user = env.SUDO_USER;
  if (user && user !== 'root') {
    try {
      const home = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`))?.split(':')[5];
      if (home) return home;
    } catch { /* fall through */ }
  }
  return env.HOME || homedir();
}

/**
 * The student's source directory (LAB_SRC) as an absolute path, or undefined
 * when LAB_SRC is unset (the specs then test c/). The one place LAB_SRC is
 * read: `~` and `~/x` (a shell that left "~" alone: sh, or quotes) are the
 * invoking user's home; a relative path is taken from where the student typed
 * the command (INIT_CWD when npm started us, else the working directory).
 * A process that starts another passes the result on as LAB_SRC
 * (pinStudentSources), so every process of a run names the same directory.
 */
export function studentSources(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.LAB_SRC;
  if (!v) return undefined;
  if (v === '~' || v.startsWith('~/')) return join(invokingHome(env), v.slice(1));
  return isAbsolute(v) ? v : resolve(env.INIT_CWD || process.cwd(), v);
}

/**
 * Resolve LAB_SRC once and write the absolute path back into `env`, so the
 * processes this one starts (vitest's workers, nested runs, the guest pass)
 * read the same directory whatever their working directory. Returns it.
 */
export function pinStudentSources(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const abs = studentSources(env);
  if (abs) env.LAB_SRC = abs;
  return abs;
}

/** Where the lab sources come from: `LAB_SRC` (a student workspace) or `c/`. */
export function sourceRoot(): string {
  return studentSources() ?? REFERENCE_SRC;
}

/** True when the specs run against a student workspace rather than the reference. */
export function usingStudentSources(): boolean {
  return studentSources() !== undefined;
}

/**
 * Absolute path of a lab source, e.g. `labSource('ebpf/03-xdp/xdp_dropper.c')`.
 * Throws a LabError that names LAB_SRC when the file is missing.
 */
export function labSource(relativePath: string): string {
  const root = sourceRoot();
  const path = join(root, relativePath);
  if (!existsSync(path)) {
    const where = usingStudentSources() ? `LAB_SRC=${root}` : `the reference tree ${root}`;
    throw new LabError(`Lab source ${relativePath} not found in ${where}. ` +
      (usingStudentSources() ? 'Recreate the workspace with: npm run starter -- <dir>' : ''), { code: 'E_SOURCE' });
  }
  return path;
}
