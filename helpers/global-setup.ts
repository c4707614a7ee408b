/**
 * Global setup of the `labs` project (vitest main process): start a run,
 * reap what killed runs left, probe the host once, and on teardown (or
 * Ctrl-C) reap anything this run still holds — a leak, reported as such.
 */
import { probeAndCache } from './capabilities.js';
import { reapRun, reapStaleRuns, type Leftover } from './reaper.js';
import { startRun } from './run-state.js';

function describe(leftovers: readonly Leftover[]): string {
  return leftovers.map((l) => `  ${l.kind} ${l.name}`).join('\n');
}

export default async function setup(): Promise<() => void> {
  if (process.getuid?.() !== 0) {
    throw new Error('The kernel labs must run as root (they load BPF programs, make namespaces and cgroups). Run: sudo npm test');
  }
  const run = startRun();
  const stale = reapStaleRuns(run);
  if (stale.length) console.log(`[kernel-labs] reaped ${stale.length} resources left by earlier runs that were killed:\n${describe(stale)}`);
  await probeAndCache();

  const onSignal = (signal: NodeJS.Signals) => {
    const left = reapRun(run);
    if (left.length) console.error(`\n[kernel-labs] ${signal}: released ${left.length} resources of run ${run}`);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const left = reapRun(run);
    if (left.length) {
      console.error(`[kernel-labs] LEAK: run ${run} ended with ${left.length} resources still held; released now:\n${describe(left)}`);
      process.exitCode = 1;
    }
  };
}
