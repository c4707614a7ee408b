/**
 * The io_uring and cloud teeth tests' view of a nested run (tests/labs/nested-run.ts):
 * the reference c/ with files replaced, each test with its full name and failures.
 */
import { runSpecNested, type NestedTestResult } from './nested-run.js';

export type NestedTest = NestedTestResult;
export interface NestedRun { readonly tests: readonly NestedTest[]; readonly fileMessage: string; readonly stderr: string }

/** `replace`: path relative to c/ → fixture file to put there. `only`: a test-name pattern (vitest -t). */
export async function runSpecWith(spec: string, replace: Readonly<Record<string, string>>, options: { readonly only?: string; readonly signal?: AbortSignal } = {}): Promise<NestedRun> {
  const r = await runSpecNested(spec, { replace, only: options.only, signal: options.signal });
  return { tests: r.tests, fileMessage: r.fileMessage, stderr: r.run.stderr };
}

/** "name: status" lines, with the first lines of each failure, for assertion messages. */
export function summarize(run: NestedRun): string {
  return run.tests.map((t) => `${t.status}: ${t.fullName}${t.failureMessages.length ? `\n    ${t.failureMessages[0]!.split('\n').slice(0, 4).join('\n    ')}` : ''}`).join('\n') || run.fileMessage;
}

/** The tests that ran (not skipped by -t). */
export const ran = (r: NestedRun) => r.tests.filter((t) => t.status !== 'skipped' && t.status !== 'pending' && t.status !== 'todo');
