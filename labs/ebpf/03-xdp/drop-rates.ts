/**
 * Where a packet dies, and how fast: the XDP-vs-firewall measurement shared
 * by the XDP spec (small) and `npm run bench -- ebpf` (large). The sender in
 * the left namespace floods UDP datagrams at the right end; each method drops
 * them there, and its own counter must show every packet dropped.
 */
import { byAction, progMapByName, readCounters } from '../../../helpers/kernel/bpftool.js';
import { LabError } from '../../../helpers/harness/errors.js';
import { attachXdp, detachXdp, xdpAttachment, type TwoHosts, type VethEnd, type XdpMode } from '../../../helpers/kernel/netns.js';

/** Port xdp_udp_filter.c drops (its DROP_PORT), also the flood's destination. */
export const DROP_PORT = 7777;

export interface SenderResult { readonly sent: number; readonly errors: number; readonly elapsedNs: number; readonly pps: number }

export function parseSender(stdout: string): SenderResult {
  const m = stdout.match(/sent=(\d+) errors=(\d+) elapsed_ns=(\d+) pps=(\d+)/);
  if (!m) return { sent: 0, errors: 0, elapsedNs: 0, pps: 0 };
  return { sent: Number(m[1]), errors: Number(m[2]), elapsedNs: Number(m[3]), pps: Number(m[4]) };
}

/** A namespace's counters of one protocol from /proc/net/snmp (Udp: InDatagrams, NoPorts, …; Tcp: OutRsts, …). */
export async function snmpOf(end: VethEnd, proto: 'Udp' | 'Tcp'): Promise<Record<string, number>> {
  const text = (await end.ns.exec('cat', ['/proc/net/snmp'], { timeoutMs: 10_000 })).stdout;
  const [head, values] = text.split('\n').filter((l) => l.startsWith(`${proto}:`));
  const names = head!.split(/\s+/).slice(1);
  const nums = values!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, nums[i] ?? 0]));
}

/** Send `count` UDP datagrams from `from` to `to`:`port` with the student's udp_sender. */
export async function sendUdp(sender: string, from: VethEnd, to: VethEnd, port: number, count: number): Promise<SenderResult & { readonly stdout: string }> {
  const r = await from.ns.exec(sender, [to.ip, String(port), String(count)], { reject: false, timeoutMs: 120_000 });
  return { ...parseSender(r.stdout), stdout: `${r.command} -> exit ${r.exitCode}\n${r.stdout}${r.stderr}` };
}

/**
 * Counters of the xdp_stats map of the program attached to `end`. A program
 * without that map (clang drops a map nothing uses) reads as all zeros, with
 * the reason in a non-enumerable `problem`, so that the assertion shows it.
 */
export async function xdpStats(end: VethEnd): Promise<Record<string, number>> {
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
export function describeStats(stats: Record<string, number>): string {
  const problem = (stats as { problem?: string }).problem;
  return `${JSON.stringify(stats)}${problem ? ` (${problem})` : ''}`;
}

/**
 * The drop methods:
 * - xdp / xdpgeneric: the counting XDP program in driver mode (veth's own XDP
 *   support) or generic mode (after the sk_buff exists);
 * - nft-ingress: an nftables rule in the netdev ingress hook (tc's level);
 * - nft-input: an nftables rule in the ip input hook, where iptables' INPUT chain sits.
 */
export type DropMethod = 'xdp' | 'xdpgeneric' | 'nft-ingress' | 'nft-input';

export interface MethodResult {
  readonly method: DropMethod;
  /** Best round, packets per second as the sender saw them go. */
  readonly pps: number;
  /** Packets the method's own counter saw dropped, over all rounds. */
  readonly dropped: number;
  readonly sent: number;
  /** For XDP: datagrams the veth pair dropped before the program ran (its ring full), over all rounds. */
  readonly lostInVeth: number;
  /** For XDP: how iproute2 attached it. */
  readonly mode?: string;
}

export interface DropRates {
  readonly results: readonly MethodResult[];
  readonly evidence: string;
}

const NFT_TABLE = 'kl_lab3';

function nftRules(method: 'nft-ingress' | 'nft-input', ifname: string): string {
  return method === 'nft-input'
    ? `table ip ${NFT_TABLE} {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iifname "${ifname}" udp dport ${DROP_PORT} counter drop\n }\n}\n`
    : `table netdev ${NFT_TABLE} {\n chain ingress {\n  type filter hook ingress device "${ifname}" priority 0; policy accept;\n  ip protocol udp udp dport ${DROP_PORT} counter drop\n }\n}\n`;
}

/**
 * Datagrams the veth pair itself dropped before the receiving end's XDP saw
 * them: with an XDP program attached, veth hands packets to the peer through
 * a 256-entry ring, and a sender faster than the peer's NAPI (a TCG guest)
 * overflows it — counted as the sender end's TX dropped (or the peer's RX dropped).
 */
async function vethDrops(net: TwoHosts): Promise<number> {
  const read = async (end: VethEnd, dir: 'tx' | 'rx') => {
    const r = await end.ns.exec('ip', ['-s', '-j', 'link', 'show', 'dev', end.ifname], { reject: false, timeoutMs: 10_000 });
    try { return Number((JSON.parse(r.stdout) as { stats64?: Record<string, { dropped?: number }> }[])[0]?.stats64?.[dir]?.dropped ?? 0); } catch { return 0; }
  };
  return (await read(net.left, 'tx')) + (await read(net.right, 'rx'));
}

async function oneRound(net: TwoHosts, method: DropMethod, xdpObject: string, sender: string, packets: number): Promise<{ pps: number; dropped: number; sent: number; lostInVeth: number; mode?: string; log: string }> {
  const { left, right } = net;
  if (method === 'xdp' || method === 'xdpgeneric') {
    const att = await attachXdp(right, xdpObject, { mode: method as XdpMode });
    try {
      const lost0 = await vethDrops(net);
      const x = await sendUdp(sender, left, right, DROP_PORT, packets);
      const lostInVeth = (await vethDrops(net)) - lost0;
      const stats = await xdpStats(right);
      return { pps: x.sent === packets ? x.pps : 0, dropped: stats.XDP_DROP ?? 0, sent: x.sent, lostInVeth, mode: att.mode,
        log: `${method} (prog ${att.progId}, ${att.mode}): ${x.stdout.trim()} | xdp_stats ${describeStats(stats)}${lostInVeth ? ` | dropped by the veth pair before XDP (its ring was full): ${lostInVeth}` : ''}` };
    } finally {
      await detachXdp(right, method as XdpMode);
    }
  }
  const family = method === 'nft-input' ? 'ip' : 'netdev';
  await right.ns.exec('nft', ['-f', '-'], { input: nftRules(method, right.ifname), timeoutMs: 15_000 });
  try {
    const n = await sendUdp(sender, left, right, DROP_PORT, packets);
    const listed = (await right.ns.exec('nft', ['-j', 'list', 'table', family, NFT_TABLE], { timeoutMs: 15_000 })).stdout;
    const counter = listed.match(/"counter":\s*\{\s*"packets":\s*(\d+)/);
    return { pps: n.sent === packets ? n.pps : 0, dropped: Number(counter?.[1] ?? 0), sent: n.sent, lostInVeth: 0, log: `${method}: ${n.stdout.trim()} | rule counter ${counter?.[1] ?? '?'} packets` };
  } finally {
    await right.ns.exec('nft', ['delete', 'table', family, NFT_TABLE], { reject: false, timeoutMs: 15_000 });
  }
}

/**
 * Flood `packets` datagrams per round, `rounds` times per method, methods
 * interleaved so that a burst of load elsewhere on the machine hits all of
 * them alike. A method's rate is its best round.
 */
export async function measureDropRates(net: TwoHosts, opts: { readonly xdpObject: string; readonly sender: string; readonly packets: number; readonly rounds: number; readonly methods: readonly DropMethod[] }): Promise<DropRates> {
  const log: string[] = [];
  const acc = new Map<DropMethod, { pps: number; dropped: number; sent: number; lostInVeth: number; mode?: string }>();
  for (let round = 0; round < opts.rounds; round++) {
    for (const method of opts.methods) {
      const r = await oneRound(net, method, opts.xdpObject, opts.sender, opts.packets);
      const a = acc.get(method) ?? { pps: 0, dropped: 0, sent: 0, lostInVeth: 0 };
      acc.set(method, { pps: Math.max(a.pps, r.pps), dropped: a.dropped + r.dropped, sent: a.sent + r.sent, lostInVeth: a.lostInVeth + r.lostInVeth, mode: r.mode ?? a.mode });
      log.push(`round ${round + 1} ${r.log}`);
    }
  }
  const results = opts.methods.map((method) => ({ method, ...acc.get(method)! }));
  log.push(`best: ${results.map((r) => `${r.method} ${r.pps} pps`).join(', ')}`);
  return { results, evidence: log.join('\n') };
}
