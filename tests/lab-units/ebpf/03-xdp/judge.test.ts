/** Lab 1.3's verdicts (labs/ebpf/03-xdp/judge.ts) on made-up evidence: each test's facts and the messages that explain them. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { DropRates, MethodResult } from '../../../../labs/ebpf/03-xdp/drop-rates.js';
import type { CounterCode, DropperRun, FilterRun } from '../../../../labs/ebpf/03-xdp/experiment.js';
import {
  bpfObject, countsAtomically, detached, droppedByProgram, everyFrameCounted, fewLostInVeth, filtersOnlyUdpToPort, floodDropped, xdpCostsLess,
} from '../../../../labs/ebpf/03-xdp/judge.js';
import type { MethodSummary, ReceiveCostComparison } from '../../../../labs/ebpf/03-xdp/receive-cost.js';
import type { PingStats } from '../../../../helpers/kernel/netns.js';

const pings = (received: number): PingStats => ({ transmitted: 3, received, lossPercent: 100 * (1 - received / 3), summary: `3 packets transmitted, ${received} received` });
const dropper = (over: Partial<DropperRun> = {}): DropperRun => ({
  before: pings(3), attachment: { progId: 42, mode: 'xdp' }, during: pings(0), exceptions: [], attachedAfterOff: undefined, after: pings(3), ...over,
});

describe('Lab 1.3 judge', () => {
  it('wants an ELF object for EM_BPF with an xdp section', () => {
    expect(holds(bpfObject({ path: 'o', magic: '\x7fELF', machine: 247, sections: '  [ 3] xdp   PROGBITS' }))).toBe(true);
    expect(bpfObject({ path: 'o', magic: '\x7fELF', machine: 62, sections: '  [ 3] .text PROGBITS' }).got).toEqual({ elf: true, machine: 62, xdpSection: false });
  });

  it('tells a drop from an abort: every echo lost with no xdp_exception, and nothing left after xdp off', () => {
    expect(holds(droppedByProgram(dropper()))).toBe(true);
    const aborted = droppedByProgram(dropper({ exceptions: ['ping-1 [000] xdp_exception: prog_id=42 action=ABORTED ifindex=3'] }));
    expect(aborted.got).toEqual({ transmitted: 3, received: 0, xdpExceptions: 1 });
    expect(aborted.message).toMatch(/prog id 42, mode xdp.*not because it fails/);
    expect(holds(detached(dropper({ attachedAfterOff: { progId: 42, mode: 'xdp' } })))).toBe(false);
  });

  it('wants only atomic writes into a shared counter map, and passes a per-CPU one', () => {
    const code = (writes?: CounterCode['writes']): CounterCode => ({ progId: 7, mapId: 9, mapType: 'array', writes });
    expect(holds(countsAtomically(code({ atomic: ['lock *(u64 *)(r0 +0) += r1'], racy: [], described: '' } as unknown as CounterCode['writes'])))).toBe(true);
    expect(holds(countsAtomically(code({ atomic: [], racy: ['*(u64 *)(r0 +0) = r1'], described: '' } as unknown as CounterCode['writes'])))).toBe(false);
    expect(holds(countsAtomically({ progId: 7, mapId: 9, mapType: 'percpu_array' }))).toBe(true);
  });

  it('wants the filter to stop only UDP to its port, with or without IP options, and let TCP reach TCP', () => {
    const ok: FilterRun = {
      pinged: pings(2), reachedUdp: { dropPort: 0, otherPort: 100, optionsDropPort: 0, optionsOtherPort: 50 }, tcpSynReachedTcp: true,
      stats: { XDP_DROP: 1050 }, log: '',
    };
    expect(holds(filtersOnlyUdpToPort(ok))).toBe(true);
    // A fixed 20-byte header: the options datagrams to the drop port pass, those to the other port are dropped.
    expect(holds(filtersOnlyUdpToPort({ ...ok, reachedUdp: { dropPort: 0, otherPort: 100, optionsDropPort: 50, optionsOtherPort: 0 } }))).toBe(false);
    expect(holds(filtersOnlyUdpToPort({ ...ok, tcpSynReachedTcp: false }))).toBe(false);
  });

  it('counts the veth\'s own ring drops with XDP\'s, and refuses more than 5 % of them', () => {
    const r = (dropped: number, lost: number): DropRates => ({
      results: [{ method: 'xdp', pps: 1e5, dropped, sent: 40_000, lostInVeth: lost } as MethodResult, { method: 'nft-input', pps: 5e4, dropped: 40_000, sent: 40_000, lostInVeth: 0 } as MethodResult],
      evidence: '',
    });
    expect(holds(floodDropped(r(39_000, 1000)))).toBe(true);
    expect(holds(fewLostInVeth(r(39_000, 1000)))).toBe(true);
    expect(holds(fewLostInVeth(r(37_000, 3000)))).toBe(false);
  });

  it('judges the counts on the first set and the cost on the judged one, with the margin', () => {
    const s = (ns: number, reached = 1000, counted = reached): MethodSummary => ({
      method: 'xdp', trials: [], perSecond: 1, nsPerPacket: ns, offeredPps: 1, busy: 1, waited: 0, ringFullShare: 0, sent: reached + 10, reached, ringFull: 10, counted,
    });
    const c = (first: [number, number], judged: [number, number], counted = 1000): ReceiveCostComparison => ({
      first: { xdp: s(first[0], 1000, counted), nft: s(first[1]) }, judged: { xdp: s(judged[0]), nft: s(judged[1]) }, margin: 1.5, evidence: '',
    });
    expect(holds(xdpCostsLess(c([300, 460], [200, 600])))).toBe(true);
    expect(holds(xdpCostsLess(c([300, 440], [310, 440])))).toBe(false);
    expect(holds(everyFrameCounted(c([200, 600], [200, 600])))).toBe(true);
    expect(holds(everyFrameCounted(c([200, 600], [200, 600], 999)))).toBe(false);
  });
});
