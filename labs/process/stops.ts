/**
 * Programs of the process labs that stop themselves (raise(SIGSTOP)) at fixed
 * points so that the spec can read /proc while they wait: wait for the next
 * stop (state T after a new context switch, so an old stop is not mistaken
 * for the next one) and continue.
 */
import { formatStat, readStat, readStatus } from '../../helpers/kernel/procfs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Voluntary + involuntary context switches of `pid` (-1 once gone). */
export function contextSwitches(pid: number): number {
  const s = readStatus(pid);
  return s ? Number(s.fields.get('voluntary_ctxt_switches') ?? 0) + Number(s.fields.get('nonvoluntary_ctxt_switches') ?? 0) : -1;
}

/** Wait until `pid` is stopped after more than `since` context switches; false when it exits or does not stop within `timeoutMs`. */
export async function nextStop(pid: number, since: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = readStat(pid);
    if (!s || s.state === 'Z') return false;
    if (s.state === 'T' && contextSwitches(pid) > since) return true;
    await sleep(10);
  }
  return false;
}

/** SIGCONT `pid` (unless `first`) and wait for its next stop; undefined on success, else why not. */
export async function continueToStop(pid: number, n: number, first: boolean, timeoutMs: number, output: () => string): Promise<string | undefined> {
  const since = first ? -1 : contextSwitches(pid);
  if (!first) process.kill(pid, 'SIGCONT');
  if (await nextStop(pid, since, timeoutMs)) return undefined;
  const st = readStat(pid);
  return `the program did not stop itself at stop ${n} within ${timeoutMs} ms (state: ${st ? formatStat(st) : 'exited'}; output: ${output().trim().slice(-400) || 'none'})`;
}
