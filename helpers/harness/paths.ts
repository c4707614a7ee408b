/**
 * Where things are: the repository, the reference sources (or the student's
 * workspace named by LAB_SRC), the build cache and per-run state.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** Where the lab sources come from: `LAB_SRC` (a student workspace) or `c/`. */
export function sourceRoot(): string {
  const fromEnv = process.env.LAB_SRC;
  if (!fromEnv) return REFERENCE_SRC;
  return isAbsolute(fromEnv) ? fromEnv : resolve(process.cwd(), fromEnv);
}

/** True when the specs run against a student workspace rather than the reference. */
export function usingStudentSources(): boolean {
  return Boolean(process.env.LAB_SRC);
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
