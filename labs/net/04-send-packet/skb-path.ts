/**
 * The path of an skb through the stack's net tracepoints (net:net_dev_queue,
 * net:netif_rx, net:net_dev_xmit, net:netif_receive_skb), two ways:
 *
 * - the kernel's record (a private tracefs instance, `hash-ptr` off so the
 *   skb addresses are real): `parseNetEvent()` reads its lines,
 *   `datagramPaths()` cuts the record of a veth pair into one path per
 *   datagram sent, in the order they were sent;
 * - a student tracer's lines, loosely: one line per event naming the
 *   tracepoint, the skb address (16 hex digits, with or without 0x), the
 *   length (`len=142`, `len 142`, `length: 142`, `142 bytes`) and the device.
 *   `parseTracerLine()` reads one, `classifyLines()` says which datagram's
 *   event each line is (or none).
 *
 * The kernel reuses a freed skb's address for the next one at once (measured:
 * a unix-socket skb, then a lab datagram, at the same address within 10 ms),
 * so an address alone does not name a datagram: the address and the length
 * together do, and where two datagrams share both (the spec sends one decoy
 * of the same length as a lab's datagram) their order does: the tracer's
 * n-th line for one event key is the kernel's n-th event with that key.
 */
import type { TraceEvent } from '../../../helpers/kernel/tracefs.js';

/** The net tracepoints a datagram passes on a veth pair, in the kernel's order. */
export const NET_POINTS = ['net_dev_queue', 'netif_rx', 'net_dev_xmit', 'netif_receive_skb'] as const;
export type NetPoint = (typeof NET_POINTS)[number];

export interface NetEvent {
  readonly point: NetPoint;
  readonly dev: string;
  /** 16 lowercase hex digits, no 0x. */
  readonly skb: string;
  readonly len: number;
  /** Position in the kernel's record. */
  readonly index: number;
  /** The CPU it happened on (the record's column), where the record says. */
  readonly cpu?: number;
}

/** Normalise an skb address: lowercase, no 0x, 16 digits. */
export function skbKey(addr: string): string {
  return addr.toLowerCase().replace(/^0x/, '').padStart(16, '0');
}

/**
 * One event of the kernel's record (`dev=… skbaddr=… len=…[ rc=…]`), or
 * undefined for other events. `dev`: the device the record was filtered to,
 * which wins over the printed name (see deviceRecords()).
 */
export function parseNetEvent(e: TraceEvent, index: number, dev?: string): NetEvent | undefined {
  if (!(NET_POINTS as readonly string[]).includes(e.event)) return undefined;
  const m = e.body.match(/dev=(\S*) skbaddr=(?:0x)?([0-9a-fA-F]+) len=(\d+)/);
  const name = dev ?? m?.[1];
  return m && name ? { point: e.event as NetPoint, dev: name, skb: skbKey(m[2]!), len: Number(m[3]), index, ...(e.cpu === undefined ? {} : { cpu: e.cpu }) } : undefined;
}

/**
 * The kernel's record of several devices as one list in the kernel's order:
 * each device's events come from its own tracefs instance, filtered to that
 * device (`name == "<dev>"`), and the instances share trace_clock "counter"
 * (one atomic counter for every CPU and instance), which orders them exactly.
 * The device of an event is its instance's, not the printed `dev=`: Debian
 * 12's 6.1.192 prints these events with an empty `dev=` although the record
 * holds the name (measured: the filter on the name selects, bpftrace's
 * `str(args->name)` reads it, the trace file shows `dev= skbaddr=…`).
 */
export function deviceRecords(records: readonly { readonly dev: string; readonly events: readonly TraceEvent[] }[]): NetEvent[] {
  const all = records.flatMap((r) => r.events.filter((e) => (NET_POINTS as readonly string[]).includes(e.event)).map((e) => ({ dev: r.dev, e })));
  all.sort((a, b) => a.e.ts - b.e.ts);
  return all.flatMap(({ dev, e }, i) => parseNetEvent(e, i, dev) ?? []);
}

/** One datagram as the spec sent it: from which end, the length of its UDP payload. */
export interface Datagram {
  readonly label: string;
  /** The sender's veth end and its peer. */
  readonly from: string;
  readonly to: string;
  readonly payload: number;
  /** Bytes of IP options after the 20-byte IPv4 header (absent: none). */
  readonly ipOptions?: number;
  /** One the tracer must follow (a UDP datagram to the lab's port), not a decoy. */
  readonly lab?: boolean;
  /**
   * Sent from another thread at the same time as others (not in the order of `sent`): each of its
   * `from` end's net_dev_queue events of its length is one such datagram (datagramPaths()).
   */
  readonly concurrent?: boolean;
  /** For a concurrent one: its payloads are `payload` … `payload + spread - 1` (1: `payload` only). */
  readonly spread?: number;
  /**
   * A frame sent past the qdisc (a packet socket with PACKET_QDISC_BYPASS: dev_direct_xmit() calls the driver itself),
   * as long as a UDP datagram of `payload` bytes: no net_dev_queue nor net_dev_xmit, its path starts at `to`'s netif_rx.
   */
  readonly bypass?: boolean;
}

/** Is `e` (a net_dev_queue event) one of the concurrent datagrams `d` stands for? */
export function isConcurrent(d: Datagram, e: NetEvent): boolean {
  return d.from === e.dev && e.len >= queueLen(d) && e.len < queueLen(d) + (d.spread ?? 1);
}

/** The length net_dev_queue reports for a datagram: the whole frame (payload, UDP, IPv4 and its options, Ethernet). */
export function queueLen(d: Datagram): number {
  return d.payload + 8 + 20 + (d.ipOptions ?? 0) + 14;
}

export interface DatagramPath {
  readonly datagram: Datagram;
  /** The events of its skb, by tracepoint (absent: the kernel did not record it). */
  readonly events: Partial<Record<NetPoint, NetEvent>>;
}

/**
 * Cut the record into one path per datagram. Datagrams sent from one end are
 * that end's net_dev_queue events in order (the lab's veths carry nothing
 * else: static neighbours, no IPv6), but for the `concurrent` ones: each of
 * their end's queue events of their length is one of them, wherever it falls
 * (their paths come last, in the kernel's order), and the `bypass` ones: the
 * netif_rx events on their peer that no other path has, in order, each the
 * first such of its length after the one before (no event: an empty path).
 * Each path continues with the first later event of the same skb at each
 * further tracepoint on the right device (an address is only reused once its
 * skb is freed, after its last event). Throws when the queue events do not
 * line up with what was sent.
 */
export function datagramPaths(events: readonly NetEvent[], sent: readonly Datagram[], concurrent: readonly Datagram[] = []): DatagramPath[] {
  const queued = new Map<string, NetEvent[]>();
  const raced: { datagram: Datagram; q: NetEvent }[] = [];
  for (const e of events) {
    if (e.point !== 'net_dev_queue') continue;
    const c = concurrent.find((d) => isConcurrent(d, e));
    if (c) raced.push({ datagram: { ...c, payload: c.payload + e.len - queueLen(c), spread: undefined }, q: e });
    else queued.set(e.dev, [...(queued.get(e.dev) ?? []), e]);
  }
  const seen = new Map<string, number>();
  const path = (d: Datagram, q: NetEvent): DatagramPath => {
    const later = (point: NetPoint, dev: string) => events.find((e) => e.index > q.index && e.point === point && e.skb === q.skb && e.dev === dev);
    if (d.bypass) return { datagram: d, events: { netif_rx: q, netif_receive_skb: later('netif_receive_skb', d.to) } };
    return {
      datagram: d,
      events: { net_dev_queue: q, netif_rx: later('netif_rx', d.to), net_dev_xmit: later('net_dev_xmit', d.from), netif_receive_skb: later('netif_receive_skb', d.to) },
    };
  };
  const queuedPaths = sent.map((d) => {
    if (d.bypass) return undefined;
    const n = seen.get(d.from) ?? 0;
    seen.set(d.from, n + 1);
    const q = queued.get(d.from)?.[n];
    if (!q) throw new Error(`the kernel recorded ${queued.get(d.from)?.length ?? 0} net_dev_queue events on ${d.from}${concurrent.length ? ' (besides the concurrent decoys\')' : ''}; datagram ${d.label} is number ${n + 1} sent from there`);
    return path(d, q);
  });
  const racedPaths = raced.map(({ datagram, q }) => path(datagram, q));
  // The netif_rx events no queued datagram had: the bypassing frames', in the order sent.
  const had = new Set([...queuedPaths, ...racedPaths].map((p) => p?.events.netif_rx));
  let after = -1;
  const all = sent.map((d, i) => {
    if (!d.bypass) return queuedPaths[i]!;
    const rx = events.find((e) => e.index > after && e.point === 'netif_rx' && e.dev === d.to && e.len === queueLen(d) - 14 && !had.has(e));
    if (!rx) return { datagram: d, events: {} };
    after = rx.index;
    return path(d, rx);
  });
  return all.concat(racedPaths);
}

/** Another datagram's event that the kernel recorded while a lab's datagram was on its way. */
export interface Interleaved {
  /** The lab's datagram. */
  readonly path: DatagramPath;
  /** The other datagram and its event, between the lab's datagram's first and last event. */
  readonly other: DatagramPath;
  readonly event: NetEvent;
}

/**
 * The events of other datagrams that lie, in the kernel's record, between a
 * lab's datagram's net_dev_queue and its netif_receive_skb: there, a tracer
 * that follows "the datagram in flight" rather than an skb cannot tell them apart.
 */
export function interleaved(paths: readonly DatagramPath[]): Interleaved[] {
  return paths.filter((p) => p.datagram.lab && p.events.net_dev_queue && p.events.netif_receive_skb).flatMap((p) => {
    const [a, b] = [p.events.net_dev_queue!.index, p.events.netif_receive_skb!.index];
    return paths.filter((o) => o !== p).flatMap((o) => NET_POINTS.flatMap((pt) => {
      const e = o.events[pt];
      return e && e.index > a && e.index < b ? [{ path: p, other: o, event: e }] : [];
    }));
  }).sort((x, y) => x.event.index - y.event.index);
}

/** A decoy whose skb got the address a lab's datagram had, after the kernel was done with that one. */
export interface Reuse {
  /** The lab's datagram that had the address last before the decoy. */
  readonly lab: DatagramPath;
  readonly decoy: DatagramPath;
}

/**
 * The decoys (any datagram not the lab's) whose net_dev_queue names the skb
 * address of an earlier lab's datagram, the last one with that address
 * before it, whose netif_receive_skb the kernel recorded before the decoy's
 * net_dev_queue: a tracer that forgets a followed skb at its last event
 * ignores such a decoy, one that never forgets follows it.
 */
export function reusedAddresses(paths: readonly DatagramPath[]): Reuse[] {
  return paths.filter((d) => !d.datagram.lab && firstEvent(d)).flatMap((decoy) => {
    const q = firstEvent(decoy)!;
    const lab = paths
      .filter((l) => l.datagram.lab && l.events.net_dev_queue?.skb === q.skb && l.events.net_dev_queue.index < q.index)
      .sort((a, b) => b.events.net_dev_queue!.index - a.events.net_dev_queue!.index)[0];
    const last = lab?.events.netif_receive_skb;
    return lab && last && last.index < q.index ? [{ lab, decoy }] : [];
  }).sort((a, b) => firstEvent(a.decoy)!.index - firstEvent(b.decoy)!.index);
}

/** A datagram's first event: its net_dev_queue, or a bypassing frame's netif_rx. */
export function firstEvent(p: DatagramPath): NetEvent | undefined {
  return p.events.net_dev_queue ?? (p.datagram.bypass ? p.events.netif_rx : undefined);
}

/**
 * The reuses of a lab's datagram's address by a frame that passed no net_dev_queue (`bypass`), with no other skb
 * queued at that address on the lab's devices in between: a tracer that decides at every net_dev_queue whether to
 * follow an address, and never forgets, still follows it there.
 */
export function unqueuedReuses(paths: readonly DatagramPath[]): Reuse[] {
  return reusedAddresses(paths).filter((x) => x.decoy.datagram.bypass && !paths.some((o) => {
    const q = o.events.net_dev_queue;
    return q && q.skb === x.lab.events.net_dev_queue!.skb && q.index > x.lab.events.net_dev_queue!.index && q.index < x.decoy.events.netif_rx!.index;
  }));
}

/** Is the decoy as long as the lab's datagram whose address it got (a tracer that checks the length it queued cannot tell them apart)? */
export function sameLength(x: Reuse): boolean {
  return queueLen(x.decoy.datagram) === queueLen(x.lab.datagram);
}

/** What a tracer's line says about one event. */
export interface TracerLine {
  readonly line: string;
  /** Position among the tracer's lines. */
  readonly index: number;
  readonly point: NetPoint;
  readonly skb?: string;
  readonly len?: number;
  /** One of the devices the caller named, if the line names it. */
  readonly dev?: string;
}

const POINT_RE = new RegExp(`(?<![\\w])(${NET_POINTS.join('|')})(?![\\w])`, 'g');
const ADDR_RE = /(?<![0-9a-fA-FxX])(?:0x)?([0-9a-fA-F]{16})(?![0-9a-fA-F])/;

/** Every skb address (16 hex digits, with or without 0x) a line names, normalised. */
export function addressesIn(line: string): string[] {
  return [...line.matchAll(new RegExp(ADDR_RE.source, 'g'))].map((m) => skbKey(m[1]!));
}
const LEN_RE = /\b(?:len|length)\s*[=:]?\s*(\d+)\b|\b(\d+)\s*(?:bytes|B)\b/;

/**
 * One tracer line naming exactly one of the net tracepoints (a line naming
 * none — a banner — or several — a summary — is not an event line).
 */
export function parseTracerLine(line: string, index: number, devs: readonly string[]): TracerLine | undefined {
  const points = [...new Set([...line.matchAll(POINT_RE)].map((m) => m[1] as NetPoint))];
  if (points.length !== 1) return undefined;
  const addr = line.match(ADDR_RE);
  const len = line.match(LEN_RE);
  const dev = devs.find((d) => new RegExp(`(?<![\\w-])${d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`).test(line));
  return { line, index, point: points[0]!, skb: addr ? skbKey(addr[1]!) : undefined, len: len ? Number(len[1] ?? len[2]) : undefined, dev };
}

export interface Classified {
  readonly line: TracerLine;
  /** The datagram whose event the line reports (undefined: none of the lab's). */
  readonly path?: DatagramPath;
  readonly event?: NetEvent;
}

/**
 * Which datagram's event each line reports: the event at the line's
 * tracepoint with the line's skb address (and device, when the line names
 * one) and length. When several datagrams' events fit (the slab reused the
 * address, maybe for a datagram of the same length), lines are taken in
 * order: each for the earliest fitting event no earlier line took. A line
 * with the right tracepoint, address and device but another length is taken
 * for an event of that address (its length is judged separately): of the
 * datagram the tracer's last line with that address was, if that one's event
 * is still free (a tracer follows one skb: its net_dev_queue line says whose
 * the next lines are, even when another datagram had the address before),
 * else the earliest free one; a line without an address is nobody's.
 */
export function classifyLines(lines: readonly TracerLine[], paths: readonly DatagramPath[]): Classified[] {
  const taken = new Set<NetEvent>();
  const lastOf = new Map<string, DatagramPath>();
  const take = (line: TracerLine, f: { path: DatagramPath; event: NetEvent }): Classified => {
    taken.add(f.event);
    lastOf.set(line.skb!, f.path);
    return { line, ...f };
  };
  return lines.map((line) => {
    if (!line.skb) return { line };
    const fits = paths.flatMap((p) => {
      const e = p.events[line.point];
      return e && e.skb === line.skb && (line.dev === undefined || line.dev === e.dev) ? [{ path: p, event: e }] : [];
    }).sort((a, b) => a.event.index - b.event.index);
    const exact = fits.filter((f) => f.event.len === line.len);
    const free = (l: typeof fits) => l.find((f) => !taken.has(f.event));
    if (exact.length > 0) {
      const f = free(exact) ?? (exact.length === 1 ? exact[0] : undefined);
      return f ? take(line, f) : { line };
    }
    const f = line.dev !== undefined ? free(fits.filter((x) => x.path === lastOf.get(line.skb!))) ?? free(fits) : undefined;
    return f ? take(line, f) : { line };
  });
}

/** `net_dev_queue dev=x skb=… len=…` for messages. */
export function describeEvent(e: NetEvent | undefined): string {
  return e ? `${e.point} dev=${e.dev} skbaddr=0x${e.skb} len=${e.len}` : '(not recorded)';
}
