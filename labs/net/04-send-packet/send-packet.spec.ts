/**
 * Net Lab 4 — sending a packet: one UDP datagram followed through the stack.
 *
 * The student's bpftrace script (c/net/04-send-packet/sendpath.bt, run with
 * the lab's port as $1) prints one line per net tracepoint the datagram's
 * skb passes. The spec sends, between two lab namespaces joined by a veth
 * pair, that datagram (a random port, a random payload length) among decoys
 * on other ports, and the receiver answers it from the lab's port (a decoy
 * the other way). The kernel is the judge: the spec records the same
 * tracepoints in private tracefs instances, one per veth end (skb addresses
 * unhashed, filtered to that device, ordered by one shared counter), and
 * checks each of the script's lines against the event it claims to be
 * (helpers/kernel/skb-path.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { requires } from '../../../helpers/harness/requires.js';
import { lostEvents, startBpftrace } from '../../../helpers/kernel/bpftrace.js';
import { twoHosts, type TwoHosts } from '../../../helpers/kernel/netns.js';
import {
  classifyLines, datagramPaths, describeEvent, deviceRecords, parseTracerLine,
  type Classified, type Datagram, type DatagramPath, type NetEvent, type NetPoint, type TracerLine,
} from '../../../helpers/kernel/skb-path.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';

/**
 * The lab's port (random: a stale run or a hard-coded port cannot answer); the decoys go to the next two.
 * Below the ephemeral range (32768–60999 in a new namespace), so the sender's own source port is never one of them.
 */
const PORT = 10_000 + Math.floor(Math.random() * 20_000);
/** Header lengths (include/uapi/linux/if_ether.h ETH_HLEN, struct iphdr without options, struct udphdr). */
const ETH = 14;
const IPV4 = 20;
const UDP = 8;
/** Milliseconds between two datagrams: each one's path is over long before the next is sent. */
const GAP_MS = 30;
const EVENTS = ['net/net_dev_queue', 'net/netif_rx', 'net/net_dev_xmit', 'net/netif_receive_skb'];
/** The tracepoints every correct tracer prints for the datagram, in the kernel's order; netif_rx (between queue and xmit on a veth) is welcome, not required. */
const REQUIRED: readonly NetPoint[] = ['net_dev_queue', 'net_dev_xmit', 'netif_receive_skb'];

/** Distinct random payload lengths in [64, 1200], none 100 (the README's example): every datagram's skb is told apart by its length. */
function payloads(n: number): number[] {
  const out = new Set<number>();
  while (out.size < n) {
    const p = 64 + Math.floor(Math.random() * 1137);
    if (p !== 100) out.add(p);
  }
  return [...out];
}

interface Run {
  readonly hosts: TwoHosts;
  readonly target: DatagramPath;
  readonly paths: DatagramPath[];
  readonly record: NetEvent[];
  readonly recordLost: boolean;
  readonly output: string[];
  readonly lines: Classified[];
  readonly lost: number;
}

function expectedLen(d: Datagram, point: NetPoint): number {
  // The sender's device sees the whole frame; the peer's eth_type_trans() (in veth's __dev_forward_skb) pulls the Ethernet header before netif_rx.
  return d.payload + UDP + IPV4 + (point === 'net_dev_queue' || point === 'net_dev_xmit' ? ETH : 0);
}

function kernelPath(p: DatagramPath): string {
  return (['net_dev_queue', 'netif_rx', 'net_dev_xmit', 'netif_receive_skb'] as const).map((pt) => `  ${describeEvent(p.events[pt])}`).join('\n');
}

function evidence(r: Run, what: string): string {
  const d = r.target.datagram;
  return `${what}\nthe lab's datagram: ${d.payload} bytes of payload to port ${PORT}, ${d.from} -> ${d.to}; the kernel recorded:\n${kernelPath(r.target)}\n`
    + `your tracer printed ${r.output.length} lines${r.lost ? ` (bpftrace lost ${r.lost} events)` : ''}; first lines:\n${r.output.slice(0, 12).join('\n') || '(none)'}`;
}

function targetLines(r: Run, point?: NetPoint): Classified[] {
  return r.lines.filter((c) => c.path === r.target && (point === undefined || c.line.point === point));
}

describe('Net Lab 4 — sending a packet: one UDP datagram through net_dev_queue, net_dev_xmit and the peer\'s netif_receive_skb', () => {
  requires('root', 'cc', 'bpftrace', 'tracefs', 'iproute2');
  let r: Run;

  beforeAll(async () => {
    const peer = (await buildProgram({ src: join(REFERENCE_SRC, 'net/udp_peer.c') })).path;
    // Static neighbours and no IPv6: the lab's veths carry only the datagrams below (no ARP, no router solicitations).
    const hosts = await twoHosts({ staticNeighbours: true, disableIpv6: true, ips: ['10.199.4.1', '10.199.4.2'] });
    const [left, right] = [hosts.left.ifname, hosts.right.ifname];
    const [pa, pt, pb, pc, pr] = payloads(5) as [number, number, number, number, number];
    const fwd = (port: number, payload: number) => ({ port, label: port === PORT ? `the lab's datagram to port ${port}` : `decoy to port ${port}`, from: left, to: right, payload });
    // Decoys on other ports before and after the lab's datagram, and the receiver's answer from the lab's port the other way.
    const sent = [fwd(PORT + 1, pa), fwd(PORT, pt), fwd(PORT + 2, pb), fwd(PORT + 1, pc)];
    const reply: Datagram = { label: `the answer from port ${PORT} (the other way)`, from: right, to: left, payload: pr };

    // One instance per veth end, filtered to it (the device of an event is its instance's: see deviceRecords()),
    // real skb addresses (as bpftrace's %p prints them), one shared counter as the clock.
    const traces = [left, right].map((dev, i) => {
      const t = makeTraceInstance(EVENTS, { tag: `skb${i}`, enable: false, clock: 'counter', bufferKb: 1024 });
      if (!t) throw new Error(`no tracefs instances or one of ${EVENTS.join(', ')} missing in /sys/kernel/tracing/events`);
      writeFileSync(join(t.dir, 'options/hash-ptr'), '0');
      for (const e of EVENTS) writeFileSync(join(t.dir, 'events', e, 'filter'), `name == "${dev}"`);
      return { dev, t };
    });
    const trace = {
      setEnabled: (on: boolean) => traces.forEach((x) => x.t.setEnabled(on)),
      read: () => {
        const recs = traces.map((x) => ({ dev: x.dev, ...x.t.read() }));
        return { record: deviceRecords(recs), lost: recs.some((x) => x.lost) };
      },
    };

    const bt = await startBpftrace(labSource('net/04-send-packet/sendpath.bt'), { ready: new RegExp(`\\b${PORT}\\b`), scriptArgs: [String(PORT)] });
    trace.setEnabled(true);
    const receiver = hosts.right.ns.background(peer, ['recv', String(sent.length), String(pr), String(PORT), String(PORT + 1), String(PORT + 2)], { timeoutMs: 60_000 });
    await receiver.waitFor(/^listening$/, `udp_peer to bind ports ${PORT}..${PORT + 2}`, 20_000);
    const send = await hosts.left.ns.exec(peer, ['send', hosts.right.ip, String(GAP_MS), ...sent.map((d) => `${d.port}:${d.payload}`)], { timeoutMs: 30_000 });
    const got = await receiver.exited;
    trace.setEnabled(false);
    const rec = trace.read();
    const record = rec.record;
    let paths: DatagramPath[];
    try {
      paths = datagramPaths(record, [...sent, reply]);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nsender: ${send.stdout}\nreceiver: ${got.stdout}${got.stderr}\nkernel record:\n${record.map(describeEvent).join('\n')}`);
    }
    const target = paths[1]!;
    const skb = target.events.net_dev_queue!.skb;
    // Wait for the tracer's line of the last event of the path (or give up after 3 s: a wrong tracer may never print it).
    await bt.settle((l) => l.some((x) => /netif_receive_skb/.test(x) && x.toLowerCase().includes(skb)), 3_000);
    await new Promise((res) => setTimeout(res, 300));
    await bt.stop();
    const all = bt.lines().filter((l) => !/^Attaching \d+ probe/.test(l));
    const parsed = all.flatMap((l, i) => parseTracerLine(l, i, [left, right]) ?? []);
    r = { hosts, target, paths, record, recordLost: rec.lost, output: all, lines: classifyLines(parsed, paths), lost: lostEvents(bt.process.output()) };
  });

  it('control: the kernel carries the datagram as one skb from net_dev_queue on the sender\'s veth to netif_receive_skb on the peer', (ctx) => {
    const msg = `kernel record (${r.record.length} events on the lab's devices${r.recordLost ? ', ring buffer overflowed' : ''}):\n${r.paths.map((p) => `${p.datagram.label}, ${p.datagram.payload} bytes:\n${kernelPath(p)}`).join('\n')}`;
    for (const p of r.paths) {
      for (const pt of ['net_dev_queue', 'netif_rx', 'net_dev_xmit', 'netif_receive_skb'] as const) {
        expect(p.events[pt]?.len, `${p.datagram.label} at ${pt}\n${msg}`).toBe(expectedLen(p.datagram, pt));
      }
      const order = (['net_dev_queue', 'netif_rx', 'net_dev_xmit', 'netif_receive_skb'] as const).map((pt) => p.events[pt]!.index);
      expect(order, `${p.datagram.label}: order of the events in the record\n${msg}`).toEqual([...order].sort((a, b) => a - b));
    }
    const t = r.target.events;
    recordMetric(ctx, { name: 'payload', value: r.target.datagram.payload, unit: 'B', group: 'the lab\'s datagram' });
    recordMetric(ctx, { name: 'len at net_dev_queue', value: t.net_dev_queue!.len, unit: 'B', group: 'the lab\'s datagram' });
    recordMetric(ctx, { name: 'len at netif_receive_skb', value: t.netif_receive_skb!.len, unit: 'B', group: 'the lab\'s datagram' });
  });

  it('follows the lab\'s datagram: net_dev_queue and net_dev_xmit on the sender\'s veth, then netif_receive_skb on the peer, the same skb, in that order', () => {
    const first = (pt: NetPoint) => targetLines(r, pt).find((c) => c.line.dev !== undefined);
    const missing = REQUIRED.filter((pt) => !first(pt));
    const near = missing.map((pt) => {
      const e = r.target.events[pt]!;
      const same = r.output.filter((l) => l.toLowerCase().includes(e.skb) && l.includes(pt));
      return `no line of yours is ${describeEvent(e)}${same.length ? ` (lines with that tracepoint and address: ${same.join(' | ')}; they must name the device ${e.dev})` : ''}`;
    });
    expect(missing, evidence(r, near.join('\n'))).toEqual([]);
    const at = REQUIRED.map((pt) => first(pt)!.line.index);
    expect(at, evidence(r, `your lines for the datagram come in the order ${REQUIRED.map((pt, i) => `${pt} (line ${at[i]! + 1})`).join(', ')}; the kernel passed them queue -> xmit -> receive`))
      .toEqual([...at].sort((a, b) => a - b));
    const rx = first('netif_rx');
    if (rx) {
      expect(rx.line.index > at[0]! && rx.line.index < at[2]!, evidence(r, `your netif_rx line (line ${rx.line.index + 1}) must come between net_dev_queue and netif_receive_skb, as in the kernel`)).toBe(true);
    }
  });

  it('reports each event\'s length as the kernel saw it: payload + 8 (UDP) + 20 (IPv4), + 14 (Ethernet) on the sender\'s side, before the peer pulled the Ethernet header', () => {
    const mine = targetLines(r);
    expect(mine.length, evidence(r, 'none of your lines is an event of the lab\'s datagram: no length to judge')).toBeGreaterThan(0);
    const wrong = mine.filter((c) => c.line.len !== c.event!.len).map((c) => `line ${c.line.index + 1} "${c.line.line}": ${c.line.len === undefined ? 'no length (len=N)' : `len ${c.line.len}`}, but the kernel's ${c.line.point} reported len=${c.event!.len} = ${r.target.datagram.payload} + ${UDP} + ${IPV4}${c.event!.len === expectedLen(r.target.datagram, 'net_dev_queue') ? ` + ${ETH}` : ''}`);
    expect(wrong, evidence(r, wrong.join('\n'))).toEqual([]);
  });

  it('prints only that datagram: the decoys to other ports, the answer coming back from the lab\'s port and other devices\' packets are absent', () => {
    const mine = targetLines(r);
    expect(mine.length, evidence(r, 'none of your lines is an event of the lab\'s datagram')).toBeGreaterThan(0);
    const stray = r.lines.filter((c) => c.path !== r.target).map((c) => `line ${c.line.index + 1} "${c.line.line}": ${c.path ? `${c.path.datagram.label} (${c.path.datagram.payload} bytes)` : c.line.skb ? 'not an event of the lab\'s datagram on the lab\'s devices' : 'no skb address'}`);
    expect(stray, evidence(r, `${stray.length} of your event lines are not the lab's datagram:\n${stray.slice(0, 15).join('\n')}`)).toEqual([]);
  });
});
