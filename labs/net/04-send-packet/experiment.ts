/**
 * Net Lab 4's experiment: two lab namespaces joined by a veth pair, the
 * student's tracer (sendpath.bt, run with the lab's port as $1) and the
 * kernel's own record of the same tracepoints in private tracefs instances,
 * one per veth end (skb addresses unhashed, filtered to that device, ordered
 * by one shared counter). It sends the lab's datagram (a random port, a random
 * payload length) among decoys on other ports, the receiver answers it from
 * the lab's port (a decoy the other way), and returns the evidence: the
 * kernel's path of every datagram and the tracer's lines, each classified
 * against the event it claims to be (skb-path.ts). No verdicts here: judge.ts
 * and the spec decide.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { waitUntil } from '../../../helpers/harness/wait.js';
import { lostEvents, startBpftrace, type BpftraceSession } from '../../../helpers/kernel/bpftrace.js';
import { twoHosts } from '../../../helpers/kernel/netns.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import {
  classifyLines, datagramPaths, describeEvent, deviceRecords, parseTracerLine,
  type Classified, type Datagram, type DatagramPath, type NetEvent,
} from './skb-path.js';

/**
 * The lab's port (random: a stale run or a hard-coded port cannot answer); the decoys go to the next two.
 * Below the ephemeral range (32768–60999 in a new namespace), so the sender's own source port is never one of them.
 */
export const PORT = 10_000 + Math.floor(Math.random() * 20_000);
/** Milliseconds between two datagrams: each one's path is over long before the next is sent. */
const GAP_MS = 30;
const EVENTS = ['net/net_dev_queue', 'net/netif_rx', 'net/net_dev_xmit', 'net/netif_receive_skb'];
/** The tracer's output counts as complete once unchanged for this long (bpftrace only drains what the kernel already recorded). */
const QUIET_MS = 200;

/** The evidence: the kernel's record, the paths cut from it, the tracer's lines. */
export interface Run {
  /** The lab's datagram's path in the kernel's record. */
  readonly target: DatagramPath;
  /** Every datagram's path, in the order sent: decoy, the lab's, decoy, decoy, the answer. */
  readonly paths: DatagramPath[];
  readonly record: NetEvent[];
  readonly recordLost: boolean;
  /** The tracer's output lines (without bpftrace's "Attaching" line). */
  readonly output: string[];
  /** Its lines that name a net tracepoint, each with the datagram and event it is (if any). */
  readonly lines: Classified[];
  /** Events bpftrace reported lost. */
  readonly lost: number;
}

/** Distinct random payload lengths in [64, 1200], none 100 (the README's example): every datagram's skb is told apart by its length. */
function payloads(n: number): number[] {
  const out = new Set<number>();
  while (out.size < n) {
    const p = 64 + Math.floor(Math.random() * 1137);
    if (p !== 100) out.add(p);
  }
  return [...out];
}

/** Wait until the tracer's output stops growing (QUIET_MS without a new line), at most `timeoutMs`; never throws. */
async function quiet(bt: BpftraceSession, timeoutMs: number): Promise<void> {
  let seen = -1;
  let since = Date.now();
  const settled = (n: number) => {
    if (n !== seen) { seen = n; since = Date.now(); return false; }
    return Date.now() - since >= QUIET_MS;
  };
  await waitUntil('the tracer\'s output to settle', () => bt.lines().length, settled, { timeoutMs, intervalMs: 25 }).catch(() => undefined);
}

/** Send the datagrams with the student's tracer and the kernel's record running; throws only when the kernel's record cannot be read. */
export async function sendThroughTracer(): Promise<Run> {
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
  // Wait for the tracer's line of the last event of the path (or give up after 3 s: a wrong tracer may never print it),
  // then for the rest of its output: every event is in the kernel's record already, the tracer has only to print what
  // it caught (the decoys after the lab's datagram, the answer) — its output stops growing.
  await bt.settle((l) => l.some((x) => /netif_receive_skb/.test(x) && x.toLowerCase().includes(skb)), 3_000);
  await quiet(bt, 2_000);
  await bt.stop();
  const all = bt.lines().filter((l) => !/^Attaching \d+ probe/.test(l));
  const parsed = all.flatMap((l, i) => parseTracerLine(l, i, [left, right]) ?? []);
  return { target, paths, record, recordLost: rec.lost, output: all, lines: classifyLines(parsed, paths), lost: lostEvents(bt.process.output()) };
}
