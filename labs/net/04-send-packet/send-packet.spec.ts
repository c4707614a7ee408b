/**
 * Net Lab 4 — sending a packet: one UDP datagram followed through the stack.
 *
 * The student's bpftrace script (c/net/04-send-packet/sendpath.bt, run with
 * the lab's port as $1) prints one line per net tracepoint the datagram's
 * skb passes. The spec sends, between two lab namespaces joined by a veth
 * pair, two such datagrams (a random port, random payload lengths, the second
 * with IP options) among decoys: other ports, UDP-Lite to the lab's port, one
 * as long as a lab's datagram, decoys raced from another CPU while a lab's
 * datagram is on its way, decoys that get a dropped lab's datagram's skb address (confirmed in the record, else a control fails), frames sent past the qdisc
 * (PACKET_QDISC_BYPASS: no net_dev_queue) that get one the same way,
 * a tail, four lab's datagrams back to back through a token bucket (three on their way at once), a lab's datagram the
 * peer receives on another CPU (RPS), one from a fixed source port and one from a second address of the sender, a TCP segment and a non-IPv4 frame laid out like a
 * datagram to the lab's port, and a lab's datagram built by hand in a packet socket; the receiver answers each lab's datagram from the lab's port (a decoy the other way). The kernel is the judge: the spec records the same
 * tracepoints in private tracefs instances, one per veth end (skb addresses
 * unhashed, filtered to that device, ordered by one shared counter), and
 * checks each of the script's lines against the event it claims to be.
 *
 * The lab's anatomy: experiment.ts sends and records (`Run`), skb-path.ts reads
 * the kernel's and the tracer's lines, judge.ts turns the evidence into facts
 * and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { PORT, sendThroughTracer, type Run } from './experiment.js';
import * as judge from './judge.js';

describe('Net Lab 4 — sending a packet: one UDP datagram through net_dev_queue, net_dev_xmit and the peer\'s netif_receive_skb', () => {
  requires(...labRequires(import.meta.url));
  let r: Run;

  beforeAll(async () => {
    r = await sendThroughTracer();
  });

  it('control: the kernel carries the datagram as one skb from net_dev_queue on the sender\'s veth to netif_receive_skb on the peer', (ctx) => {
    for (const p of judge.kernelRecord(r)) {
      for (const l of p.lengths) expect(l.len, l.message).toBe(l.expected);
      const o = p.order();
      expect(o.order, o.message).toEqual(o.sorted);
    }
    const t = r.target.events;
    recordMetric(ctx, { name: 'payload', value: r.target.datagram.payload, unit: 'B', group: 'the lab\'s datagram' });
    recordMetric(ctx, { name: 'len at net_dev_queue', value: t.net_dev_queue!.len, unit: 'B', group: 'the lab\'s datagram' });
    recordMetric(ctx, { name: 'len at netif_receive_skb', value: t.netif_receive_skb!.len, unit: 'B', group: 'the lab\'s datagram' });
  });

  it('control: decoys sent from another CPU at the same time pass netif_rx, net_dev_xmit or netif_receive_skb while a lab\'s datagram is on its way (the kernel\'s record)', async (ctx) => {
    if (!r.raced) {
      await adapted(ctx, 'one CPU: no decoys raced against the lab\'s datagrams, so no other skb\'s events fall inside their paths');
      return;
    }
    const c = judge.concurrency(r);
    recordMetric(ctx, { name: 'raced decoys', value: c.decoys, unit: 'datagrams', group: 'decoys from another CPU' });
    recordMetric(ctx, { name: 'their later events inside a lab\'s datagram\'s path', value: c.inside, unit: 'events', group: 'decoys from another CPU' });
    expect(c.inside, c.message).toBeGreaterThanOrEqual(1);
  });

  it('control: a decoy sent after a lab\'s datagram from the same CPU and socket got that datagram\'s skb address once the kernel was done with it (the kernel\'s record)', (ctx) => {
    const d = judge.deadAddress(r);
    recordMetric(ctx, { name: 'attempts', value: r.reuseAttempts, unit: 'batches', group: 'decoys at a dead lab\'s address' });
    recordMetric(ctx, { name: 'decoys at such an address', value: d.reused, unit: 'datagrams', group: 'decoys at a dead lab\'s address' });
    recordMetric(ctx, { name: 'of them as long as that datagram', value: d.sameLength, unit: 'datagrams', group: 'decoys at a dead lab\'s address' });
    expect(d.reused, d.message).toBeGreaterThanOrEqual(1);
  });

  it('control: a frame sent past the qdisc (no net_dev_queue) got the skb address of a lab\'s datagram once the kernel was done with it, no other skb queued at that address in between (the kernel\'s record)', (ctx) => {
    const u = judge.unqueuedAddress(r);
    recordMetric(ctx, { name: 'attempts', value: r.bypassAttempts, unit: 'batches', group: 'frames past the qdisc at a dead lab\'s address' });
    recordMetric(ctx, { name: 'frames at such an address', value: u.reused, unit: 'frames', group: 'frames past the qdisc at a dead lab\'s address' });
    expect(u.reused, u.message).toBeGreaterThanOrEqual(1);
  });

  it('control: three lab\'s datagrams are on their way at once: sent back to back through a token bucket, the later ones are queued before the second one leaves (the kernel\'s record)', () => {
    const c = judge.together(r);
    expect(c.most, c.message).toBeGreaterThanOrEqual(3);
  });

  it('control: the peer received a lab\'s datagram on another CPU than the one that sent it (RPS; the kernel\'s record)', async (ctx) => {
    if (!r.otherCpu) {
      await adapted(ctx, 'one CPU, or a kernel without RPS: every lab\'s datagram is received on the CPU that sent it');
      return;
    }
    const c = judge.otherCpuReceive(r);
    expect(c.received, c.message).toBeDefined();
    expect(c.received, c.message).not.toBe(c.queued);
  });

  it('follows the lab\'s datagrams, the one with IP options and those on their way at once too: net_dev_queue and net_dev_xmit on the sender\'s veth, then netif_receive_skb on the peer (on whichever CPU), the same skb, in that order', () => {
    const f = judge.followed(r, PORT);
    expect(f.missing, f.missingMessage).toEqual([]);
    const o = f.order();
    expect(o.at, o.message).toEqual(o.sorted);
    if (o.rx) expect(o.rx.between, o.rx.message).toBe(true);
  });

  it('reports each event\'s length as the kernel saw it: payload + 8 (UDP) + 20 (IPv4) + the IP options, + 14 (Ethernet) on the sender\'s side, before the peer pulled the Ethernet header', () => {
    const l = judge.lengths(r, PORT);
    expect(l.lines, l.noneMessage).toBeGreaterThan(0);
    expect(l.wrong, l.wrongMessage).toEqual([]);
  });

  it('prints only the lab\'s datagrams: the decoys (other ports, UDP-Lite to the lab\'s port, one of the same length, skbs on their way at the same time from another CPU, later skbs at a reused address and as long as the datagram that had it, frames sent past the qdisc at such an address, a TCP segment and a frame of another EtherType laid out like a UDP datagram to the lab\'s port), the answers coming back from the lab\'s port and other devices\' packets are absent', () => {
    const s = judge.strays(r, PORT);
    expect(s.lines, s.noneMessage).toBeGreaterThan(0);
    expect(s.stray, s.strayMessage).toEqual([]);
  });
});
