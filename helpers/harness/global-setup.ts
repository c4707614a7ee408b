/**
 * Global setup of the `labs` project (vitest main process): start a run,
 * reap what killed runs left (saying what could not be released), probe the
 * host once, start the run's watchdog (reaps the run within a second if this
 * process is killed with -9), and on teardown (or Ctrl-C) reap anything this
 * run still holds — a leak, reported as such. With LABS_KEEP=1 the teardown
 * reaps nothing: it lists every object the run kept with the command that
 * removes it, and marks the run kept (the next run or `npm run clean` reaps it).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeAndCache } from './capabilities.js';
import { closeInheritedDescriptors } from './inherited-fds.js';
import { REPO_ROOT } from './paths.js';
import { describeUnreleased, findLeftovers, reapRunReport, reapStaleRunsReport, removeCommand, type Leftover, type ReapReport } from './reaper.js';
import { keepResources } from './resources.js';
import { runDir, startRun } from './run-state.js';

function describe(leftovers: readonly Leftover[]): string {
  return leftovers.map((l) => `  ${l.kind} ${l.name}`).join('\n');
}

/** The report of a reap: what was released, and every object that could not be, by name and reason. */
export function reapMessage(what: string, report: ReapReport): string | undefined {
  const lines: string[] = [];
  if (report.found.length) lines.push(`[kernel-labs] ${what}: ${report.found.length} resources:\n${describe(report.found)}`);
  if (report.failed.length) lines.push(`[kernel-labs] ${report.failed.length} of them could NOT be released:\n${describeUnreleased(report.failed)}`);
  return lines.length ? lines.join('\n') : undefined;
}

/** What a LABS_KEEP run leaves: each object with the command that removes it. */
export function keptMessage(run: string, kept: readonly Leftover[]): string {
  if (!kept.length) return `[LABS_KEEP] run ${run} kept nothing.`;
  return `[LABS_KEEP] run ${run} kept ${kept.length} objects (the next run or \`npm run clean\` removes them):\n` +
    kept.map((l) => `  ${l.kind} ${l.name}\n    remove: ${removeCommand(l)}`).join('\n');
}

/** A detached process that reaps the run if its owner dies without a teardown (kill -9). */
function startWatchdog(run: string): void {
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'helpers', 'harness', 'watchdog.ts'), run, String(process.pid)], {
      cwd: REPO_ROOT, detached: true, stdio: 'ignore', env: { ...process.env, LABS_RUN_ID: run },
    });
    child.unref();
  } catch (e) {
    console.warn(`[kernel-labs] no watchdog for run ${run}: ${(e as Error).message}`);
  }
}

export default async function setup(): Promise<() => void> {
  if (process.getuid?.() !== 0) {
    throw new Error('The kernel labs must run as root (they load BPF programs, make namespaces and cgroups). Run: sudo npm test');
  }
  closeInheritedDescriptors(); // before any program starts (they would reach it)
  const run = startRun();
  const stale = reapStaleRunsReport(run);
  const staleMsg = reapMessage('reaped what earlier runs (killed, or kept with LABS_KEEP) left', stale);
  if (staleMsg) (stale.failed.length ? console.error : console.log)(staleMsg);
  if (process.env.LABS_WATCHDOG !== '0') startWatchdog(run);
  await probeAndCache();

  const onSignal = (signal: NodeJS.Signals) => {
    if (keepResources()) return;
    const report = reapRunReport(run);
    const msg = reapMessage(`${signal}: released what run ${run} held`, report);
    if (msg) console.error(`\n${msg}`);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    endRun(run);
  };
}

/**
 * The end of a run (the global teardown): with LABS_KEEP=1 list what the run
 * kept and mark it kept, reaping nothing; otherwise reap what it still holds
 * and report that as a leak (exit code 1), with what could not be released.
 */
export function endRun(run: string): void {
  if (keepResources()) {
    const kept = findLeftovers((r) => r === run);
    try { writeFileSync(join(runDir(run), 'kept'), kept.map((l) => `${l.kind}\t${l.name}\t${removeCommand(l)}`).join('\n') + '\n', { flag: 'a' }); } catch { /* no state dir */ }
    console.log(keptMessage(run, kept));
    try { writeFileSync(join(runDir(run), 'ended'), 'kept\n'); } catch { /* no state dir */ }
    return;
  }
  const report = reapRunReport(run);
  try { writeFileSync(join(runDir(run), 'ended'), 'reaped\n'); } catch { /* no state dir */ }
  if (report.found.length) {
    console.error(`[kernel-labs] LEAK: run ${run} ended with ${report.found.length} resources still held; released now:\n${describe(report.found)}`);
    if (report.failed.length) console.error(`[kernel-labs] ${report.failed.length} could NOT be released:\n${describeUnreleased(report.failed)}`);
    process.exitCode = 1;
  }
}
