/**
 * Lab 1.3's verdicts: pure functions from the experiment's evidence
 * (experiment.ts: the object clang made, ping and xdp:xdp_exception around the
 * dropper, the counter's xdp_stats against the sender's kernel count, its
 * translated code, the filter's /proc/net/snmp counts, the two measurements)
 * to what each test compares — `got` against `want` — with the message that
 * shows the evidence. Unit-tested on made-up evidence in
 * tests/lab-units/ebpf/03-xdp/judge.test.ts.
 */
import type { DropRates, MethodResult } from './drop-rates.js';
import { describeStats } from './drop-rates.js';
import type { BpfObject, CounterCode, CounterRun, DropperRun, FilterRun } from './experiment.js';
import { COST_ROUNDS, COST_SECONDS, COUNT_PACKETS, DROP_PORT, OPTION_PACKETS, OTHER_PORT, PASSED_PACKETS, RATE_PACKETS, RATE_ROUNDS } from './experiment.js';
import type { ReceiveCostComparison } from './receive-cost.js';

import type { Verdict } from '../../../helpers/harness/verdict.js';

export type { Verdict };

/** EM_BPF in the ELF header's e_machine. */
export const EM_BPF = 247;

export function bpfObject(o: BpfObject): Verdict<{ elf: boolean; machine: number; xdpSection: boolean }> {
  return {
    got: { elf: o.magic === '\x7fELF', machine: o.machine, xdpSection: /\sxdp\s/.test(o.sections) },
    want: { elf: true, machine: EM_BPF, xdpSection: true },
    message: `${o.path}: an ELF object (magic 7f 45 4c 46) whose e_machine is EM_BPF (${EM_BPF}), with a section named "xdp"; readelf -S -W:\n${o.sections}`,
  };
}

export function pingBefore(r: DropperRun): Verdict<number> {
  return { got: r.before.received, want: 3, message: `before XDP, 3 pings across the lab's veth pair:\n${r.before.summary}` };
}

/** With the dropper attached every echo is lost, and not as a program error (XDP_ABORTED shows on xdp:xdp_exception). */
export function droppedByProgram(r: DropperRun): Verdict<{ transmitted: number; received: number; xdpExceptions: number }> {
  const { attachment: att, during, exceptions } = r;
  return {
    got: { transmitted: during.transmitted, received: during.received, xdpExceptions: exceptions.length },
    want: { transmitted: 3, received: 0, xdpExceptions: 0 },
    message: `with your workspace file ebpf/03-xdp/xdp_dropper.c (prog id ${att.progId}, mode ${att.mode}) attached, ping must time out because the program drops, ` +
      `not because it fails (xdp:xdp_exception lines of this program: ${exceptions.length}):\n${during.summary}\n${exceptions.slice(0, 3).join('\n')}`,
  };
}

export function detached(r: DropperRun): Verdict<string | undefined> {
  return { got: r.attachedAfterOff && `prog id ${r.attachedAfterOff.progId} (${r.attachedAfterOff.mode})`, want: undefined, message: 'the XDP program ip link shows on the interface after "xdp off"' };
}

export function pingAfter(r: DropperRun): Verdict<number> {
  return { got: r.after.received, want: 3, message: `after xdp off:\n${r.after.summary}` };
}

export function countsEveryPacket(r: CounterRun): Verdict<Record<string, number>> {
  return {
    got: { sent: r.sentByKernel, ...r.stats },
    want: { sent: COUNT_PACKETS, XDP_ABORTED: 0, XDP_DROP: COUNT_PACKETS, XDP_PASS: 0, XDP_TX: 0, XDP_REDIRECT: 0 },
    message: `your workspace files ebpf/03-xdp/xdp_counter.c and udp_sender.c; the sender's /proc/net/snmp Udp OutDatagrams grew by ${r.sentByKernel}; ` +
      `udp_sender: ${r.senderOutput}\nxdp_stats read back with bpftool: ${describeStats(r.stats)}`,
  };
}

/**
 * This lab's flows reach one CPU at a time, so the count test cannot see a lost update: the instructions can. A
 * per-CPU map has a slot per CPU (no two CPUs write the same counter); a shared one needs atomic adds.
 */
export function countsAtomically(c: CounterCode): Verdict<{ atomicAdds: boolean; otherWrites: readonly string[] }> {
  const want = { atomicAdds: true, otherWrites: [] };
  if (!c.writes) return { got: want, want, message: `xdp_stats (map id ${c.mapId}) is a ${c.mapType} map: a slot per CPU` };
  const { atomic, racy, described } = c.writes;
  return {
    got: { atomicAdds: atomic.length > 0, otherWrites: racy },
    want,
    message: `your workspace file ebpf/03-xdp/xdp_counter.c: xdp_stats (map id ${c.mapId}) is a ${c.mapType} map, and on a NIC with several receive ` +
      'queues every CPU runs the program at once: each write into a slot must be an atomic add ("lock *(u64 *)(rX +0) += rY" or ' +
      `atomic64_fetch_add in bpftool prog dump xlated id ${c.progId}). A load, an add and a plain store lose counts when two CPUs do it at once.\n` +
      `writes into xdp_stats's values (followed from map[id:${c.mapId}] through the lookup, registers and stack):\n${described}`,
  };
}

export function filtersOnlyUdpToPort(r: FilterRun): Verdict<Record<string, number | boolean>> {
  return {
    got: {
      pingReceived: r.pinged.received,
      reachedUdpFromDropPort: r.reachedUdp.dropPort,
      reachedUdpFromOtherPort: r.reachedUdp.otherPort,
      reachedUdpWithOptionsFromDropPort: r.reachedUdp.optionsDropPort,
      reachedUdpWithOptionsFromOtherPort: r.reachedUdp.optionsOtherPort,
      tcpSynReachedTcp: r.tcpSynReachedTcp,
      xdpDrops: r.stats.XDP_DROP ?? 0,
    },
    want: {
      pingReceived: 2, reachedUdpFromDropPort: 0, reachedUdpFromOtherPort: PASSED_PACKETS,
      reachedUdpWithOptionsFromDropPort: 0, reachedUdpWithOptionsFromOtherPort: OPTION_PACKETS,
      tcpSynReachedTcp: true, xdpDrops: COUNT_PACKETS + OPTION_PACKETS,
    },
    message: `${r.log}\nxdp_stats: ${describeStats(r.stats)}\nA datagram to ${DROP_PORT} that reached UDP passed your filter; one to another port (${OTHER_PORT}) that did not reach it was dropped. ` +
      'The UDP header starts where the IPv4 header ends (its length field, include/uapi/linux/ip.h), and only UDP has a UDP header.',
  };
}

/** The flood: every datagram dropped by each method's own counter (the veth's own ring drops counted for XDP), and both rates measured. */
export function floodDropped(d: DropRates): Verdict<{ xdpDropped: number; nftDropped: number; rates: boolean }> {
  const [xdp, nft] = d.results as [MethodResult, MethodResult];
  const total = RATE_PACKETS * RATE_ROUNDS;
  return {
    got: { xdpDropped: xdp.dropped + xdp.lostInVeth, nftDropped: nft.dropped, rates: xdp.pps > 0 && nft.pps > 0 },
    want: { xdpDropped: total, nftDropped: total, rates: true },
    message: d.evidence,
  };
}

/** The veth pair's own drops (its ring full, seen only in a slow TCG guest so far) must stay a small part of the flood. */
export function fewLostInVeth(d: DropRates): Verdict<boolean> {
  const xdp = d.results[0]!;
  const total = RATE_PACKETS * RATE_ROUNDS;
  return { got: xdp.lostInVeth <= total * 0.05, want: true, message: `datagrams the veth pair dropped before XDP ran (its ring was full): ${xdp.lostInVeth}, at most 5 % of ${total}\n${d.evidence}` };
}

/**
 * Exact, on the first set: every frame the generator sent either found the receiving ring full (the veth's own
 * counter) or was taken from it by NAPI; every frame taken must be in the method's own counter (xdp_stats, the nft rule counter).
 */
export function everyFrameCounted(c: ReceiveCostComparison): Verdict<Record<string, number | boolean>> {
  const { xdp, nft } = c.first;
  return {
    got: { xdpCounted: xdp.counted, xdpAccounted: xdp.reached + xdp.ringFull, nftCounted: nft.counted, nftAccounted: nft.reached + nft.ringFull, reachedBoth: xdp.reached > 0 && nft.reached > 0 },
    want: { xdpCounted: xdp.reached, xdpAccounted: xdp.sent, nftCounted: nft.reached, nftAccounted: nft.sent, reachedBoth: true },
    message: `your workspace file ebpf/03-xdp/xdp_counter.c against an nftables rule, ${COST_ROUNDS} alternating trials of ${COST_SECONDS} s each:\n${c.evidence}`,
  };
}

/** The receiving NAPI thread's CPU per packet (medians of the judged set): XDP_DROP at most 1/margin of the nftables drop. */
export function xdpCostsLess(c: ReceiveCostComparison): Verdict<boolean> {
  const { xdp, nft } = c.judged;
  return {
    got: xdp.nsPerPacket * c.margin < nft.nsPerPacket,
    want: true,
    message: `CPU time of the receiving NAPI thread per packet (medians): XDP_DROP ${xdp.nsPerPacket.toFixed(0)} ns, ` +
      `nftables ingress drop ${nft.nsPerPacket.toFixed(0)} ns; XDP must cost at most 1/${c.margin} of nftables\n${c.evidence}`,
  };
}
