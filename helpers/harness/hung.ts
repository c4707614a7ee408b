/**
 * The memory of hung programs: a lab program that hung in one test (killed at
 * its time bound while the program itself was still running) is not run again
 * by the other tests of the spec file: they fail at once with
 * "not run: <program> hung in '<test>'". One memory per test worker (a spec file).
 */
import { basename } from 'node:path';
import { expect } from 'vitest';
import { LabError } from './errors.js';
import { programKey } from './programs.js';

const hung = new Map<string, { test: string; ms: number }>();

function currentTest(): string {
  try { return expect.getState().currentTestName ?? '(outside a test)'; } catch { return '(outside a test)'; }
}

/** Forget the programs recorded as hung (tests of the harness). */
export function forgetHungPrograms(): void { hung.clear(); }

/** Throw the "not run" error when a lab program of this command line hung earlier in the spec file. */
export function refuseHungProgram(file: string, args: readonly string[], command: string): void {
  const key = programKey(file, args);
  const h = key && hung.get(key);
  if (h) {
    throw new LabError(`not run: ${basename(key!.split(' ').pop()!)} hung in '${h.test}' (killed after ${h.ms} ms); fix that first.\nCommand: ${command}`, { code: 'E_TIMEOUT' });
  }
}

/**
 * Remember a command that hit its time bound, unless the program itself had exited (descendants kept its
 * output open: the program did not hang) or the caller opted out.
 */
export function recordHang(file: string, args: readonly string[], facts: { readonly leaderExitedMs?: number; readonly durationMs: number }, failFast = true): void {
  if (!failFast || facts.leaderExitedMs !== undefined) return;
  const key = programKey(file, args);
  if (key) hung.set(key, { test: currentTest(), ms: facts.durationMs });
}
