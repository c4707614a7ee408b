/**
 * The fork-loop watchdog: a program forking in a loop under the sandbox's
 * pids.max would spin until its time bound. Once forks are refused for a
 * second on end, the group and the sandbox are killed and the limit is named.
 */
import { killGroup } from './process-group.js';
import type { Sandbox } from './sandbox.js';

/** Watch `sandbox` for refused forks; `onLimit` gets the limit hit before the kill. Returns the stop. */
export function watchForkLoop(sandbox: Sandbox, pid: number, onLimit: (limit: string | undefined) => void): () => void {
  let last = 0;
  let strikes = 0;
  const watch = setInterval(() => {
    const hits = sandbox.usage().pidsMaxHits;
    strikes = hits > last ? strikes + 1 : 0;
    last = hits;
    if (strikes >= 2) {
      onLimit(sandbox.limitHit());
      clearInterval(watch);
      killGroup(pid, 'SIGKILL');
      sandbox.kill();
    }
  }, 500);
  watch.unref();
  return () => clearInterval(watch);
}
