/**
 * The receive path of Lab 8.1, read two ways (pure):
 *
 * - the kernel's record: private tracefs instances (one per receiving veth
 *   end, filtered to it, `hash-ptr` off, trace_clock "counter") holding
 *   napi:napi_poll, net:napi_gro_receive_entry and net:netif_receive_skb, and
 *   irq:softirq_entry/exit of NET_RX. `parseRecordLine()` reads one line with
 *   its CPU and counter value;
 * - the student tracer's lines: `poll work=<n> budget=<n>`,
 *   `gro skb=<addr> len=<n>`, `rx skb=<addr> len=<n>` (the first word says
 *   which; the fields in any order, `=`, `:` or a space between name and
 *   value, the address with or without 0x). `parseTracerLine()` reads one.
 *
 * The device of a record event is its instance's, not the printed name:
 * Debian 12's 6.1 prints net events with an empty `dev=` (AUTHORING.md).
 */

export type Point = 'poll' | 'gro' | 'rx' | 'softirq_entry' | 'softirq_exit';

/** One event of the kernel's record. */
export interface RecordEvent {
  readonly point: Point;
  /** The device its instance is filtered to ('' for softirq events). */
  readonly dev: string;
  readonly cpu: number;
  /** The shared counter (trace_clock "counter"): orders every CPU and instance. */
  readonly ts: number;
  /** gro, rx: the skb address, 16 lowercase hex digits. */
  readonly skb?: string;
  readonly len?: number;
  /** poll: packets taken and the budget; napi: the napi_struct address. */
  readonly work?: number;
  readonly budget?: number;
  readonly napi?: string;
}

/** Normalise an address: lowercase, no 0x, 16 digits. */
export function addrKey(addr: string): string {
  return addr.toLowerCase().replace(/^0x/, '').padStart(16, '0');
}

const LINE = /^\s*.+-\d+\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\w+):\s?(.*)$/;

/** One line of a `trace` file of the lab's instances, or undefined for other lines and events. */
export function parseRecordLine(line: string, dev: string): RecordEvent | undefined {
  const m = line.match(LINE);
  if (!m) return undefined;
  const [cpu, ts, event, body] = [Number(m[1]), Number(m[2]), m[3]!, m[4]!];
  if (event === 'napi_poll') {
    const p = body.match(/napi struct (?:0x)?([0-9a-f]+) for device \S* ?work (-?\d+) budget (\d+)/);
    return p ? { point: 'poll', dev, cpu, ts, napi: addrKey(p[1]!), work: Number(p[2]), budget: Number(p[3]) } : undefined;
  }
  if (event === 'napi_gro_receive_entry' || event === 'netif_receive_skb') {
    const s = body.match(/skbaddr=(?:0x)?([0-9a-f]+)/);
    const l = body.match(/\blen=(\d+)/);
    return s && l ? { point: event === 'netif_receive_skb' ? 'rx' : 'gro', dev, cpu, ts, skb: addrKey(s[1]!), len: Number(l[1]) } : undefined;
  }
  if (event === 'softirq_entry' || event === 'softirq_exit') {
    return /\[action=NET_RX\]|vec=3\b/.test(body) ? { point: event, dev: '', cpu, ts } : undefined;
  }
  return undefined;
}

/** The records of several instances as one list in the kernel's order (the shared counter). */
export function mergeRecords(records: readonly { readonly dev: string; readonly lines: readonly string[] }[]): RecordEvent[] {
  return records.flatMap((r) => r.lines.flatMap((l) => parseRecordLine(l, r.dev) ?? [])).sort((a, b) => a.ts - b.ts);
}

/** One line of the student's tracer. */
export interface TracerLine {
  readonly point: 'poll' | 'gro' | 'rx';
  readonly text: string;
  readonly skb?: string;
  readonly len?: number;
  readonly work?: number;
  readonly budget?: number;
}

const num = (text: string, name: string) => text.match(new RegExp(`\\b${name}\\s*[=: ]\\s*(\\d+)\\b`))?.[1];

/** A tracer line, or undefined when its first word is none of poll, gro, rx or a field is missing. */
export function parseTracerLine(text: string): TracerLine | undefined {
  const t = text.trim();
  const first = t.match(/^(poll|gro|rx)\b/)?.[1] as TracerLine['point'] | undefined;
  if (!first) return undefined;
  if (first === 'poll') {
    const [w, b] = [num(t, 'work'), num(t, 'budget')];
    return w !== undefined && b !== undefined ? { point: first, text: t, work: Number(w), budget: Number(b) } : undefined;
  }
  const s = t.match(/\bskb\s*[=: ]\s*(?:0x)?([0-9a-fA-F]{12,16})\b/)?.[1];
  const l = num(t, 'len');
  return s && l !== undefined ? { point: first, text: t, skb: addrKey(s), len: Number(l) } : undefined;
}

/** A key for matching a tracer line with a record event: the point and its figures. */
export function eventKey(e: Pick<RecordEvent, 'point' | 'skb' | 'len' | 'work' | 'budget'>): string {
  return e.point === 'poll' ? `poll work=${e.work} budget=${e.budget}` : `${e.point} skb=${e.skb} len=${e.len}`;
}

/** Multiset difference: the items of `a` (by key) that `b` lacks, one for one. */
export function missingFrom<A, B>(a: readonly A[], b: readonly B[], keyA: (x: A) => string, keyB: (x: B) => string): A[] {
  const left = new Map<string, number>();
  for (const x of b) left.set(keyB(x), (left.get(keyB(x)) ?? 0) + 1);
  const out: A[] = [];
  for (const x of a) {
    const k = keyA(x);
    const n = left.get(k) ?? 0;
    if (n > 0) left.set(k, n - 1);
    else out.push(x);
  }
  return out;
}

/**
 * NET_RX runs of one CPU that contain an event: for each event, the last NET_RX softirq_entry/exit of its CPU
 * before it (the record's order). Returns, per event, the entry's counter value (undefined: not inside one).
 */
export function insideNetRx(events: readonly RecordEvent[], record: readonly RecordEvent[]): (number | undefined)[] {
  const soft = record.filter((e) => e.point === 'softirq_entry' || e.point === 'softirq_exit');
  return events.map((e) => {
    let last: RecordEvent | undefined;
    for (const s of soft) {
      if (s.ts > e.ts) break;
      if (s.cpu === e.cpu) last = s;
    }
    return last?.point === 'softirq_entry' ? last.ts : undefined;
  });
}
