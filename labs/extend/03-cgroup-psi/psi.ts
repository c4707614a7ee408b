/**
 * Pressure stall information (PSI, Documentation/accounting/psi.rst): the
 * share of wall time in which some (or all) runnable tasks of a group were
 * stalled on a resource. System-wide in /proc/pressure/{cpu,memory,io},
 * per cgroup in <cgroup2 dir>/{cpu,memory,io}.pressure:
 *
 *   some avg10=1.81 avg60=0.32 avg300=0.06 total=237910
 *   full avg10=1.81 avg60=0.32 avg300=0.06 total=237910
 *
 * avgN are percentages over N seconds, total the stall time in µs since the
 * group exists. A process that writes "<some|full> <stall µs> <window µs>" to
 * such a file and keeps it open has a trigger: poll(2) answers POLLPRI when
 * the stall within one window reached the threshold. A trigger with a window
 * below 2 s (only root may make one) runs on a per-group "psimon" kthread,
 * made with the group's first such trigger and stopped with its last; a
 * window of whole 2 s multiples is allowed to any writer (no CAP_SYS_RESOURCE)
 * and is checked by the 2 s averaging work instead. Whether an open file
 * holds a trigger, the kernel answers itself: one trigger per open file, and
 * a second write gets EBUSY before it is parsed (triggersOn()).
 *
 * PSI is per cgroup only on the unified (v2) hierarchy, but it needs no
 * controller there: on a v1 host the memory limit is a v1 memory cgroup
 * while the stall is read from the same tasks' kl- child of the
 * controller-less cgroup2 tree (pressureCgroup()).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeCgroups } from '../../../helpers/harness/capabilities.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { LabError } from '../../../helpers/harness/errors.js';
import { run } from '../../../helpers/harness/exec.js';
import { REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { makeCgroup2Child } from '../../../helpers/kernel/cgroup-bpf.js';
import { CGROUP_BASE, makeCgroup } from '../../../helpers/kernel/cgroup.js';
import { listProcesses, openFds } from '../../../helpers/kernel/procfs.js';

/** One line of a pressure file. */
export interface PressureLine {
  readonly avg10: number;
  readonly avg60: number;
  readonly avg300: number;
  /** Stall time since the group exists, µs. */
  readonly total: number;
}

export interface Pressure {
  readonly some: PressureLine;
  /** Absent in /proc/pressure/cpu before 5.13. */
  readonly full?: PressureLine;
}

/** Parse a pressure file (pure). Throws on text without a "some" line. */
export function parsePressure(text: string): Pressure {
  const lines: Partial<Record<'some' | 'full', PressureLine>> = {};
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^(some|full)\s+(.*)$/);
    if (!m) continue;
    const kv = Object.fromEntries(m[2]!.split(/\s+/).map((f) => f.split('=')).filter((p) => p.length === 2).map(([k, v]) => [k, Number(v)]));
    lines[m[1] as 'some' | 'full'] = { avg10: kv.avg10 ?? 0, avg60: kv.avg60 ?? 0, avg300: kv.avg300 ?? 0, total: kv.total ?? 0 };
  }
  if (!lines.some) throw new Error(`not a pressure file (no "some" line): ${JSON.stringify(text.slice(0, 120))}`);
  return { some: lines.some, ...(lines.full ? { full: lines.full } : {}) };
}

export function readPressure(file: string): Pressure {
  return parsePressure(readFileSync(file, 'utf8'));
}

/** Seconds on CLOCK_MONOTONIC, the clock a C program reads with clock_gettime(CLOCK_MONOTONIC). */
export const monotonicSeconds = (): number => Number(process.hrtime.bigint()) / 1e9;

/** A `some total` reading at a CLOCK_MONOTONIC time. */
export interface PressureSample { readonly t: number; readonly some: number; readonly full: number }

/** Read `file` every `intervalMs` until stop(); the samples, first one taken at once. */
export function samplePressure(file: string, intervalMs = 50): { readonly samples: PressureSample[]; stop(): PressureSample[] } {
  const samples: PressureSample[] = [];
  const take = () => {
    try {
      const p = readPressure(file);
      samples.push({ t: monotonicSeconds(), some: p.some.total, full: p.full?.total ?? 0 });
    } catch { /* the cgroup went away */ }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return { samples, stop() { clearInterval(timer); take(); return samples; } };
}

/**
 * Growth of `some total` (µs) over [from, to] as the samples bound it from
 * outside: the last sample at or before `from` to the first at or after `to`
 * (pure). An upper bound of the stall inside the interval.
 */
export function growthAround(samples: readonly PressureSample[], from: number, to: number): number {
  if (!samples.length) return 0;
  const before = [...samples].reverse().find((s) => s.t <= from) ?? samples[0]!;
  const after = samples.find((s) => s.t >= to) ?? samples[samples.length - 1]!;
  return after.some - before.some;
}

/** The psimon kthreads (one per group with a privileged trigger), with their start time in clock ticks. */
export function psimonThreads(): { pid: number; starttime: number }[] {
  return listProcesses().filter((s) => s.comm === 'psimon').map((s) => ({ pid: s.pid, starttime: s.starttime }));
}

/** One open file of a process: fd, what it points at, and whether it was opened for writing (fdinfo flags). */
export interface OpenFile { readonly fd: number; readonly target: string; readonly writable: boolean; readonly flags: string }

/** The files `pid` has open (from /proc/<pid>/fd and fdinfo); empty when it is gone. */
export function openFiles(pid: number): OpenFile[] {
  return openFds(pid).map(({ fd, target, fdinfo }) => {
    const flags = /^flags:\s*(\d+)/m.exec(fdinfo)?.[1] ?? '0';
    const mode = parseInt(flags, 8) & 3; // O_ACCMODE: 0 read, 1 write, 2 read-write
    return { fd, target, writable: mode === 1 || mode === 2, flags };
  });
}

/**
 * A cgroup whose memory the lab limits and whose memory pressure it reads:
 * - v2 host: one cgroup (makeCgroup) with memory.high = the limit (the
 *   kernel reclaims and throttles there) and memory.max at twice it;
 * - v1 host: the v1 cgroup (memory.limit_in_bytes = the limit) plus a kl-
 *   child of the unified hierarchy, whose pressure files count the stalls
 *   of the same tasks; /proc/pressure/memory when that file is absent.
 * In both, the tasks go to a leaf below the cgroup2 cgroup: a trigger watches
 * the leaf's memory.pressure (`pressureFile`) while the lab samples its
 * parent's (`observeFile`, the same tasks' stall). Reading a group's pressure
 * file folds its averages, and the unprivileged triggers of that group are
 * only checked when the 2 s averaging work does the folding: a reader of the
 * same file every 100 ms starves them (measured here: 1 event instead of 2–3).
 * `limitBytes` undefined: the same cgroups without a limit (a control).
 * A process joins by writing its pid into the cgroup.procs of every `dirs`.
 */
export async function pressureCgroup(tag: string, limitBytes?: number): Promise<{
  readonly dirs: readonly string[];
  readonly pressureFile: string;
  readonly observeFile: string;
  readonly version: 1 | 2;
  /** How the squeeze and the pressure file were set up, for messages and adapted(). */
  readonly how: string;
}> {
  const version = probeCgroups(CGROUP_BASE).version;
  if (version === 0) throw new LabError(`no cgroup cpu and memory controllers under ${CGROUP_BASE}`, { code: 'E_CAPABILITY' });
  const cg = makeCgroup({ tag });
  if (cg.version === 2) {
    const dir = cg.dirs[0]!;
    if (limitBytes !== undefined) {
      writeFileSync(join(dir, 'memory.max'), String(2 * limitBytes));
      writeFileSync(join(dir, 'memory.high'), String(limitBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    }
    const leaf = join(dir, 'leaf');
    mkdirSync(leaf); // removed with the cgroup (destroyCgroup goes deepest first)
    return { dirs: [leaf], pressureFile: join(leaf, 'memory.pressure'), observeFile: join(dir, 'memory.pressure'), version: 2,
      how: limitBytes === undefined ? `v2 cgroup ${leaf}, no limit` : `v2 cgroup ${leaf} below ${dir}: memory.high ${limitBytes}, memory.max ${2 * limitBytes}` };
  }
  const swap = limitBytes === undefined ? '' : `, ${cg.setMemoryMax(limitBytes)}`;
  const limit = limitBytes === undefined ? 'no memory limit' : `memory.limit_in_bytes ${limitBytes}${swap}`;
  const u = await makeCgroup2Child(`${tag}u`);
  const leaf = join(u.path, 'leaf');
  mkdirSync(leaf);
  const file = join(leaf, 'memory.pressure');
  if (existsSync(file)) {
    return { dirs: [...cg.dirs, leaf], pressureFile: file, observeFile: join(u.path, 'memory.pressure'), version: 1,
      how: `cgroup v1 memory cgroup (${limit}) ${cg.dirs.join(' ')}; per-cgroup PSI from the controller-less cgroup2 cgroup ${leaf} (${u.how})` };
  }
  return { dirs: [...cg.dirs, leaf], pressureFile: '/proc/pressure/memory', observeFile: '/proc/pressure/memory', version: 1,
    how: `cgroup v1 memory cgroup (${limit}) ${cg.dirs.join(' ')}; no per-cgroup memory.pressure in ${leaf}: system-wide /proc/pressure/memory` };
}

/** Each descriptor of `pid` open on `file`, and whether the kernel says it holds a trigger (c/extend/psi_trigger_probe.c). */
export async function triggersOn(pid: number, file: string): Promise<{ fd: number; writable: boolean; trigger: boolean; answer: string }[]> {
  const probe = (await buildProgram({ src: join(REFERENCE_SRC, 'extend/psi_trigger_probe.c') })).path;
  const out: { fd: number; writable: boolean; trigger: boolean; answer: string }[] = [];
  for (const f of openFiles(pid).filter((o) => o.target === file)) {
    const r = await run(probe, [String(pid), String(f.fd)], { timeoutMs: 10_000, reject: false });
    out.push({ fd: f.fd, writable: f.writable, trigger: r.exitCode === 0, answer: (r.stdout + r.stderr).trim() });
  }
  return out;
}

/** "fd 3 -> /sys/…/memory.pressure (flags 02004002)" lines of a process's open files, for messages. */
export function describeOpenFiles(pid: number): string {
  const files = openFiles(pid);
  return files.length ? files.map((f) => `fd ${f.fd} -> ${f.target} (flags ${f.flags})`).join('\n') : `(pid ${pid} has no open files or is gone)`;
}
