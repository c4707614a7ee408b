/** Lab 8.1's record and tracer readers (rx-path.ts) and verdicts (judge.ts) on made-up evidence: a correct tracer, a missing poll, a decoy's skb, another device's poll, segments printed as skbs. */
import { describe, expect, it } from 'vitest';
import { kernelMerge, phaseOf, polls, segments, skbs, softirqs, strays, type Evidence } from '../../../../labs/paths/01-receive/judge.js';
import { addrKey, insideNetRx, mergeRecords, missingFrom, parseRecordLine, parseTracerLine } from '../../../../labs/paths/01-receive/rx-path.js';

const RX = 'kl-x-b1';
const OTHER = 'kl-x-b2';
const PORT = 23456;

// Real lines of a 6.18 record (hash-ptr off, trace_clock counter), trimmed.
const POLL = (ts: number, work: number, cpu = 1) => `         rx_peer-4541    [00${cpu}] ..s1.           ${ts}: napi_poll: napi poll on napi struct ffff8881047cf000 for device ${RX} work ${work} budget 64`;
const GRO = (ts: number, skb: string, len: number) => `         rx_peer-4541    [001] ..s1.           ${ts}: napi_gro_receive_entry: dev=${RX} napi_id=0x102 queue_mapping=0 skbaddr=${skb} vlan_tagged=0 vlan_proto=0x0000 vlan_tci=0x0000 protocol=0x0800 ip_summed=2 hash=0x00000000 l4_hash=0 len=${len} data_len=0 truesize=2304 mac_header_valid=1 mac_header=-14 nr_frags=0 gso_size=0 gso_type=0`;
const RXL = (ts: number, skb: string, len: number) => `         rx_peer-4541    [001] ..s1.           ${ts}: netif_receive_skb: dev=${RX} skbaddr=${skb} len=${len}`;
const SOFT = (ts: number, what: 'entry' | 'exit', cpu = 1) => `         rx_peer-4541    [00${cpu}] ..s1.           ${ts}: softirq_${what}: vec=3 [action=NET_RX]`;

const S = (n: number) => `ffff8881500081${String(n).padStart(2, '0')}`;

function evidence(output: string[], extra: { dev: string; lines: string[] }[] = []): Evidence {
  const rxLines = [
    // phase A: a UDP decoy of 228 bytes
    SOFT(1, 'entry'), GRO(2, S(90), 228), RXL(3, S(90), 228), POLL(4, 1), SOFT(5, 'exit'),
    // phase B: SYN, then three segments merged into one skb, then a FIN
    SOFT(10, 'entry'), GRO(11, S(1), 60), RXL(12, S(1), 60), POLL(13, 1), SOFT(14, 'exit'),
    SOFT(20, 'entry'), GRO(21, S(2), 1500), GRO(22, S(3), 1500), GRO(23, S(4), 1500), RXL(24, S(2), 4396), POLL(25, 3), SOFT(26, 'exit'),
    SOFT(30, 'entry'), GRO(31, S(5), 52), RXL(32, S(5), 52), POLL(33, 1), SOFT(34, 'exit'),
    // phase C: a TCP decoy segment to the next port
    SOFT(40, 'entry'), GRO(41, S(91), 1500), RXL(42, S(91), 1500), POLL(43, 1), SOFT(44, 'exit'),
  ];
  const record = mergeRecords([{ dev: RX, lines: rxLines }, ...extra]);
  return {
    port: PORT, segments: 3, mss: 1448, rxDev: RX, otherDev: OTHER,
    phases: [{ name: 'A', end: 5 }, { name: 'B', end: 35 }, { name: 'C', end: 45 }],
    record, recordLost: false, output, lines: output.flatMap((l) => parseTracerLine(l) ?? []), lost: 0, netRx: { before: 100, after: 110 },
  };
}

const correct = [
  'poll work=1 budget=64',
  `gro skb=0x${S(1)} len=60`, `rx skb=0x${S(1)} len=60`, 'poll work=1 budget=64',
  `gro skb=0x${S(2)} len=1500`, `gro skb=0x${S(3)} len=1500`, `gro skb=0x${S(4)} len=1500`, `rx skb=0x${S(2)} len=4396`, 'poll work=3 budget=64',
  `gro skb=0x${S(5)} len=52`, `rx skb=0x${S(5)} len=52`, 'poll work=1 budget=64',
  'poll work=1 budget=64',
];

describe('Lab 8.1 record and tracer lines', () => {
  it('reads napi_poll, napi_gro_receive_entry, netif_receive_skb and NET_RX softirq lines with CPU and counter', () => {
    expect(parseRecordLine(POLL(13, 7), RX)).toEqual({ point: 'poll', dev: RX, cpu: 1, ts: 13, napi: 'ffff8881047cf000', work: 7, budget: 64 });
    expect(parseRecordLine(GRO(21, S(2), 1500), RX)).toEqual({ point: 'gro', dev: RX, cpu: 1, ts: 21, skb: S(2), len: 1500 });
    expect(parseRecordLine(RXL(24, S(2), 4396), RX)).toMatchObject({ point: 'rx', skb: S(2), len: 4396 });
    expect(parseRecordLine(SOFT(9, 'exit', 0), RX)).toEqual({ point: 'softirq_exit', dev: '', cpu: 0, ts: 9 });
    expect(parseRecordLine('   x-1 [000] ..s1. 9: softirq_entry: vec=1 [action=TIMER]', RX)).toBeUndefined();
    // 6.1 prints an empty dev=: the instance's device is the one that counts.
    expect(parseRecordLine('  x-1 [000] ..s1. 9: netif_receive_skb: dev= skbaddr=ffff888100000100 len=52', RX)).toMatchObject({ dev: RX, len: 52 });
  });

  it('reads the tracer\'s lines in the documented layouts, and nothing else', () => {
    expect(parseTracerLine('poll work=3 budget=64')).toMatchObject({ point: 'poll', work: 3, budget: 64 });
    expect(parseTracerLine('poll budget: 64 work: 3')).toMatchObject({ point: 'poll', work: 3, budget: 64 });
    expect(parseTracerLine('gro len 1500 skb ffff888150008100')).toMatchObject({ point: 'gro', skb: 'ffff888150008100', len: 1500 });
    expect(parseTracerLine('rx skb=0xFFFF888150008100 len=4396')).toMatchObject({ point: 'rx', skb: 'ffff888150008100', len: 4396 });
    expect(parseTracerLine('Watching TCP port 23456 arrive on kl-x-b1.')).toBeUndefined();
    expect(parseTracerLine('poll work=3')).toBeUndefined();
    expect(addrKey('0xABC')).toBe('0000000000000abc');
  });

  it('matches one for one', () => {
    expect(missingFrom([1, 1, 2], [1, 2], String, String)).toEqual([1]);
    expect(missingFrom([1, 2], [2, 1, 1], String, String)).toEqual([]);
  });

  it('finds the NET_RX run around each event on its own CPU', () => {
    const r = evidence([]);
    const p = r.record.filter((e) => e.point === 'poll');
    expect(insideNetRx(p, r.record)).toEqual([1, 10, 20, 30, 40]);
    const out = mergeRecords([{ dev: RX, lines: [SOFT(1, 'entry', 0), POLL(2, 1, 1), SOFT(3, 'exit', 0)] }]);
    expect(insideNetRx(out.filter((e) => e.point === 'poll'), out)).toEqual([undefined]);
  });
});

describe('Lab 8.1 judge', () => {
  it('the kernel\'s figures: segments in, fewer skbs out, the longest over the MTU, polls within budget', () => {
    const k = kernelMerge(evidence(correct));
    expect(k).toMatchObject({ gro: 5, data: 3, full: 3, bytes: 3 * 1448, rx: 3, longest: 4396, polls: 5, batched: 1, overBudget: 0, lost: false });
    expect(k.message).toContain('netif_receive_skb lengths: 60 4396 52');
    expect(phaseOf(evidence([]), { ts: 21 })).toBe('B');
  });

  it('softirqs: every poll inside NET_RX, the runs against /proc/softirqs', () => {
    const s = softirqs(evidence(correct));
    expect(s).toMatchObject({ polls: 5, outside: 0, runs: 5, delta: 10 });
  });

  it('passes a correct tracer on every check', () => {
    const r = evidence(correct);
    expect(polls(r).missing).toEqual([]);
    expect(segments(r).missing).toEqual([]);
    const k = skbs(r);
    expect(k.missing).toEqual([]);
    expect(k.mine).toBeLessThan(k.groLines);
    expect(k.longest).toBe(4396);
    expect(strays(r).stray).toEqual([]);
  });

  it('a missing poll and a wrong work are named with the kernel\'s figures', () => {
    const p = polls(evidence(correct.filter((l) => l !== 'poll work=3 budget=64').concat('poll work=64 budget=64')));
    expect(p.missing).toEqual(['poll work=3 budget=64']);
    expect(p.message).toMatch(/1 of the kernel's 5 napi_poll events of kl-x-b1 \(work\/budget: 1\/64 1\/64 3\/64 1\/64 1\/64\) have no line of yours/);
  });

  it('segments printed as skbs: the merged skb is missing', () => {
    const out = correct.filter((l) => !l.startsWith('rx ')).flatMap((l) => (l.startsWith('gro ') ? [l, l.replace('gro', 'rx')] : [l]));
    const k = skbs(evidence(out));
    expect(k.missing).toEqual([`rx skb=${S(2)} len=4396`]);
    expect(k.mine).toBe(k.groLines);
  });

  it('a decoy\'s skb, another device\'s poll and a made-up line are strays, each named by the record', () => {
    const other = { dev: OTHER, lines: [`  x-1 [000] ..s1. 27: napi_poll: napi poll on napi struct ffff888100001000 for device ${OTHER} work 2 budget 64`] };
    const r = evidence([...correct, `gro skb=${S(90)} len=228`, `rx skb=${S(91)} len=1500`, 'poll work=2 budget=64', 'poll work=5 budget=64'], [other]);
    const s = strays(r);
    expect(s.stray).toEqual([`gro skb=${S(90)} len=228`, `rx skb=${S(91)} len=1500`, 'poll work=2 budget=64', 'poll work=5 budget=64']);
    expect(s.message).toMatch(/len=228 — the kernel's record has it as: phase A on kl-x-b1: the decoys/);
    expect(s.message).toMatch(/len=1500 — the kernel's record has it as: phase C/);
    expect(s.message).toMatch(/poll work=2 budget=64 — the kernel's record has it as: the connection to port 23456 on the other device kl-x-b2/);
    expect(s.message).toMatch(/poll work=5 budget=64 — no napi_poll with these figures/);
  });

  it('a line printed twice is one too many', () => {
    expect(strays(evidence([...correct, `rx skb=0x${S(2)} len=4396`])).stray).toEqual([`rx skb=0x${S(2)} len=4396`]);
  });
});
