/**
 * The process area's teeth tests' view of a nested run (tests/labs/nested-run.ts):
 * the starter with sources replaced, not strict, outcomes by test title.
 */
import { runSpecNested } from './nested-run.js';

export interface SpecOutcome {
  /** Test title → "passed" | "failed" | "skipped"… */
  readonly status: ReadonlyMap<string, string>;
  /** Test title → its failure messages joined. */
  readonly failure: ReadonlyMap<string, string>;
  /** The spec file's own error (harness failure), if any. */
  readonly fileMessage: string;
}

/** `replace` maps a source path relative to c/ (e.g. "process/01-sessions/sessions.c") to the fixture file to put there. */
export async function runSpecWith(spec: string, replace: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<SpecOutcome> {
  const r = await runSpecNested(spec, { base: 'starter', replace, strict: false, timeoutMs: 5 * 60_000, signal });
  return {
    status: new Map(r.tests.map((t) => [t.title, t.status])),
    failure: new Map(r.tests.map((t) => [t.title, t.failureMessages.join('\n')])),
    fileMessage: r.fileMessage,
  };
}
