/** Net Lab 4's verdicts (labs/net/04-send-packet/judge.ts) on a made-up run: a correct tracer, a wrong length, a stray decoy, a wrong order. */
import { describe, expect, it } from 'vitest';
import type { Run } from '../../../../labs/net/04-send-packet/experiment.js';
import { deadAddress, expectedLen, followed, kernelRecord, lengths, otherCpuReceive, strays, together, unqueuedAddress } from '../../../../labs/net/04-send-packet/judge.js';
import { classifyLines, datagramPaths, interleaved, NET_POINTS, parseTracerLine, reusedAddresses, unqueuedReuses, type DatagramPath, type NetEvent } from '../../../../labs/net/04-send-packet/skb-path.js';

const [A, B] = ['kl-x-a', 'kl-x-b'];
const PORT = 12345;

function path(label: string, payload: number, skb: string, first: number, from = A, to = B): DatagramPath {
  const d = { label, from, to, payload };
  const events: Partial<Record<(typeof NET_POINTS)[number], NetEvent>> = {};
  NET_POINTS.forEach((point, i) => { events[point] = { point, dev: point === 'net_dev_queue' || point === 'net_dev_xmit' ? from : to, skb, len: expectedLen(d, point), index: first + i }; });
  return { datagram: d, events };
}

const decoy = path('decoy to port 12346', 300, 'ffff888100000100', 0);
const target = path(`the lab's datagram to port ${PORT}`, 200, 'ffff888100000200', 4);

function run(output: string[], paths = [decoy, target]): Run {
  const parsed = output.flatMap((l, i) => parseTracerLine(l, i, [A, B]) ?? []);
  return { targets: [paths[1]!], target: paths[1]!, paths, record: paths.flatMap((p) => Object.values(p.events)), recordLost: false, output, lines: classifyLines(parsed, paths), lost: 0,
    raced: false, otherCpu: false, together: [], raceDecoy: { label: 'decoy raced', from: A, to: B, payload: 1300, concurrent: true }, interleaved: interleaved(paths),
    reuse: reusedAddresses(paths), reuseAttempts: 1, reuseTries: 8, unqueued: [], bypassAttempts: 1, bypassTries: 8 };
}
const line = (point: string, dev: string, skb: string, len: number) => `${point} dev=${dev} skb=0x${skb} len=${len}`;
const correct = [
  line('net_dev_queue', A, target.events.net_dev_queue!.skb, 242),
  line('net_dev_xmit', A, target.events.net_dev_queue!.skb, 242),
  line('netif_receive_skb', B, target.events.net_dev_queue!.skb, 228),
];

describe('Net Lab 4 judge', () => {
  it('the kernel record: lengths and order hold for well-formed paths', () => {
    for (const p of kernelRecord(run(correct))) {
      for (const l of p.lengths) expect(l.len).toBe(l.expected);
      expect(p.order().order).toEqual(p.order().sorted);
    }
  });

  it('a correct tracer: nothing missing, in order, right lengths, no strays', () => {
    const r = run(correct);
    expect(followed(r, PORT).missing).toEqual([]);
    expect(followed(r, PORT).order().at).toEqual([[0, 1, 2]]);
    expect(lengths(r, PORT)).toMatchObject({ lines: 3, wrong: [] });
    expect(strays(r, PORT)).toMatchObject({ lines: 3, stray: [] });
  });

  it('a missing receive, the wrong order, a wrong length and a decoy are each named', () => {
    expect(followed(run(correct.slice(0, 2)), PORT).missing).toEqual([`the lab's datagram to port ${PORT}: netif_receive_skb`]);
    const swapped = run([correct[1]!, correct[0]!, correct[2]!]);
    const o = followed(swapped, PORT).order();
    expect(o.at).not.toEqual(o.sorted);
    expect(o.message).toMatch(/queue -> xmit -> receive/);
    const short = run([correct[0]!.replace('len=242', 'len=200'), ...correct.slice(1)]);
    expect(lengths(short, PORT).wrong).toEqual([expect.stringMatching(/len 200, but the kernel's net_dev_queue reported len=242 = 200 \+ 8 \+ 20 \+ 14/)]);
    const withDecoy = run([line('net_dev_queue', A, decoy.events.net_dev_queue!.skb, 342), ...correct]);
    expect(strays(withDecoy, PORT).stray).toEqual([expect.stringMatching(/decoy to port 12346 \(300 bytes\)/)]);
  });

  it('a raced decoy\'s event recorded just before the lab\'s net_dev_queue is still named as raced, with the skb-address hint', () => {
    // Another CPU: the tracer's probe may run before the tracefs event, so "just before" in the record can be "inside" for the tracer.
    const raced: DatagramPath = { datagram: { label: 'decoy to port 12399, sent from CPU 1', from: A, to: B, payload: 1300, concurrent: true }, events: {
      net_dev_queue: { point: 'net_dev_queue', dev: A, skb: 'ffff888100000900', len: 1342, index: 20 },
      netif_rx: { point: 'netif_rx', dev: B, skb: 'ffff888100000900', len: 1328, index: 23 },
      net_dev_xmit: { point: 'net_dev_xmit', dev: A, skb: 'ffff888100000900', len: 1342, index: 40 },
      netif_receive_skb: { point: 'netif_receive_skb', dev: B, skb: 'ffff888100000900', len: 1328, index: 41 },
    } };
    const late = path(`the lab's datagram to port ${PORT}`, 200, 'ffff888100000200', 24);
    const r = { ...run([line('netif_rx', B, 'ffff888100000900', 1328), ...correct], [decoy, late, raced]), raced: true };
    expect(r.interleaved).toEqual([]);
    expect(strays(r, PORT).stray).toEqual([expect.stringMatching(/line 1 .*sent from CPU 1 \(1300 bytes\), the kernel's netif_rx .* — recorded next to the lab's datagram to port 12345's net_dev_queue \(#24\) … netif_receive_skb \(#27\)/)]);
    expect(strays(r, PORT).strayMessage).toMatch(/a map keyed by args->skbaddr/);
    // Far from every lab's datagram, it is a stray like any other, without the hint.
    const far = { ...raced, events: { ...raced.events, netif_rx: { ...raced.events.netif_rx!, index: 10 } } };
    const r2 = { ...run([line('netif_rx', B, 'ffff888100000900', 1328), ...correct], [decoy, late, far]), raced: true };
    expect(strays(r2, PORT).strayMessage).not.toMatch(/a map keyed by args->skbaddr/);
  });

  it('IP options count in the length; a decoy of the same length at the same address is told apart by order', () => {
    const opt = { ...path('opt', 158, 'ffff888100000300', 8), datagram: { label: 'opt', from: A, to: B, payload: 150, ipOptions: 8, lab: true } };
    expect(expectedLen(opt.datagram, 'net_dev_queue')).toBe(150 + 8 + 20 + 8 + 14);
    // The decoy after it: the same address (the slab reused it), the same length (its payload is longer by the options).
    const same = path('decoy to port 12346, as long as', 158, 'ffff888100000300', 12);
    const paths = [decoy, target, opt, same];
    const lines = [...correct, line('net_dev_queue', A, 'ffff888100000300', 200), line('net_dev_xmit', A, 'ffff888100000300', 200), line('netif_receive_skb', B, 'ffff888100000300', 186), line('net_dev_xmit', A, 'ffff888100000300', 200)];
    const r = { ...run(lines, paths), targets: [target, opt] };
    expect(r.lines.map((c) => c.path?.datagram.label)).toEqual([target.datagram.label, target.datagram.label, target.datagram.label, 'opt', 'opt', 'opt', same.datagram.label]);
    expect(followed(r, PORT).missing).toEqual([]);
    expect(strays(r, PORT).stray).toEqual([expect.stringMatching(/line 7 .*decoy to port 12346, as long as .*the slab reused it/)]);
    expect(strays(r, PORT).strayMessage).toMatch(/the kernel's record: opt: #8 net_dev_queue .* #11 netif_receive_skb .*; then decoy to port 12346, as long as \(158 bytes\): #12 net_dev_queue .*delete its map entry at netif_receive_skb/);
    expect(deadAddress(r)).toMatchObject({ reused: 1 });
  });

  it('a dead address: only a decoy after the lab\'s datagram\'s netif_receive_skb counts, and its absence is the experiment\'s failure', () => {
    const lab = { ...path('lab', 150, 'ffff888100000400', 0), datagram: { label: 'lab', from: A, to: B, payload: 150, lab: true } };
    const labAgain = { ...path('lab again', 160, 'ffff888100000400', 4), datagram: { label: 'lab again', from: A, to: B, payload: 160, lab: true } };
    const after = path('decoy after', 170, 'ffff888100000400', 8);
    const elsewhere = path('decoy elsewhere', 180, 'ffff888100000500', 12);
    expect(reusedAddresses([lab, labAgain, elsewhere])).toEqual([]);
    expect(reusedAddresses([lab, labAgain, after, elsewhere])).toEqual([{ lab: labAgain, decoy: after }]);
    // A decoy queued before the lab's datagram's last event is not at a dead address.
    const early = path('decoy early', 190, 'ffff888100000400', 2);
    expect(reusedAddresses([lab, early])).toEqual([]);
    const none = { ...run(correct, [decoy, lab, elsewhere]), targets: [lab], target: lab };
    expect(deadAddress(none).reused).toBe(0);
    expect(deadAddress(none).message).toMatch(/^the experiment could not set up the condition: in 1 of 8 attempts /);
    expect(deadAddress(none).message).toMatch(/\n {2}lab: net_dev_queue dev=kl-x-a skbaddr=0xffff888100000400/);
  });
  it('a frame past the qdisc: its path starts at netif_rx; at a dead lab\'s address with nothing queued there since, a tracer that kept following prints a stray', () => {
    const X = 'ffff888100000400';
    const ev = (point: (typeof NET_POINTS)[number], dev: string, skb: string, len: number, index: number): NetEvent => ({ point, dev, skb, len, index });
    const labD = { label: 'lab', from: A, to: B, payload: 150, lab: true };
    const frame = { label: 'frame past the qdisc', from: A, to: B, payload: 170, bypass: true };
    const frame2 = { label: 'frame past the qdisc 2', from: A, to: B, payload: 171, bypass: true };
    const record = [
      ev('net_dev_queue', A, X, 192, 0), ev('netif_rx', B, X, 178, 1), ev('net_dev_xmit', A, X, 192, 2), ev('netif_receive_skb', B, X, 178, 3),
      ev('netif_rx', B, X, 198, 4), ev('netif_receive_skb', B, X, 198, 5),
      ev('netif_rx', B, X, 199, 6), ev('netif_receive_skb', B, X, 199, 7),
    ];
    const paths = datagramPaths(record, [labD, frame, frame2]);
    expect(paths.map((p) => Object.keys(p.events))).toEqual([['net_dev_queue', 'netif_rx', 'net_dev_xmit', 'netif_receive_skb'], ['netif_rx', 'netif_receive_skb'], ['netif_rx', 'netif_receive_skb']]);
    expect(paths[1]!.events.netif_rx!.index).toBe(4);
    expect(unqueuedReuses(paths).map((x) => x.decoy.datagram.label)).toEqual([frame.label, frame2.label]);
    // An skb queued at that address in between: a tracer deciding at every net_dev_queue was reset there.
    const queuedBetween = datagramPaths([...record.slice(0, 4), ev('net_dev_queue', A, X, 242, 4), ev('netif_rx', B, X, 228, 5), ev('net_dev_xmit', A, X, 242, 6), ev('netif_receive_skb', B, X, 228, 7),
      ev('netif_rx', B, X, 198, 8), ev('netif_receive_skb', B, X, 198, 9)], [labD, { label: 'decoy', from: A, to: B, payload: 200 }, frame]);
    expect(unqueuedReuses(queuedBetween)).toEqual([]);
    const lines = [line('net_dev_queue', A, X, 192), line('net_dev_xmit', A, X, 192), line('netif_receive_skb', B, X, 178), line('netif_rx', B, X, 198), line('netif_receive_skb', B, X, 198)];
    const r = { ...run(lines, paths), targets: [paths[0]!], target: paths[0]!, unqueued: unqueuedReuses(paths) };
    for (const p of kernelRecord(r)) for (const l of p.lengths) expect(l.len).toBe(l.expected);
    expect(unqueuedAddress(r).reused).toBe(2);
    expect(strays(r, PORT).stray).toHaveLength(2);
    expect(strays(r, PORT).strayMessage).toMatch(/you followed a frame that passed no net_dev_queue .*#4 netif_rx dev=kl-x-b skbaddr=0xffff888100000400 len=198/);
    expect(unqueuedAddress({ ...r, unqueued: [] }).message).toMatch(/^the experiment could not set up the condition: in 1 of 8 attempts /);
  });

  it('a debugging line that names no tracepoint but the skb of another datagram is a stray; one naming the lab\'s skb is not', () => {
    expect(strays(run([...correct, `skip skb=0x${decoy.events.net_dev_queue!.skb} len=314`]), PORT).stray).toHaveLength(1);
    expect(strays(run([...correct, `followed 0x${target.events.net_dev_queue!.skb}`]), PORT).stray).toEqual([]);
  });

  it('the token bucket: how many of its lab\'s datagrams were on their way at once; the CPUs of the receive on another CPU', () => {
    // a queued at 10, xmit at 30; b queued at 12, c at 14 (before a's xmit): three at once. One after another: one.
    const at = (label: string, skb: string, q: number, x: number): DatagramPath => {
      const p = path(label, 900, skb, q);
      return { ...p, events: { ...p.events, net_dev_xmit: { ...p.events.net_dev_xmit!, index: x }, netif_receive_skb: { ...p.events.netif_receive_skb!, index: x + 1 } } };
    };
    const [a, b, c] = [at('a', 'ffff888100000a00', 10, 30), at('b', 'ffff888100000b00', 12, 40), at('c', 'ffff888100000c00', 14, 50)];
    expect(together({ ...run(correct), together: [a, b, c] }).most).toBe(3);
    const [d, e] = [at('d', 'ffff888100000d00', 10, 11), at('e', 'ffff888100000e00', 20, 21)];
    expect(together({ ...run(correct), together: [d, e] }).most).toBe(1);
    const rps = { ...target, events: { ...target.events, net_dev_queue: { ...target.events.net_dev_queue!, cpu: 0 }, netif_receive_skb: { ...target.events.netif_receive_skb!, cpu: 1 } } };
    expect(otherCpuReceive({ ...run(correct), rpsTarget: rps })).toMatchObject({ queued: 0, received: 1 });
  });
});
