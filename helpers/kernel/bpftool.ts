/**
 * Reading loaded BPF programs and maps back with bpftool (JSON output): which
 * maps a program uses, and the contents of an array map of counters. Used by
 * the XDP lab to read the packet counters of a program iproute2 loaded.
 */
import { run } from '../harness/exec.js';
import { LabError } from '../harness/errors.js';
import { fdinfoField, openFds } from './procfs.js';

export interface ProgInfo {
  readonly id: number;
  readonly type: string;
  readonly name?: string;
  readonly map_ids?: readonly number[];
}

export interface MapInfo {
  readonly id: number;
  readonly type: string;
  readonly name?: string;
}

async function bpftoolJson<T>(args: readonly string[]): Promise<T> {
  const r = await run('bpftool', ['-j', ...args], { timeoutMs: 15_000 });
  try {
    return JSON.parse(r.stdout) as T;
  } catch (e) {
    throw new LabError(`bpftool -j ${args.join(' ')} printed no JSON:\n${r.stdout.slice(0, 500)}`, { code: 'E_COMMAND', cause: e });
  }
}

export function progInfo(id: number): Promise<ProgInfo> {
  return bpftoolJson<ProgInfo>(['prog', 'show', 'id', String(id)]);
}

export function mapInfo(id: number): Promise<MapInfo> {
  return bpftoolJson<MapInfo>(['map', 'show', 'id', String(id)]);
}

/** A loaded program's instructions as the kernel holds them (`bpftool prog dump xlated`), for checks of the mechanism. */
export async function progXlated(id: number): Promise<string> {
  return (await run('bpftool', ['prog', 'dump', 'xlated', 'id', String(id)], { timeoutMs: 15_000 })).stdout;
}

/** Does this xlated dump hold an atomic read-modify-write (`lock *(u64 *)(r1 +0) += r2`, `atomic64_fetch_add(…)`)? */
export function hasAtomicUpdate(xlated: string): boolean {
  return /\block \*\(u(?:32|64) \*\)|\batomic(?:64)?_(?:fetch_)?(?:add|or|and|xor|xchg|cmpxchg)\b/.test(xlated);
}

/** The id of the map called `name` that program `progId` uses. */
export async function progMapByName(progId: number, name: string): Promise<MapInfo> {
  const prog = await progInfo(progId);
  const maps = await Promise.all((prog.map_ids ?? []).map(mapInfo));
  // The kernel truncates map names to 15 characters.
  const found = maps.find((m) => m.name === name.slice(0, 15));
  if (!found) {
    throw new LabError(`program ${progId} (${prog.name ?? '?'}) uses no map named ${name}; its maps: ${maps.map((m) => `${m.id}:${m.name ?? '?'}`).join(', ') || 'none'}`, { code: 'E_RESOURCE' });
  }
  return found;
}

type Bytes = readonly string[];
export interface DumpEntry {
  readonly key: Bytes | number;
  /** One value; a per-CPU map has `values` instead, one per CPU. */
  readonly value?: Bytes | number | object;
  readonly values?: readonly { readonly value: Bytes | number | object }[];
  readonly formatted?: { readonly key: number; readonly value?: number | string | object; readonly values?: readonly { readonly value: number | object }[] };
}

/** Little-endian hex bytes ("0x01", "0x00", …) as a number. */
export function bytesToNumber(bytes: readonly string[]): number {
  let v = 0n;
  bytes.forEach((b, i) => { v |= BigInt(parseInt(b, 16)) << BigInt(8 * i); });
  return Number(v);
}

/**
 * Parse `bpftool -j map dump` of a u32 → u64 map into key → value. A per-CPU map (one value per CPU)
 * counts the sum over its CPUs: a counter kept per CPU is that sum. A struct value with one number field
 * (`{ struct bpf_spin_lock lock; __u64 count; }`, the lock shown as an object) counts that field.
 */
export function parseCounterDump(entries: readonly DumpEntry[]): Map<number, number> {
  // A struct value (a counter beside its struct bpf_spin_lock, shown by BTF as an object): its one number field.
  const field = (o: object) => { const n = Object.values(o).filter((x) => typeof x === 'number'); return n.length === 1 ? n[0]! : NaN; };
  const num = (v: Bytes | number | string | object | undefined): number =>
    (Array.isArray(v) ? bytesToNumber(v) : v !== null && typeof v === 'object' ? field(v) : Number(v ?? 0));
  const out = new Map<number, number>();
  for (const e of entries) {
    const key = e.formatted ? Number(e.formatted.key) : num(e.key);
    const each = e.formatted?.values ?? e.values;
    out.set(key, each ? each.reduce((a, c) => a + num(c.value), 0) : num(e.formatted?.value ?? e.value));
  }
  return out;
}

/** The counters of a u32 → u64 array map, by map id. */
export async function readCounters(mapId: number): Promise<Map<number, number>> {
  return parseCounterDump(await bpftoolJson<DumpEntry[]>(['map', 'dump', 'id', String(mapId)]));
}

/** XDP action numbers (enum xdp_action) and their names. */
export const XDP_ACTION_NAMES = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'] as const;

/** Counters keyed by action name, for assertion messages and comparisons. */
export function byAction(counters: Map<number, number>): Record<string, number> {
  return Object.fromEntries(XDP_ACTION_NAMES.map((n, i) => [n, counters.get(i) ?? 0]));
}

/** One perf-event attachment of a BPF program (`bpftool perf show`): which process holds it, on what. */
export interface PerfAttachment {
  readonly pid: number;
  readonly fd: number;
  readonly prog_id: number;
  /** tracepoint, kprobe, kretprobe, uprobe, uretprobe. */
  readonly fd_type: string;
  readonly tracepoint?: string;
  readonly func?: string;
  /** A uprobe's file. */
  readonly filename?: string;
}

/** The attachments held by process `pid` (all when undefined), from `bpftool -j perf show` output. */
export function parsePerfShow(json: unknown, pid?: number): PerfAttachment[] {
  if (!Array.isArray(json)) throw new LabError(`bpftool perf show: expected a JSON array, got ${JSON.stringify(json).slice(0, 200)}`, { code: 'E_COMMAND' });
  return (json as PerfAttachment[]).filter((a) => pid === undefined || a.pid === pid);
}

/** The BPF programs process `pid` attached through perf events (kprobes, tracepoints), as the kernel lists them. */
export async function perfAttachments(pid?: number): Promise<PerfAttachment[]> {
  return parsePerfShow(await bpftoolJson<unknown>(['perf', 'show']), pid);
}

/** Does an attachment hook the clone or clone3 system call (tracepoint sys_enter_clone*, or a kprobe on its kernel function)? */
export function hooksClone(a: PerfAttachment): boolean {
  if (a.fd_type === 'tracepoint') return /^sys_enter_clone3?$/.test(a.tracepoint ?? '');
  if (a.fd_type === 'kprobe') return /(^|_)sys_clone3?$/.test(a.func ?? '');
  return false;
}

/** The BPF programs process `pid` holds open: prog id → bpf_prog_type (the fdinfo of its anon_inode:bpf-prog descriptors). */
export function heldPrograms(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const { fdinfo } of openFds(pid, (t) => t === 'anon_inode:bpf-prog')) {
    const id = fdinfoField(fdinfo, 'prog_id');
    if (id) out.set(id, fdinfoField(fdinfo, 'prog_type') ?? NaN);
  }
  return out;
}

/** Whether a program's translated instructions read kernel memory (a bpf_probe_read_kernel/_str call, or the older bpf_probe_read). */
export function readsKernelMemory(xlated: string): boolean {
  return /probe_read/.test(xlated);
}
