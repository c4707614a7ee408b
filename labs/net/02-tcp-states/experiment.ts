/**
 * Net Lab 2's experiment: two lab namespaces joined by a veth pair (random
 * addresses in 10/8, static neighbours), the kernel's own record of
 * sock:inet_sock_set_state for the lab's port in a private tracefs instance (and
 * in a second one read as binary ring buffer pages, which hold every field, the socket address among them),
 * and the student's tracer (tcpstates.bt, run with the port as $1) while the
 * harness's tcp_peer makes the connections: one the client closes first, one
 * the server closes first (in a random order), one made before the tracer
 * starts (its server held stopped in accept() meanwhile) and closed by the
 * server once it runs, a simultaneous close (the
 * server's FIN dropped until the client has closed too: CLOSING), three on
 * decoy ports (the first before anything on the lab's port: its listener is the first), an MPTCP one on the lab's port, one to the port once nobody
 * listens (RST) and one whose first SYN nftables drops. `ss -tan` is read in
 * the namespaces while it happens. It returns the evidence (`Run`): the
 * tracer's lines read as socket lives (labs/net/tcp-states.ts), the kernel's
 * record, each connection's ports and connect() time, and ss. No verdicts
 * here: judge.ts and the spec decide.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { killGroup } from '../../../helpers/harness/process-group.js';
import { waitUntil, type Background } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { lostEvents, startBpftrace, type BpftraceSession } from '../../../helpers/kernel/bpftrace.js';
import { twoHosts, type Netns, type TwoHosts } from '../../../helpers/kernel/netns.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import {
  parseKernelStateChange, parseSocketChangeRecord, parseSs, parseStateChanges, socketLives, type KernelSocketChange, type KernelStateChange, type SocketLife, type SsSocket,
} from '../tcp-states.js';

const randomInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
/**
 * Ports of this run: the traced one and three decoys the tracer must not print, one next to it, one anywhere below
 * 32768 and one anywhere above (random, so neither a stale run nor a list of ports or ranges to leave out can answer).
 */
export const PORT = randomInt(20_000, 40_000);
const randomPortIn = (lo: number, hi: number) => { for (;;) { const p = randomInt(lo, hi); if (Math.abs(p - PORT) > 1) return p; } };
export const DECOYS = [PORT + (Math.random() < 0.5 ? -1 : 1), randomPortIn(1, 32_767), randomPortIn(32_768, 65_535)] as const;
/** The two namespaces' addresses: one random /24 of 10/8, two random hosts in it (the client's may be the higher). */
const NET = `10.${randomInt(64, 191)}.${randomInt(0, 255)}`;
const HOSTS = (() => { const a = randomInt(1, 254); let b = randomInt(1, 253); if (b >= a) b++; return [`${NET}.${a}`, `${NET}.${b}`] as const; })();

export interface Conn {
  /** Who closes first: 'c' the client, 's' the server. */
  readonly closer: 'c' | 's';
  readonly localPort: number;
  /** connect() time as the client process measured it (µs). */
  readonly connectUs: number;
}

export interface Run {
  /** The traced port and the decoys' (random each run). */
  readonly port: number;
  readonly decoyPorts: readonly number[];
  readonly hosts: TwoHosts;
  readonly lines: string[];
  readonly lives: SocketLife[];
  readonly clientFirst: Conn;
  readonly serverFirst: Conn;
  /** Both sides closed before either saw the other's FIN: the server's FIN was dropped until the client had closed. */
  readonly simultaneous: Conn;
  readonly decoys: readonly Conn[];
  /** The MPTCP connection on PORT (undefined: this kernel has no MPTCP, `noMptcp` says why). */
  readonly mptcp?: Conn;
  readonly noMptcp?: string;
  /** The kernel's own record of sock:inet_sock_set_state for PORT (a tracefs instance) while the tracer ran. */
  readonly kernel: KernelStateChange[];
  /**
   * The same record with each change's socket (skaddr, which the event's text format leaves out: a second tracefs
   * instance read as its ring buffer's binary pages, per_cpu/cpu<N>/trace_pipe_raw, which hold every field; undefined
   * where that cannot be read here, `noSockets` says why).
   */
  readonly kernelSockets?: KernelSocketChange[];
  readonly noSockets?: string;
  readonly delayed: Conn;
  /** Established before the tracer started (the record too), closed by the server while the tracer ran. */
  readonly preexisting: Conn;
  /**
   * When (s, the record's clock: CLOCK_MONOTONIC) the tracer printed its ready line, and when the last connection had
   * ended (before the spec waits for the tracer's last lines): every change the kernel recorded in between is one the
   * tracer was attached for and had time to print.
   */
  readonly window: { readonly from: number; readonly to: number };
  readonly refusedOutput: string;
  /** ss -tan in the server's namespace while it listened, and in each namespace after the closes. */
  readonly ssListening: SsSocket[];
  readonly ssClientAfter: SsSocket[];
  readonly ssServerAfter: SsSocket[];
  /** ss -tan in the server's namespace while both sides of `simultaneous` had closed (its side in CLOSING). */
  readonly ssSimultaneous: SsSocket[];
  readonly lost: number;
  /** Why `tc qdisc add … netem` failed in the lab's namespace (undefined: the kernel has netem). */
  readonly noNetem?: string;
}

/** Start `tcp_peer serve <port> <n>` in `ns` and wait until it listens. */
async function serve(ns: Netns, peer: string, port: number, count: number): Promise<Background> {
  const bg = ns.background(peer, ['serve', String(port), String(count)], { timeoutMs: 60_000 });
  await bg.waitFor(/^listening$/, `tcp_peer to listen on port ${port}`, 20_000);
  return bg;
}

async function connect(ns: Netns, peer: string, ip: string, port: number, closer: 'c' | 's', mptcp = false): Promise<Conn> {
  const r = await ns.exec(peer, ['connect', ip, String(port), closer, ...(mptcp ? ['mptcp'] : [])], { timeoutMs: 30_000 });
  const m = r.stdout.match(/local_port=(\d+) connect_us=(\d+)/);
  if (!m) throw new Error(`tcp_peer connect printed no local_port line: ${r.stdout}${r.stderr}`);
  return { closer, localPort: Number(m[1]), connectUs: Number(m[2]) };
}

/** Drop the first SYN to `port` in `ns` (nftables, the namespace's own table: gone with the namespace). */
async function dropFirstSyn(ns: Netns, port: number): Promise<void> {
  await ns.exec('nft', ['add', 'table', 'inet', 'kl_delay'], { timeoutMs: 10_000 });
  await ns.exec('nft', ['add', 'chain', 'inet', 'kl_delay', 'in', '{ type filter hook input priority 0; }'], { timeoutMs: 10_000 });
  // numgen inc counts the SYNs this rule sees: 0 (the first) is dropped, the retransmission (1) passes.
  await ns.exec('nft', ['add', 'rule', 'inet', 'kl_delay', 'in', 'tcp', 'dport', String(port), 'tcp', 'flags', 'syn', 'numgen', 'inc', 'mod', '2', '==', '0', 'drop'], { timeoutMs: 10_000 });
}

/**
 * A simultaneous close: drop the server's FINs in the client's namespace, let the server close (FIN_WAIT1, its FIN
 * lost), then end the client (its FIN goes out while it has not seen the server's: the server receives a FIN that
 * does not acknowledge its own, FIN_WAIT1 -> CLOSING), and let the server's retransmitted FIN through once ss shows
 * CLOSING. Returns the connection and ss -tan of the server's namespace in CLOSING.
 */
async function simultaneousClose(client: Netns, server: Netns, peer: string, ip: string): Promise<{ conn: Conn; ss: SsSocket[] }> {
  const srv = await serve(server, peer, PORT, 1);
  await client.exec('nft', ['add', 'table', 'inet', 'kl_fin'], { timeoutMs: 10_000 });
  await client.exec('nft', ['add', 'chain', 'inet', 'kl_fin', 'in', '{ type filter hook input priority 0; }'], { timeoutMs: 10_000 });
  await client.exec('nft', ['add', 'rule', 'inet', 'kl_fin', 'in', 'tcp', 'sport', String(PORT), 'tcp', 'flags', '&', 'fin', '==', 'fin', 'drop'], { timeoutMs: 10_000 });
  // 's': the server closes as soon as it has read the byte; the client waits for a FIN that never comes.
  const cl = client.background(peer, ['connect', ip, String(PORT), 's'], { timeoutMs: 30_000 });
  const m = await cl.waitFor(/local_port=(\d+) connect_us=(\d+)/, 'tcp_peer connect (simultaneous close) to connect', 20_000);
  const conn: Conn = { closer: 's', localPort: Number(m[1]), connectUs: Number(m[2]) };
  await srv.exited;
  const mine = (ss: SsSocket[]) => ss.find((x) => x.local.port === PORT && x.peer.port === conn.localPort);
  const ssOf = async () => parseSs((await server.exec('ss', ['-tan'], { timeoutMs: 10_000 })).stdout);
  let ss = await waitUntil('the server\'s side in FIN-WAIT-1', ssOf, (x) => mine(x)?.state === 'FIN-WAIT-1', { timeoutMs: 10_000, intervalMs: 20 });
  await cl.stop('SIGKILL');
  ss = await waitUntil('the server\'s side in CLOSING', ssOf, (x) => mine(x)?.state === 'CLOSING', { timeoutMs: 10_000, intervalMs: 20 });
  await client.exec('nft', ['delete', 'table', 'inet', 'kl_fin'], { timeoutMs: 10_000 });
  return { conn, ss };
}

/** CLOCK_MONOTONIC now, in s (Node's hrtime; tracefs's trace_clock "mono" and bpftrace's nsecs count the same). */
const monotonic = () => Number(process.hrtime.bigint()) / 1e9;

/**
 * A connection established before the tracer starts: the server listens, is stopped (SIGSTOP to its process group)
 * while the client connects (the kernel completes the handshake and queues the connection) and sends its byte ('s':
 * the server is to close first). `release()` (SIGCONT) lets the server accept it and close: the server's socket goes
 * ESTABLISHED -> FIN_WAIT1, the client's ESTABLISHED -> CLOSE_WAIT, all while the tracer runs.
 */
async function establishedBefore(client: Netns, server: Netns, peer: string, ip: string): Promise<{ conn: Conn; release: () => Promise<void> }> {
  const srv = await serve(server, peer, PORT, 1);
  killGroup(srv.pid, 'SIGSTOP');
  const cl = client.background(peer, ['connect', ip, String(PORT), 's'], { timeoutMs: 60_000 });
  const m = await cl.waitFor(/local_port=(\d+) connect_us=(\d+)/, 'tcp_peer connect (before the tracer) to connect', 20_000);
  const conn: Conn = { closer: 's', localPort: Number(m[1]), connectUs: Number(m[2]) };
  // Both ends ESTABLISHED (the server's in the listener's accept queue) before anything is recorded.
  const ssOf = async () => parseSs((await server.exec('ss', ['-tan'], { timeoutMs: 10_000 })).stdout);
  await waitUntil('the server\'s side of the early connection in ESTAB', ssOf, (x) => x.some((s) => s.local.port === PORT && s.peer.port === conn.localPort && s.state === 'ESTAB'), { timeoutMs: 10_000, intervalMs: 20 });
  return {
    conn,
    release: async () => {
      killGroup(srv.pid, 'SIGCONT');
      await srv.exited;
      await cl.exited;
    },
  };
}

const EVENT = 'sock/inet_sock_set_state';
const SOCKET_FIELDS = ['skaddr', 'oldstate', 'newstate', 'sport', 'dport', 'protocol'];

/** Make the run's connections with the student's tracer and the kernel's record on, and return what both saw. */
export async function traceConnections(): Promise<Run> {
  const peer = (await buildProgram({ src: join(REFERENCE_SRC, 'net/tcp_peer.c') })).path;
  // Static neighbour entries: no ARP before the first SYN, so connect latency is the handshake's alone.
  const hosts = await twoHosts({ staticNeighbours: true, disableIpv6: true, ips: HOSTS });
  const client = hosts.left.ns;
  const server = hosts.right.ns;
  const ip = hosts.right.ip;
  const netem = await client.exec('tc', ['qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { reject: false, timeoutMs: 10_000 });
  const noNetem = netem.exitCode === 0 ? undefined : (netem.stderr.trim() || `exit ${netem.exitCode}`);
  if (!noNetem) await client.exec('tc', ['qdisc', 'del', 'dev', 'lo', 'root'], { reject: false, timeoutMs: 10_000 });
  // A connection on PORT made before the tracer (and the record) starts: the tracer sees only its close.
  const early = await establishedBefore(client, server, peer, ip);
  // The kernel's own record of the tracepoint for PORT, from before the tracer starts until after it stops.
  // trace_clock "mono": CLOCK_MONOTONIC, the clock of bpftrace's nsecs (the two agree on how long the delayed connect took).
  const record = makeTraceInstance(['sock/inet_sock_set_state'], { tag: 'tcpst', enable: false, bufferKb: 1024, clock: 'mono' });
  if (!record) throw new Error('no tracefs instances or no sock/inet_sock_set_state in /sys/kernel/tracing/events');
  writeFileSync(join(record.dir, 'events/sock/inet_sock_set_state/filter'), `sport == ${PORT} || dport == ${PORT}`);
  // The print format leaves out skaddr: a second instance, read as the ring buffer's binary pages (trace_pipe_raw),
  // which hold every field of the event (any kernel with tracefs instances; options/fields prints them as text only on recent kernels).
  const sockets = makeTraceInstance(['sock/inet_sock_set_state'], { tag: 'tcpsk', enable: false, bufferKb: 1024, clock: 'mono' })!;
  const noSockets = sockets.rawUnavailable(EVENT, SOCKET_FIELDS);
  if (!noSockets) {
    writeFileSync(join(sockets.dir, 'events/sock/inet_sock_set_state/filter'), `sport == ${PORT} || dport == ${PORT}`);
    sockets.setEnabled(true);
  }
  record.setEnabled(true);
  const bt: BpftraceSession = await startBpftrace(labSource('net/02-tcp-states/tcpstates.bt'), { ready: /^Tracing/, scriptArgs: [String(PORT)] });
  const from = monotonic();

  // The early connection ends: the server accepts it and closes first.
  await early.release();

  // Decoy connections on other ports: not the tracer's business. The first one before anything on PORT (its listener
  // is the first after the tracer starts), the others after the simultaneous close.
  const decoys: Conn[] = [];
  const decoy = async (port: number) => {
    const d = await serve(server, peer, port, 1);
    decoys.push(await connect(client, peer, ip, port, 'c'));
    await d.exited;
  };
  await decoy(DECOYS[0]!);

  // Two connections on PORT, in a random order: one the client closes first, one the server does.
  let srv = await serve(server, peer, PORT, 2);
  const ssListening = parseSs((await server.exec('ss', ['-tan'], { timeoutMs: 10_000 })).stdout);
  const order: ('c' | 's')[] = Math.random() < 0.5 ? ['c', 's'] : ['s', 'c'];
  const made: Conn[] = [];
  for (const closer of order) made.push(await connect(client, peer, ip, PORT, closer));
  const clientFirst = made.find((c) => c.closer === 'c')!;
  const serverFirst = made.find((c) => c.closer === 's')!;
  await srv.exited;
  const ssClientAfter = parseSs((await client.exec('ss', ['-tan'], { timeoutMs: 10_000 })).stdout);
  const ssServerAfter = parseSs((await server.exec('ss', ['-tan'], { timeoutMs: 10_000 })).stdout);

  // Both sides close at once: the server goes through CLOSING.
  const simultaneous = await simultaneousClose(client, server, peer, ip);

  for (const port of DECOYS.slice(1)) await decoy(port);

  // An MPTCP connection on PORT: the same tracepoint reports the MPTCP sockets (protocol IPPROTO_MPTCP) beside
  // their TCP subflows (IPPROTO_TCP, which a TCP tracer prints).
  const mp = server.background(peer, ['serve', String(PORT), '1', 'mptcp'], { timeoutMs: 60_000 });
  const mpReady = await mp.waitFor(/^(listening|no-mptcp: .*)$/, `tcp_peer to listen on port ${PORT} (MPTCP)`, 20_000);
  let mptcp: Conn | undefined;
  let noMptcp: string | undefined;
  if (mpReady[1] === 'listening') {
    mptcp = await connect(client, peer, ip, PORT, 'c', true);
    await mp.exited;
  } else {
    noMptcp = mpReady[1];
    await mp.exited.catch(() => undefined);
  }

  // Nobody listens on PORT any more: the SYN is answered with RST.
  const refused = await client.exec(peer, ['connect', ip, String(PORT), 'c'], { reject: false, timeoutMs: 30_000 });

  // The first SYN dropped: connect() waits for the retransmission.
  await dropFirstSyn(server, PORT);
  srv = await serve(server, peer, PORT, 1);
  const delayed = await connect(client, peer, ip, PORT, 'c');
  await srv.exited;

  const to = monotonic();

  const ports = [early.conn, clientFirst, serverFirst, simultaneous.conn, delayed].map((c) => c.localPort);
  const lines = await bt.settle((l) => {
    const lives = socketLives(parseStateChanges(l));
    return ports.every((p) => lives.some((x) => x.local.port === PORT && x.remote.port === p && x.states.at(-1) === 'CLOSE')
      && lives.some((x) => x.local.port === p && x.states.at(-1) === 'CLOSE'));
  }, 5_000);
  await bt.stop();
  record.setEnabled(false);
  sockets.setEnabled(false);
  const kernelSockets = noSockets ? undefined : (({ format, records }) => records.flatMap((r) => parseSocketChangeRecord(r, format) ?? []))(sockets.takeRaw(EVENT));
  const kernel = record.read().events.flatMap((e) => { const k = parseKernelStateChange(e.body); return k ? [{ ...k, ts: e.ts }] : []; });
  return {
    port: PORT, decoyPorts: DECOYS, hosts, lines, lives: socketLives(parseStateChanges(lines)), clientFirst, serverFirst, simultaneous: simultaneous.conn, decoys, delayed, preexisting: early.conn, window: { from, to }, mptcp, noMptcp, kernel, kernelSockets, noSockets,
    refusedOutput: `${refused.stdout}${refused.stderr}`.trim(), ssListening, ssClientAfter, ssServerAfter, ssSimultaneous: simultaneous.ss,
    lost: lostEvents(bt.process.output()), noNetem,
  };
}
