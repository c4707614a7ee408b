/**
 * The extend area's teeth tests' view of a nested run (tests/labs/nested-run.ts):
 * the starter with files replaced; a spec that ran no test is an error.
 */
import { HARNESS_FAILURE, runSpecNested } from './nested-run.js';

export { HARNESS_FAILURE };
export interface NestedTest { readonly name: string; readonly status: string; readonly message: string }

/** `files`: workspace-relative path (as in lab.json sources) → fixture file that replaces it. */
export async function runLabWith(spec: string, files: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<NestedTest[]> {
  const r = await runSpecNested(spec, { base: 'starter', replace: files, timeoutMs: 300_000, signal });
  if (!r.tests.length) throw new Error(`${spec} did not run on the fixture workspace:\n${r.fileMessage}`);
  return r.tests.map((t) => ({ name: t.title, status: t.status, message: t.failureMessages.join('\n') }));
}
