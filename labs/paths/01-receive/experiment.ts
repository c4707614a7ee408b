/**
 * Lab 8.1's experiment: two lab namespaces joined by two veth pairs. On both
 * pairs the sending end has TSO off (TCP's 64 KiB GSO skbs are cut into
 * MTU-sized segments on the sender, all handed to the wire in one go) and the
 * receiving end has GRO on (veth then runs NAPI: the segments wait in its
 * ring for a poll, which hands them to GRO, which merges them back).
 *
 * The student's tracer (rxpath.bt <port> <device>) runs while the spec sends,
 * in three phases on the lab's pair:
 *   A. decoys: a TCP connection to <port> + 1 (a few segments) from source
 *      port <port> and UDP datagrams to <port> (random lengths);
 *   B. the lab's TCP connection to <port>: <segments> MTU-sized segments
 *      (random) in one write, while a TCP connection to the same <port> runs
 *      on the other pair (another device) at the same time, and a short one
 *      to <port> on the lab's pair whose packets carry an IPv4 option (Router
 *      Alert: a 24-byte IPv4 header; GRO does not merge them). Both of the
 *      lab's pair are TCP to <port>: the tracer prints both;
 *   C. decoys again, as in A (the TCP one from an ephemeral port: A's is in
 *      TIME_WAIT).
 * The kernel's record: one tracefs instance per receiving end, filtered to it
 * (napi_poll, napi_gro_receive_entry, netif_receive_skb), the first also with
 * NET_RX's softirq_entry/exit on every CPU; skb addresses unhashed; one
 * shared counter as the clock, read after each phase, so the lab's
 * connection is exactly the lab device's gro/rx events of phase B.
 * /proc/softirqs is read around the window. No verdicts here.
 */
import { randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { waitUntilStill } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { lostEvents, startBpftrace } from '../../../helpers/kernel/bpftrace.js';
import { parseSoftirqs } from '../../../helpers/kernel/softirqs.js';
import { createVethPair, twoHosts, type VethEnd } from '../../../helpers/kernel/netns.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import { mergeRecords, parseTracerLine, type RecordEvent, type TracerLine } from './rx-path.js';

/** The lab's port (random, below the ephemeral range); phase A and C's TCP decoy goes to PORT + 1 (A's from PORT). */
export const PORT = 20_000 + randomInt(0, 10_000);
/** MTU-sized segments of the lab's connection (random: a hard-coded count cannot pass). */
export const SEGMENTS = 40 + randomInt(0, 121);
/** Segments of the connection on the other device, at the same time. */
const OTHER_SEGMENTS = 30 + randomInt(0, 61);
/** Segments of the short connection to PORT on the lab's device whose packets carry an IPv4 option (24-byte header). */
const OPTION_SEGMENTS = 2 + randomInt(0, 5);
/** The veth MTU: a merged skb is longer than this. */
export const MTU = 1500;
const RECORD_EVENTS = ['napi/napi_poll', 'net/napi_gro_receive_entry', 'net/netif_receive_skb'];
const SOFTIRQ_EVENTS = ['irq/softirq_entry', 'irq/softirq_exit'];
const QUIET_MS = 300;

/** One decoy phase: a short TCP connection to PORT + 1, UDP datagrams to PORT. */
interface Decoys { readonly tcpSegments: number; readonly udp: number[] }

function decoys(): Decoys {
  const udp = new Set<number>();
  const n = 3 + randomInt(0, 6);
  while (udp.size < n) udp.add(100 + randomInt(0, 1201));
  return { tcpSegments: 2 + randomInt(0, 7), udp: [...udp] };
}

export interface Phase {
  readonly name: 'A' | 'B' | 'C';
  /** The record's counter after the phase's last packet: events with ts ≤ end (and > the previous end) are its own. */
  readonly end: number;
}

export interface Run {
  readonly port: number;
  readonly segments: number;
  /** The MSS of the lab's connection (the sender's TCP_MAXSEG after connect). */
  readonly mss: number;
  readonly rxDev: string;
  readonly otherDev: string;
  readonly phases: readonly Phase[];
  readonly decoys: { readonly A: Decoys; readonly C: Decoys; readonly otherSegments: number; readonly optionSegments: number };
  /** The kernel's record, both devices and NET_RX, in counter order. */
  readonly record: RecordEvent[];
  readonly recordLost: boolean;
  /** The tracer's output (without bpftrace's own lines) and its parsed lines. */
  readonly output: string[];
  readonly lines: TracerLine[];
  readonly lost: number;
  /** /proc/softirqs NET_RX (all CPUs) before the record was enabled and after it was disabled. */
  readonly netRx: { readonly before: number; readonly after: number };
}

const netRxTotal = () => parseSoftirqs(readFileSync('/proc/softirqs', 'utf8')).NET_RX ?? 0;

/** Send the three phases with the student's tracer and the kernel's record running; throws only when the setup fails. */
export async function receiveThroughTracer(): Promise<Run> {
  const peer = (await buildProgram({ src: join(import.meta.dirname, 'rx_peer.c') })).path;
  // Static neighbours and no IPv6: the lab's wires carry only what the spec sends (no ARP, no router solicitations).
  const hosts = await twoHosts({ staticNeighbours: true, disableIpv6: true, ips: ['10.199.81.1', '10.199.81.2'] });
  const [oSend, oRecv] = await createVethPair(hosts.left.ns, hosts.right.ns, { staticNeighbours: true, ips: ['10.199.82.1', '10.199.82.2'] });
  const feature = (end: VethEnd, what: string, on: string) => end.ns.exec(peer, ['feature', end.ifname, what, on], { timeoutMs: 10_000 });
  for (const [tx, rx] of [[hosts.left, hosts.right], [oSend, oRecv]] as const) {
    await feature(tx, 'tso', 'off');
    await feature(rx, 'gro', 'on');
  }
  const [rxDev, otherDev] = [hosts.right.ifname, oRecv.ifname];

  const instances = [
    { dev: rxDev, events: [...RECORD_EVENTS, ...SOFTIRQ_EVENTS], tag: 'rx' },
    { dev: otherDev, events: RECORD_EVENTS, tag: 'ot' },
  ].map(({ dev, events, tag }) => {
    const t = makeTraceInstance(events, { tag, enable: false, clock: 'counter', bufferKb: 2048 });
    if (!t) throw new Error(`no tracefs instances or one of ${events.join(', ')} missing in /sys/kernel/tracing/events`);
    writeFileSync(join(t.dir, 'options/hash-ptr'), '0');
    writeFileSync(join(t.dir, 'events/napi/napi_poll/filter'), `dev_name == "${dev}"`);
    for (const e of ['net/napi_gro_receive_entry', 'net/netif_receive_skb']) writeFileSync(join(t.dir, 'events', e, 'filter'), `name == "${dev}"`);
    for (const e of SOFTIRQ_EVENTS) if (events.includes(e)) writeFileSync(join(t.dir, 'events', e, 'filter'), 'vec == 3');
    return { dev, t };
  });
  const read = () => {
    const recs = instances.map((x) => ({ dev: x.dev, ...x.t.read() }));
    return { record: mergeRecords(recs), lost: recs.some((x) => x.lost) };
  };
  const lastTs = () => read().record.at(-1)?.ts ?? 0;
  // Wait until the record stops growing: the phase's last packets (FIN, the last ACK) are in.
  const settleRecord = async () => {
    await waitUntilStill('the kernel\'s record to settle', () => read().record.length, 100, { timeoutMs: 3_000, intervalMs: 20 });
    return lastTs();
  };

  const bt = await startBpftrace(labSource('paths/01-receive/rxpath.bt'), { ready: new RegExp(`\\b${PORT}\\b`), scriptArgs: [String(PORT), rxDev] });
  // The sinks after the tracer is live (bpftrace takes a minute to start in a TCG guest; a sink gives up after 60 s idle).
  const sink = hosts.right.ns.background(peer, ['sink', String(PORT), '3'], { timeoutMs: 120_000 });
  const decoySink = hosts.right.ns.background(peer, ['sink', String(PORT + 1), '2'], { timeoutMs: 120_000 });
  await sink.waitFor(/^listening$/, `rx_peer sink on port ${PORT}`, 20_000);
  await decoySink.waitFor(/^listening$/, `rx_peer sink on port ${PORT + 1}`, 20_000);
  const [A, C] = [decoys(), decoys()];
  const ip = hosts.right.ip;
  const decoyPhase = async (d: Decoys, fromPort: boolean) => {
    await hosts.left.ns.exec(peer, ['tcp', ip, String(PORT + 1), String(d.tcpSegments), ...(fromPort ? ['-b', String(PORT)] : [])], { timeoutMs: 20_000 });
    await hosts.left.ns.exec(peer, ['udp', ip, String(PORT), ...d.udp.map(String)], { timeoutMs: 20_000 });
  };

  const before = netRxTotal();
  instances.forEach((x) => x.t.setEnabled(true));
  const phases: Phase[] = [];
  await decoyPhase(A, true);
  phases.push({ name: 'A', end: await settleRecord() });
  const [lab] = await Promise.all([
    hosts.left.ns.exec(peer, ['tcp', ip, String(PORT), String(SEGMENTS)], { timeoutMs: 20_000 }),
    oSend.ns.exec(peer, ['tcp', oRecv.ip, String(PORT), String(OTHER_SEGMENTS)], { timeoutMs: 20_000 }),
    hosts.left.ns.exec(peer, ['tcp', ip, String(PORT), String(OPTION_SEGMENTS), '-o', 'ra'], { timeoutMs: 20_000 }),
  ]);
  phases.push({ name: 'B', end: await settleRecord() });
  await decoyPhase(C, false);
  phases.push({ name: 'C', end: await settleRecord() });
  instances.forEach((x) => x.t.setEnabled(false));
  const after = netRxTotal();
  const rec = read();

  await bt.quiet(QUIET_MS, 3_000);
  await bt.stop();
  await sink.stop();
  await decoySink.stop();
  const output = bt.lines().filter((l) => !/^Attaching \d+ probe/.test(l));
  const mss = Number(lab.stdout.match(/mss=(\d+)/)?.[1] ?? 0);
  return {
    port: PORT, segments: SEGMENTS, mss, rxDev, otherDev, phases, decoys: { A, C, otherSegments: OTHER_SEGMENTS, optionSegments: OPTION_SEGMENTS },
    record: rec.record, recordLost: rec.lost, output, lines: output.flatMap((l) => parseTracerLine(l) ?? []),
    lost: lostEvents(bt.process.output()), netRx: { before, after },
  };
}
