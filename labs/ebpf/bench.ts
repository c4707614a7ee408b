/**
 * sudo npm run bench -- ebpf [--packets N] [--rounds R]
 * The XDP-vs-firewall measurement of Lab 3 at full size: N UDP datagrams
 * (default 500 000) per round, R rounds (default 3), dropped at the
 * receiving veth end by the counting XDP program (driver and generic mode)
 * and by nftables rules (netdev ingress hook, ip input hook). Prints each
 * method's best rate and its ratio to nftables input; every method's own
 * counter must show every packet dropped.
 */
import { capabilities } from '../../helpers/harness/capabilities.js';
import { buildBpfObject, buildProgram } from '../../helpers/harness/compile.js';
import { twoHosts } from '../../helpers/kernel/netns.js';
import { labSource } from '../../helpers/harness/paths.js';
import { measureDropRates, type DropMethod } from './03-xdp/drop-rates.js';

function option(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

export async function bench(args: string[]): Promise<void> {
  const packets = option(args, '--packets', 500_000);
  const rounds = option(args, '--rounds', 3);
  const caps = await capabilities();
  const missing = (['root', 'clang-bpf', 'libbpf', 'iproute2', 'nftables', 'cc'] as const).filter((id) => !caps[id].ok);
  if (missing.length) {
    console.error(`ebpf bench skipped: ${missing.map((id) => `${id} (${caps[id].detail}; fix: ${caps[id].fix})`).join('; ')}`);
    process.exitCode = 77;
    return;
  }
  const [obj, sender] = await Promise.all([
    buildBpfObject({ src: labSource('ebpf/03-xdp/xdp_counter.c') }),
    buildProgram({ src: labSource('ebpf/03-xdp/udp_sender.c') }),
  ]);
  const net = await twoHosts({ staticNeighbours: true, disableIpv6: true });
  const methods: DropMethod[] = ['xdp', 'xdpgeneric', 'nft-ingress', 'nft-input'];
  console.log(`ebpf bench: ${packets} UDP datagrams x ${rounds} rounds per method, ${net.left.ns.name} -> ${net.right.ns.name} (${net.right.ifname})`);
  const started = Date.now();
  const { results, evidence } = await measureDropRates(net, { xdpObject: obj.path, sender: sender.path, packets, rounds, methods });
  const base = results.find((r) => r.method === 'nft-input')?.pps ?? 0;
  console.log(evidence);
  console.log('\nmethod        best pps    vs nft-input  dropped/sent');
  for (const r of results) {
    const ratio = base > 0 ? (r.pps / base).toFixed(2) : '?';
    console.log(`${`${r.method}${r.mode ? ` (${r.mode})` : ''}`.padEnd(24)} ${String(r.pps).padStart(9)}  ${ratio.padStart(6)}x  ${r.dropped}/${r.sent}`);
  }
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const incomplete = results.filter((r) => r.dropped !== packets * rounds);
  if (incomplete.length) {
    console.error(`not every packet was dropped by: ${incomplete.map((r) => `${r.method} ${r.dropped}/${packets * rounds}`).join(', ')}`);
    process.exitCode = 1;
  }
}
