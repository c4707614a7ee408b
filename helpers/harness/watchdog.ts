/**
 * The run's watchdog: `node --import tsx watchdog.ts <run> <owner-pid>`,
 * started detached (its own session) by the global setup. It waits for the
 * owner (the vitest main process) to end; if the run did not end through its
 * teardown (the owner was killed with -9, or crashed), it reaps the run at
 * once — processes (their sandbox cgroups), namespaces, links, mounts, trace
 * instances, pins, temp dirs — and writes what it did to `<state>/<run>/watchdog.log`.
 * A run kept with LABS_KEEP=1 is left alone.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleepSync } from './destroy.js';
import { describeUnreleased, reapRunReport } from './reaper.js';
import { processStartTime, runDir } from './run-state.js';

const [run, ownerArg] = process.argv.slice(2);
const owner = Number(ownerArg);
if (run && /^[0-9a-f]{6}$/.test(run) && owner > 0) {
  const start = processStartTime(owner);
  const ended = () => existsSync(join(runDir(run), 'ended'));
  // Poll: a pidfd would need a native addon; 100 ms of latency is well inside the 5 s budget.
  while (start && processStartTime(owner) === start && !ended()) sleepSync(100);
  if (!ended() && !existsSync(join(runDir(run), 'kept')) && process.env.LABS_KEEP !== '1') {
    const report = reapRunReport(run);
    const text = `owner ${owner} died without a teardown at ${new Date().toISOString()}; reaped ${report.found.length}:\n` +
      report.found.map((l) => `  ${l.kind} ${l.name}`).join('\n') + (report.failed.length ? `\nnot released:\n${describeUnreleased(report.failed)}` : '') + '\n';
    try { writeFileSync(join(runDir(run), 'watchdog.log'), text); } catch { /* state dir gone */ }
  }
}
