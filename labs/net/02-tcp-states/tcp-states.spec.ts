/**
 * Net Lab 2 — the three-way handshake and TCP states, seen from the kernel.
 *
 * The student's bpftrace script (c/net/02-tcp-states/tcpstates.bt) follows
 * tracepoint sock:inet_sock_set_state for one port. The spec makes its own
 * connections between two lab namespaces joined by a veth pair (c/net/tcp_peer.c,
 * a harness program): one the client closes first, one the server closes
 * first (in a random order), one established before the tracer starts and
 * closed by the server while it runs, one where both close at once (the server's FIN is
 * dropped until the client has closed too: CLOSING), one to a port nobody
 * listens on, three on decoy ports the tracer must leave out, an MPTCP one on
 * the lab's port (the same tracepoint reports its MPTCP socket, protocol
 * IPPROTO_MPTCP, beside its TCP subflows), and one whose
 * first SYN nftables drops (this kernel has no sch_netem, so the delay is the
 * kernel's own SYN retransmission timeout). Ports and addresses are random in
 * each run, so no answer can be written in advance. `ss -tan` is read in the
 * namespaces while it happens. The tests then read the trace as socket lives
 * (labs/net/tcp-states.ts).
  *
 * The lab's anatomy: experiment.ts makes the connections and records them
 * (`Run`), judge.ts turns the evidence into facts and messages, this file says
 * what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { traceConnections, type Run } from './experiment.js';
import * as judge from './judge.js';
import { SYN_RTO_US } from './judge.js';

describe('Net Lab 2 — the three-way handshake and TCP states (sock:inet_sock_set_state)', () => {
  requires(...labRequires(import.meta.url));
  let r: Run;

  beforeAll(async () => {
    r = await traceConnections();
  });

  it('shows the three-way handshake: the client goes CLOSE → SYN_SENT → ESTABLISHED, the server\'s new socket LISTEN → SYN_RECV → ESTABLISHED', () => {
    for (const h of judge.handshake(r)) expect(h.facts, h.message).toEqual(h.want);
  });

  it('shows both close sequences: the side that closes first goes FIN_WAIT1 → FIN_WAIT2 → CLOSE, the other CLOSE_WAIT → LAST_ACK → CLOSE', () => {
    const c = judge.closeSequences(r);
    expect(c.broken, c.brokenMessage).toEqual([]);
    for (const s of c.sequences) expect(s.facts, s.message).toEqual(s.want);
  });

  it('prints the kernel\'s old state, also for a connection established before it started: that connection\'s first lines are ESTABLISHED → FIN_WAIT1 on the server, which closes first, and ESTABLISHED → CLOSE_WAIT on the client', () => {
    const e = judge.earlyConnection(r);
    // The harness's own check that it made the case: the kernel recorded both sides leaving ESTABLISHED.
    expect(e.kernel, e.kernelMessage).toEqual(e.want);
    expect(e.facts, e.message).toEqual(e.want);
  });

  it('shows a simultaneous close: the server, whose FIN was lost while the client closed too, goes FIN_WAIT1 → CLOSING → CLOSE', () => {
    const s = judge.simultaneousClose(r);
    // The harness's own check that it made the case: the kernel showed the server's socket in CLOSING.
    expect(s.ssState, s.ssMessage).toBe('CLOSING');
    expect(s.states, s.message).toEqual(s.want);
  });

  it('prints each socket\'s own addresses: the client\'s from its address and port to the server\'s, the server\'s the other way, the listener\'s 0.0.0.0 (random addresses each run)', () => {
    const a = judge.addresses(r);
    expect(a.wrong, a.message).toEqual([]);
  });

  it('prints each change under its own socket: the socket address of every line is the tracepoint\'s skaddr, which the kernel\'s own record holds with that change (ports and states)', async (ctx) => {
    afterCorrectness(ctx, ['shows the three-way handshake'], 'printing each change under its own socket');
    if (!r.kernelSockets) {
      await adapted(ctx, `the kernel's record of the event's skaddr cannot be read here (${r.noSockets}): the socket addresses are judged only as socket lives`);
      return;
    }
    const s = judge.socketIds(r);
    // The harness's own check that the record holds the run's sockets.
    expect(s.recorded, s.message).toBeGreaterThan(0);
    expect(s.wrong, s.message).toEqual([]);
  });

  it('agrees with ss -tan in the namespaces: LISTEN while the server listens, TIME-WAIT on the side that closed first', () => {
    const s = judge.agreesWithSs(r);
    expect(s.listening.facts, s.listening.message).toEqual(s.listening.want);
    expect(s.timeWait.facts, s.timeWait.message).toEqual(s.timeWait.want);
    expect(s.finWait2.facts, s.finWait2.message).toEqual(s.finWait2.want);
  });

  it('shows the RST path: a SYN to a port nobody listens on takes the client from SYN_SENT straight to CLOSE', () => {
    expect(r.refusedOutput, 'tcp_peer connect to the closed port').toBe('refused');
    const p = judge.rstPath(r);
    expect(p.refused, p.message).toBe(1);
  });

  it('prints only the connections of the port it was given (connections on other ports are absent)', (ctx) => {
    afterCorrectness(ctx, ['shows the three-way handshake'], 'printing only its own port');
    const s = judge.strayPorts(r);
    expect(s.stray, s.message).toEqual([]);
  });

  it('prints only TCP sockets: the MPTCP connection on its port is absent (the tracepoint reports its MPTCP sockets, IPPROTO_MPTCP, beside their TCP subflows)', async (ctx) => {
    afterCorrectness(ctx, ['shows the three-way handshake'], 'printing only TCP sockets');
    if (!r.mptcp) {
      await adapted(ctx, `no MPTCP in this kernel (socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP): ${r.noMptcp}): no socket of another protocol passes the tracepoint, so a tracer without a protocol filter cannot be told apart here`);
      return;
    }
    const t = judge.onlyTcp(r, r.mptcp);
    // The harness's own check that it made the case: the kernel recorded the MPTCP sockets at the tracepoint.
    expect(t.otherInKernel, t.kernelMessage).toBeGreaterThan(0);
    expect(t.printed, t.message).toEqual([]);
  });

  it('prints only state changes the kernel made: each printed change on the port (ends and states) at most as often as the kernel\'s own record holds it for a TCP socket, and no other line naming an address at the port', (ctx) => {
    afterCorrectness(ctx, ['shows the three-way handshake'], 'printing only changes the kernel made');
    const m = judge.madeByKernel(r);
    expect(m.invented, m.message).toEqual([]);
    expect(m.unparsed, m.message).toEqual([]);
  });

  it('prints every state change the kernel made on the port while it ran: each TCP change in the kernel\'s own record between its ready line and the end of the last connection (listeners\' and MPTCP subflows\' too)', () => {
    const e = judge.everyChangePrinted(r);
    // The harness's own check: the record holds the run's changes.
    expect(e.recorded, e.message).toBeGreaterThan(0);
    expect(e.missing, e.message).toEqual([]);
  });

  it('measures connect latency (SYN_SENT → ESTABLISHED) that grows by the 1 s SYN retransmission timeout when the first SYN is dropped, in microseconds that agree with the kernel\'s own record of the same two changes', async (ctx) => {
    // The same method on every kernel (nftables is everywhere); where netem is missing, say so.
    if (r.noNetem) await adapted(ctx, `no sch_netem in this kernel (tc qdisc add dev lo root netem: ${r.noNetem}): the added delay is nftables dropping the first SYN, which the kernel retransmits after TCP_TIMEOUT_INIT (1 s)`);
    const l = judge.connectLatency(r);
    expect(l.measured, l.message).toBe(true);
    expect(l.coarseClock, l.coarseMessage).toBe(false);
    expect(l.outside, l.outsideMessage).toEqual([]);
    recordMetric(ctx, { name: 'connect latency, veth', value: l.base, unit: 'µs', group: 'connect latency (trace)' });
    recordMetric(ctx, { name: 'connect latency, first SYN dropped', value: l.delayed, unit: 'µs', group: 'connect latency (trace)' });
    // The retransmission comes one RTO after the first SYN: at least 0.9 s more, and well under the second RTO (3 s in all).
    expect(l.delayed - l.base, l.message).toBeGreaterThan(0.9 * SYN_RTO_US);
    expect(l.delayed, l.message).toBeLessThan(3 * SYN_RTO_US);
    // The tracer's clock and connect()'s agree: the wait for the retransmission is almost all of the connect() call.
    expect(l.delayed, l.slowClockMessage).toBeGreaterThanOrEqual(l.atLeast);
    // And the kernel's: its own record of the same two state changes took as long, to a fraction of a millisecond.
    expect(l.kernelUs, l.kernelMessage).toBeDefined();
    expect(l.clockOff, l.clockMessage).toBeLessThanOrEqual(l.clockSlack);
  });
});
