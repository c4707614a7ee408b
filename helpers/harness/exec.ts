/**
 * Running programs: a thin wrapper over execa. Every child gets its own
 * process group and runs in a sandbox cgroup of the run (sandbox.ts: memory
 * and pids limits, killed as a whole so setsid() and double forks die too,
 * SIGKILL when the harness dies). On timeout the group gets SIGTERM, then
 * SIGKILL with the whole sandbox after a grace period, and a TimeoutError
 * names the command. Non-zero exits throw a CommandError carrying the command,
 * the reason it ended (exit code, signal, limit hit), cwd and the tail of
 * stderr/stdout, unless `reject: false`. A program that hung in one test is
 * not run again by the other tests of the spec file: they fail at once with
 * "not run: <program> hung in '<test>'".
 *
 * This module is run() and the one import of the process-running API; the
 * parts live by job: launch.ts (start, options, results), background.ts
 * (startBackground), wait.ts (waitUntil), hung.ts (the hung-program memory),
 * fork-watchdog.ts, process-group.ts (kill a group), programs.ts (lookup),
 * crash-site.ts (the gdb re-run), timeouts.ts (LABS_TIMEOUT_SCALE).
 */
import { CommandError, TimeoutError } from './errors.js';
import { CRASH_SIGNALS, crashSite } from './crash-site.js';
import { recordHang } from './hung.js';
import { finish, launch, RUN_DEFAULTS, type RunOptions, type RunResult } from './launch.js';
import { groupAlive, terminateGroup } from './process-group.js';
import { scaledTimeout } from './timeouts.js';

export type { SandboxLimits } from './sandbox.js';
export { RUN_DEFAULTS, type EndReason, type RunOptions, type RunResult } from './launch.js';
export { startBackground, type Background, type BackgroundOptions } from './background.js';
export { waitUntil, waitUntilStill } from './wait.js';
export { forgetHungPrograms } from './hung.js';
export { killGroup, terminateGroup } from './process-group.js';
export { findExecutable, programKey } from './programs.js';
export { parseCrashFrame } from './crash-site.js';
export { scaledTimeout } from './timeouts.js';

/** Run a program to completion. */
export async function run(file: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = scaledTimeout(options.timeoutMs ?? RUN_DEFAULTS.timeoutMs);
  const grace = options.killGraceMs ?? RUN_DEFAULTS.killGraceMs;
  const reject = options.reject ?? RUN_DEFAULTS.reject;
  const l = launch(file, args, options);
  let timedOut = false;
  let aborted = false;
  const timer = setTimeout(() => {
    timedOut = true;
    l.leaderAtTimeout = l.leaderExitedMs;
    void terminateGroup(l.pid, grace, l.sandbox);
  }, timeoutMs);
  const onAbort = () => { aborted = true; void terminateGroup(l.pid, grace, l.sandbox); };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const result = await l.child;
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', onAbort);
  // Reap anything the program left running in its group (the sandbox, when there is one, catches the rest).
  if (l.pid > 0 && groupAlive(l.pid)) await terminateGroup(l.pid, 200);
  const facts = finish(l, options.cwd, { result, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), timedOut, aborted });
  if (result.failed && result.exitCode === undefined && !result.signal && !timedOut && !aborted) {
    // Could not start at all (EACCES…): say which program.
    throw new CommandError({ ...facts, stderr: `${facts.stderr}${result.message}` }, { cause: result.cause, headline: `Command could not start: ${l.command}` });
  }
  if (timedOut) {
    recordHang(file, args, facts, options.failFast);
    throw new TimeoutError(facts, timeoutMs, result);
  }
  if (facts.reason === 'limit') {
    if (reject) throw new CommandError(facts, { cause: result, code: 'E_LIMIT' });
    return facts;
  }
  if (reject && (facts.exitCode !== 0 || facts.signal)) {
    const where = facts.signal && CRASH_SIGNALS.has(facts.signal) ? await crashSite(run, file, args, options) : undefined;
    throw new CommandError(where ? { ...facts, crashSite: where } : facts, { cause: result });
  }
  return facts;
}
