/**
 * /proc/<pid>/stat, parsed: the one reader (the destroy routines, the run
 * state, helpers/kernel/procfs.ts and the labs use it). Fields:
 * Documentation/filesystems/proc.rst, table 1-4.
 */
import { readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat that labs use (proc.rst, table 1-4; 1-based field numbers in comments). */
export interface ProcStat {
  readonly pid: number;          // 1
  readonly comm: string;         // 2, without the parentheses (may itself contain ") (")
  /** R running, S sleeping, D disk sleep, T stopped, t tracing stop, Z zombie, X dead, I idle. */
  readonly state: string;        // 3
  readonly ppid: number;         // 4
  readonly pgrp: number;         // 5
  readonly session: number;      // 6
  /** Controlling terminal (0: none). */
  readonly ttyNr: number;        // 7
  /** Foreground process group of the controlling terminal (-1: none). */
  readonly tpgid: number;        // 8
  readonly flags: number;        // 9
  readonly minflt: number;       // 10
  readonly cminflt: number;      // 11
  readonly majflt: number;       // 12
  readonly cmajflt: number;      // 13
  /** Clock ticks (USER_HZ). */
  readonly utime: number;        // 14
  readonly stime: number;        // 15
  readonly priority: number;     // 18
  readonly nice: number;         // 19
  readonly numThreads: number;   // 20
  readonly starttime: number;    // 22
  /** Bytes. */
  readonly vsize: number;        // 23
  /** Pages. */
  readonly rss: number;          // 24
  /** CPU it last ran on. */
  readonly processor: number;    // 39
  /** Every field after comm, as text, index 0 = field 3 (state). */
  readonly rest: readonly string[];
}

/**
 * One line of /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat). comm is
 * whatever the program named itself, parentheses and spaces included, so the
 * fields are split after the LAST ")".
 */
export function parseStat(text: string): ProcStat {
  const line = text.trim();
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${line.slice(0, 120)}`);
  const rest = line.slice(close + 1).trim().split(/\s+/);
  const f = (n: number) => Number(rest[n - 3]);
  return {
    pid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    state: rest[0]!,
    ppid: f(4), pgrp: f(5), session: f(6), ttyNr: f(7), tpgid: f(8), flags: f(9),
    minflt: f(10), cminflt: f(11), majflt: f(12), cmajflt: f(13), utime: f(14), stime: f(15),
    priority: f(18), nice: f(19), numThreads: f(20), starttime: f(22), vsize: f(23), rss: f(24),
    processor: f(39),
    rest,
  };
}

/** /proc/<pid>/stat, or undefined once the process is gone (reaped). */
export function readStat(pid: number): ProcStat | undefined {
  let t: string;
  try { t = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  return t ? parseStat(t) : undefined;
}
