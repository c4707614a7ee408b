/**
 * /proc/<pid>: what the kernel says about a process, parsed. Pure parsers
 * (`parseStat`, `parseStatus`, `parseMaps`, `parseSmaps`, `parseSched`,
 * `parsePagemapEntry`) are tested on recorded output in tests/kernel/procfs.test.ts;
 * the readers around them return undefined when the process is gone (a race
 * every caller must expect: processes exit between two reads).
 *
 * Field meanings: Documentation/filesystems/proc.rst (stat, status, maps,
 * smaps), Documentation/admin-guide/mm/pagemap.rst (pagemap), and
 * kernel/sched/debug.c (sched).
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

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

/** /proc/<pid>/status as key → value (text as the kernel printed it, trimmed), with a few typed getters. */
export interface ProcStatus {
  readonly fields: ReadonlyMap<string, string>;
  readonly name: string;
  readonly state: string;
  readonly tgid: number;
  readonly pid: number;
  readonly ppid: number;
  readonly threads: number;
  /** A "<n> kB" field in kB (VmRSS, RssAnon, VmHWM…); undefined when absent (kernel threads, zombies). */
  kb(key: string): number | undefined;
}

export function parseStatus(text: string): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const num = (k: string) => Number(fields.get(k)?.split(/\s+/)[0] ?? NaN);
  return {
    fields,
    name: fields.get('Name') ?? '',
    state: fields.get('State')?.[0] ?? '?',
    tgid: num('Tgid'), pid: num('Pid'), ppid: num('PPid'), threads: num('Threads'),
    kb(key) {
      const m = fields.get(key)?.match(/^(\d+)\s*kB$/);
      return m ? Number(m[1]) : undefined;
    },
  };
}

/** One VMA of /proc/<pid>/maps (addresses as bigint: user space reaches 2^47 and beyond). */
export interface Vma {
  readonly start: bigint;
  readonly end: bigint;
  /** "rw-p", "r-xs"… */
  readonly perms: string;
  readonly offset: bigint;
  readonly dev: string;
  readonly inode: number;
  /** File path, "[heap]", "[stack]", "/memfd:name (deleted)", or "" for anonymous memory. */
  readonly path: string;
  /** smaps only: "Rss" → kB, "AnonHugePages" → kB…; the "VmFlags" line is in `vmFlags`. */
  readonly kb: ReadonlyMap<string, number>;
  readonly vmFlags: readonly string[];
}

const VMA_LINE = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+(\S+)\s+(\d+)\s*(.*)$/;

/** /proc/<pid>/maps, or /proc/<pid>/smaps (the per-VMA "Key: n kB" lines and VmFlags filled in). */
export function parseMaps(text: string): Vma[] {
  const vmas: { start: bigint; end: bigint; perms: string; offset: bigint; dev: string; inode: number; path: string; kb: Map<string, number>; vmFlags: string[] }[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(VMA_LINE);
    if (m) {
      vmas.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3]!, offset: BigInt(`0x${m[4]}`), dev: m[5]!, inode: Number(m[6]), path: m[7]!.trim(), kb: new Map(), vmFlags: [] });
      continue;
    }
    const cur = vmas[vmas.length - 1];
    if (!cur) continue;
    const kv = line.match(/^(\w+):\s+(\d+)\s*kB$/);
    if (kv) cur.kb.set(kv[1]!, Number(kv[2]));
    else if (line.startsWith('VmFlags:')) cur.vmFlags.push(...line.slice(8).trim().split(/\s+/).filter(Boolean));
  }
  return vmas;
}

/** Alias that says what was read. */
export const parseSmaps = parseMaps;

/** The VMA containing `addr`, if any. */
export function vmaContaining(vmas: readonly Vma[], addr: bigint): Vma | undefined {
  return vmas.find((v) => v.start <= addr && addr < v.end);
}

/** One line of a VMA for messages: "7f…000-7f…000 rw-p 00000000 00:00 0 [heap]". */
export function formatVma(v: Vma): string {
  return `${v.start.toString(16)}-${v.end.toString(16)} ${v.perms} ${v.offset.toString(16).padStart(8, '0')} ${v.dev} ${v.inode} ${v.path}`.trimEnd();
}

/**
 * /proc/<pid>/sched (CONFIG_SCHED_DEBUG): "se.vruntime : 234.514328" → 234.514328.
 * Times are in ms with ns decimals; keys as printed (se.sum_exec_runtime, se.load.weight, nr_switches, prio…).
 */
export function parseSched(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = line.match(/^([\w.#>\-]+)\s*:\s*(-?[\d.]+)\s*$/);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** One 64-bit /proc/<pid>/pagemap entry (pagemap.rst). */
export interface PagemapEntry {
  /** Bit 63. */
  readonly present: boolean;
  /** Bit 62. */
  readonly swapped: boolean;
  /** Bit 61: file page or shared anon. */
  readonly fileOrShared: boolean;
  /** Bit 56: mapped exactly once. */
  readonly exclusive: boolean;
  /** Bit 55. */
  readonly softDirty: boolean;
  /** Bits 0–54 when present and not swapped; 0 without CAP_SYS_ADMIN (since 4.2). */
  readonly pfn: bigint;
}

export function parsePagemapEntry(raw: bigint): PagemapEntry {
  const bit = (n: number) => ((raw >> BigInt(n)) & 1n) === 1n;
  const present = bit(63);
  const swapped = bit(62);
  return {
    present, swapped, fileOrShared: bit(61), exclusive: bit(56), softDirty: bit(55),
    pfn: present && !swapped ? raw & ((1n << 55n) - 1n) : 0n,
  };
}

/** The pagemap entries of `pages` pages from virtual address `vaddr` (page-aligned) of `pid`. */
export function readPagemap(pid: number | 'self', vaddr: bigint, pages = 1, pageSize = 4096): PagemapEntry[] {
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const buf = Buffer.alloc(8 * pages);
    const got = readSync(fd, buf, 0, buf.length, Number((vaddr / BigInt(pageSize)) * 8n));
    const out: PagemapEntry[] = [];
    for (let i = 0; i + 8 <= got; i += 8) out.push(parsePagemapEntry(buf.readBigUInt64LE(i)));
    return out;
  } finally {
    closeSync(fd);
  }
}

function readProc(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/** /proc/<pid>/stat, or undefined once the process is gone (reaped). */
export function readStat(pid: number): ProcStat | undefined {
  const t = readProc(`/proc/${pid}/stat`);
  return t ? parseStat(t) : undefined;
}

export function readStatus(pid: number): ProcStatus | undefined {
  const t = readProc(`/proc/${pid}/status`);
  return t ? parseStatus(t) : undefined;
}

export function readMaps(pid: number, smaps = false): Vma[] | undefined {
  const t = readProc(`/proc/${pid}/${smaps ? 'smaps' : 'maps'}`);
  return t === undefined ? undefined : parseMaps(t);
}

export function readSched(pid: number): Map<string, number> | undefined {
  const t = readProc(`/proc/${pid}/sched`);
  return t ? parseSched(t) : undefined;
}

/** Thread ids under /proc/<pid>/task (empty once gone). */
export function listTasks(pid: number): number[] {
  try { return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b); } catch { return []; }
}

/** stat of every process now in /proc (processes that vanish while scanning are left out). */
export function listProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** The processes below `root` (children, their children…) in a snapshot from listProcesses(). */
export function descendants(all: readonly ProcStat[], root: number): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length) {
    for (const c of byParent.get(queue.shift()!) ?? []) { out.push(c); queue.push(c.pid); }
  }
  return out;
}

/** A /proc/<pid>/stat summary for messages: "1234 (name) S ppid=… pgrp=… sid=… tty=…". */
export function formatStat(s: ProcStat): string {
  return `${s.pid} (${s.comm}) ${s.state} ppid=${s.ppid} pgrp=${s.pgrp} sid=${s.session} tty_nr=${s.ttyNr} threads=${s.numThreads}`;
}
