/**
 * Lab 3 — 炉火纯青: an XDP packet filter in C, loaded with iproute2.
 * The seed's "another machine pings eth0" becomes two network namespaces the
 * lab makes, joined by a veth pair: every ping, every UDP datagram and every
 * XDP attachment lives inside them and goes away with them.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LabError } from '../../../helpers/errors.js';
import { byAction, progMapByName, readCounters } from '../../../helpers/bpftool.js';
import { buildBpfObject, buildProgram } from '../../../helpers/compile.js';
import { run } from '../../../helpers/exec.js';
import { attachXdp, detachXdp, ping, twoHosts, xdpAttachment, type TwoHosts, type VethEnd } from '../../../helpers/netns.js';
import { labSource } from '../../../helpers/paths.js';
import { recordMetric } from '../../../helpers/report.js';
import { need, requires, unmet } from '../../../helpers/requires.js';

/** Port xdp_udp_filter.c drops (its DROP_PORT). */
const DROP_PORT = 7777;
const OTHER_PORT = 7778;
/** Datagrams per counting step; per rate measurement (bench uses more). */
const COUNT_PACKETS = 1000;
const RATE_PACKETS = 20_000;
const RATE_ROUNDS = 2;

interface SenderResult { sent: number; errors: number; elapsedNs: number; pps: number }

function parseSender(stdout: string): SenderResult {
  const m = stdout.match(/sent=(\d+) errors=(\d+) elapsed_ns=(\d+) pps=(\d+)/);
  if (!m) return { sent: 0, errors: 0, elapsedNs: 0, pps: 0 };
  return { sent: Number(m[1]), errors: Number(m[2]), elapsedNs: Number(m[3]), pps: Number(m[4]) };
}

/** Send `count` UDP datagrams from `from` to `to`:`port` with the student's sender. */
export async function sendUdp(sender: string, from: VethEnd, to: VethEnd, port: number, count: number): Promise<SenderResult & { stdout: string }> {
  const r = await from.ns.exec(sender, [to.ip, String(port), String(count)], { reject: false, timeoutMs: 60_000 });
  return { ...parseSender(r.stdout), stdout: `${r.command} -> exit ${r.exitCode}\n${r.stdout}${r.stderr}` };
}

/** The receiving namespace's UDP counters from /proc/net/snmp (InDatagrams, NoPorts, …). */
async function udpSnmp(end: VethEnd): Promise<Record<string, number>> {
  const text = (await end.ns.exec('cat', ['/proc/net/snmp'])).stdout;
  const [head, values] = text.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = head!.split(/\s+/).slice(1);
  const nums = values!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, nums[i] ?? 0]));
}

/**
 * Counters of the xdp_stats map of the program attached to `end`. A program
 * without that map (clang drops a map nothing uses) reads as all zeros, with
 * the reason under `problem`, so the assertion shows it.
 */
async function xdpStats(end: VethEnd): Promise<Record<string, number>> {
  const att = await xdpAttachment(end);
  if (!att) return Object.defineProperty(byAction(new Map()), 'problem', { value: `no XDP program on ${end.ifname}`, enumerable: false });
  try {
    const map = await progMapByName(att.progId, 'xdp_stats');
    return byAction(await readCounters(map.id));
  } catch (e) {
    if (e instanceof LabError && e.code === 'E_RESOURCE') {
      return Object.defineProperty(byAction(new Map()), 'problem', { value: e.message, enumerable: false });
    }
    throw e;
  }
}

/** The counters plus the reason they are missing, for assertion messages. */
function describeStats(stats: Record<string, number>): string {
  const problem = (stats as { problem?: string }).problem;
  return `${JSON.stringify(stats)}${problem ? ` (${problem})` : ''}`;
}

describe('Lab 3 — XDP packet filter with libbpf (炉火纯青)', () => {
  requires('root', 'clang-bpf', 'libbpf', 'iproute2', 'ping');

  let net: TwoHosts;
  beforeAll(async () => {
    if (await unmet(['root', 'iproute2'])) return;
    // Static neighbours and no IPv6: every packet on the wire is one this lab sent, so counts are exact.
    net = await twoHosts({ staticNeighbours: true, disableIpv6: true });
  });

  it('compiles xdp_dropper.c with clang into a BPF object with an "xdp" section', async () => {
    const obj = await buildBpfObject({ src: labSource('ebpf/xdp_dropper.c') });
    const elf = readFileSync(obj.path);
    expect(elf.subarray(0, 4).toString('latin1'), `${obj.path} is not an ELF object`).toBe('\x7fELF');
    expect(elf.readUInt16LE(18), 'e_machine of a BPF object is EM_BPF (247)').toBe(247);
    const sections = (await run('readelf', ['-S', '-W', obj.path])).stdout;
    expect(sections, `readelf -S ${obj.path}`).toMatch(/\sxdp\s/);
  });

  it('ping gets through; with xdp_dropper attached every echo is lost; after "xdp off" ping recovers', async () => {
    const obj = await buildBpfObject({ src: labSource('ebpf/xdp_dropper.c') });
    const { left, right } = net;

    const before = await ping(left, right.ip, { count: 3 });
    expect(before.received, `before XDP, ping ${right.ip} from ${left.ns.name}:\n${before.summary}`).toBe(3);

    const att = await attachXdp(right, obj.path);
    const during = await ping(left, right.ip, { count: 3, intervalS: 0.2, waitS: 1 });
    expect({ transmitted: during.transmitted, received: during.received },
      `with ${att.progName ?? 'the program'} (prog id ${att.progId}, mode ${att.mode}) on ${right.ifname}, ping must time out:\n${during.summary}`)
      .toEqual({ transmitted: 3, received: 0 });

    await detachXdp(right);
    expect(await xdpAttachment(right), `ip link show dev ${right.ifname} after xdp off`).toBeUndefined();
    const after = await ping(left, right.ip, { count: 3 });
    expect(after.received, `after xdp off:\n${after.summary}`).toBe(3);
  });

  it('counts every packet in a BPF map: xdp_stats[XDP_DROP] equals the datagrams sent (read back with bpftool)', async () => {
    const [obj, sender] = await Promise.all([
      buildBpfObject({ src: labSource('ebpf/xdp_counter.c') }),
      buildProgram({ src: labSource('ebpf/udp_sender.c') }),
    ]);
    const { left, right } = net;
    await attachXdp(right, obj.path);
    const sent = await sendUdp(sender.path, left, right, DROP_PORT, COUNT_PACKETS);
    const stats = await xdpStats(right);
    expect({ sent: sent.sent, ...stats }, `udp_sender: ${sent.stdout}\nxdp_stats: ${describeStats(stats)}`)
      .toEqual({ sent: COUNT_PACKETS, XDP_ABORTED: 0, XDP_DROP: COUNT_PACKETS, XDP_PASS: 0, XDP_TX: 0, XDP_REDIRECT: 0 });
  });

  it(`passes ICMP and drops only UDP to port ${DROP_PORT} (xdp_udp_filter, checked with real traffic and /proc/net/snmp)`, async () => {
    const [obj, sender] = await Promise.all([
      buildBpfObject({ src: labSource('ebpf/xdp_udp_filter.c') }),
      buildProgram({ src: labSource('ebpf/udp_sender.c') }),
    ]);
    const { left, right } = net;
    await attachXdp(right, obj.path);

    const pinged = await ping(left, right.ip, { count: 2 });
    const s0 = await udpSnmp(right);
    const dropped = await sendUdp(sender.path, left, right, DROP_PORT, COUNT_PACKETS);
    const s1 = await udpSnmp(right);
    const passed = await sendUdp(sender.path, left, right, OTHER_PORT, 100);
    const s2 = await udpSnmp(right);
    const stats = await xdpStats(right);
    // Nothing listens in the receiving namespace: a datagram that reaches UDP counts as NoPorts.
    const evidence = `ping: ${pinged.summary}\nudp to ${DROP_PORT}: ${dropped.stdout}\nudp to ${OTHER_PORT}: ${passed.stdout}\n` +
      `/proc/net/snmp Udp NoPorts: ${s0.NoPorts} -> ${s1.NoPorts} -> ${s2.NoPorts}\nxdp_stats: ${describeStats(stats)}`;
    expect({
      pingReceived: pinged.received,
      reachedUdpFromDropPort: (s1.NoPorts ?? 0) - (s0.NoPorts ?? 0),
      reachedUdpFromOtherPort: (s2.NoPorts ?? 0) - (s1.NoPorts ?? 0),
      xdpDrops: stats.XDP_DROP,
    }, evidence).toEqual({ pingReceived: 2, reachedUdpFromDropPort: 0, reachedUdpFromOtherPort: 100, xdpDrops: COUNT_PACKETS });
  });

  it('drops a UDP flood with XDP and with an nftables DROP rule on the same interface, and measures both rates', async (ctx) => {
    await need(ctx, 'nftables', 'cc');
    const [obj, sender] = await Promise.all([
      buildBpfObject({ src: labSource('ebpf/xdp_counter.c') }),
      buildProgram({ src: labSource('ebpf/udp_sender.c') }),
    ]);
    const result = await measureDropRates(net, obj.path, sender.path, RATE_PACKETS, RATE_ROUNDS);
    recordMetric(ctx, { name: `XDP_DROP (xdp_counter, ${result.xdpMode} mode on veth)`, value: result.xdpPps, unit: 'packets/s', group: 'drop rate' });
    recordMetric(ctx, { name: 'nftables DROP (ip input hook)', value: result.nftPps, unit: 'packets/s', group: 'drop rate' });
    recordMetric(ctx, { name: 'XDP / nftables', value: result.xdpPps / result.nftPps, unit: 'ratio', group: 'drop rate' });
    expect({ xdpDropped: result.xdpDropped, nftDropped: result.nftDropped, rates: result.xdpPps > 0 && result.nftPps > 0 }, result.evidence)
      .toEqual({ xdpDropped: RATE_PACKETS * RATE_ROUNDS, nftDropped: RATE_PACKETS * RATE_ROUNDS, rates: true });
  });
});

export interface DropRates {
  readonly xdpPps: number;
  readonly nftPps: number;
  /** Packets the XDP program counted as XDP_DROP / the nft rule's counter, over all rounds. */
  readonly xdpDropped: number;
  readonly nftDropped: number;
  /** How iproute2 attached the program (xdp = driver, xdpgeneric = skb). */
  readonly xdpMode: string;
  readonly evidence: string;
}

const NFT_TABLE = 'kl_lab3';

/**
 * Send `packets` UDP datagrams `rounds` times at the receiving end, alternately
 * dropped by the counting XDP program and by an nftables rule in the input
 * hook (where iptables' INPUT chain sits). The rate of each is the best round.
 * Both counters must show that every packet was dropped.
 */
export async function measureDropRates(net: TwoHosts, xdpObject: string, sender: string, packets: number, rounds: number): Promise<DropRates> {
  const { left, right } = net;
  const log: string[] = [];
  let xdpBest = 0, nftBest = 0, xdpDropped = 0, nftDropped = 0, xdpMode = '?';
  for (let round = 0; round < rounds; round++) {
    // XDP: the packet dies in the veth's receive path, before the IP stack.
    const att = await attachXdp(right, xdpObject);
    xdpMode = att.mode;
    const x = await sendUdp(sender, left, right, DROP_PORT, packets);
    const stats = await xdpStats(right);
    xdpDropped += stats.XDP_DROP ?? 0;
    xdpBest = Math.max(xdpBest, x.sent === packets ? x.pps : 0);
    log.push(`XDP (prog ${att.progId}, ${att.mode}): ${x.stdout.trim()} | xdp_stats ${describeStats(stats)}`);
    await detachXdp(right);

    // nftables: the packet is an sk_buff, routed, then dropped in the input hook.
    const rules = `table ip ${NFT_TABLE} {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iifname "${right.ifname}" udp dport ${DROP_PORT} counter drop\n }\n}\n`;
    await right.ns.exec('nft', ['-f', '-'], { input: rules, timeoutMs: 15_000 });
    try {
      const n = await sendUdp(sender, left, right, DROP_PORT, packets);
      const listed = (await right.ns.exec('nft', ['-j', 'list', 'table', 'ip', NFT_TABLE])).stdout;
      const counter = listed.match(/"counter":\s*\{\s*"packets":\s*(\d+)/);
      nftDropped += Number(counter?.[1] ?? 0);
      nftBest = Math.max(nftBest, n.sent === packets ? n.pps : 0);
      log.push(`nftables: ${n.stdout.trim()} | rule counter ${counter?.[1] ?? '?'} packets`);
    } finally {
      await right.ns.exec('nft', ['delete', 'table', 'ip', NFT_TABLE], { reject: false, timeoutMs: 15_000 });
    }
  }
  log.push(`best: XDP ${xdpBest} pps, nftables ${nftBest} pps`);
  return { xdpPps: xdpBest, nftPps: nftBest, xdpDropped, nftDropped, xdpMode, evidence: log.join('\n') };
}
