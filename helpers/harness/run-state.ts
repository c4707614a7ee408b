/**
 * One suite run: its id (the `kl-<id>` prefix of every resource it names), a
 * marker that says it is alive, and the list of process groups it spawned.
 * A later run reaps the resources of runs whose marker points to a dead pid.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_DIR } from './paths.js';
import { LabError } from './errors.js';
import { readStat } from './proc-stat.js';

export const RESOURCE_PREFIX = 'kl-';
/** Linux IFNAMSIZ is 16 including the NUL. */
export const MAX_IFNAME = 15;

let cachedId: string | undefined;

/**
 * The run id, shared by the vitest main process and its workers through the
 * LABS_RUN_ID environment variable (set by the global setup). A script run
 * outside vitest (bench, doctor) gets its own id on first use.
 */
export function runId(): string {
  if (cachedId) return cachedId;
  const fromEnv = process.env.LABS_RUN_ID;
  cachedId = fromEnv && /^[0-9a-f]{6}$/.test(fromEnv) ? fromEnv : randomBytes(3).toString('hex');
  process.env.LABS_RUN_ID = cachedId;
  markRunAlive(cachedId, fromEnv ? undefined : process.pid);
  return cachedId;
}

export function runDir(id = runId()): string {
  return join(STATE_DIR, id);
}

/** Write `<state>/<id>/owner` with the pid whose life defines the run's. */
export function markRunAlive(id: string, ownerPid?: number): void {
  const dir = runDir(id);
  mkdirSync(dir, { recursive: true });
  if (ownerPid !== undefined) writeFileSync(join(dir, 'owner'), `${ownerPid} ${processStartTime(ownerPid) ?? '?'}\n`);
}

/** Begin a new run owned by this process (the vitest main process, or a script). */
export function startRun(): string {
  cachedId = randomBytes(3).toString('hex');
  process.env.LABS_RUN_ID = cachedId;
  markRunAlive(cachedId, process.pid);
  return cachedId;
}

/** A run is live while the process named in its owner file runs (same start time). */
export function runIsLive(id: string): boolean {
  try {
    const [pid, start] = readFileSync(join(runDir(id), 'owner'), 'utf8').trim().split(' ');
    return Boolean(pid) && processStartTime(Number(pid)) === start;
  } catch {
    return false;
  }
}

let counter = 0;

/**
 * A resource name unique to this run: `kl-<run>-<tag><n>`. Throws when the
 * name would exceed `maxLength` (15 for interface names).
 */
export function uniqueName(tag: string, maxLength = 64): string {
  counter += 1;
  const name = `${RESOURCE_PREFIX}${runId()}-${tag}${counter.toString(36)}${process.pid.toString(36).slice(-2)}`;
  if (name.length > maxLength) {
    throw new LabError(`Resource name ${name} is ${name.length} characters; the limit is ${maxLength}. Use a shorter tag than "${tag}".`, { code: 'E_RESOURCE' });
  }
  return name;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/pid/stat), or undefined if gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    // As printed (not a Number: the owner file compares the text).
    return readStat(pid)?.rest[19];
  } catch {
    return undefined;
  }
}

/**
 * Remember a process group this run started, so that a later run can kill it
 * if this one dies first. The start time guards against pid reuse.
 */
export function recordProcessGroup(pgid: number, command: string): void {
  const start = processStartTime(pgid);
  if (!start) return;
  try {
    appendFileSync(join(runDir(), 'pgids'), `${pgid} ${start} ${command.replace(/\n/g, ' ').slice(0, 200)}\n`);
  } catch {
    /* state dir unavailable: nothing to record into */
  }
}
