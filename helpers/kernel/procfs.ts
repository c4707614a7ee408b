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
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { readStat, type ProcStat } from '../harness/proc-stat.js';

/** /proc/<pid>/stat: one parser, in the harness (the destroy routines and the run state read it too). */
export { parseStat, readStat, type ProcStat } from '../harness/proc-stat.js';

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

export function readStatus(pid: number): ProcStatus | undefined {
  const t = readProc(`/proc/${pid}/status`);
  return t ? parseStatus(t) : undefined;
}

export function readMaps(pid: number, smaps = false): Vma[] | undefined {
  const t = readProc(`/proc/${pid}/${smaps ? 'smaps' : 'maps'}`);
  return t === undefined ? undefined : parseMaps(t);
}

/** /proc/<pid>/io (`rchar: 123` per line: rchar, wchar, syscr, syscw, read_bytes, write_bytes, …) → numbers by field (pure). */
export function parseIo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(\w+):\s*(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/**
 * A task's I/O counts (root, or the task's own user): rchar/wchar count the bytes of its read- and write-family
 * calls, whatever the file; a reaped child's counts are added to its parent's (wait_task_zombie); a zombie
 * still shows its own. Undefined once the task is gone.
 */
export function readIo(pid: number): Map<string, number> | undefined {
  const t = readProc(`/proc/${pid}/io`);
  return t === undefined ? undefined : parseIo(t);
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

/** One open descriptor of a process: its number, what /proc/<pid>/fd/<fd> points at, and its /proc/<pid>/fdinfo/<fd>. */
export interface OpenFd {
  readonly fd: number;
  readonly target: string;
  readonly fdinfo: string;
}

/**
 * The descriptors `pid` holds open, those whose link target `keep` accepts (the fdinfo is read only for them):
 * empty when the process is gone; a descriptor closed meanwhile is left out.
 */
export function openFds(pid: number | 'self', keep: (target: string) => boolean = () => true): OpenFd[] {
  let fds: string[] = [];
  try { fds = readdirSync(`/proc/${pid}/fd`); } catch { return []; }
  const out: OpenFd[] = [];
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (keep(target)) out.push({ fd: Number(fd), target, fdinfo: readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8') });
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/** A number field of an fdinfo text ("flags:", "prog_id:", …; octal for flags, as the kernel prints it, when `radix` is 8). */
export function fdinfoField(fdinfo: string, key: string, radix = 10): number | undefined {
  const m = new RegExp(`^${key}:\\s*([0-9a-fA-F]+)`, 'm').exec(fdinfo);
  return m ? parseInt(m[1]!, radix) : undefined;
}
