/**
 * sudo npm run bench -- ebpf [--seconds S] [--rounds R] [--packets N] [--no-sender]
 *
 * Lab 1.3's XDP-vs-firewall measurement at full size, on the lab's veth pair
 * (both ends in lab namespaces):
 *
 * 1. Receiver-bound (the answer): the in-kernel generator c/ebpf/xdp_trafficgen.c
 *    (live XDP frames redirected into the sending end, see 03-xdp/receive-cost.ts)
 *    offers more frames than the receiving end can take, for S seconds per
 *    trial (default 1), R alternating rounds (default 5) of: native XDP_DROP
 *    (xdp_counter), generic XDP, nftables drop at netdev ingress, at ip
 *    prerouting (raw priority) and at ip input, and no filter (a closed UDP
 *    port). Per method, medians: packets dropped per second of the window, CPU
 *    time of the receiving NAPI thread per packet, and what that makes per
 *    CPU-second; ratios against nftables.
 * 2. Sender-bound (why the old figure misled): N datagrams per round (default
 *    200 000) from the student's udp_sender, the same methods as before; every
 *    method drops at the sender's rate.
 *
 * Every method's own counter must show every packet that reached it dropped.
 */
import { capabilities } from '../../helpers/harness/capabilities.js';
import { buildBpfObject, buildProgram } from '../../helpers/harness/compile.js';
import { twoHosts } from '../../helpers/kernel/netns.js';
import { labSource } from '../../helpers/harness/paths.js';
import { measureDropRates, type DropMethod } from './03-xdp/drop-rates.js';
import { buildGenerator, measureReceiveCost, METHOD_LABEL, type MethodSummary, type ReceiveMethod } from './03-xdp/receive-cost.js';

function option(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function table(summaries: readonly MethodSummary[], seconds: number): string {
  const byMethod = new Map(summaries.map((s) => [s.method, s]));
  const xdp = byMethod.get('xdp');
  const lines = [
    `method                                    dropped/s   receiver ns/pkt   pkts per CPU-s   receiver ran/waited   offered/s   ring full   counted/reached`,
  ];
  for (const s of summaries) {
    lines.push(`${METHOD_LABEL[s.method].padEnd(40)} ${fmt(s.perSecond).padStart(11)} ${s.nsPerPacket.toFixed(0).padStart(17)} ${fmt(s.nsPerPacket > 0 ? 1e9 / s.nsPerPacket : 0).padStart(16)} ` +
      `${`${(s.busy * 100).toFixed(0)} % / ${(s.waited * 100).toFixed(0)} %`.padStart(20)} ${fmt(s.offeredPps).padStart(11)} ${`${(s.ringFullShare * 100).toFixed(0)} %`.padStart(11)}   ${s.counted}/${s.reached}`);
  }
  lines.push(`(medians of ${summaries[0]?.trials.length ?? 0} trials of ${seconds} s per method; "receiver ns/pkt" = CPU time of the receiving end's NAPI thread / frames it took from the ring)`);
  if (xdp) {
    lines.push('', 'XDP_DROP (native) against each method:            dropped/s ratio   CPU per packet ratio');
    for (const s of summaries.filter((x) => x.method !== 'xdp')) {
      const rate = s.perSecond > 0 ? xdp.perSecond / s.perSecond : NaN;
      const cpu = xdp.nsPerPacket > 0 ? s.nsPerPacket / xdp.nsPerPacket : NaN;
      lines.push(`  vs ${METHOD_LABEL[s.method].padEnd(42)} ${rate.toFixed(2).padStart(10)}x ${cpu.toFixed(1).padStart(18)}x cheaper`);
    }
  }
  return lines.join('\n');
}

export async function bench(args: string[]): Promise<void> {
  const seconds = option(args, '--seconds', 1);
  const rounds = option(args, '--rounds', 5);
  const packets = option(args, '--packets', 200_000);
  const withSender = !args.includes('--no-sender');
  const caps = await capabilities();
  const missing = (['root', 'clang-bpf', 'libbpf', 'iproute2', 'nftables', 'cc'] as const).filter((id) => !caps[id].ok);
  if (missing.length) {
    console.error(`ebpf bench skipped: ${missing.map((id) => `${id} (${caps[id].detail}; fix: ${caps[id].fix})`).join('; ')}`);
    process.exitCode = 77;
    return;
  }
  const [obj, sender, gen] = await Promise.all([
    buildBpfObject({ src: labSource('ebpf/03-xdp/xdp_counter.c') }),
    buildProgram({ src: labSource('ebpf/03-xdp/udp_sender.c') }),
    buildGenerator(),
  ]);
  const failures: string[] = [];
  const started = Date.now();

  // 1. Receiver-bound: a pair of its own (threaded NAPI and GRO change how the receiving end takes packets).
  {
    const net = await twoHosts({ staticNeighbours: true, disableIpv6: true });
    const methods: ReceiveMethod[] = ['xdp', 'xdpgeneric', 'nft-ingress', 'nft-prerouting', 'nft-input', 'none'];
    console.log(`ebpf bench, receiver-bound: xdp_trafficgen (live XDP frames, 60-byte UDP) ${net.left.ns.name}/${net.left.ifname} -> ${net.right.ns.name}/${net.right.ifname}, ` +
      `${rounds} rounds x ${methods.length} methods x ${seconds} s`);
    const { summaries, evidence, receiver } = await measureReceiveCost(net, {
      gen, xdpObject: obj.path, methods, rounds, seconds, maxFrames: Math.round(seconds * 20_000_000),
      onTrial: (t, round) => console.log(`  round ${round + 1} ${t.log}`),
    });
    console.log(evidence.split('\n')[0]);
    console.log(`\n${table(summaries, seconds)}`);
    const all = summaries.flatMap((s) => s.trials);
    const med = (f: (t: (typeof all)[number]) => number) => [...all.map(f)].sort((a, b) => a - b)[all.length >> 1] ?? 0;
    const genNs = med((t) => t.gen.cpuNs / Math.max(1, t.gen.sent));
    const genShare = med((t) => t.gen.cpuNs / Math.max(1, t.gen.elapsedNs));
    const genWait = med((t) => t.gen.waitNs / Math.max(1, t.gen.elapsedNs));
    console.log(`generator (CPU ${receiver.genCpu ?? 'any'}), medians of all ${all.length} trials: ${fmt(med((t) => t.gen.pps))} frames/s offered; ` +
      `${genNs.toFixed(0)} ns of its own CPU per frame (${fmt(genNs > 0 ? 1e9 / genNs : 0)} frames/s while it runs); it ran ${(genShare * 100).toFixed(0)} % of the window, ` +
      `waited runnable for its CPU ${(genWait * 100).toFixed(0)} %, and slept the rest (each BPF_PROG_TEST_RUN call ends with an RCU grace period)`);
    const bound = summaries.filter((x) => x.ringFullShare < 0.01);
    if (bound.length) {
      console.log(`${bound.map((x) => METHOD_LABEL[x.method]).join(', ')}: took every frame offered (ring full < 1 %), so its dropped/s is the generator's rate and its ratios above are lower bounds; ` +
        `its capacity is the packets per CPU-second column`);
    }
    console.log('');
    for (const s of summaries) {
      if (s.counted !== s.reached) failures.push(`${s.method}: its counter shows ${s.counted} of the ${s.reached} packets that reached it`);
      if (s.reached + s.ringFull !== s.sent) failures.push(`${s.method}: ${s.sent} sent but ${s.reached} taken from the ring + ${s.ringFull} ring full`);
    }
    await net.left.ns.release();
    await net.right.ns.release();
  }

  // 2. Sender-bound: the student's udp_sender, as the lab's flood test.
  if (withSender) {
    const net = await twoHosts({ staticNeighbours: true, disableIpv6: true });
    const methods: DropMethod[] = ['xdp', 'xdpgeneric', 'nft-ingress', 'nft-input'];
    console.log(`ebpf bench, sender-bound: udp_sender, ${packets} datagrams x ${rounds} rounds per method, ${net.left.ns.name} -> ${net.right.ns.name}`);
    const { results, evidence } = await measureDropRates(net, { xdpObject: obj.path, sender: sender.path, packets, rounds, methods });
    const base = results.find((r) => r.method === 'nft-input')?.pps ?? 0;
    console.log(evidence);
    console.log('\nmethod (udp_sender)      best pps    vs nft-input  dropped/sent');
    for (const r of results) {
      const ratio = base > 0 ? (r.pps / base).toFixed(2) : '?';
      console.log(`${`${r.method}${r.mode ? ` (${r.mode})` : ''}`.padEnd(24)} ${String(r.pps).padStart(9)}  ${ratio.padStart(6)}x  ${r.dropped}/${r.sent}`);
    }
    console.log('(sender-bound: every method drops all the sender manages to send, so the ratio is about 1)');
    for (const r of results) {
      if (r.dropped + r.lostInVeth !== packets * rounds) failures.push(`udp_sender ${r.method}: ${r.dropped}/${packets * rounds}`);
    }
  }
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (failures.length) {
    console.error(`not every packet was accounted for:\n${failures.join('\n')}`);
    process.exitCode = 1;
  }
}
