/**
 * Lab 8.2's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`) to the facts each test asserts, each with a message
 * that shows the kernel's evidence: the frames on both wires (the harness
 * capture), the router's FIB lookups and each namespace's neighbour events
 * (tracefs, one instance per veth end: the device of an event is its
 * instance's — Debian 12's 6.1 prints these events with an empty dev= — so
 * nothing here reads the printed device), `ip route get`, `ip -j neigh` and
 * the forwarding sysctls. Unit-tested on made-up runs in
 * tests/lab-units/paths/02-routing/judge.test.ts.
 */
import type { TraceEvent } from '../../../helpers/kernel/tracefs.js';
import type { End, NeighEntry, Run } from './experiment.js';
import { describeFrame, PACKET_HOST, PACKET_OUTGOING, samePacket, sameTransport, type Frame } from './frames.js';

/** NEIGH_UPDATE_F_ADMIN (include/net/neighbour.h): an update asked for over netlink (`ip neigh add/replace/change`), not learned. */
export const NEIGH_UPDATE_F_ADMIN = 0x80;
const BROADCAST = 'ff:ff:ff:ff:ff:ff';
/** The neighbour states a learned entry may be in some seconds after its last use (not REACHABLE once unconfirmed). */
export const DYNAMIC_STATES: readonly string[] = ['REACHABLE', 'STALE', 'DELAY', 'PROBE'];

/** One fib:fib_table_lookup record. */
export interface Lookup {
  readonly ts: number;
  readonly table: number;
  readonly oif: number;
  /** The input interface: 1 (lo) for a locally sent packet, the receiving interface for one being routed. */
  readonly iif: number;
  readonly src: string;
  readonly dst: string;
  readonly err: number;
}

export function parseLookup(e: TraceEvent): Lookup | undefined {
  if (e.event !== 'fib_table_lookup') return undefined;
  const m = e.body.match(/table (\d+) oif (-?\d+) iif (-?\d+) proto \d+ ([\d.]+)\/\d+ -> ([\d.]+)\/\d+ .* err (-?\d+)/);
  return m ? { ts: e.ts, table: Number(m[1]), oif: Number(m[2]), iif: Number(m[3]), src: m[4]!, dst: m[5]!, err: Number(m[6]) } : undefined;
}

/** One neigh:neigh_create record (an entry made for `ip`). */
export interface NeighCreate { readonly ts: number; readonly ip: string }

/** One neigh:neigh_update record: the entry for `ip` moves to `newState` with `lladdr`. */
export interface NeighUpdate {
  readonly ts: number;
  readonly ip: string;
  readonly oldState: string;
  readonly newState: string;
  /** aa:bb:cc:dd:ee:ff */
  readonly lladdr: string;
  readonly flags: number;
  readonly pid: number;
}

export function parseNeighCreate(e: TraceEvent): NeighCreate | undefined {
  if (e.event !== 'neigh_create') return undefined;
  const m = e.body.match(/primary_key4 ([\d.]+)/);
  return m ? { ts: e.ts, ip: m[1]! } : undefined;
}

/** The hex of an address as __print_hex_str prints it ("166b057a28fb", or with spaces) → aa:bb:… */
const colons = (hex: string) => (hex.replace(/[^0-9a-f]/gi, '').toLowerCase().match(/../g) ?? []).join(':');

export function parseNeighUpdate(e: TraceEvent): NeighUpdate | undefined {
  if (e.event !== 'neigh_update') return undefined;
  const m = e.body.match(/nud_state (\S+) .*primary_key4 ([\d.]+) .*new_lladdr ([0-9a-f ]*?) ?new_state (\S+) update_flags ([0-9a-f]+) pid (\d+)/i);
  return m ? { ts: e.ts, oldState: m[1]!.toUpperCase(), ip: m[2]!, lladdr: colons(m[3]!), newState: m[4]!.toUpperCase(), flags: parseInt(m[5]!, 16), pid: Number(m[6]) } : undefined;
}

const lookupsOn = (r: Run, dev: string) => (r.trace[dev] ?? []).flatMap((e) => parseLookup(e) ?? []);
const createsOn = (r: Run, dev: string) => (r.trace[dev] ?? []).flatMap((e) => parseNeighCreate(e) ?? []);
const updatesOn = (r: Run, dev: string) => (r.trace[dev] ?? []).flatMap((e) => parseNeighUpdate(e) ?? []);

const ipv4 = (f: Frame) => f.ipv4!;
const show = (frames: readonly Frame[], max = 12) =>
  (frames.length ? `${frames.slice(0, max).map((f) => `    ${describeFrame(f)}`).join('\n')}${frames.length > max ? `\n    … ${frames.length - max} more` : ''}` : '    (none)');

/** What the script did, for every message. */
export function context(r: Run): string {
  const s = r.script;
  const out = s ? `router.sh exited ${s.exitCode}${s.timedOut ? ' (timed out)' : ''}; stdout+stderr: ${`${s.stdout}\n${s.stderr}`.trim().slice(-600) || '(none)'}` : 'router.sh did not run';
  return `${r.stuck ? `${r.stuck}\n` : ''}${out}\nroutes: client: ${r.views.client.routes || '(none)'} | router: ${r.views.router.routes || '(none)'} | server: ${r.views.server.routes || '(none)'}` +
    `\nlinks in the router's namespace: ${r.views.router.links.replace(/\n/g, ' | ') || '(none)'}`;
}

const addr = (e: End) => `${e.ip} (${e.ifname}, ${e.mac})`;

/** One direction of travel: the packets that left `from`'s interface for `to`'s address, and where each arrived. */
function travel(r: Run, dir: 'forward' | 'reply') {
  const { client, routerC, routerS, server } = r.ends;
  const [from, to, fromFrames, toFrames, gwIn, gwOut] = dir === 'forward'
    ? [client, server, r.frames.client, r.frames.server, routerC, routerS]
    : [server, client, r.frames.server, r.frames.client, routerS, routerC];
  const sent = fromFrames.filter((f) => f.ifindex === from.ifindex && f.pkttype === PACKET_OUTGOING && f.ipv4?.src === from.ip && f.ipv4.dst === to.ip);
  const received = toFrames.filter((f) => f.ifindex === to.ifindex && f.pkttype !== PACKET_OUTGOING && f.ipv4);
  const rows = sent.map((s) => ({ s, got: received.find((g) => samePacket(ipv4(s), ipv4(g))), rewritten: received.find((g) => !samePacket(ipv4(s), ipv4(g)) && sameTransport(ipv4(s), ipv4(g))) }));
  const arrived = rows.filter((x) => x.got);
  const facts = {
    sent: sent.length > 0,
    allArrivedUnchanged: sent.length > 0 && arrived.length === sent.length,
    leftForTheRouter: sent.length > 0 && sent.every((s) => s.dstMac === gwIn.mac),
    routerSourceMac: arrived.length > 0 && arrived.every((x) => x.got!.srcMac === gwOut.mac),
    toItsMac: arrived.length > 0 && arrived.every((x) => x.got!.dstMac === to.mac),
    ttlOneLess: arrived.length > 0 && arrived.every((x) => ipv4(x.got!).ttl === ipv4(x.s).ttl - 1),
  };
  const why = (s: Frame, got: Frame) => [
    got.srcMac === from.mac ? ` — with the sender's own source MAC: no router rewrote the Ethernet header (a bridge or a direct wire passes frames on unchanged)` : '',
    ipv4(got).ttl === ipv4(s).ttl ? ` — TTL unchanged: no router forwarded it` : '',
  ].join('');
  const lines = rows.map(({ s, got, rewritten }, i) => `  ${i + 1}. left ${from.ifname}: ${describeFrame(s)}\n     ${got
    ? `arrived at ${to.ifname}: ${describeFrame(got)}${why(s, got)}`
    : rewritten ? `arrived REWRITTEN at ${to.ifname}: ${describeFrame(rewritten)} — its source address is not ${from.ip} (a NAT rewrote it; a router forwards the packet with its addresses unchanged)` : `never arrived at ${to.ifname}`}`);
  const message = `${dir === 'forward' ? 'client → server' : 'server → client (the answers)'}: every IPv4 packet from ${from.ip} to ${to.ip} leaving ${from.ifname} must be addressed to the router's MAC ${gwIn.mac} (${gwIn.ifname}), ` +
    `and arrive at ${to.ifname} as the same packet (addresses, IP id and payload unchanged) with source MAC ${gwOut.mac} — the router's ${gwOut.ifname}, not ${from.mac} — destination MAC ${to.mac} and a TTL one lower. ` +
    `The frames (harness AF_PACKET capture in each namespace):\n${lines.join('\n') || `  no IPv4 packet from ${from.ip} to ${to.ip} left ${from.ifname}`}\n` +
    `all frames on ${from.ifname}'s wire:\n${show(fromFrames.filter((f) => f.ifindex === from.ifindex))}\nall frames on ${to.ifname}'s wire:\n${show(toFrames.filter((f) => f.ifindex === to.ifindex))}\n${context(r)}`;
  return { facts, message, sent: sent.length, arrived: arrived.length };
}

/** The client's packets cross the router to the server: router's source MAC, TTL one lower, addresses unchanged. */
export const forward = (r: Run) => travel(r, 'forward');
/** The server's answers cross back the same way. */
export const reply = (r: Run) => travel(r, 'reply');

/** The router's FIB lookups for both directions, and the client's and server's routes through it (ip route get). */
export function lookups(r: Run) {
  const { client, routerC, routerS, server } = r.ends;
  const toServer = lookupsOn(r, routerS.ifname).filter((l) => l.dst === server.ip && l.src === client.ip && l.iif === routerC.ifindex && l.err === 0);
  const toClient = lookupsOn(r, routerC.ifname).filter((l) => l.dst === client.ip && l.src === server.ip && l.iif === routerS.ifindex && l.err === 0);
  const { clientToServer: cg, serverToClient: sg } = r.routeGet;
  // Every packet that crossed (both ways) went through the router's IP layer: ip_forward_finish counts it in ForwDatagrams.
  const crossed = forward(r).arrived + reply(r).arrived;
  const counted = r.routerForwarded.after - r.routerForwarded.before;
  const facts = {
    routerForwardedThem: crossed > 0 && counted >= crossed,
    routerLookedUpServer: toServer.length > 0,
    routerLookedUpClient: toClient.length > 0,
    clientViaRouter: cg.gateway === routerC.ip && cg.dev === client.ifname,
    serverViaRouter: sg.gateway === routerS.ip && sg.dev === server.ifname,
  };
  const rg = (g: typeof cg) => (g.error ? `error: ${g.error}` : `dev ${g.dev ?? '?'} ${g.gateway ? `via ${g.gateway}` : 'no gateway (on-link: the destination is treated as a neighbour on that wire)'}`);
  const message = `fib:fib_table_lookup in the router's namespace (instances filtered to the result device ${routerS.ifname} / ${routerC.ifname}): ` +
    `lookups of ${server.ip} from ${client.ip} arriving on ${routerC.ifname} (iif ${routerC.ifindex}) that chose ${routerS.ifname}: ${toServer.length}; ` +
    `of ${client.ip} from ${server.ip} arriving on ${routerS.ifname} (iif ${routerS.ifindex}) that chose ${routerC.ifname}: ${toClient.length} ` +
    `(every lookup recorded on those devices: ${[...lookupsOn(r, routerS.ifname), ...lookupsOn(r, routerC.ifname)].filter((l) => l.table !== 255).slice(0, 8).map((l) => `${l.src}->${l.dst} iif ${l.iif} table ${l.table} err ${l.err}`).join('; ') || 'none'}). ` +
    `A router looks each packet's destination up in its own table; a bridge never does. ` +
    `The router's IP layer forwarded ${Number.isNaN(counted) ? '(unreadable)' : counted} packets (Ip ForwDatagrams in its /proc/net/snmp, before ${r.routerForwarded.before}, after ${r.routerForwarded.after}) for ${crossed} that crossed it ` +
    `(every one must be forwarded by ip_forward(), not moved by tc, nft fwd, XDP or a program of one's own; a lookup made by ip route get forwards nothing). ` +
    `ip route get ${server.ip} in the client: ${rg(cg)} — expected dev ${client.ifname} via ${routerC.ip}; ip route get ${client.ip} in the server: ${rg(sg)} — expected dev ${server.ifname} via ${routerS.ip}: ` +
    `the other network is reached through the router's address on one's own network (a gateway), never as if it were on one's own wire.\n${context(r)}`;
  return { facts, message, forwardLookups: toServer.length, replyLookups: toClient.length };
}

/** The four next hops: two resolved by the sender (client → its gateway, router → server), two learned from the other side's request. */
export function hops(r: Run) {
  const { client, routerC, routerS, server } = r.ends;
  return [
    { label: 'client → its gateway', holder: client, target: routerC, active: true, wire: 'client' as const, firstToServer: lookupsOn(r, client.ifname).filter((l) => l.dst === server.ip && l.iif === 1) },
    { label: 'router → server', holder: routerS, target: server, active: true, wire: 'server' as const, firstToServer: lookupsOn(r, routerS.ifname).filter((l) => l.dst === server.ip && l.iif === routerC.ifindex) },
    { label: 'server → its gateway (for the answers)', holder: server, target: routerS, active: false, wire: 'server' as const, firstToServer: [] },
    { label: 'router → client (for the answers)', holder: routerC, target: client, active: false, wire: 'client' as const, firstToServer: [] },
  ];
}

const holderNs = (r: Run, e: End) => (e.role === 'client' ? r.views.client : e.role === 'server' ? r.views.server : r.views.router);

/** Each next hop resolved by ARP: an entry created, the request and the reply on the wire, learned (not written by hand), and in the table afterwards. */
export function resolution(r: Run) {
  const rows = hops(r).map((h) => {
    const creates = createsOn(r, h.holder.ifname).filter((c) => c.ip === h.target.ip);
    const updates = updatesOn(r, h.holder.ifname).filter((u) => u.ip === h.target.ip);
    const admin = updates.filter((u) => (u.flags & NEIGH_UPDATE_F_ADMIN) !== 0);
    const learned = updates.filter((u) => (u.flags & NEIGH_UPDATE_F_ADMIN) === 0 && u.lladdr === h.target.mac && (!h.active || u.newState === 'REACHABLE'));
    const wire = (h.wire === 'client' ? r.frames.client : r.frames.server).filter((f) => f.ifindex === (h.wire === 'client' ? r.ends.client.ifindex : r.ends.server.ifindex));
    const request = wire.find((f) => f.arp?.op === 1 && f.arp.senderIp === h.holder.ip && f.arp.targetIp === h.target.ip && f.srcMac === h.holder.mac && f.dstMac === BROADCAST);
    const answer = wire.find((f) => f.arp?.op === 2 && f.arp.senderIp === h.target.ip && f.arp.senderMac === h.target.mac && f.arp.targetIp === h.holder.ip);
    const entry: NeighEntry | undefined = holderNs(r, h.holder).neigh.find((n) => n.dst === h.target.ip && n.dev === h.holder.ifname);
    const states = h.active ? ['REACHABLE'] : DYNAMIC_STATES;
    const firstLookup = h.firstToServer[0];
    const facts = h.active
      ? {
        created: creates.length > 0,
        arpRequestBroadcast: request !== undefined,
        arpReply: answer !== undefined,
        learnedReachable: learned.length > 0,
        writtenByHand: admin.length > 0,
        createdByTheFirstPacket: creates.length > 0 && firstLookup !== undefined && firstLookup.ts < creates[0]!.ts,
        inTable: entry !== undefined && entry.lladdr === h.target.mac && entry.state.some((s) => states.includes(s)),
      }
      : {
        created: creates.length > 0,
        learnedReachable: learned.length > 0,
        writtenByHand: admin.length > 0,
        inTable: entry !== undefined && entry.lladdr === h.target.mac && entry.state.some((s) => states.includes(s)),
      };
    const expected = h.active
      ? { created: true, arpRequestBroadcast: true, arpReply: true, learnedReachable: true, writtenByHand: false, createdByTheFirstPacket: true, inTable: true }
      : { created: true, learnedReachable: true, writtenByHand: false, inTable: true };
    const evidence = `${h.label}: ${h.holder.ifname} in ${h.holder.ns} needs ${addr(h.target)}\n` +
      `    neigh_create on ${h.holder.ifname} for ${h.target.ip}: ${creates.map((c) => `@${c.ts}`).join(', ') || 'none'}` +
      `${h.active ? `; the first lookup toward ${r.ends.server.ip} there: ${firstLookup ? `@${firstLookup.ts}` : 'none'} (the entry must be made for that packet, which waits in its queue)` : ''}\n` +
      `    neigh_update for ${h.target.ip}: ${updates.map((u) => `@${u.ts} ${u.oldState}→${u.newState} lladdr ${u.lladdr} flags 0x${u.flags.toString(16)}${u.flags & NEIGH_UPDATE_F_ADMIN ? ' (NEIGH_UPDATE_F_ADMIN: written over netlink, not learned by ARP)' : ''}`).join('; ') || 'none'}\n` +
      `${h.active ? `    ARP on the wire: request ${request ? describeFrame(request) : `none (expected broadcast who-has ${h.target.ip} tell ${h.holder.ip} from ${h.holder.mac})`}; reply ${answer ? describeFrame(answer) : 'none'}\n` : ''}` +
      `    ip -j neigh in ${h.holder.ns}: ${entry ? `${entry.dst} dev ${entry.dev} lladdr ${entry.lladdr ?? '-'} ${entry.state.join(',')}` : 'no entry'} (expected lladdr ${h.target.mac}, ${states.join('/')})`;
    return { label: h.label, facts, expected, evidence };
  });
  const facts = Object.fromEntries(rows.map((x) => [x.label, x.facts]));
  const expected = Object.fromEntries(rows.map((x) => [x.label, x.expected]));
  const message = 'each next hop is found by ARP, in the kernel\'s neighbour table (neigh:neigh_create and neigh:neigh_update in a tracefs instance per interface; the frames on each wire): ' +
    'the first packet toward the server makes the entry and waits while a broadcast request asks for the next hop\'s MAC; the reply makes it REACHABLE. ' +
    `An entry written with ip neigh (permanent or not) skips ARP; so does traffic sent before the client's packets.\n${rows.map((x) => x.evidence).join('\n')}\n${context(r)}`;
  return { facts, expected, message };
}

/** MAC addresses stay on their own network: the client never resolves the server's address, nor the server the client's (no proxy ARP, no bridge). */
export function locality(r: Run) {
  const { client, server } = r.ends;
  const asked = (holder: End, other: End, frames: readonly Frame[]) => {
    const creates = createsOn(r, holder.ifname).filter((c) => c.ip === other.ip);
    const entry = holderNs(r, holder).neigh.find((n) => n.dst === other.ip);
    const requests = frames.filter((f) => f.ifindex === holder.ifindex && f.arp?.op === 1 && f.arp.targetIp === other.ip && f.arp.senderIp === holder.ip);
    return { resolved: creates.length > 0 || entry !== undefined || requests.length > 0, detail: `neigh_create for ${other.ip} on ${holder.ifname}: ${creates.length}; ip neigh entry: ${entry ? `${entry.lladdr ?? '-'} ${entry.state.join(',')}` : 'none'}; ARP requests for it on the wire: ${requests.length}` };
  };
  const c = asked(client, server, r.frames.client);
  const s = asked(server, client, r.frames.server);
  return {
    facts: { clientResolvedServer: c.resolved, serverResolvedClient: s.resolved },
    message: `ARP works only within one network: the client (${client.ip}) resolves its gateway's MAC, never the server's (${server.ip}), and the server never the client's. ` +
      `client: ${c.detail}. server: ${s.detail}. (Proxy ARP answers for another network's address with the router's MAC: the neighbour table then lies about where the server is.)\n${context(r)}`,
  };
}

/** Forwarding on in the router's namespace alone, the lab's links where the lab put them, the host untouched. */
export function confinement(r: Run) {
  const { client, routerC, routerS, server } = r.ends;
  const anyOn = (f: Readonly<Record<string, string>>) => (Object.values(f).some((v) => v === '1') ? '1' : Object.values(f).every((v) => v === '0') ? '0' : Object.values(f).join('/'));
  const facts = {
    routerForwardsOnClientSide: r.views.router.forwarding[routerC.ifname],
    routerForwardsOnServerSide: r.views.router.forwarding[routerS.ifname],
    clientForwards: anyOn(r.views.client.forwarding),
    serverForwards: anyOn(r.views.server.forwarding),
    hostIpForward: r.hostForward.after,
    linksInPlace: Object.values(r.placement).every(Boolean),
  };
  const expected = { routerForwardsOnClientSide: '1', routerForwardsOnServerSide: '1', clientForwards: '0', serverForwards: '0', hostIpForward: r.hostForward.before, linksInPlace: true };
  const message = `net.ipv4.conf.<if>.forwarding read inside each namespace (/proc/sys/net of that namespace): router ${JSON.stringify(r.views.router.forwarding)}, client ${JSON.stringify(r.views.client.forwarding)}, server ${JSON.stringify(r.views.server.forwarding)}; ` +
    `the host's net.ipv4.ip_forward before ${r.hostForward.before}, after ${r.hostForward.after}; the lab's links after the script: ${Object.entries(r.placement).map(([k, v]) => `${k} ${v ? 'in place' : 'MISSING'}`).join(', ')}. ` +
    `Only the router forwards (ip_forward is a per-namespace sysctl: set it inside ${routerC.ns}, never on the host); the client ${client.ip} and the server ${server.ip} are hosts.\n${context(r)}`;
  return { facts, expected, message };
}
