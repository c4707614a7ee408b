/**
 * Setup file of the `labs` project (runs in the worker, once per spec file):
 * whatever a spec registered outside a test (in beforeAll) is released after
 * the file, even when it failed; then the host guard compares the host's
 * sysctls, interfaces, hostname and cgroups outside `kl-…` with what they were
 * before the file, and fails the file naming each change and its undo
 * command (helpers/harness/host-guard.ts; LABS_HOST_GUARD=0 turns it off).
 * Before the file it sets the containment its lab.json declares for the
 * commands the file starts (helpers/harness/contain.ts).
 */
import { afterAll, beforeAll } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labJsonOf, parseContainment, setLabSources } from './contain.js';
import { startContainment, stopContainment } from './contain-holder.js';
import { hostChangeMessage, hostChanges, hostGuardEnabled, LAST_HOST_FILE, snapshotHost, snapshotToJson, type HostSnapshot } from './host-guard.js';
import { releaseAll } from './resources.js';
import { runDir } from './run-state.js';

let before: HostSnapshot | undefined;

beforeAll(async ({}, suite) => {
  if (hostGuardEnabled()) before = snapshotHost();
  // the lab's containment (helpers/harness/contain.ts), from the lab.json beside the spec
  // (a batch of the teeth runner imports the spec from a wrapper file of its own: LABS_SPEC_FILE names the real one)
  const spec = process.env.LABS_SPEC_FILE || ((suite as { file?: { filepath?: string } }).file?.filepath ?? (suite as { filepath?: string }).filepath);
  const labJson = spec ? labJsonOf(spec) : undefined;
  const lab = labJson && existsSync(labJson) ? JSON.parse(readFileSync(labJson, 'utf8')) as { sources?: string[] } : undefined;
  setLabSources(lab?.sources ?? []);
  await startContainment(lab && labJson ? parseContainment(lab, labJson) : undefined);
});

afterAll(async () => {
  await stopContainment();
  await releaseAll();
  if (!before) return;
  const after = snapshotHost();
  // For the reporter's last look after the last lab file (helpers/course/reporter.ts).
  try { writeFileSync(join(runDir(), LAST_HOST_FILE), snapshotToJson(after)); } catch { /* no run state dir (a unit test) */ }
  const changes = hostChanges(before, after);
  if (changes.length) throw new Error(hostChangeMessage('This lab (its spec, or the student program it ran)', changes));
});
