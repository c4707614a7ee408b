/**
 * Survivors: a process a lab started that is still alive after its lab file
 * ended, outside the run's process tree (issue #29).
 *
 * Every process a lab starts runs in the lab's sandbox cgroup, which is
 * killed when the lab file ends (helpers/harness/sandbox.ts); one that moved
 * itself out of that cgroup (a write of its pid into another cgroup.procs)
 * outlives its lab and could rewrite the report after vitest exits. It is
 * recognised by what it inherited: the run's LABS_RUN_ID in its initial
 * environment (/proc/<pid>/environ, which later setenv() calls do not
 * change), while no ancestor of it is the vitest main process (a lab's
 * programs descend from a worker; an escaped one was reparented to init or
 * a subreaper). The main process's own ancestors and the run's watchdog are
 * not survivors, nor is a process still in one of the run's own cgroups
 * (`kl-<run>-…`): those the harness kills itself (a daemon a lab's program
 * left in its sandbox is killed with it, as the README says, and is no
 * tampering).
 *
 * Not covered (docs/CLASSROOM.md): a process that re-executes itself with an
 * environment without LABS_RUN_ID before its lab ends; only containment
 * (a cgroup namespace, a read-only cgroup file system) closes that.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readStat } from '../harness/proc-stat.js';
import { RESOURCE_PREFIX } from '../harness/run-state.js';

export interface Survivor {
  readonly pid: number;
  readonly comm: string;
  /** Its command line, NULs as spaces, at most 200 characters. */
  readonly cmdline: string;
}

export interface SurvivorScan {
  /** The vitest main process: its descendants are the run's live processes. */
  readonly main: number;
  /** Processes that carry the run's id by design and live apart from the main process (none today; for tests). */
  readonly keep?: readonly number[];
}

/** Does a NUL-separated environment block hold `LABS_RUN_ID=<id>`? */
export function carriesRun(environ: string, runId: string): boolean {
  return environ.split('\0').includes(`LABS_RUN_ID=${runId}`);
}

function ppidOf(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

/** The processes carrying `runId` that are neither the main process's descendants nor its ancestors. */
export function runSurvivors(runId: string, scan: SurvivorScan): Survivor[] {
  const ancestors = new Set<number>();
  for (let p: number | undefined = scan.main; p && p > 1 && !ancestors.has(p); p = ppidOf(p)) ancestors.add(p);
  const keep = new Set(scan.keep ?? []);
  const out: Survivor[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (ancestors.has(pid) || keep.has(pid)) continue;
    let environ: string;
    try { environ = readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch { continue; } // gone, or a kernel thread
    if (!carriesRun(environ, runId)) continue;
    // Part of the live run when the main process is among its ancestors.
    let live = false;
    const seen = new Set<number>();
    for (let p: number | undefined = ppidOf(pid); p && p > 1 && !seen.has(p); p = ppidOf(p)) {
      if (p === scan.main) { live = true; break; }
      seen.add(p);
    }
    if (live) continue;
    let cgroups = '';
    try { cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8'); } catch { continue; }
    if (cgroups.includes(`/${RESOURCE_PREFIX}${runId}-`)) continue; // the run's own cgroup: the harness kills it
    const stat = readStat(pid);
    if (!stat || stat.state === 'Z') continue; // a zombie does nothing
    let cmdline = '';
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ').slice(0, 200); } catch { /* gone */ }
    out.push({ pid, comm: stat.comm, cmdline });
  }
  return out;
}

/**
 * Find the run's survivors and SIGKILL them (they are the run's own processes),
 * again until none is left (a survivor may fork while it is killed; at most 10 rounds).
 * Returns every survivor found.
 */
export function killRunSurvivors(runId: string, scan: SurvivorScan): Survivor[] {
  const found = new Map<number, Survivor>();
  for (let round = 0; round < 10; round++) {
    const now = runSurvivors(runId, scan);
    if (!now.length) break;
    for (const s of now) {
      if (!found.has(s.pid)) found.set(s.pid, s);
      try { process.kill(s.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
  return [...found.values()];
}

/** One line per survivor, for the tampering finding. */
export function describeSurvivor(s: Survivor): string {
  return `pid ${s.pid} (${s.comm}) still alive after its lab, outside the lab's sandbox: ${s.cmdline || '?'}`;
}
