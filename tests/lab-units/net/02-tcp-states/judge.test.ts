/** Net Lab 2's verdicts (labs/net/02-tcp-states/judge.ts) on made-up runs: a correct tracer's lines, and the ways a wrong one shows. */
import { describe, expect, it } from 'vitest';
import type { Conn, Run } from '../../../../labs/net/02-tcp-states/experiment.js';
import {
  addresses, agreesWithSs, closeSequences, connectLatency, earlyConnection, everyChangePrinted, handshake, madeByKernel, onlyTcp, rstPath, simultaneousClose, socketIds, strayPorts,
} from '../../../../labs/net/02-tcp-states/judge.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRawSocketChanges, parseSs, parseStateChange, parseStateChanges, socketLives, TCP_STATES, type KernelSocketChange, type KernelStateChange } from '../../../../labs/net/tcp-states.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../../fixtures/net', name), 'utf8');

const PORT = 31_337;
const DECOYS = [31_338, 1_234, 50_001];
const [CIP, SIP] = ['10.77.3.9', '10.77.3.4'];

/** One connection's tracer lines: the client's socket (sk c), the server's (sk s), from `t0` (µs), the handshake taking `hs` µs. */
function connection(conn: Conn, c: string, s: string, t0: number, hs: number, ending: 'c' | 's' | 'both' = conn.closer): string[] {
  const cl = (t: number, from: string, to: string, sport = conn.localPort) => `${t} ${c} ${CIP}:${sport} ${SIP}:${PORT} ${from} -> ${to}`;
  const sv = (t: number, from: string, to: string) => `${t} ${s} ${SIP}:${PORT} ${CIP}:${conn.localPort} ${from} -> ${to}`;
  const active = ['ESTABLISHED', 'FIN_WAIT1', 'FIN_WAIT2', 'CLOSE'];
  const passive = ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSE'];
  const closing = ['ESTABLISHED', 'FIN_WAIT1', 'CLOSING', 'CLOSE'];
  const seq = (side: typeof cl, states: string[], t: number) => states.slice(1).map((to, i) => side(t + 3 * i + 1, states[i]!, to));
  return [
    cl(t0, 'CLOSE', 'SYN_SENT', 0), sv(t0 + 17, 'LISTEN', 'SYN_RECV'), cl(t0 + hs, 'SYN_SENT', 'ESTABLISHED'), sv(t0 + hs + 9, 'SYN_RECV', 'ESTABLISHED'),
    ...seq(cl, ending === 'c' ? active : passive, t0 + hs + 101),
    ...seq(sv, ending === 's' ? active : ending === 'both' ? closing : passive, t0 + hs + 211),
  ];
}

const clientFirst: Conn = { closer: 'c', localPort: 40_001, connectUs: 61 };
const serverFirst: Conn = { closer: 's', localPort: 40_002, connectUs: 67 };
const simultaneous: Conn = { closer: 's', localPort: 40_003, connectUs: 59 };
const delayed: Conn = { closer: 'c', localPort: 40_004, connectUs: 1_003_115 };
const mptcp: Conn = { closer: 'c', localPort: 40_005, connectUs: 80 };
const preexisting: Conn = { closer: 's', localPort: 40_006, connectUs: 70 };
const decoys: Conn[] = DECOYS.map((_, i) => ({ closer: 'c', localPort: 41_000 + i, connectUs: 50 }));

const ss = (...rows: string[]) => parseSs(['State Recv-Q Send-Q Local Address:Port Peer Address:Port Process', ...rows].join('\n'));

function traced(lines: string[], extra: Partial<Run> = {}): Run {
  return {
    port: PORT, decoyPorts: DECOYS, hosts: { left: { ip: CIP }, right: { ip: SIP } } as Run['hosts'],
    lines, lives: socketLives(parseStateChanges(lines)), clientFirst, serverFirst, simultaneous, decoys, delayed, mptcp, kernel: [], preexisting, window: { from: 0, to: 0 },
    refusedOutput: 'refused',
    ssListening: ss(`LISTEN 0 16 0.0.0.0:${PORT} 0.0.0.0:*`),
    ssClientAfter: ss(`TIME-WAIT 0 0 ${CIP}:${clientFirst.localPort} ${SIP}:${PORT}`),
    ssServerAfter: ss(`TIME-WAIT 0 0 ${SIP}:${PORT} ${CIP}:${serverFirst.localPort}`),
    ssSimultaneous: ss(`CLOSING 0 1 ${SIP}:${PORT} ${CIP}:${simultaneous.localPort}`),
    lost: 0, ...extra,
  };
}

/** A correct tracer's lines for the run: the close of the connection made before it, the listener, the four connections, the refused one. */
function goodLines(): string[] {
  const early = (t: number, sk: string, local: string, remote: string, from: string, to: string) => `${t} ${sk} ${local} ${remote} ${from} -> ${to}`;
  const [srv, cli] = [`${SIP}:${PORT}`, `${CIP}:${preexisting.localPort}`];
  return [
    early(500, '0xffff8880cc000009', srv, cli, 'ESTABLISHED', 'FIN_WAIT1'), early(530, '0xffff8880bb00000a', cli, srv, 'ESTABLISHED', 'CLOSE_WAIT'),
    early(540, '0xffff8880cc000009', srv, cli, 'FIN_WAIT1', 'FIN_WAIT2'), early(560, '0xffff8880aa000009', `0.0.0.0:${PORT}`, '0.0.0.0:0', 'LISTEN', 'CLOSE'),
    early(570, '0xffff8880bb00000a', cli, srv, 'CLOSE_WAIT', 'LAST_ACK'), early(590, '0xffff8880cc000009', srv, cli, 'FIN_WAIT2', 'CLOSE'),
    early(600, '0xffff8880bb00000a', cli, srv, 'LAST_ACK', 'CLOSE'),
    `1000 0xffff8880aa000001 0.0.0.0:${PORT} 0.0.0.0:0 CLOSE -> LISTEN`,
    ...connection(clientFirst, '0xffff8880bb000001', '0xffff8880cc000001', 2_000, 53),
    ...connection(serverFirst, '0xffff8880bb000002', '0xffff8880cc000002', 3_000, 57),
    ...connection(simultaneous, '0xffff8880bb000003', '0xffff8880cc000003', 4_000, 51, 'both'),
    `5000 0xffff8880bb000009 ${CIP}:0 ${SIP}:${PORT} CLOSE -> SYN_SENT`, `5043 0xffff8880bb000009 ${CIP}:40100 ${SIP}:${PORT} SYN_SENT -> CLOSE`,
    ...connection(delayed, '0xffff8880bb000004', '0xffff8880cc000004', 6_000, 1_003_071),
  ];
}

/** The kernel's record of the changes the lines print (TCP), timestamps from the lines (µs -> s); with their sockets. */
const record = (lines: string[]): KernelStateChange[] => lines.flatMap((l) => {
  const c = parseStateChange(l);
  return c ? [{ protocol: 6, saddr: c.saddr, sport: c.sport, daddr: c.daddr, dport: c.dport, from: c.from, to: c.to, ts: c.us / 1e6 }] : [];
});
/**
 * The same record with the sockets, as the experiment reads it: the changes the lines print written into ring buffer
 * pages (trace_pipe_raw: a 16-byte page header, each event a 4-byte header with type_len 18 and the 72-byte record
 * at the offsets of the event's format file, recorded on 6.18), parsed back.
 */
function recordSockets(lines: string[]): KernelSocketChange[] {
  const events = parseStateChanges(lines).map((c) => {
    const e = Buffer.alloc(76);
    e.writeUInt32LE((1 << 5) | 18, 0);
    e.writeUInt16LE(2287, 4); e.writeBigUInt64LE(BigInt(c.sk), 12); e.writeInt32LE(TCP_STATES.indexOf(c.from as never), 20); e.writeInt32LE(TCP_STATES.indexOf(c.to as never), 24);
    e.writeUInt16LE(c.sport, 28); e.writeUInt16LE(c.dport, 30); e.writeUInt16LE(2, 32); e.writeUInt16LE(6, 34);
    return e;
  });
  const pages: Buffer[] = [];
  for (let i = 0; i < events.length; i += 50) {
    const data = Buffer.concat(events.slice(i, i + 50));
    const page = Buffer.alloc(4096);
    page.writeBigUInt64LE(BigInt(data.length), 8);
    data.copy(page, 16);
    pages.push(page);
  }
  return parseRawSocketChanges(pages, readFileSync(join(import.meta.dirname, '../../../fixtures/tracefs/header_page.txt'), 'utf8'), fixture('inet_sock_set_state-format.txt'));
}

const kernelChange = (protocol: number, from: string, to: string): KernelStateChange => ({ protocol, saddr: CIP, sport: mptcp.localPort, daddr: SIP, dport: PORT, from, to });

describe('Net Lab 2 judge', () => {
  it('a correct tracer\'s run passes every verdict', () => {
    const r = traced(goodLines(), { kernel: [kernelChange(262, 'CLOSE', 'SYN_SENT'), kernelChange(6, 'CLOSE', 'SYN_SENT')] });
    for (const h of handshake(r)) expect(h.facts, h.message).toEqual(h.want);
    const c = closeSequences(r);
    expect(c.broken).toEqual([]);
    for (const s of c.sequences) expect(s.facts, s.message).toEqual(s.want);
    const s = simultaneousClose(r);
    expect([s.ssState, s.states]).toEqual(['CLOSING', s.want]);
    expect(addresses(r).wrong).toEqual([]);
    const a = agreesWithSs(r);
    for (const x of [a.listening, a.timeWait, a.finWait2]) expect(x.facts, x.message).toEqual(x.want);
    expect(rstPath(r).refused).toBe(1);
    expect(strayPorts(r).stray).toEqual([]);
    const t = onlyTcp(r, mptcp);
    expect([t.otherInKernel, t.printed]).toEqual([1, []]);
    const l = connectLatency(r);
    expect([l.measured, l.coarseClock, l.outside]).toEqual([true, false, []]);
    expect([l.base, l.delayed]).toEqual([57, 1_003_071]);
    expect(l.delayed - l.base).toBeGreaterThan(900_000);
    expect(l.delayed).toBeGreaterThanOrEqual(l.atLeast);
  });

  it('only changes the kernel made: a printed change the record lacks, or has fewer times, and a line at the port the parser skips', () => {
    const kernel = record(goodLines());
    expect(madeByKernel(traced(goodLines(), { kernel }))).toMatchObject({ invented: [], unparsed: [] });
    const invented = [...goodLines(), `9000000 0xffff8880bb000004 ${CIP}:40004 ${SIP}:${PORT} CLOSE -> TIME_WAIT`];
    expect(madeByKernel(traced(invented, { kernel })).invented).toHaveLength(1);
    const twice = [...goodLines(), goodLines()[1]!];
    expect(madeByKernel(traced(twice, { kernel })).invented).toHaveLength(1);
    const tagged = [...goodLines(), `7000 0xffff8880dd000001 ${CIP}:40005 ${SIP}:${PORT} CLOSE -> SYN_SENT proto=262`];
    expect(madeByKernel(traced(tagged, { kernel })).unparsed).toHaveLength(1);
    // The delayed connection against the kernel's record: agrees (the same times), or a clock 0.8 % slow does not.
    const l = connectLatency(traced(goodLines(), { kernel }));
    expect([l.kernelUs, l.clockOff]).toEqual([1_003_071, 0]);
    const slow = goodLines().map((x) => x.replace(/^(\d+)/, (t) => String(Math.round(Number(t) * 0.992))));
    const s = connectLatency(traced(slow, { kernel }));
    expect(s.clockOff).toBeGreaterThan(s.clockSlack);
  });

  it('the connection made before the tracer: its first lines hold the kernel\'s old state, not one guessed for a socket never seen', () => {
    const kernel = record(goodLines());
    const e = earlyConnection(traced(goodLines(), { kernel }));
    expect([e.kernel, e.facts]).toEqual([e.want, e.want]);
    const guessed = goodLines().map((l) => l.replace(/ESTABLISHED -> (FIN_WAIT1|CLOSE_WAIT)$/, 'CLOSE -> $1'));
    const g = earlyConnection(traced(guessed, { kernel }));
    expect(g.facts).toEqual({ server: 'CLOSE -> FIN_WAIT1', client: 'CLOSE -> CLOSE_WAIT' });
    expect(g.message).toMatch(/client port 40006[\s\S]*server socket: your first line .*CLOSE -> FIN_WAIT1; the kernel recorded ESTABLISHED -> FIN_WAIT1, want ESTABLISHED -> FIN_WAIT1/);
    expect(earlyConnection(traced(goodLines())).kernel).toEqual({ server: undefined, client: undefined });
  });

  it('every change the kernel recorded while the tracer ran is printed: a listener\'s close left out shows, lost events excuse as many, the window bounds it', () => {
    const kernel = record(goodLines());
    const window = { from: 0, to: 2 };
    expect(everyChangePrinted(traced(goodLines(), { kernel, window }))).toMatchObject({ recorded: kernel.length, missing: [] });
    const noListenerClose = goodLines().filter((l) => !/LISTEN -> CLOSE$/.test(l));
    const m = everyChangePrinted(traced(noListenerClose, { kernel, window }));
    expect(m.missing).toEqual([`0.0.0.0:${PORT} 0.0.0.0:0 LISTEN -> CLOSE: the kernel recorded it 1 time, you printed 0`]);
    expect(m.message).toMatch(/1 of them are missing from your lines/);
    expect(everyChangePrinted(traced(noListenerClose, { kernel, window, lost: 1 })).missing).toEqual([]);
    // Only the window counts: the listener's close at 560 µs, before it, is not required.
    expect(everyChangePrinted(traced(noListenerClose, { kernel, window: { from: 0.000_9, to: 2 } })).missing).toEqual([]);
  });

  it('socket addresses: each printed change under the socket the kernel recorded it for; an id made up from the ports is not', () => {
    const kernelSockets = recordSockets(goodLines());
    // The record read back from the ring buffer's pages is the lines' changes, each under its socket.
    expect(kernelSockets).toEqual(parseStateChanges(goodLines()).map((c) => ({ sk: c.sk, protocol: 6, sport: c.sport, dport: c.dport, from: c.from, to: c.to })));
    expect(socketIds(traced(goodLines(), { kernelSockets }))).toMatchObject({ recorded: kernelSockets.length, wrong: [] });
    // Bare hex (no 0x) is the same address.
    expect(socketIds(traced(goodLines().map((l) => l.replace(/ 0x(\w+) /, ' $1 ')), { kernelSockets })).wrong).toEqual([]);
    const madeUp = goodLines().map((l) => l.replace(/ 0xffff8880bb000001 /, ' 0xffff88809c419c3d '));
    const s = socketIds(traced(madeUp, { kernelSockets }));
    expect(s.wrong).toHaveLength(5);
    expect(s.wrong[0]).toMatch(/0xffff88809c419c3d .* <- the kernel recorded 0 → 31337 CLOSE -> SYN_SENT for 0xffff8880bb000001/);
  });

  it('a tracer that keeps only the client side: the server socket is not traced', () => {
    const r = traced(goodLines().filter((l) => !l.includes(`${SIP}:${PORT} ${CIP}`)));
    expect(handshake(r)[0]!.message).toMatch(/server socket not traced/);
    expect(addresses(r).wrong).toContain(`server socket of port ${clientFirst.localPort}: not traced`);
  });

  it('an old state made up from the new one breaks the chain; an off-by-one state table shows in the sequences', () => {
    const faked = goodLines().map((l) => l.replace(/ESTABLISHED -> FIN_WAIT1$/, 'SYN_RECV -> FIN_WAIT1'));
    expect(closeSequences(traced(faked)).brokenMessage).toMatch(/old state SYN_RECV, but the line before entered ESTABLISHED/);
    const names = ['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
    const shifted = goodLines().map((l) => l.replace(/(\w+) -> (\w+)$/, (_, a: string, b: string) => `${names[(names.indexOf(a) + 1) % names.length]} -> ${names[(names.indexOf(b) + 1) % names.length]}`));
    expect(handshake(traced(shifted))[0]!.facts).not.toEqual(handshake(traced(shifted))[0]!.want);
  });

  it('CLOSING and TIME_WAIT swapped: the simultaneous close shows FIN_WAIT1 → TIME_WAIT', () => {
    const r = traced(goodLines().map((l) => l.replace(/FIN_WAIT1 -> CLOSING$/, 'FIN_WAIT1 -> TIME_WAIT').replace(/CLOSING -> CLOSE$/, 'TIME_WAIT -> CLOSE')));
    const s = simultaneousClose(r);
    expect(s.states).toEqual(['ESTABLISHED', 'FIN_WAIT1', 'TIME_WAIT', 'CLOSE']);
    expect(s.message).toMatch(/server socket in your trace: .*FIN_WAIT1 → TIME_WAIT/);
  });

  it('addresses written in advance are not the event\'s', () => {
    const r = traced(goodLines().map((l) => l.replaceAll(CIP, '10.199.2.1').replaceAll(SIP, '10.199.2.2')));
    expect(addresses(r).message).toMatch(/printed 10\.199\.2\.\d:\d+ 10\.199\.2\.\d:\d+, the event holds/);
  });

  it('a server socket\'s first change may hold the listener\'s ends where the kernel recorded them so (6.1)', () => {
    const lines = goodLines().map((l) => l.replace(new RegExp(`^(\\d+ \\S+) ${SIP}:${PORT} ${CIP}:\\d+ LISTEN -> SYN_RECV$`), `$1 0.0.0.0:${PORT} 0.0.0.0:0 LISTEN -> SYN_RECV`));
    const kernel: KernelStateChange[] = [{ protocol: 6, saddr: '0.0.0.0', sport: PORT, daddr: '0.0.0.0', dport: 0, from: 'LISTEN', to: 'SYN_RECV' }];
    expect(addresses(traced(lines, { kernel })).wrong).toEqual([]);
    expect(addresses(traced(lines)).wrong[0]).toMatch(/printed 0\.0\.0\.0:31337 0\.0\.0\.0:0, the event holds 10\.77\.3\.4:31337/);
  });

  it('ss without TIME-WAIT on the side that closed first, and a refused connection not traced', () => {
    const r = traced(goodLines().filter((l) => !l.startsWith('50')), { ssClientAfter: [] });
    expect(agreesWithSs(r).timeWait.facts).toEqual({ clientClosedFirst: undefined, serverClosedFirst: 'TIME-WAIT' });
    expect(rstPath(r).refused).toBe(0);
  });

  it('lines of other ports are strays: no port filter, or one that leaves out only the decoys it expects', () => {
    const decoy = `7000 0xffff8880dd000001 ${CIP}:41001 ${SIP}:1234 CLOSE -> SYN_SENT`;
    const s = strayPorts(traced([...goodLines(), decoy, '7100 0xffff8880dd000002 127.0.0.1:22 127.0.0.1:5555 ESTABLISHED -> CLOSE']));
    expect(s.stray).toEqual([decoy, '7100 0xffff8880dd000002 127.0.0.1:22 127.0.0.1:5555 ESTABLISHED -> CLOSE']);
    expect(s.message).toMatch(/connections to ports 31338, 1234 and 50001[\s\S]*2 lines have port 31337 at neither end/);
  });

  it('MPTCP: the tracer printed a change only an MPTCP socket explains', () => {
    const kernel = [kernelChange(262, 'CLOSE', 'SYN_SENT'), kernelChange(6, 'CLOSE', 'SYN_SENT')];
    const line = (sk: string) => `8000 ${sk} ${CIP}:${mptcp.localPort} ${SIP}:${PORT} CLOSE -> SYN_SENT`;
    const t = onlyTcp(traced([...goodLines(), line('0xffff8880ee000001'), line('0xffff8880ee000002')], { kernel }), mptcp);
    expect(t.printed).toHaveLength(1);
    expect(t.message).toMatch(/the kernel recorded \d+ TCP changes? and \d+ of MPTCP \(IPPROTO_MPTCP, 262\); you printed \d+:[\s\S]*keep args->protocol == 6/);
    expect(onlyTcp(traced(goodLines()), mptcp).otherInKernel).toBe(0);
  });

  it('clocks: milliseconds printed as µs, a clock 2.4 % slow, a missing delayed connection', () => {
    const ms = goodLines().map((l) => l.replace(/^(\d+)/, (t) => String(Math.round(Number(t) / 1000) * 1000)));
    const coarse = connectLatency(traced(ms));
    expect(coarse.coarseClock).toBe(true);
    expect(coarse.coarseMessage).toMatch(/does not count microseconds/);
    const slow = goodLines().map((l) => l.replace(/^(\d+)/, (t) => String(Math.floor((Number(t) * 1000) / 1024))));
    const s = connectLatency(traced(slow));
    expect(s.delayed).toBeLessThan(s.atLeast);
    expect(s.slowClockMessage).toMatch(/shorter in your trace than connect\(\) took .*your clock does not count real microseconds/);
    const none = connectLatency(traced(goodLines().filter((l) => !l.includes(':40004 '))));
    expect(none.measured).toBe(false);
    const outside = connectLatency(traced(goodLines(), { clientFirst: { ...clientFirst, connectUs: 20 } }));
    expect(outside.outside).toEqual([`client port ${clientFirst.localPort}: SYN_SENT → ESTABLISHED 53 µs in your trace, connect() took 20 µs`]);
  });
});
