/**
 * TCP state changes as the kernel reports them through the tracepoint
 * sock:inet_sock_set_state (the one bcc's tcpstates uses), and `ss -tan`'s
 * view of the same sockets. Pure parsers: the net labs run the student's
 * tracer and `ss`, this module turns their output into socket histories.
 *
 * The tracer's line format (labs/net/02-tcp-states/README.md):
 *   <time µs> <socket address> <saddr>:<sport> <daddr>:<dport> <OLD> -> <NEW>
 */

import { pagesRecords, parseTraceFormat, recordFields, type TraceFormat } from '../../helpers/kernel/ring-buffer.js';

/** include/net/tcp_states.h, without the TCP_ prefix (index = the kernel's number). */
export const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT',
  'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV', 'BOUND_INACTIVE'] as const;

export interface StateChange {
  readonly us: number;
  readonly sk: string;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly from: string;
  readonly to: string;
  /** The line as printed, for assertion messages. */
  readonly line: string;
}

const LINE = /^\s*(\d+)\s+(0x[0-9a-fA-F]+|[0-9a-fA-F]{8,})\s+([\d.]+):(\d+)\s+([\d.]+):(\d+)\s+([A-Z_0-9]+)\s*->\s*([A-Z_0-9]+)\s*$/;

/** Normalise a state name: "TCP_SYN_SENT" and "SYN_SENT" are the same state; "FIN_WAIT_1" is FIN_WAIT1. */
export function stateName(s: string): string {
  return s.replace(/^TCP_/, '').replace(/^FIN_WAIT_(\d)$/, 'FIN_WAIT$1');
}

/** One tracer line, or undefined if it is not a state change line. */
export function parseStateChange(line: string): StateChange | undefined {
  const m = line.match(LINE);
  if (!m) return undefined;
  const sk = m[2]!.toLowerCase();
  return {
    us: Number(m[1]), sk: sk.startsWith('0x') ? sk : `0x${sk}`,
    saddr: m[3]!, sport: Number(m[4]), daddr: m[5]!, dport: Number(m[6]),
    from: stateName(m[7]!), to: stateName(m[8]!), line: line.trim(),
  };
}

export function parseStateChanges(lines: readonly string[]): StateChange[] {
  return lines.flatMap((l) => { const c = parseStateChange(l); return c ? [c] : []; });
}

/** One socket's life: from its first state change to CLOSE (a socket address is reused after that). */
export interface SocketLife {
  readonly sk: string;
  /** Local and remote end as of the last change (the first change of a client has sport 0). */
  readonly local: { readonly addr: string; readonly port: number };
  readonly remote: { readonly addr: string; readonly port: number };
  /** The states in order: the first change's old state, then each new state. */
  readonly states: readonly string[];
  readonly changes: readonly StateChange[];
}

/**
 * Group changes into socket lives. A life starts at a change out of CLOSE
 * (socket(), connect(), listen()) or at LISTEN -> SYN_RECV (the child socket
 * a listener clones for a new connection, at a new address), and the kernel
 * reuses a freed socket's address for a later socket.
 */
export function socketLives(changes: readonly StateChange[]): SocketLife[] {
  const open = new Map<string, StateChange[]>();
  const done: StateChange[][] = [];
  // bpftrace prints each CPU's events in turn, so lines can come out of time order: follow them by their timestamps
  // (a stable sort: events with the same timestamp keep the order they were printed in).
  for (const c of [...changes].sort((a, b) => a.us - b.us)) {
    const starts = c.from === 'CLOSE' || (c.from === 'LISTEN' && c.to === 'SYN_RECV');
    const cur = open.get(c.sk);
    if (cur && starts) { done.push(cur); open.delete(c.sk); }
    const list = open.get(c.sk) ?? [];
    list.push(c);
    open.set(c.sk, list);
    if (c.to === 'CLOSE') { done.push(list); open.delete(c.sk); }
  }
  done.push(...open.values());
  return done.sort((a, b) => a[0]!.us - b[0]!.us).map((list) => {
    const last = list[list.length - 1]!;
    return {
      sk: last.sk,
      local: { addr: last.saddr, port: last.sport },
      remote: { addr: last.daddr, port: last.dport },
      states: [list[0]!.from, ...list.map((c) => c.to)],
      changes: list,
    };
  });
}

/** Microseconds from entering `from` to entering `to` in one life (undefined if either is missing). */
export function timeBetween(life: SocketLife, from: string, to: string): number | undefined {
  const a = life.changes.find((c) => c.to === from);
  const b = life.changes.find((c) => c.to === to);
  return a && b ? b.us - a.us : undefined;
}

export interface SsSocket {
  /** ss's state name (ESTAB, TIME-WAIT, LISTEN, SYN-SENT…). */
  readonly state: string;
  readonly local: { readonly addr: string; readonly port: number };
  readonly peer: { readonly addr: string; readonly port: number | '*' };
  readonly line: string;
}

function endpoint(s: string): { addr: string; port: number | '*' } {
  const i = s.lastIndexOf(':');
  const port = s.slice(i + 1);
  return { addr: s.slice(0, i).replace(/^\[|\]$/g, ''), port: port === '*' ? '*' : Number(port) };
}

/** `ss -tan` (iproute2): one entry per socket line after the header. */
export function parseSs(output: string): SsSocket[] {
  return output.split('\n').slice(1).flatMap((line) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) return [];
    const local = endpoint(f[3]!);
    return [{ state: f[0]!, local: { addr: local.addr, port: Number(local.port) }, peer: endpoint(f[4]!), line: line.trimEnd() }];
  });
}

/** ss's name for a tracepoint state (ss abbreviates ESTABLISHED and SYN_RECV, and uses dashes). */
export function ssStateName(state: string): string {
  const s = stateName(state);
  if (s === 'ESTABLISHED') return 'ESTAB';
  if (s === 'SYN_RECV') return 'SYN-RECV';
  if (s === 'CLOSE') return 'UNCONN';
  return s.replace(/_/g, '-').replace(/^FIN-WAIT(\d)$/, 'FIN-WAIT-$1');
}

/** IPPROTO_* of include/uapi/linux/in.h that sock:inet_sock_set_state reports (TCP, DCCP, SCTP, MPTCP). */
export const IPPROTO: Readonly<Record<string, number>> = { IPPROTO_TCP: 6, IPPROTO_DCCP: 33, IPPROTO_SCTP: 132, IPPROTO_MPTCP: 262 };

/** One state change in the kernel's own record of sock:inet_sock_set_state (a tracefs instance), without the socket address its format leaves out. */
export interface KernelStateChange {
  readonly protocol: number;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly from: string;
  readonly to: string;
  /** When the kernel recorded it (s, the record's trace_clock). */
  readonly ts?: number;
}

/**
 * The body of an inet_sock_set_state event as tracefs prints it:
 * `family=AF_INET protocol=IPPROTO_MPTCP sport=7001 dport=0 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=:: daddrv6=:: oldstate=TCP_CLOSE newstate=TCP_LISTEN`
 * (a protocol without a name in the kernel's table prints as a number).
 */
export function parseKernelStateChange(body: string): KernelStateChange | undefined {
  const m = body.match(/protocol=(\S+) sport=(\d+) dport=(\d+) saddr=([\d.]+) daddr=([\d.]+) .*oldstate=(\S+) newstate=(\S+)/);
  if (!m) return undefined;
  const protocol = IPPROTO[m[1]!] ?? Number(m[1]);
  const state = (s: string) => (/^\d+$/.test(s) ? TCP_STATES[Number(s)] ?? s : stateName(s));
  return { protocol, sport: Number(m[2]), dport: Number(m[3]), saddr: m[4]!, daddr: m[5]!, from: state(m[6]!), to: state(m[7]!) };
}

/** What a change is, without the socket: both ends and the two states. */
export const changeKey = (c: { saddr: string; sport: number; daddr: string; dport: number; from: string; to: string }) => `${c.saddr}:${c.sport} ${c.daddr}:${c.dport} ${c.from} -> ${c.to}`;

/**
 * The tracer's lines that can only be another protocol's sockets: for each change (both ends, both states) the
 * kernel recorded for a socket that is not TCP, the tracer may print at most as many lines as the kernel recorded
 * TCP changes of that kind; the lines beyond (the last ones) are the other protocol's. Only changes the kernel
 * recorded for another protocol are judged, so a record that starts late or a lost line cannot make a stray.
 */
export function otherProtocolLines(lines: readonly StateChange[], kernel: readonly KernelStateChange[]): { key: string; tcp: number; other: Map<number, number>; lines: StateChange[]; printed: StateChange[] }[] {
  const byKey = new Map<string, { tcp: number; other: Map<number, number> }>();
  for (const k of kernel) {
    const e = byKey.get(changeKey(k)) ?? { tcp: 0, other: new Map<number, number>() };
    if (k.protocol === IPPROTO.IPPROTO_TCP) e.tcp++;
    else e.other.set(k.protocol, (e.other.get(k.protocol) ?? 0) + 1);
    byKey.set(changeKey(k), e);
  }
  return [...byKey].filter(([, e]) => e.other.size > 0).flatMap(([key, e]) => {
    const printed = lines.filter((l) => changeKey(l) === key);
    return printed.length > e.tcp ? [{ key, tcp: e.tcp, other: e.other, lines: printed.slice(e.tcp), printed }] : [];
  });
}

/** One state change of the kernel's record with the socket it happened to (the `skaddr` field the print format leaves out). */
export interface KernelSocketChange {
  /** `skaddr`, the struct sock's address, as 0x-prefixed lower-case hex. */
  readonly sk: string;
  readonly protocol: number;
  readonly sport: number;
  readonly dport: number;
  readonly from: string;
  readonly to: string;
}

/**
 * One inet_sock_set_state record of the ring buffer (its fields where the event's format file puts them), or undefined
 * for another event's record.
 */
export function parseSocketChangeRecord(rec: Buffer, event: TraceFormat): KernelSocketChange | undefined {
  const f = recordFields(rec, event, ['skaddr', 'oldstate', 'newstate', 'sport', 'dport', 'protocol']);
  if (!f) return undefined;
  const state = (n: bigint) => TCP_STATES[Number(n)] || String(n);
  return { sk: `0x${BigInt.asUintN(64, f.skaddr).toString(16)}`, protocol: Number(f.protocol), sport: Number(f.sport), dport: Number(f.dport), from: state(f.oldstate), to: state(f.newstate) };
}

/**
 * The kernel's record of sock:inet_sock_set_state with each change's socket, from the pages of a tracefs instance's
 * per_cpu/cpu<N>/trace_pipe_raw: the binary ring buffer holds every field of the event, skaddr among them, which the
 * text format leaves out (options/fields prints it as text only on recent kernels). `headerPage` is
 * events/header_page, `format` the event's format file. Little-endian machines (x86-64, arm64).
 */
export function parseRawSocketChanges(pages: readonly Buffer[], headerPage: string, format: string): KernelSocketChange[] {
  const event = parseTraceFormat(format);
  return pagesRecords(pages, headerPage).flatMap((r) => { const k = parseSocketChangeRecord(r, event); return k ? [k] : []; });
}
