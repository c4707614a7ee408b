/**
 * Which sources a run of lab specs tests, said on its first line: the
 * student's workspace (LAB_SRC) or the reference c/. The sudo trap — `sudo`
 * drops LAB_SRC, and the run silently tests the reference — is named loudly
 * when a workspace is found where `npm run starter` puts one but LAB_SRC is
 * unset.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { invokingHome, REPO_ROOT, studentSources } from '../harness/paths.js';
import type { LabInfo } from './labs.js';

/** A student edition (npm run edition) carries its manifest: there c/ holds the student's own files. */
export function isStudentEdition(root = REPO_ROOT, exists: (p: string) => boolean = existsSync): boolean {
  return exists(join(root, '.classroom', 'manifest.json'));
}

/** What c/ is when LAB_SRC is unset: the reference solutions here, the student's own files in an edition. */
export function defaultSourcesLabel(root = REPO_ROOT, exists: (p: string) => boolean = existsSync): string {
  return isStudentEdition(root, exists) ? 'your files in c/ (student edition)' : 'the reference c/';
}

/** Where students make their workspace (`npm run starter -- ~/labs`), under the invoking user's home. */
export const WORKSPACE_NAMES = ['labs', 'my-labs', 'kernel-labs', 'lab-workspace', 'workspace'] as const;

/** A directory holding at least two lab sources (relative to c/) looks like a student workspace. */
export function looksLikeWorkspace(dir: string, labs: readonly LabInfo[], exists: (p: string) => boolean = existsSync): boolean {
  const sources = labs.flatMap((l) => l.sources);
  let found = 0;
  for (const s of sources) if (exists(join(dir, s)) && ++found >= 2) return true;
  return false;
}

/** Workspaces that look present: the usual names under the invoking user's home, and the directory npm was started from. */
export function findWorkspaces(labs: readonly LabInfo[], env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): string[] {
  const home = invokingHome(env);
  const candidates = [...WORKSPACE_NAMES.map((n) => join(home, n)), ...(env.INIT_CWD ? [env.INIT_CWD] : [])];
  return [...new Set(candidates)].filter((d) => looksLikeWorkspace(d, labs, exists));
}

/**
 * The first line of any run of lab specs, and (the sudo trap) a warning
 * when LAB_SRC is unset but a workspace looks present.
 */
export function sourcesBanner(labs: readonly LabInfo[], env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): string[] {
  const abs = studentSources(env);
  if (abs) return [`[kernel-labs] sources: your workspace LAB_SRC=${abs}`];
  if (isStudentEdition(REPO_ROOT, exists)) return ['[kernel-labs] sources: your files in c/ (a student edition: c/ is your work, and what CI grades)'];
  const lines = ['[kernel-labs] sources: the reference solutions in c/ (LAB_SRC is not set)'];
  const found = findWorkspaces(labs, env, exists);
  if (found.length) {
    lines.push(
      '[kernel-labs] !!! WARNING: this run does NOT test your work. A workspace exists at ' + found.join(', ') + ' but LAB_SRC is not set',
      '[kernel-labs] !!! (sudo drops environment variables). Run instead:  sudo LAB_SRC=' + found[0] + ' npm run lab -- <lab>',
    );
  }
  return lines;
}
