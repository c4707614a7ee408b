/** Process groups: signal a whole group, and end it (SIGTERM, then SIGKILL after a grace). */
import type { Sandbox } from './sandbox.js';

/** Grace between SIGTERM and SIGKILL unless a caller says otherwise. */
export const KILL_GRACE_MS = 2_000;

/** Send a signal to a whole process group; returns false if it is gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Is any process of the group left? */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the group, SIGKILL what is left after `graceMs` (and everything in `sandbox`). */
export async function terminateGroup(pgid: number, graceMs: number = KILL_GRACE_MS, sandbox?: Sandbox): Promise<void> {
  if (killGroup(pgid, 'SIGTERM')) {
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!groupAlive(pgid)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    killGroup(pgid, 'SIGKILL');
  }
  sandbox?.kill();
}
