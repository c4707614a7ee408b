/**
 * Net Lab 4's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`) to what each test asserts, with the message that shows
 * the evidence. Unit-tested in tests/lab-units/net/04-send-packet/judge.test.ts.
 */
import { describeEvent, NET_POINTS, type Classified, type Datagram, type DatagramPath, type NetPoint } from './skb-path.js';
import type { Run } from './experiment.js';

/** Header lengths (include/uapi/linux/if_ether.h ETH_HLEN, struct iphdr without options, struct udphdr). */
export const ETH = 14;
export const IPV4 = 20;
export const UDP = 8;
/** The tracepoints every correct tracer prints for the datagram, in the kernel's order; netif_rx (between queue and xmit on a veth) is welcome, not required. */
export const REQUIRED: readonly NetPoint[] = ['net_dev_queue', 'net_dev_xmit', 'netif_receive_skb'];

/** The skb's length at `point`: the sender's device sees the whole frame; the peer's eth_type_trans() (in veth's __dev_forward_skb) pulls the Ethernet header before netif_rx. */
export function expectedLen(d: Datagram, point: NetPoint): number {
  return d.payload + UDP + IPV4 + (point === 'net_dev_queue' || point === 'net_dev_xmit' ? ETH : 0);
}

export function kernelPath(p: DatagramPath): string {
  return NET_POINTS.map((pt) => `  ${describeEvent(p.events[pt])}`).join('\n');
}

/** A failure's message: what is wrong, the lab's datagram, the kernel's path and the tracer's first lines. */
export function evidence(r: Run, port: number, what: string): string {
  const d = r.target.datagram;
  return `${what}\nthe lab's datagram: ${d.payload} bytes of payload to port ${port}, ${d.from} -> ${d.to}; the kernel recorded:\n${kernelPath(r.target)}\n`
    + `your tracer printed ${r.output.length} lines${r.lost ? ` (bpftrace lost ${r.lost} events)` : ''}; first lines:\n${r.output.slice(0, 12).join('\n') || '(none)'}`;
}

/** The tracer's lines that are events of the lab's datagram (at `point`). */
export function targetLines(r: Run, point?: NetPoint): Classified[] {
  return r.lines.filter((c) => c.path === r.target && (point === undefined || c.line.point === point));
}

/** The kernel's own record, datagram by datagram: each event's length and their order (the control). */
export function kernelRecord(r: Run) {
  const msg = `kernel record (${r.record.length} events on the lab's devices${r.recordLost ? ', ring buffer overflowed' : ''}):\n${r.paths.map((p) => `${p.datagram.label}, ${p.datagram.payload} bytes:\n${kernelPath(p)}`).join('\n')}`;
  return r.paths.map((p) => ({
    lengths: NET_POINTS.map((pt) => ({ len: p.events[pt]?.len, expected: expectedLen(p.datagram, pt), message: `${p.datagram.label} at ${pt}\n${msg}` })),
    // Read once the lengths hold: every event is there.
    order: () => {
      const order = NET_POINTS.map((pt) => p.events[pt]!.index);
      return { order, sorted: [...order].sort((a, b) => a - b), message: `${p.datagram.label}: order of the events in the record\n${msg}` };
    },
  }));
}

/** The tracer's lines for the lab's datagram: which required tracepoints have none, then their order. */
export function followed(r: Run, port: number) {
  const first = (pt: NetPoint) => targetLines(r, pt).find((c) => c.line.dev !== undefined);
  const missing = REQUIRED.filter((pt) => !first(pt));
  const near = missing.map((pt) => {
    const e = r.target.events[pt]!;
    const same = r.output.filter((l) => l.toLowerCase().includes(e.skb) && l.includes(pt));
    return `no line of yours is ${describeEvent(e)}${same.length ? ` (lines with that tracepoint and address: ${same.join(' | ')}; they must name the device ${e.dev})` : ''}`;
  });
  return {
    missing,
    missingMessage: evidence(r, port, near.join('\n')),
    // Read once nothing is missing.
    order: () => {
      const at = REQUIRED.map((pt) => first(pt)!.line.index);
      const rx = first('netif_rx');
      return {
        at,
        sorted: [...at].sort((a, b) => a - b),
        message: evidence(r, port, `your lines for the datagram come in the order ${REQUIRED.map((pt, i) => `${pt} (line ${at[i]! + 1})`).join(', ')}; the kernel passed them queue -> xmit -> receive`),
        rx: rx && {
          between: rx.line.index > at[0]! && rx.line.index < at[2]!,
          message: evidence(r, port, `your netif_rx line (line ${rx.line.index + 1}) must come between net_dev_queue and netif_receive_skb, as in the kernel`),
        },
      };
    },
  };
}

/** The lengths the tracer printed for the lab's datagram against the kernel's. */
export function lengths(r: Run, port: number) {
  const mine = targetLines(r);
  const wrong = mine.filter((c) => c.line.len !== c.event!.len).map((c) => `line ${c.line.index + 1} "${c.line.line}": ${c.line.len === undefined ? 'no length (len=N)' : `len ${c.line.len}`}, but the kernel's ${c.line.point} reported len=${c.event!.len} = ${r.target.datagram.payload} + ${UDP} + ${IPV4}${c.event!.len === expectedLen(r.target.datagram, 'net_dev_queue') ? ` + ${ETH}` : ''}`);
  return {
    lines: mine.length,
    noneMessage: evidence(r, port, 'none of your lines is an event of the lab\'s datagram: no length to judge'),
    wrong,
    wrongMessage: evidence(r, port, wrong.join('\n')),
  };
}

/** The tracer's event lines that are not the lab's datagram. */
export function strays(r: Run, port: number) {
  const stray = r.lines.filter((c) => c.path !== r.target).map((c) => `line ${c.line.index + 1} "${c.line.line}": ${c.path ? `${c.path.datagram.label} (${c.path.datagram.payload} bytes)` : c.line.skb ? 'not an event of the lab\'s datagram on the lab\'s devices' : 'no skb address'}`);
  return {
    lines: targetLines(r).length,
    noneMessage: evidence(r, port, 'none of your lines is an event of the lab\'s datagram'),
    stray,
    strayMessage: evidence(r, port, `${stray.length} of your event lines are not the lab's datagram:\n${stray.slice(0, 15).join('\n')}`),
  };
}
