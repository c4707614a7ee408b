/**
 * Net Lab 4's experiment: two lab namespaces joined by a veth pair, the
 * student's tracer (sendpath.bt, run with the lab's port as $1) and the
 * kernel's own record of the same tracepoints in private tracefs instances,
 * one per veth end (skb addresses unhashed, filtered to that device, ordered
 * by one shared counter). It sends the lab's two datagrams (a random port,
 * random payload lengths; the second with IP options, so its UDP header is
 * not 20 bytes after the IP header's start) among decoys: other ports, a
 * UDP-Lite datagram to the lab's port (IPv4 protocol 136, the same header
 * layout), one of the same length as the second lab's datagram, decoys sent
 * from another CPU at the same time as a lab's datagram (their events fall
 * between its first and last), lab's datagrams the peer drops each followed at
 * once by decoys from the same CPU and socket, until its own record shows a
 * decoy's skb at the address of a lab's datagram the kernel was done with
 * (`reuse`: a tracer that never forgets follows it; the decoys as long as the
 * dropped datagram), the same with frames sent past the qdisc (a packet socket with
 * PACKET_QDISC_BYPASS: no net_dev_queue) until one has such an address with no
 * skb queued at it in between (`unqueued`), a tail of decoys, three lab's datagrams through a token
 * bucket on the sender's veth (tc tbf: the second and third wait in its queue,
 * so two are on their way at once), a lab's datagram the peer receives on
 * another CPU (RPS: `rps_cpus` of the peer's receive queue), one from a fixed
 * source port and one from a second address of the sender, and two frames
 * laid out like a UDP datagram to the lab's port that are not one: a TCP
 * segment (IPv4 protocol 6) and a frame of another EtherType, and a lab's
 * datagram built by hand in a packet socket (no UDP socket sent it). The receiver
 * answers each lab's datagram from the lab's port (a decoy the other way). It
 * returns the evidence: the kernel's path of every datagram and the tracer's lines, each classified against the event it claims to be
 * (skb-path.ts). No verdicts here: judge.ts and the spec decide.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { waitUntil } from '../../../helpers/harness/wait.js';
import { lostEvents, startBpftrace } from '../../../helpers/kernel/bpftrace.js';
import { twoHosts } from '../../../helpers/kernel/netns.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import {
  classifyLines, datagramPaths, describeEvent, deviceRecords, interleaved, parseTracerLine, reusedAddresses, sameLength, unqueuedReuses,
  type Classified, type Datagram, type DatagramPath, type Interleaved, type NetEvent, type Reuse,
} from './skb-path.js';

/**
 * The lab's port (random: a stale run or a hard-coded port cannot answer); the UDP decoys go to the next two.
 * Below the ephemeral range (32768–60999 in a new namespace), so the sender's own source port is never one of them
 * (nor PORT + 256, a decoy with the same low byte).
 */
export const PORT = 10_000 + Math.floor(Math.random() * 20_000);
/** Milliseconds between two datagrams: each one's path is over long before the next is sent. */
const GAP_MS = 30;
/**
 * Decoys after the lab's datagrams, in rounds of TAIL, TAIL_GAP_MS apart, after the REUSE_ATTEMPTS batches, one round and
 * more until the kernel's record shows a decoy at the skb address of a lab's datagram it was done with (at most
 * MAX_ROUNDS rounds). Measured here: UDP's freed skbs go through a per-CPU
 * cache before the slab, so an address comes back after tens of allocations or not for a while (one round of 60
 * reused one in 3 runs out of 4).
 */
const TAIL = 20;
const TAIL_GAP_MS = 2;
const MAX_ROUNDS = 5;
/**
 * The dead-address condition, set up before the tail and confirmed in the kernel's record: a lab's datagram the peer
 * drops (to NO_HOST), then REUSE_DECOYS decoys to the peer at once (no gap), from the same CPU 0 and the same socket.
 * The drop frees its skb in the softirq of its own sendto() on CPU 0, after its netif_receive_skb, straight back to the
 * slab (not through UDP's per-CPU cache), and one of the next skbs that CPU allocates gets its address (measured on
 * 6.18: the 2nd to the 14th allocation after it, not the very next one; with 3 decoys a batch, 1 to 4 batches, with 15
 * one or two, once six on a loaded machine). A tracer that never forgets a followed address follows that decoy. Up to
 * REUSE_ATTEMPTS such batches, until the record shows a decoy's net_dev_queue at the address of a lab's datagram whose
 * netif_receive_skb came before it (reusedAddresses()); `reuse` still empty after them and the tail: the condition could
 * not be set up (a control says so, rather than passing a tracer it never put to the test).
 */
const REUSE_ATTEMPTS = 12;
const REUSE_DECOYS = 20;
/**
 * The same condition for a frame that passes no net_dev_queue: a lab's datagram the peer drops, then at once, from the
 * same process on CPU 0, BYPASS_FRAMES frames through a packet socket with PACKET_QDISC_BYPASS (`udp_peer bypass`:
 * dev_direct_xmit() calls veth's xmit itself, so their first event is the peer's netif_rx), up to BYPASS_ATTEMPTS
 * batches, until the record shows such a frame at the address of a lab's datagram after its netif_receive_skb with no
 * other skb queued at that address in between (unqueuedReuses()). A tracer that decides at every net_dev_queue
 * whether to follow an address and never forgets one follows that frame.
 */
const BYPASS_ATTEMPTS = 20;
const BYPASS_FRAMES = 15;
/** An address on the lab's wire that no host has: the peer's stack (forwarding off) drops a datagram to it without an answer, and the sending CPU's slab hands its skb to one of the next ones (see REUSE_ATTEMPTS). */
const NO_HOST = '10.199.4.3';
/**
 * Decoys raced against the lab's datagrams (udp_peer's ":race"): while the sender (on CPU 0) sends a raced lab's
 * datagram, a thread of its own on RACE_CPU sends datagrams of RACE_PAYLOAD bytes to NO_HOST, port PORT + 3, back to
 * back from a socket of its own, from just before until just after (each a length of its own, cycling). The kernel then has both CPUs' skbs on their way
 * at once, and the record shows the decoys' events between the lab's datagram's net_dev_queue and its
 * netif_receive_skb (measured here: ~10–20 decoys per raced datagram, several events inside its path). Their lengths
 * lie above every other datagram's (64–1240 bytes): the record tells them by it. Raced lab's datagrams are sent (at most
 * RACE_ROUNDS more) until the record holds MIN_INTERLEAVED of the decoys' netif_rx, net_dev_xmit or netif_receive_skb
 * events inside lab's datagrams' paths.
 */
const RACE_CPU = 1;
const RACE_PORT = PORT + 3;
const RACE_PAYLOAD = 1250 + Math.floor(Math.random() * 51);
/** The racer's lengths cycle through RACE_PAYLOAD … + RACE_SPREAD - 1: the slab gives its skbs one address after another, their lengths tell them apart. */
const RACE_SPREAD = 100;
const RACE_ROUNDS = 4;
const MIN_INTERLEAVED = 3;
/**
 * The last lab's datagram is received on RPS_CPU (the peer's receive queue steered there by RPS), not on CPU 0 where
 * it was sent: a tracer that keeps its followed skb per CPU misses its netif_receive_skb.
 */
const RPS_CPU = 1;
/**
 * TOGETHER lab's datagrams sent back to back through a token bucket on the sender's veth (tc tbf, TBF): the bucket holds
 * one frame (1600 bytes), each of these is 992–1142 bytes (below the raced decoys' lengths), so the first goes at once
 * and the others wait in the qdisc's queue for tokens (100 kbit/s: the second at least 30 ms, ~80 ms each after it) —
 * the later ones' net_dev_queue come before the second's net_dev_xmit: three lab's datagrams on their way at once,
 * unless the sender is kept off its CPU for 30 ms between two sendto() calls. A tracer that keeps one or two
 * "datagrams in flight" loses one. The sender keeps its socket open TOGETHER_END_MS for the answers.
 */
const TOGETHER = 4;
const TBF = ['rate', '100kbit', 'burst', '1600', 'limit', '10000'];
const TOGETHER_END_MS = 1000;
/** A lab's datagram from this source port (below the ephemeral range, not a decoy's port): a tracer must not care where it comes from. */
const SPORT = PORT + 7;
/**
 * And one from a second address of the sender (random, on its veth end beside 10.199.4.1; the peer has a static
 * neighbour for it, so its answer goes out without ARP): a tracer must not care which address it comes from either.
 */
const SECOND_IP = `10.199.4.${10 + Math.floor(Math.random() * 240)}`;
const togetherPayloads = () => Array.from({ length: TOGETHER }, () => 950 + Math.floor(Math.random() * 151));
/**
 * The frames built by hand and sent through a packet socket (udp_peer frame): a TCP segment and IPv4-looking bytes
 * under another EtherType, laid out like a UDP datagram to the lab's port, and a lab's datagram no UDP socket sent
 * (a good UDP header to the lab's port, from the sender's address to NO_HOST: the peer drops it; the skb's socket is
 * the packet socket, not a UDP one).
 */
const FRAMES = [
  { ethertype: '0800', proto: 6, lab: false, label: 'a TCP segment to the lab\'s port (IPv4 protocol 6; its destination port where UDP\'s is)' },
  { ethertype: '88b5', proto: 17, lab: false, label: 'a frame of EtherType 0x88b5 (not IPv4) whose bytes read as a UDP datagram to the lab\'s port' },
  { ethertype: '0800', proto: 17, lab: true, label: `the lab's datagram to port ${PORT} built by hand and sent through a packet socket (no UDP socket sent it), to ${NO_HOST}` },
] as const;
const EVENTS = ['net/net_dev_queue', 'net/netif_rx', 'net/net_dev_xmit', 'net/netif_receive_skb'];
/** The tracer's output counts as complete once unchanged for this long (bpftrace only drains what the kernel already recorded). */
const QUIET_MS = 200;

/** The evidence: the kernel's record, the paths cut from it, the tracer's lines. */
export interface Run {
  /** The lab's datagrams' paths in the kernel's record: the plain one, then the one with IP options. */
  readonly targets: DatagramPath[];
  /** The first (no IP options). */
  readonly target: DatagramPath;
  /** Every datagram's path: those from the sender's end in the order sent, then the answers. */
  readonly paths: DatagramPath[];
  readonly record: NetEvent[];
  readonly recordLost: boolean;
  /** The tracer's output lines (without bpftrace's "Attaching" line). */
  readonly output: string[];
  /** Its lines that name a net tracepoint, each with the datagram and event it is (if any). */
  readonly lines: Classified[];
  /** The lab's datagrams sent through the token bucket (empty: tc could not set one up; `tbfError` says why). */
  readonly together: DatagramPath[];
  readonly tbfError?: string;
  /** RPS steered the peer's receive queue to another CPU for the last lab's datagram (false: one CPU, or no RPS). */
  readonly otherCpu: boolean;
  /** That datagram's path (its netif_receive_skb's CPU is in the record). */
  readonly rpsTarget?: DatagramPath;
  /** Events bpftrace reported lost. */
  readonly lost: number;
  /** Decoys were raced from another CPU (false: one CPU only). */
  readonly raced: boolean;
  /** The decoy raced against the lab's datagrams (its paths are in `paths`). */
  readonly raceDecoy: Datagram;
  /** Other datagrams' events the kernel recorded inside a lab's datagram's path. */
  readonly interleaved: Interleaved[];
  /** Decoys whose skb got the address of a lab's datagram after its netif_receive_skb (the kernel's record); empty: the condition could not be set up. */
  readonly reuse: Reuse[];
  /** Batches of the dead-address condition sent (a dropped lab's datagram, then decoys at once) until the record showed it, at most `reuseTries`. */
  readonly reuseAttempts: number;
  readonly reuseTries: number;
  /** Frames sent past the qdisc (no net_dev_queue) whose skb got the address of a lab's datagram after its netif_receive_skb, none queued at it in between (the kernel's record). */
  readonly unqueued: Reuse[];
  /** Batches of that condition sent (a dropped lab's datagram, then frames past the qdisc at once), at most `bypassTries`. */
  readonly bypassAttempts: number;
  readonly bypassTries: number;
}

/** Distinct random payload lengths in [64, 1200], none 100 (the README's example): every datagram's skb is told apart by its length (but the one decoy the spec makes as long as a lab's datagram). */
function payloads(n: number): number[] {
  const out = new Set<number>();
  while (out.size < n) {
    const p = 64 + Math.floor(Math.random() * 1137);
    if (p !== 100) out.add(p);
  }
  return [...out];
}

/** Send the datagrams with the student's tracer and the kernel's record running; throws only when the kernel's record cannot be read. */
export async function sendThroughTracer(): Promise<Run> {
  const peer = (await buildProgram({ src: join(REFERENCE_SRC, 'net/udp_peer.c') })).path;
  // Static neighbours and no IPv6: the lab's veths carry only the datagrams below (no ARP, no router solicitations).
  const hosts = await twoHosts({ staticNeighbours: true, disableIpv6: true, ips: ['10.199.4.1', '10.199.4.2'] });
  const [left, right] = [hosts.left.ifname, hosts.right.ifname];
  // The sender reaches NO_HOST through the peer's MAC address, without ARP; the peer never forwards it (a forwarded
  // datagram would go back out its veth after an ARP request: no drop, and packets the record does not expect).
  await hosts.left.ns.exec('ip', ['neigh', 'replace', NO_HOST, 'lladdr', hosts.right.mac, 'dev', left, 'nud', 'permanent'], { timeoutMs: 10_000 });
  await hosts.right.ns.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0'], { timeoutMs: 10_000 });
  // The sender's second address (no ARP either way: the peer knows its MAC address; an IPv4 address added sends nothing).
  await hosts.left.ns.exec('ip', ['addr', 'add', `${SECOND_IP}/24`, 'dev', left], { timeoutMs: 10_000 });
  await hosts.right.ns.exec('ip', ['neigh', 'replace', SECOND_IP, 'lladdr', hosts.left.mac, 'dev', right, 'nud', 'permanent'], { timeoutMs: 10_000 });
  const p = payloads(9 + TAIL * MAX_ROUNDS + RACE_ROUNDS + REUSE_ATTEMPTS * (1 + REUSE_DECOYS) + 3 + FRAMES.length + BYPASS_ATTEMPTS * (1 + BYPASS_FRAMES));
  const raced = availableParallelism() > RACE_CPU;
  const raceDecoy: Datagram = { label: `decoy to port ${RACE_PORT} at ${NO_HOST}, sent from CPU ${RACE_CPU} while a lab's datagram went out from CPU 0`, from: left, to: right, payload: RACE_PAYLOAD, concurrent: true, spread: RACE_SPREAD };
  // IP options of the second lab's datagram and of one decoy: 4..40 bytes, by 4 (an IHL of 6..15).
  const optLen = () => 4 * (1 + Math.floor(Math.random() * 10));
  const [o1, o2] = [optLen(), optLen()];
  type Send = Datagram & { readonly spec: string; readonly dropped?: boolean };
  const udp = (port: number, payload: number, ipOptions?: number, race = false): Send => ({
    label: `${port === PORT ? 'the lab\'s datagram' : 'decoy'} to port ${port}${ipOptions ? ` with ${ipOptions} bytes of IP options` : ''}`,
    lab: port === PORT, from: left, to: right, payload, ipOptions, spec: `${port}:${payload}${ipOptions ? `:opt${ipOptions}` : ''}${race && raced ? ':race' : ''}`,
  });
  const sent: Send[] = [
    udp(PORT + 1, p[0]!),
    udp(PORT, p[1]!, undefined, true),
    udp(PORT + 2, p[2]!),
    { label: `UDP-Lite decoy to port ${PORT} (IPv4 protocol 136, not 17)`, from: left, to: right, payload: p[3]!, spec: `${PORT}:${p[3]}:lite` },
    udp(PORT, p[4]!, o1, true),
    // As long as the lab's datagram before it at every tracepoint (its options' bytes in the payload), another port.
    { ...udp(PORT + 1, p[4]! + o1), label: `decoy to port ${PORT + 1}, as long as the lab's datagram with IP options` },
    udp(PORT + 2, p[5]!, o2),
    // The same low byte as the lab's port (a tracer comparing one byte of it).
    udp(PORT + 256, p[6]!),
  ];
  // A lab's datagram the peer drops (no host at its address), then decoys at once from the same CPU and socket: one of
  // them gets its address (see REUSE_ATTEMPTS).
  const dropped = (n: number): Send => ({ ...udp(PORT, n), label: `the lab's datagram to port ${PORT} at ${NO_HOST} (no host there: the peer's stack drops it)`, spec: `${PORT}:${n}:to${NO_HOST}`, dropped: true });
  const reuseAt = 9 + TAIL * MAX_ROUNDS + RACE_ROUNDS;
  const reuseBatch = (attempt: number): Send[] => {
    const [d, ...decoys] = p.slice(reuseAt + attempt * (1 + REUSE_DECOYS), reuseAt + (attempt + 1) * (1 + REUSE_DECOYS));
    // As long as the dropped datagram: the decoy that gets its address is not told apart by its length (the batches
    // go on until one does, or the attempts are spent; the control asks only for a reuse: under load the slab hands a
    // dropped datagram's address out later, to another batch's decoy).
    return [dropped(d!), ...decoys.map((_, i) => ({ ...udp(PORT + 1 + (i % 2), d!), label: `decoy to port ${PORT + 1 + (i % 2)}, as long as the dropped lab's datagram before it` }))];
  };
  const tailOf = (round: number) => p.slice(9 + round * TAIL, 9 + (round + 1) * TAIL).map((n, i) => udp(PORT + 1 + (i % 2), n));
  // More raced lab's datagrams, one at a time, until the kernel's record shows enough decoys inside their paths.
  const raceRound = (round: number) => udp(PORT, p[9 + TAIL * MAX_ROUNDS + round]!, undefined, true);
  const racedMore: Send[] = [];
  // After the tail: the lab's datagrams through the token bucket, the one received on another CPU, then the frames.
  const lastAt = reuseAt + REUSE_ATTEMPTS * (1 + REUSE_DECOYS);
  const otherCpu = raced && existsSync('/proc/sys/net/core/rps_sock_flow_entries');
  const togetherSent: Send[] = togetherPayloads().map((n, i) => ({ ...udp(PORT, n), label: `the lab's datagram ${i + 1} of ${TOGETHER} sent back to back through a token bucket (tc tbf) on ${left}` }));
  const rpsSent: Send[] = [{ ...udp(PORT, p[lastAt]!), label: `the lab's datagram to port ${PORT} that the peer receives on CPU ${otherCpu ? RPS_CPU : 0} (${otherCpu ? 'RPS' : 'one CPU'})` }];
  // And one from a fixed source port, not an ephemeral one.
  rpsSent.push({ ...udp(PORT, p[lastAt + 1]!), label: `the lab's datagram to port ${PORT} from source port ${SPORT}`, spec: `${PORT}:${p[lastAt + 1]}:sport${SPORT}` });
  // And one from the sender's second address.
  rpsSent.push({ ...udp(PORT, p[lastAt + 2]!), label: `the lab's datagram to port ${PORT} from the sender's second address ${SECOND_IP}`, spec: `${PORT}:${p[lastAt + 2]}:from${SECOND_IP}` });
  const frames = FRAMES.map((f, i): Send => ({ label: f.label, from: left, to: right, payload: p[lastAt + 3 + i]!, spec: '', ...(f.lab ? { lab: true, dropped: true } : {}) }));
  // A lab's datagram the peer drops, then frames past the qdisc at once (see BYPASS_ATTEMPTS), each a length of its own.
  const bypassAt = lastAt + 3 + FRAMES.length;
  const bypassBatch = (attempt: number): Send[] => {
    const [d, ...lens] = p.slice(bypassAt + attempt * (1 + BYPASS_FRAMES), bypassAt + (attempt + 1) * (1 + BYPASS_FRAMES));
    return [dropped(d!), ...lens.map((n): Send => ({
      label: `frame past the qdisc (a packet socket with PACKET_QDISC_BYPASS: no net_dev_queue), EtherType 0x88b5, as long as a ${n}-byte UDP datagram`,
      from: left, to: right, payload: n, bypass: true, spec: String(n), dropped: true,
    }))];
  };
  // The receiver answers each lab's datagram it gets from the lab's port, the other way (in the order they came).
  const replies = (): Datagram[] => [...sent, ...racedMore, ...togetherSent, ...rpsSent].filter((d) => d.lab).map((d) => ({ label: `the answer to the lab's datagram ${d.ipOptions ? 'with IP options ' : ''}(from port ${PORT}, the other way)`, from: right, to: left, payload: p[7]! }));
  const strip = (l: readonly Send[]): Datagram[] => l.map(({ spec: _, dropped: __, ...d }) => d);

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
  // Both ends on one CPU: the receiver frees each skb where the next one is allocated, so the slab reuses addresses soon.
  const receiver = hosts.right.ns.background('taskset', ['-c', '0', peer, 'recv', String(sent.length + TAIL * MAX_ROUNDS + RACE_ROUNDS + REUSE_ATTEMPTS * REUSE_DECOYS + TOGETHER + rpsSent.length), String(p[7]), String(PORT), String(PORT + 1), String(PORT + 2), String(PORT + 256), `${PORT}/lite`], { timeoutMs: 60_000 });
  await receiver.waitFor(/^listening$/, `udp_peer to bind ports ${PORT}..${PORT + 2}, ${PORT + 256} and UDP-Lite ${PORT}`, 20_000);
  const race = raced ? ['-r', `${RACE_CPU}:${NO_HOST}:${RACE_PORT}:${RACE_PAYLOAD}-${RACE_PAYLOAD + RACE_SPREAD - 1}`] : [];
  const sender = (gap: number, list: readonly Send[]) => hosts.left.ns.exec('taskset', ['-c', '0', peer, 'send', hosts.right.ip, gap === 0 && list.some((d) => d.lab && !d.dropped) ? `0/${TOGETHER_END_MS}` : String(gap), ...race, ...list.map((d) => d.spec)], { timeoutMs: 30_000 });
  let sendOut = (await sender(GAP_MS, sent)).stdout;
  // The raced decoys' events inside lab's datagrams' paths, in the record so far (0 while it does not line up yet).
  const inside = () => {
    try {
      return interleaved(datagramPaths(trace.read().record, strip([...sent, ...racedMore]), [raceDecoy]))
        .filter((x) => x.other.datagram.concurrent && x.event.point !== 'net_dev_queue').length;
    } catch {
      return 0;
    }
  };
  for (let round = 0; raced && round < RACE_ROUNDS && inside() < MIN_INTERLEAVED; round++) {
    const more = raceRound(round);
    racedMore.push(more);
    sendOut += (await sender(GAP_MS, [more])).stdout;
  }
  const reuseSent: Send[] = [];
  const bypassSent: Send[] = [];
  const tail: Send[] = [];
  // Has a decoy as long as a lab's datagram the kernel was done with got its skb address (the record so far)?
  const reused = () => {
    try {
      return reusedAddresses(datagramPaths(trace.read().record, strip([...sent, ...racedMore, ...reuseSent, ...bypassSent, ...tail]), [raceDecoy])).some(sameLength);
    } catch {
      return false;
    }
  };
  let reuseAttempts = 0;
  while (reuseAttempts < REUSE_ATTEMPTS && (reuseAttempts === 0 || !reused())) {
    const batch = reuseBatch(reuseAttempts++);
    reuseSent.push(...batch);
    sendOut += (await sender(0, batch)).stdout;
  }
  // The same for frames that pass no net_dev_queue: batches until one got a dead lab's address none was queued at since.
  const unqueued = () => {
    try {
      return unqueuedReuses(datagramPaths(trace.read().record, strip([...sent, ...racedMore, ...reuseSent, ...bypassSent]), [raceDecoy])).length > 0;
    } catch {
      return false;
    }
  };
  let bypassAttempts = 0;
  while (bypassAttempts < BYPASS_ATTEMPTS && (bypassAttempts === 0 || !unqueued())) {
    const [d, ...fs] = bypassBatch(bypassAttempts++);
    bypassSent.push(d!, ...fs);
    sendOut += (await hosts.left.ns.exec('taskset', ['-c', '0', peer, 'bypass', left, hosts.right.mac, NO_HOST, `${PORT}:${d!.payload}`, ...fs.map((f) => f.spec)], { timeoutMs: 10_000 })).stdout;
  }
  // Then a tail of decoys (more rounds while the record shows no such decoy yet).
  for (let round = 0; round < MAX_ROUNDS && (round === 0 || !reused()); round++) {
    const more = tailOf(round);
    tail.push(...more);
    sendOut += (await sender(TAIL_GAP_MS, more)).stdout;
  }
  // Lab's datagrams back to back through a token bucket: all but the first wait in its queue. The sender keeps its
  // socket open TOGETHER_END_MS (the answers come back to it), then the bucket goes, once the receiver has them all.
  let tbfError: string | undefined;
  const tbf = await hosts.left.ns.exec('tc', ['qdisc', 'add', 'dev', left, 'root', 'tbf', ...TBF], { timeoutMs: 10_000, reject: false });
  if (tbf.exitCode === 0) {
    sendOut += (await sender(0, togetherSent)).stdout;
    const before = [...sent, ...racedMore, ...reuseSent, ...tail, ...togetherSent].filter((d) => !d.dropped).length;
    await waitUntil('the receiver to get the datagrams sent through the token bucket', () => receiver.stdout().split('\n').filter((l) => l.startsWith('got ')).length, (n) => n >= before, { timeoutMs: 3_000, intervalMs: 25 }).catch(() => undefined);
    await hosts.left.ns.exec('tc', ['qdisc', 'del', 'dev', left, 'root'], { timeoutMs: 10_000 });
  } else {
    tbfError = `tc qdisc add dev ${left} root tbf ${TBF.join(' ')}: ${(tbf.stderr || tbf.stdout).trim()} (the token bucket qdisc: CONFIG_NET_SCH_TBF, module sch_tbf)`;
    togetherSent.length = 0;
  }
  // The last lab's datagram, received on RPS_CPU: the peer's receive queue steered there (its own device, in its namespace's sysfs).
  const rpsFile = `/sys/class/net/${right}/queues/rx-0/rps_cpus`;
  if (otherCpu) await hosts.right.ns.exec('sh', ['-c', `echo ${(1 << RPS_CPU).toString(16)} > ${rpsFile}`], { timeoutMs: 10_000 });
  sendOut += (await sender(GAP_MS, rpsSent.slice(0, 1))).stdout;
  if (otherCpu) await hosts.right.ns.exec('sh', ['-c', `echo 0 > ${rpsFile}`], { timeoutMs: 10_000 });
  sendOut += (await sender(GAP_MS, rpsSent.slice(1))).stdout;
  // The frames that look like the lab's datagram and are not one (no answer: the peer's stack drops them).
  for (const [i, f] of FRAMES.entries()) {
    sendOut += (await hosts.left.ns.exec('taskset', ['-c', '0', peer, 'frame', left, hosts.right.mac, f.ethertype, String(f.proto), String(PORT), String(frames[i]!.payload), ...(f.lab ? [hosts.left.ip, NO_HOST] : [])], { timeoutMs: 10_000 })).stdout;
    await new Promise((r) => setTimeout(r, GAP_MS));
  }
  const send = { stdout: sendOut };
  // The receiver was told the most it could get: stop it once it has everything that was sent.
  const total = [...sent, ...racedMore, ...reuseSent, ...tail, ...togetherSent, ...rpsSent].filter((d) => !d.dropped).length;
  await waitUntil('the receiver to get every datagram', () => receiver.stdout().split('\n').filter((l) => l.startsWith('got ')).length, (n) => n >= total, { timeoutMs: 5_000, intervalMs: 25 }).catch(() => undefined);
  const got = await receiver.stop();
  trace.setEnabled(false);
  const rec = trace.read();
  const record = rec.record;
  let paths: DatagramPath[];
  try {
    paths = datagramPaths(record, strip([...sent, ...racedMore, ...reuseSent, ...bypassSent, ...tail, ...togetherSent, ...rpsSent, ...frames]).concat(replies()), [raceDecoy]);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nsender: ${send.stdout}\nreceiver: ${got.stdout}${got.stderr}\nkernel record:\n${record.map(describeEvent).join('\n')}`);
  }
  const targets = paths.filter((x) => x.datagram.lab);
  const skb = targets.at(-1)!.events.net_dev_queue!.skb;
  // Wait for the tracer's line of the last event of the last lab's datagram (or give up after 3 s: a wrong tracer may
  // never print it), then for the rest of its output: every event is in the kernel's record already, the tracer has
  // only to print what it caught (the decoys after the lab's datagrams, the answers) — its output stops growing.
  await bt.settle((l) => l.some((x) => /netif_receive_skb/.test(x) && x.toLowerCase().includes(skb)), 3_000);
  await bt.quiet(QUIET_MS, 2_000);
  await bt.stop();
  const all = bt.lines().filter((l) => !/^Attaching \d+ probe/.test(l));
  const parsed = all.flatMap((l, i) => parseTracerLine(l, i, [left, right]) ?? []);
  return {
    targets, target: targets[0]!, paths, record, recordLost: rec.lost, output: all, lines: classifyLines(parsed, paths), lost: lostEvents(bt.process.output()),
    together: targets.filter((x) => togetherSent.some((d) => d.label === x.datagram.label)), ...(tbfError ? { tbfError } : {}),
    raced, otherCpu, rpsTarget: targets.find((x) => x.datagram.label === rpsSent[0]!.label), raceDecoy, interleaved: interleaved(paths), reuse: reusedAddresses(paths).filter((x) => !x.decoy.datagram.bypass), reuseAttempts, reuseTries: REUSE_ATTEMPTS,
    unqueued: unqueuedReuses(paths), bypassAttempts, bypassTries: BYPASS_ATTEMPTS,
  };
}
