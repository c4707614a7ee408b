/**
 * Net Lab 2 — the three-way handshake and TCP states, seen from the kernel.
 *
 * The student's bpftrace script (c/net/02-tcp-states/tcpstates.bt) follows
 * tracepoint sock:inet_sock_set_state for one port. The spec makes its own
 * connections between two lab namespaces joined by a veth pair (c/net/tcp_peer.c,
 * a harness program): one the client closes first, one the server closes
 * first (in a random order), one where both close at once (the server's FIN is
 * dropped until the client has closed too: CLOSING), one to a port nobody
 * listens on, three on decoy ports the tracer must leave out, an MPTCP one on
 * the lab's port (the same tracepoint reports its MPTCP socket, protocol
 * IPPROTO_MPTCP, beside its TCP subflows), and one whose
 * first SYN nftables drops (this kernel has no sch_netem, so the delay is the
 * kernel's own SYN retransmission timeout). Ports and addresses are random in
 * each run, so no answer can be written in advance. `ss -tan` is read in the
 * namespaces while it happens. The tests then read the trace as socket lives
 * (labs/net/tcp-states.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { waitUntil, type Background } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { lostEvents, startBpftrace, type BpftraceSession } from '../../../helpers/kernel/bpftrace.js';
import { twoHosts, type Netns, type TwoHosts } from '../../../helpers/kernel/netns.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import {
  otherProtocolLines, parseKernelStateChange, parseSs, parseStateChanges, socketLives, timeBetween,
  type KernelStateChange, type SocketLife, type SsSocket, type StateChange,
} from '../tcp-states.js';

const randomInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
/**
 * Ports of this run: the traced one and three decoys the tracer must not print, one next to it, one anywhere below
 * 32768 and one anywhere above (random, so neither a stale run nor a list of ports or ranges to leave out can answer).
 */
const PORT = randomInt(20_000, 40_000);
const randomPortIn = (lo: number, hi: number) => { for (;;) { const p = randomInt(lo, hi); if (Math.abs(p - PORT) > 1) return p; } };
const DECOYS = [PORT + (Math.random() < 0.5 ? -1 : 1), randomPortIn(1, 32_767), randomPortIn(32_768, 65_535)] as const;
/**
 * How far the traced SYN_SENT -> ESTABLISHED of the delayed connection may fall short of connect()'s own time (µs):
 * the kernel's changes happen inside the call, so only the syscall's entry and the wake-up after ESTABLISHED lie
 * between them (tens of µs here; a busy 2-core machine may delay that wake-up by a few ms). A clock 2.4 % slow
 * (nsecs >> 10) loses 24 ms over the 1 s retransmission; 15 ms keeps room for the scheduler.
 */
const CONNECT_SLACK_US = 15_000;
/** The two namespaces' addresses: one random /24 of 10/8, two random hosts in it (the client's may be the higher). */
const NET = `10.${randomInt(64, 191)}.${randomInt(0, 255)}`;
const HOSTS = (() => { const a = randomInt(1, 254); let b = randomInt(1, 253); if (b >= a) b++; return [`${NET}.${a}`, `${NET}.${b}`] as const; })();
/** The kernel's initial SYN retransmission timeout (TCP_TIMEOUT_INIT, include/net/tcp.h): 1 s. */
const SYN_RTO_US = 1_000_000;

interface Conn {
  /** Who closes first: 'c' the client, 's' the server. */
  readonly closer: 'c' | 's';
  readonly localPort: number;
  /** connect() time as the client process measured it (µs). */
  readonly connectUs: number;
}

interface Run {
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
  readonly delayed: Conn;
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

/** The trace lines of one connection (both ends), for messages. */
function linesOf(run: Run, localPort: number): string {
  const mine = run.lives.filter((l) => l.local.port === localPort || l.remote.port === localPort);
  return mine.flatMap((l) => l.changes.map((c) => c.line)).join('\n') || '(no line with that port)';
}

function clientLife(run: Run, c: Conn): SocketLife | undefined {
  return run.lives.find((l) => l.local.port === c.localPort && l.remote.port === PORT && l.states.includes('SYN_SENT'));
}

function serverLife(run: Run, c: Conn): SocketLife | undefined {
  return run.lives.find((l) => l.local.port === PORT && l.remote.port === c.localPort);
}

function evidence(run: Run, what: string): string {
  return `${what}\ntracer printed ${run.lines.length} lines${run.lost ? ` (lost ${run.lost} events)` : ''}; first lines:\n${run.lines.slice(0, 12).join('\n') || '(none)'}`;
}

describe('Net Lab 2 — the three-way handshake and TCP states (sock:inet_sock_set_state)', () => {
  requires(...labRequires(import.meta.url));
  let r: Run;

  beforeAll(async () => {
    const peer = (await buildProgram({ src: join(REFERENCE_SRC, 'net/tcp_peer.c') })).path;
    // Static neighbour entries: no ARP before the first SYN, so connect latency is the handshake's alone.
    const hosts = await twoHosts({ staticNeighbours: true, disableIpv6: true, ips: HOSTS });
    const client = hosts.left.ns;
    const server = hosts.right.ns;
    const ip = hosts.right.ip;
    const netem = await client.exec('tc', ['qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { reject: false, timeoutMs: 10_000 });
    const noNetem = netem.exitCode === 0 ? undefined : (netem.stderr.trim() || `exit ${netem.exitCode}`);
    if (!noNetem) await client.exec('tc', ['qdisc', 'del', 'dev', 'lo', 'root'], { reject: false, timeoutMs: 10_000 });
    // The kernel's own record of the tracepoint for PORT, from before the tracer starts until after it stops.
    const record = makeTraceInstance(['sock/inet_sock_set_state'], { tag: 'tcpst', enable: false, bufferKb: 1024 });
    if (!record) throw new Error('no tracefs instances or no sock/inet_sock_set_state in /sys/kernel/tracing/events');
    writeFileSync(join(record.dir, 'events/sock/inet_sock_set_state/filter'), `sport == ${PORT} || dport == ${PORT}`);
    record.setEnabled(true);
    const bt: BpftraceSession = await startBpftrace(labSource('net/02-tcp-states/tcpstates.bt'), { ready: /^Tracing/, scriptArgs: [String(PORT)] });

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

    // Decoy connections on other ports: not the tracer's business.
    const decoys: Conn[] = [];
    for (const port of DECOYS) {
      srv = await serve(server, peer, port, 1);
      decoys.push(await connect(client, peer, ip, port, 'c'));
      await srv.exited;
    }

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

    const ports = [clientFirst, serverFirst, simultaneous.conn, delayed].map((c) => c.localPort);
    const lines = await bt.settle((l) => {
      const lives = socketLives(parseStateChanges(l));
      return ports.every((p) => lives.some((x) => x.local.port === PORT && x.remote.port === p && x.states.at(-1) === 'CLOSE')
        && lives.some((x) => x.local.port === p && x.states.at(-1) === 'CLOSE'));
    }, 5_000);
    await bt.stop();
    record.setEnabled(false);
    const kernel = record.read().events.flatMap((e) => parseKernelStateChange(e.body) ?? []);
    r = {
      hosts, lines, lives: socketLives(parseStateChanges(lines)), clientFirst, serverFirst, simultaneous: simultaneous.conn, decoys, delayed, mptcp, noMptcp, kernel,
      refusedOutput: `${refused.stdout}${refused.stderr}`.trim(), ssListening, ssClientAfter, ssServerAfter, ssSimultaneous: simultaneous.ss,
      lost: lostEvents(bt.process.output()), noNetem,
    };
  });

  it('shows the three-way handshake: the client goes CLOSE → SYN_SENT → ESTABLISHED, the server\'s new socket LISTEN → SYN_RECV → ESTABLISHED', () => {
    for (const c of [r.clientFirst, r.serverFirst]) {
      const cl = clientLife(r, c);
      const sv = serverLife(r, c);
      expect({ client: cl?.states.slice(0, 3), server: sv?.states.slice(0, 3) }, evidence(r, `connection from port ${c.localPort}: client socket ${cl ? cl.states.join(' → ') : 'not traced'}; server socket ${sv ? sv.states.join(' → ') : 'not traced'}\n${linesOf(r, c.localPort)}`))
        .toEqual({ client: ['CLOSE', 'SYN_SENT', 'ESTABLISHED'], server: ['LISTEN', 'SYN_RECV', 'ESTABLISHED'] });
    }
  });

  it('shows both close sequences: the side that closes first goes FIN_WAIT1 → FIN_WAIT2 → CLOSE, the other CLOSE_WAIT → LAST_ACK → CLOSE', () => {
    const active = ['ESTABLISHED', 'FIN_WAIT1', 'FIN_WAIT2', 'CLOSE'];
    const passive = ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSE'];
    // Each line's old state is the state the previous line of that socket entered (the kernel's oldstate is the
    // socket's state before the change): a tracer that makes the old state up breaks the chain.
    const broken: string[] = [];
    for (const c of [r.clientFirst, r.serverFirst, r.simultaneous, r.delayed]) {
      for (const life of [clientLife(r, c), serverLife(r, c)]) {
        life?.changes.forEach((ch, i) => {
          if (i > 0 && ch.from !== life.changes[i - 1]!.to) broken.push(`${life.changes[i - 1]!.line}\n${ch.line}   <- old state ${ch.from}, but the line before entered ${life.changes[i - 1]!.to}`);
        });
      }
    }
    expect(broken, evidence(r, `print the old state the tracepoint gives (args->oldstate): in each socket's lines, a change starts from the state the one before entered:\n${broken.slice(0, 6).join('\n')}`)).toEqual([]);
    for (const c of [r.clientFirst, r.serverFirst]) {
      const want = c.closer === 'c' ? { client: active, server: passive } : { client: passive, server: active };
      expect({ client: clientLife(r, c)?.states.slice(2), server: serverLife(r, c)?.states.slice(2) },
        evidence(r, `${c.closer === 'c' ? 'the client' : 'the server'} closed first (client port ${c.localPort}):\n${linesOf(r, c.localPort)}`)).toEqual(want);
    }
  });

  it('shows a simultaneous close: the server, whose FIN was lost while the client closed too, goes FIN_WAIT1 → CLOSING → CLOSE', () => {
    const c = r.simultaneous;
    const ssSide = r.ssSimultaneous.find((s) => s.local.port === PORT && s.peer.port === c.localPort);
    // The harness's own check that it made the case: the kernel showed the server's socket in CLOSING.
    expect(ssSide?.state, `ss -tan in the server's namespace after both sides closed (the spec's setup, not your tracer):\n${r.ssSimultaneous.map((s) => s.line).join('\n')}`).toBe('CLOSING');
    const sv = serverLife(r, c);
    expect(sv?.states.slice(2), evidence(r, `both sides closed before either had the other's FIN (client port ${c.localPort}); ss -tan showed the server's side: ${ssSide?.line}\n` +
      `server socket in your trace: ${sv ? sv.states.join(' → ') : 'not traced'}\n${linesOf(r, c.localPort)}\n` +
      'every state the kernel reports must print by its own name (include/net/tcp_states.h): check the whole table, not only the states of an ordinary close')).toEqual(['ESTABLISHED', 'FIN_WAIT1', 'CLOSING', 'CLOSE']);
  });

  it('prints each socket\'s own addresses: the client\'s from its address and port to the server\'s, the server\'s the other way, the listener\'s 0.0.0.0 (random addresses each run)', () => {
    const [cip, sip] = [r.hosts.left.ip, r.hosts.right.ip];
    const wrong: string[] = [];
    const expectEnds = (life: SocketLife | undefined, what: string, want: (c: StateChange, i: number) => string) => {
      if (!life) { wrong.push(`${what}: not traced`); return; }
      life.changes.forEach((c, i) => {
        const got = `${c.saddr}:${c.sport} ${c.daddr}:${c.dport}`;
        if (got !== want(c, i)) wrong.push(`${what}: printed ${got}, the event holds ${want(c, i)}\n    ${c.line}`);
      });
    };
    for (const c of [r.clientFirst, r.serverFirst, r.simultaneous, r.delayed]) {
      // A client's first change (CLOSE -> SYN_SENT) comes before its port is chosen: sport 0 there.
      expectEnds(clientLife(r, c), `client socket of port ${c.localPort}`, (ch, i) => `${cip}:${i === 0 && ch.sport === 0 ? 0 : c.localPort} ${sip}:${PORT}`);
      // A server socket's first change (LISTEN -> SYN_RECV, in the clone of the listener) holds the connection's ends
      // on 6.18, but still the listener's on 6.1 (measured in the Debian guest): the kernel's record says which.
      const ends = `${sip}:${PORT} ${cip}:${c.localPort}`;
      const listener = `0.0.0.0:${PORT} 0.0.0.0:0`;
      const recorded = (ch: StateChange, e: string) => r.kernel.some((k) => k.protocol === 6 && `${k.saddr}:${k.sport} ${k.daddr}:${k.dport}` === e && k.from === ch.from && k.to === ch.to);
      expectEnds(serverLife(r, c), `server socket of port ${c.localPort}`, (ch, i) => (i === 0 && ch.from === 'LISTEN' && ch.to === 'SYN_RECV' && recorded(ch, listener) && !recorded(ch, ends) ? listener : ends));
    }
    const listeners = r.lives.filter((l) => l.local.port === PORT && l.remote.port === 0 && l.states.includes('LISTEN'));
    if (!listeners.length) wrong.push('listener: not traced');
    for (const l of listeners) expectEnds(l, 'listener', () => `0.0.0.0:${PORT} 0.0.0.0:0`);
    expect(wrong, evidence(r, `the client's namespace has ${cip}, the server's ${sip} (chosen at random for this run), the port is ${PORT}; ` +
      `print the addresses and ports the tracepoint gives for each socket:\n${wrong.slice(0, 8).join('\n')}`)).toEqual([]);
  });

  it('agrees with ss -tan in the namespaces: LISTEN while the server listens, TIME-WAIT on the side that closed first', () => {
    const traceListen = r.lives.find((l) => l.local.port === PORT && l.remote.port === 0 && l.states.includes('LISTEN'));
    const ssListen = r.ssListening.find((s) => s.state === 'LISTEN' && s.local.port === PORT);
    expect({ trace: traceListen?.states.slice(0, 2), ss: ssListen?.state },
      evidence(r, `ss -tan in the server's namespace while it listened:\n${r.ssListening.map((s) => s.line).join('\n')}\nthe listener in the trace: ${traceListen?.changes.map((c) => c.line).join(' | ') ?? '(none)'}`))
      .toEqual({ trace: ['CLOSE', 'LISTEN'], ss: 'LISTEN' });
    // After FIN_WAIT2 -> CLOSE the socket is gone; a small TIME-WAIT socket holds the 4-tuple (ss shows it, the tracepoint does not).
    const clientTw = r.ssClientAfter.find((s) => s.local.port === r.clientFirst.localPort);
    const serverTw = r.ssServerAfter.find((s) => s.local.port === PORT && s.peer.port === r.serverFirst.localPort);
    expect({ clientClosedFirst: clientTw?.state, serverClosedFirst: serverTw?.state },
      `ss -tan after the closes\nclient namespace:\n${r.ssClientAfter.map((s) => s.line).join('\n') || '(empty)'}\nserver namespace:\n${r.ssServerAfter.map((s) => s.line).join('\n') || '(empty)'}`)
      .toEqual({ clientClosedFirst: 'TIME-WAIT', serverClosedFirst: 'TIME-WAIT' });
    // …and those are the very sockets the trace saw go through FIN_WAIT2.
    expect([clientLife(r, r.clientFirst)?.states.includes('FIN_WAIT2'), serverLife(r, r.serverFirst)?.states.includes('FIN_WAIT2')],
      evidence(r, 'the trace must show FIN_WAIT2 for the sockets ss shows in TIME-WAIT')).toEqual([true, true]);
  });

  it('shows the RST path: a SYN to a port nobody listens on takes the client from SYN_SENT straight to CLOSE', () => {
    expect(r.refusedOutput, 'tcp_peer connect to the closed port').toBe('refused');
    const refused = r.lives.filter((l) => l.remote.port === PORT && l.states.join(' ') === 'CLOSE SYN_SENT CLOSE');
    expect(refused.length, evidence(r, `expected one client socket CLOSE -> SYN_SENT -> CLOSE (no ESTABLISHED) to port ${PORT}; client lives:\n${r.lives.filter((l) => l.remote.port === PORT).map((l) => `${l.sk} ${l.local.port}: ${l.states.join(' ')}`).join('\n')}`)).toBe(1);
  });

  it('prints only the connections of the port it was given (connections on other ports are absent)', (ctx) => {
    afterCorrectness(ctx, ['shows the three-way handshake'], 'printing only its own port');
    // Any line without the port at either end is stray: the decoys' lines, and any other socket of the machine.
    const stray = [...new Set([...parseStateChanges(r.lines).filter((c) => c.sport !== PORT && c.dport !== PORT).map((c) => c.line),
      ...r.lines.filter((l) => DECOYS.some((d) => new RegExp(`:${d}\\b`).test(l)) && !new RegExp(`:${PORT}\\b`).test(l))])];
    expect(stray.slice(0, 10), `the tracer was started for port ${PORT}; connections to ports ${DECOYS.slice(0, -1).join(', ')} and ${DECOYS.at(-1)} (random, client ports ${r.decoys.map((d) => d.localPort).join(', ')}) were made meanwhile; ` +
      `${stray.length} lines have port ${PORT} at neither end: keep a socket when the given port is at either end, and no other`).toEqual([]);
  });

  it('prints only TCP sockets: the MPTCP connection on its port is absent (the tracepoint reports its MPTCP sockets, IPPROTO_MPTCP, beside their TCP subflows)', async (ctx) => {
    afterCorrectness(ctx, ['shows the three-way handshake'], 'printing only TCP sockets');
    if (!r.mptcp) {
      await adapted(ctx, `no MPTCP in this kernel (socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP): ${r.noMptcp}): no socket of another protocol passes the tracepoint, so a tracer without a protocol filter cannot be told apart here`);
      return;
    }
    const mp = r.kernel.filter((k) => k.protocol !== 6);
    // The harness's own check that it made the case: the kernel recorded the MPTCP sockets at the tracepoint.
    expect(mp.length, `the kernel's record of sock:inet_sock_set_state for port ${PORT} (the spec's setup, not your tracer) holds no change of a socket that is not TCP, ` +
      `though an MPTCP connection was made from port ${r.mptcp.localPort}:\n${r.kernel.map((k) => `protocol ${k.protocol} ${k.saddr}:${k.sport} ${k.daddr}:${k.dport} ${k.from} -> ${k.to}`).join('\n')}`).toBeGreaterThan(0);
    const extra = otherProtocolLines(parseStateChanges(r.lines), r.kernel);
    const name = (p: number) => (p === 262 ? 'MPTCP (IPPROTO_MPTCP, 262)' : `protocol ${p}`);
    expect(extra.flatMap((x) => x.lines.map((l) => l.line)).slice(0, 10), evidence(r, `an MPTCP connection was made on port ${PORT} (client port ${r.mptcp.localPort}); the kernel's record of the tracepoint (a tracefs instance) tells each change's protocol:\n` +
      extra.slice(0, 8).map((x) => `${x.key}: the kernel recorded ${x.tcp} TCP change${x.tcp === 1 ? '' : 's'} and ${[...x.other].map(([p, n]) => `${n} of ${name(p)}`).join(', ')}; you printed ${x.printed.length}:\n    ${x.printed.map((l) => l.line).join('\n    ')}`).join('\n') +
      `\nthe tracepoint reports every inet socket's state changes, not only TCP's: keep args->protocol == 6 (IPPROTO_TCP, include/uapi/linux/in.h) as well as the port (an MPTCP connection's subflows are TCP sockets and stay)`)).toEqual([]);
  });

  it('measures connect latency (SYN_SENT → ESTABLISHED) that grows by the 1 s SYN retransmission timeout when the first SYN is dropped', async (ctx) => {
    // The same method on every kernel (nftables is everywhere); where netem is missing, say so.
    if (r.noNetem) await adapted(ctx, `no sch_netem in this kernel (tc qdisc add dev lo root netem: ${r.noNetem}): the added delay is nftables dropping the first SYN, which the kernel retransmits after TCP_TIMEOUT_INIT (1 s)`);
    const plain = [r.clientFirst, r.serverFirst].map((c) => { const l = clientLife(r, c); return l && timeBetween(l, 'SYN_SENT', 'ESTABLISHED'); });
    const dl = clientLife(r, r.delayed);
    const delayed = dl && timeBetween(dl, 'SYN_SENT', 'ESTABLISHED');
    const msg = evidence(r, `connect latency from the trace: plain ${plain.join(', ')} µs, first SYN dropped ${delayed} µs; connect() as the client timed it: ${r.clientFirst.connectUs}, ${r.serverFirst.connectUs}, ${r.delayed.connectUs} µs\ndelayed connection:\n${linesOf(r, r.delayed.localPort)}`);
    expect(plain.every((p) => typeof p === 'number' && p >= 0) && typeof delayed === 'number', msg).toBe(true);
    // A clock that counts microseconds: a µs clock's last digit is anything; a coarser one's (ms x 1000, 10 µs…) is always 0.
    const stamps = parseStateChanges(r.lines).map((c) => c.us);
    expect(stamps.length >= 10 && stamps.every((us) => us % 10 === 0), evidence(r, `all ${stamps.length} timestamps your tracer printed end in 0 ` +
      `(${stamps.slice(0, 6).join(', ')}…): its clock does not count microseconds (bpftrace's nsecs counts ns: the time in µs is nsecs / 1000)`)).toBe(false);
    // The kernel's SYN_SENT -> ESTABLISHED happens inside the connect() call, so it takes no longer than connect() did
    // (+2 µs of rounding), and a handshake over the veth takes well over a microsecond.
    const outside = ([[r.clientFirst, plain[0]!], [r.serverFirst, plain[1]!], [r.delayed, delayed!]] as const)
      .filter(([c, t]) => t < 1 || t > c.connectUs + 2)
      .map(([c, t]) => `client port ${c.localPort}: SYN_SENT → ESTABLISHED ${t} µs in your trace, connect() took ${c.connectUs} µs`);
    expect(outside, `${outside.join('\n')}\nthe handshake happens inside connect(), and over the veth it takes more than 1 µs: your times must lie between 1 µs and connect()'s (+2 µs of rounding)\n${msg}`).toEqual([]);
    const base = Math.max(...(plain as number[]));
    recordMetric(ctx, { name: 'connect latency, veth', value: base, unit: 'µs', group: 'connect latency (trace)' });
    recordMetric(ctx, { name: 'connect latency, first SYN dropped', value: delayed!, unit: 'µs', group: 'connect latency (trace)' });
    // The retransmission comes one RTO after the first SYN: at least 0.9 s more, and well under the second RTO (3 s in all).
    expect(delayed! - base, msg).toBeGreaterThan(0.9 * SYN_RTO_US);
    expect(delayed!, msg).toBeLessThan(3 * SYN_RTO_US);
    // The tracer's clock and connect()'s agree: the wait for the retransmission is almost all of the connect() call.
    expect(delayed!, `${msg}\nSYN_SENT → ESTABLISHED of the delayed connection is ${r.delayed.connectUs - delayed!} µs shorter in your trace than connect() took ` +
      `(${(100 * (1 - delayed! / r.delayed.connectUs)).toFixed(1)} %): more than ${CONNECT_SLACK_US} µs means your clock does not count real microseconds ` +
      '(bpftrace\'s nsecs counts ns: divide by 1000 exactly)').toBeGreaterThanOrEqual(r.delayed.connectUs - CONNECT_SLACK_US);
  });
});
