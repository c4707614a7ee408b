/**
 * The cgroup interface files, parsed: one reader per format
 * (Documentation/admin-guide/cgroup-v2.rst, "Interface Files"; the v1 files
 * share the formats). Used by the destroy routines, the sandbox, the cgroup
 * helpers of helpers/kernel and the labs.
 *
 * - newline-separated values: cgroup.procs, cgroup.threads (one pid a line);
 * - flat keyed: "key value" lines, as cpu.stat, memory.stat, memory.events,
 *   pids.events and v1's memory.oom_control.
 *
 * /proc/<pid>/cgroup is read by helpers/kernel/cgroup-limits.ts and the
 * pressure files (PSI) by the cgroup-psi lab's psi.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** cgroup.procs (or cgroup.threads) text → pids, in the kernel's order (pure). */
export function parseCgroupProcs(text: string): number[] {
  return text.split('\n').filter(Boolean).map(Number);
}

/** The pids in `dir`/cgroup.procs; empty when the cgroup is gone (or unreadable). */
export function pidsIn(dir: string): number[] {
  try { return parseCgroupProcs(readFileSync(join(dir, 'cgroup.procs'), 'utf8')); } catch { return []; }
}

/** Flat keyed `key value` lines (cpu.stat, memory.stat, memory.events, memory.oom_control) as numbers; lines whose value is not an integer are left out (pure). */
export function parseKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}
