/**
 * Setup file of the `labs` project (runs in the worker, once per spec file):
 * whatever a spec registered outside a test (in beforeAll) is released after
 * the file, even when it failed; then the host guard compares the host's
 * sysctls, interfaces, hostname and cgroups outside `kl-…` with what they were
 * before the file, and fails the file naming each change and its undo
 * command (helpers/harness/host-guard.ts; LABS_HOST_GUARD=0 turns it off).
 */
import { afterAll, beforeAll } from 'vitest';
import { hostChangeMessage, hostChanges, hostGuardEnabled, snapshotHost, type HostSnapshot } from './host-guard.js';
import { releaseAll } from './resources.js';

let before: HostSnapshot | undefined;

beforeAll(() => {
  if (hostGuardEnabled()) before = snapshotHost();
});

afterAll(async () => {
  await releaseAll();
  if (!before) return;
  const changes = hostChanges(before, snapshotHost());
  if (changes.length) throw new Error(hostChangeMessage('This lab (its spec, or the student program it ran)', changes));
});
