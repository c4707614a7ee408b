/**
 * The net area's teeth tests' view of a nested run (tests/labs/nested-run.ts):
 * the reference with one student file replaced by a fixture, outcomes by test title.
 */
import { runSpecNested } from './nested-run.js';

export interface NestedResult {
  /** Test title -> failure message ('' when it passed). */
  readonly tests: Map<string, { status: string; message: string }>;
  readonly fileMessage: string;
}

/** Put `fixture` in place of `studentFile` (relative to c/; `labDir` names its lab) and run `spec` on it. */
export async function runSpecWith(spec: string, labDir: string, studentFile: string, fixture: string, options: { readonly testNamePattern?: string; readonly timeoutMs?: number } = {}): Promise<NestedResult> {
  void labDir; // the workspace holds the whole reference; kept for the callers' readability
  const r = await runSpecNested(spec, { replace: { [studentFile]: fixture }, only: options.testNamePattern, timeoutMs: options.timeoutMs ?? 5 * 60_000 });
  return { fileMessage: r.fileMessage, tests: new Map(r.tests.map((t) => [t.title, { status: t.status, message: t.failureMessages.join('\n') }])) };
}

/** The titles of the failed tests, and the first line of each message, for an assertion message. */
export function summary(res: NestedResult): string {
  return [...res.tests].map(([t, v]) => `${v.status}: ${t}${v.message ? `\n    ${v.message.split('\n')[0]}` : ''}`).join('\n') || res.fileMessage;
}
