/**
 * Teeth of Process Lab 1: wrong programs a clever student might write fail
 * the spec on the test that names their mistake; a correct program in another
 * style passes every test. Runs the lab spec (root only) in a nested vitest.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/harness/paths.js';
import { runSpecWith } from '../run-lab-spec.js';

const SPEC = 'labs/process/01-sessions/sessions.spec.ts';
const SOURCE = 'process/01-sessions/sessions.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/process/01-sessions', name);
const asRoot = process.getuid?.() === 0;

const WRONG = [
  { file: 'wrong-group-not-session.c', fails: /^the session leader has sid = pgrp/, says: /whose session id is its own pid \(setsid\); found none/ },
  { file: 'wrong-one-thread-short.c', fails: /^a member with 3 more threads/, says: /expected ≥ 4 tasks .*ls \/proc\/\d+\/task: \d+ \d+ \d+;/ },
  { file: 'wrong-reaps-at-once.c', fails: /^a child that exited stays in state Z/, says: /in state Z \(exited, not yet reaped\); found 0/ },
  { file: 'wrong-survives-hangup.c', fails: /^but if a member is stopped/, says: /the kernel generated SIGHUP \(delivered\), but waitpid\(2\) says not reaped: a handler/ },
  { file: 'wrong-group-never-orphaned.c', fails: /^but if a member is stopped/, says: /the kernel generated no SIGHUP \(si_code 128\) for the stopped member \d+/ },
] as const;

describe.skipIf(!asRoot)('Process Lab 1 fixtures', () => {
  it.each(WRONG)('$file fails the spec where its mistake is, with the /proc evidence', { timeout: 120_000 }, async ({ file, fails, says }) => {
    const out = await runSpecWith(SPEC, { [SOURCE]: fixture(file) });
    const failed = [...out.status].filter(([, s]) => s === 'failed').map(([t]) => t);
    expect(failed.some((t) => fails.test(t)), `failed tests: ${failed.join(' | ') || 'none'}\n${out.fileMessage}`).toBe(true);
    const title = failed.find((t) => fails.test(t))!;
    expect(out.failure.get(title)).toMatch(says);
  });

  it('a correct program in another style (clone(2) threads in the second member, signalfd, main leaving at once) passes every test', { timeout: 120_000 }, async () => {
    const out = await runSpecWith(SPEC, { [SOURCE]: fixture('correct-signalfd-threads-in-member.c') });
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(6);
  });
});
