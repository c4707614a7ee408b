import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyLines, datagramPaths, deviceRecords, interleaved, parseNetEvent, parseTracerLine, skbKey, type NetEvent } from '../../../../labs/net/04-send-packet/skb-path.js';
import { parseTraceLine } from '../../../../helpers/kernel/tracefs.js';

// A recorded run of the instance (hash-ptr off), edited in one place: the answer's skb reuses the first datagram's address, as the kernel does.
const record = readFileSync(join(import.meta.dirname, '../../../fixtures/net/skb-path-trace.txt'), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#')).flatMap((l, i) => { const e = parseTraceLine(l); return (e && parseNetEvent(e, i)) ?? []; });
const [A, B] = ['kl-b8ab22-aaz1', 'kl-b8ab22-bbz1'];
const sent = [
  { label: 'decoy', from: A, to: B, payload: 100 },
  { label: 'target', from: A, to: B, payload: 200 },
  { label: 'answer', from: B, to: A, payload: 33 },
];

describe('skb-path', () => {
  it('reads the kernel record and cuts it into one path per datagram, even when an skb address is reused', () => {
    expect(record).toHaveLength(12);
    expect(record[2]).toMatchObject({ point: 'net_dev_xmit', dev: A, skb: 'ffff888121effc00', len: 142 });
    const paths = datagramPaths(record, sent);
    expect(paths.map((p) => [p.events.net_dev_queue?.len, p.events.netif_rx?.len, p.events.net_dev_xmit?.len, p.events.netif_receive_skb?.len]))
      .toEqual([[142, 128, 142, 128], [242, 228, 242, 228], [75, 61, 75, 61]]);
    expect(paths[2]!.events.netif_receive_skb).toMatchObject({ dev: A, index: 11 });
    expect(() => datagramPaths(record, [...sent, { label: 'more', from: A, to: B, payload: 1 }])).toThrow(/2 net_dev_queue events on kl-b8ab22-aaz1/);
  });

  it('merges one record per device (trace_clock counter) into the same paths, even when the kernel prints an empty dev= (Debian 6.1.192)', () => {
    // The fixture's events as two instances would record them: filtered to one device each, a shared counter as the clock, the name printed empty.
    const lines = readFileSync(join(import.meta.dirname, '../../../fixtures/net/skb-path-trace.txt'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    const perDev = [A, B].map((dev) => ({
      dev,
      events: lines.flatMap((l, i) => (l.includes(`dev=${dev} `) ? [parseTraceLine(l.replace(/\d+\.\d+:/, `${1000 + i}:`).replace(`dev=${dev} `, 'dev= '))!] : [])),
    }));
    expect(perDev.map((d) => d.events.length)).toEqual([6, 6]);
    const merged = deviceRecords(perDev);
    expect(merged.map((e) => [e.point, e.dev, e.skb, e.len])).toEqual(record.map((e) => [e.point, e.dev, e.skb, e.len]));
    expect(datagramPaths(merged, sent).map((p) => p.events.netif_receive_skb?.dev)).toEqual([B, B, A]);
    // Without the instance's device an empty dev= is no event.
    expect(parseNetEvent(perDev[0]!.events[0]!, 0)).toBeUndefined();
  });

  it('tells concurrent datagrams by their lengths, wherever they fall, and finds their events inside a lab\'s datagram\'s path', () => {
    let i = 0;
    const ev = (point: NetEvent['point'], dev: string, skb: string, len: number): NetEvent => ({ point, dev, skb, len, index: i++ });
    const [lab, race1, race2] = ['ffff888100000100', 'ffff888200000200', 'ffff888200000200'];
    // A racer's two skbs (one address, lengths 1300 and 1301 payload) around the lab's 200-byte datagram.
    const events = [
      ev('net_dev_queue', A, race1, 1342), ev('net_dev_queue', A, lab, 242), ev('netif_rx', B, race1, 1328), ev('netif_rx', B, lab, 228),
      ev('net_dev_xmit', A, race1, 1342), ev('netif_receive_skb', B, race1, 1328), ev('net_dev_xmit', A, lab, 242),
      ev('net_dev_queue', A, race2, 1343), ev('netif_rx', B, race2, 1329), ev('netif_receive_skb', B, lab, 228),
      ev('net_dev_xmit', A, race2, 1343), ev('netif_receive_skb', B, race2, 1329),
    ];
    const racer = { label: 'racer', from: A, to: B, payload: 1300, concurrent: true, spread: 10 };
    const paths = datagramPaths(events, [{ label: 'lab', from: A, to: B, payload: 200, lab: true }], [racer]);
    expect(paths.map((p) => [p.datagram.label, p.datagram.payload, p.events.net_dev_queue?.index, p.events.netif_receive_skb?.index])).toEqual([
      ['lab', 200, 1, 9], ['racer', 1300, 0, 5], ['racer', 1301, 7, 11],
    ]);
    expect(interleaved(paths).map((x) => [x.other.datagram.payload, x.event.point, x.event.index])).toEqual([
      [1300, 'netif_rx', 2], [1300, 'net_dev_xmit', 4], [1300, 'netif_receive_skb', 5], [1301, 'net_dev_queue', 7], [1301, 'netif_rx', 8],
    ]);
    // A line of the racer's is the racer's event, told by its length.
    const c = classifyLines([parseTracerLine(`netif_rx dev=${B} skb=0x${race2} len=1329`, 0, [A, B])!], paths);
    expect(c[0]).toMatchObject({ path: paths[2], event: { index: 8 } });
  });

  it('reads tracer lines in several styles and ignores banners and summaries', () => {
    expect(parseTracerLine('tracepoint:net:net_dev_queue dev=kl-b8ab22-aaz1 skb=0xffff888121eff300 len=242', 3, [A, B]))
      .toEqual({ line: expect.any(String), index: 3, point: 'net_dev_queue', skb: 'ffff888121eff300', len: 242, dev: A });
    expect(parseTracerLine('[1962018813] tracepoint:net:netif_receive_skb on kl-b8ab22-bbz1: skb ffff888121eff300 228 bytes', 0, [A, B]))
      .toMatchObject({ point: 'netif_receive_skb', skb: 'ffff888121eff300', len: 228, dev: B });
    expect(parseTracerLine('net_dev_xmit length: 242 ffff888121eff300', 0, [A, B])).toMatchObject({ point: 'net_dev_xmit', len: 242, dev: undefined });
    expect(parseTracerLine('Following UDP datagrams to port 7001.', 0, [A, B])).toBeUndefined();
    expect(parseTracerLine('path: net_dev_queue -> net_dev_xmit -> netif_receive_skb', 0, [A, B])).toBeUndefined();
    expect(parseTracerLine('netif_receive_skb_entry dev=x skb=0xffff888121eff300 len=1', 0, [A, B])).toBeUndefined();
    expect(skbKey('0xFFFF888121EFF300')).toBe('ffff888121eff300');
  });

  it('tells whose event a line is by address, device and length', () => {
    const paths = datagramPaths(record, sent);
    const lines = [
      'net_dev_queue dev=kl-b8ab22-aaz1 skb=0xffff888121eff300 len=242', // the target
      'net_dev_xmit dev=kl-b8ab22-aaz1 skb=0xffff888121eff300 len=228', // the target, wrong length
      'net_dev_queue dev=kl-b8ab22-bbz1 skb=0xffff888121effc00 len=75', // the answer (address reused)
      'net_dev_queue dev=eth0 skb=0xffff888121effc00 len=1514', // another device
      'net_dev_xmit dev=kl-b8ab22-aaz1 len=242', // no address
    ].flatMap((l, i) => parseTracerLine(l, i, [A, B]) ?? []);
    expect(classifyLines(lines, paths).map((c) => c.path?.datagram.label ?? '-')).toEqual(['target', 'target', 'answer', '-', '-']);
  });

  it('a line of the wrong length goes with the datagram the tracer\'s last line of that address was, though another had the address before', () => {
    const skb = 'ffff888100000700';
    const path = (label: string, payload: number, first: number) => ({
      datagram: { label, from: A, to: B, payload },
      events: Object.fromEntries((['net_dev_queue', 'netif_rx', 'net_dev_xmit', 'netif_receive_skb'] as const)
        .map((point, i) => [point, { point, dev: point === 'net_dev_queue' || point === 'net_dev_xmit' ? A : B, skb, len: payload + 28 + (point === 'net_dev_queue' || point === 'net_dev_xmit' ? 14 : 0), index: first + i }])),
    });
    const decoy = path('decoy before', 727, 0);
    const target = path('target after', 955, 4);
    const lines = [
      `net_dev_queue dev=${A} skb=0x${skb} len=997`, // the target's, exact
      `net_dev_xmit dev=${A} skb=0x${skb} len=983`, // the target's, 14 short: not the decoy's, which had the address first
      `net_dev_xmit dev=${A} skb=0x${skb} len=755`, // then the decoy's, 14 short: the target's xmit is taken
    ].flatMap((l, i) => parseTracerLine(l, i, [A, B]) ?? []);
    expect(classifyLines(lines, [decoy, target]).map((c) => c.path?.datagram.label)).toEqual(['target after', 'target after', 'decoy before']);
  });
});
