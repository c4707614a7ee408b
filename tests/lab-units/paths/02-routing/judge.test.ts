/**
 * Lab 8.2's verdicts (labs/paths/02-routing/judge.ts) on made-up runs: a routed run passes every check; a bridge,
 * NAT, static neighbours, proxy ARP, a warm-up before the client's packets and forwarding everywhere each fail
 * the check that names them.
 */
import { describe, expect, it } from 'vitest';
import type { End, NeighEntry, NsView, Run } from '../../../../labs/paths/02-routing/experiment.js';
import { parseFrames, type Frame } from '../../../../labs/paths/02-routing/frames.js';
import {
  confinement, forward, locality, lookups, NEIGH_UPDATE_F_ADMIN, parseLookup, parseNeighCreate, parseNeighUpdate, reply, resolution,
} from '../../../../labs/paths/02-routing/judge.js';
import { makePlan } from '../../../../labs/paths/02-routing/plan.js';
import type { TraceEvent } from '../../../../helpers/kernel/tracefs.js';
import { arpHex, icmpHex, line } from './wire.js';

const plan = { ...makePlan(), client: '10.1.1.2', routerC: '10.1.1.1', routerS: '10.2.2.1', server: '10.2.2.2' };
const end = (role: End['role'], ns: string, ifname: string, mac: string, ifindex: number, ip: string): End => ({ role, ns, ifname, mac, ifindex, ip });
const C = end('client', 'kl-x-cl1', 'kl-x-c1', '02:00:00:00:00:c1', 2, plan.client);
const RC = end('routerC', 'kl-x-rt1', 'kl-x-r1', '02:00:00:00:00:a1', 2, plan.routerC);
const RS = end('routerS', 'kl-x-rt1', 'kl-x-r2', '02:00:00:00:00:a2', 3, plan.routerS);
const S = end('server', 'kl-x-sv1', 'kl-x-s1', '02:00:00:00:00:5e', 2, plan.server);
const BC = 'ff:ff:ff:ff:ff:ff';

let ts = 0;
const ev = (event: string, body: string): TraceEvent => ({ pid: 1, ts: ++ts, event, body });
const lookup = (src: string, dst: string, iif: number, dev: string, err = 0) =>
  ev('fib_table_lookup', `table 254 oif 0 iif ${iif} proto 0 ${src}/0 -> ${dst}/0 tos 0 scope 0 flags 0 ==> dev ${dev} gw 0.0.0.0/:: err ${err}`);
const create = (ip: string, dev = '') => ev('neigh_create', `family 2 dev ${dev} entries 2 primary_key4 ${ip} primary_key6 :: created 1 gc_exempt 0`);
const update = (ip: string, mac: string, from: string, to: string, flags = 0) =>
  ev('neigh_update', `family 2 dev  lladdr 000000000000 flags 00 nud_state ${from} type 01 dead 0 refcnt 3 primary_key4 ${ip} primary_key6 ::ffff:${ip} confirmed 1 updated 2 used 3 new_lladdr ${mac.replace(/:/g, '')} new_state ${to} update_flags ${flags.toString(16).padStart(2, '0')} pid 0`);

interface Opts {
  /** The frames the server receives: source MAC and TTL of each forwarded packet, its source address. */
  readonly arriveSrcMac?: string; readonly arriveTtl?: number; readonly arriveSrc?: string;
  readonly clientDstMac?: string;
  readonly adminFlags?: boolean;
  readonly clientAsksServer?: boolean;
  readonly warmUp?: boolean;
  readonly noRouterLookups?: boolean;
  readonly clientGateway?: string;
  readonly forwarding?: Partial<Record<'client' | 'server' | 'router', string>>;
  readonly hostAfter?: string;
}

const view = (neigh: NeighEntry[], forwarding: Record<string, string>): NsView => ({ neigh, routes: '', links: '', forwarding });

/** A run as the reference makes it: three pings, ARP twice on the way out, learned entries on the way back. */
function makeRun(o: Opts = {}): Run {
  ts = 0;
  const cl: string[] = [];
  const sv: string[] = [];
  const trace: Record<string, TraceEvent[]> = { [C.ifname]: [], [RC.ifname]: [], [RS.ifname]: [], [S.ifname]: [] };
  let n = 0;
  const cf = (pk: number, hex: string) => cl.push(line(++n, C.ifindex, pk, hex));
  const sf = (pk: number, hex: string) => sv.push(line(++n, S.ifindex, pk, hex));
  if (o.warmUp) {
    trace[RS.ifname]!.push(create(S.ip), update(S.ip, S.mac, 'incomplete', 'reachable'));
    trace[C.ifname]!.push(create(RC.ip), update(RC.ip, RC.mac, 'incomplete', 'reachable'));
  }
  // The client looks the server up, makes the gateway's entry and asks for its MAC.
  trace[C.ifname]!.push(lookup('0.0.0.0', S.ip, 1, C.ifname));
  if (o.clientAsksServer) trace[C.ifname]!.push(create(S.ip));
  if (!o.warmUp) trace[C.ifname]!.push(create(RC.ip));
  cf(4, arpHex(1, C.mac, C.ip, '00:00:00:00:00:00', RC.ip, BC));
  cf(0, arpHex(2, RC.mac, RC.ip, C.mac, C.ip, C.mac));
  trace[RC.ifname]!.push(create(C.ip), update(C.ip, C.mac, '0x0', 'stale', 1));
  trace[C.ifname]!.push(o.adminFlags ? update(RC.ip, RC.mac, 'none', 'permanent', NEIGH_UPDATE_F_ADMIN) : update(RC.ip, RC.mac, 'incomplete', 'reachable'));
  // The router looks the server up, makes its entry, asks; the server learns the router from the request.
  if (!o.noRouterLookups) trace[RS.ifname]!.push(lookup(C.ip, S.ip, RC.ifindex, RS.ifname));
  if (!o.warmUp) trace[RS.ifname]!.push(create(S.ip));
  sf(0, arpHex(1, RS.mac, RS.ip, '00:00:00:00:00:00', S.ip, BC));
  trace[S.ifname]!.push(create(RS.ip), update(RS.ip, RS.mac, '0x0', 'stale', 1));
  sf(4, arpHex(2, S.mac, S.ip, RS.mac, RS.ip, RS.mac));
  if (!o.warmUp) trace[RS.ifname]!.push(update(S.ip, S.mac, 'incomplete', 'reachable'));
  for (let seq = 1; seq <= 3; seq++) {
    cf(4, icmpHex({ src: C.ip, dst: S.ip, ttl: 64, id: 100 + seq, seq, srcMac: C.mac, dstMac: o.clientDstMac ?? RC.mac }));
    sf(0, icmpHex({ src: o.arriveSrc ?? C.ip, dst: S.ip, ttl: o.arriveTtl ?? 63, id: 100 + seq, seq, srcMac: o.arriveSrcMac ?? RS.mac, dstMac: S.mac, checksum: o.arriveSrc ? 0x2222 : undefined }));
    sf(4, icmpHex({ src: S.ip, dst: C.ip, ttl: 64, id: 200 + seq, seq, type: 0, srcMac: S.mac, dstMac: RS.mac }));
    cf(0, icmpHex({ src: S.ip, dst: C.ip, ttl: 63, id: 200 + seq, seq, type: 0, srcMac: RC.mac, dstMac: C.mac }));
    if (seq > 1 && !o.noRouterLookups) trace[RS.ifname]!.push(lookup(C.ip, S.ip, RC.ifindex, RS.ifname));
    if (!o.noRouterLookups) trace[RC.ifname]!.push(lookup(S.ip, C.ip, RS.ifindex, RC.ifname));
  }
  const fw = { client: '0', server: '0', router: '1', ...o.forwarding };
  const frames: { client: Frame[]; server: Frame[] } = { client: parseFrames(cl.join('\n')), server: parseFrames(sv.join('\n')) };
  return {
    plan, ends: { client: C, routerC: RC, routerS: RS, server: S }, namespaces: { client: C.ns, router: RC.ns, server: S.ns },
    setup: { ok: true, detail: 'made' }, env: {}, frames, trace, traceLost: false,
    script: { pid: 9, exitCode: 0, timedOut: false, reason: 'exited', stdout: '3 packets transmitted, 3 received', stderr: '' } as unknown as Run['script'],
    views: {
      client: view([
        { dst: RC.ip, dev: C.ifname, lladdr: RC.mac, state: [o.adminFlags ? 'PERMANENT' : 'REACHABLE'] },
        ...(o.clientAsksServer ? [{ dst: S.ip, dev: C.ifname, lladdr: RC.mac, state: ['REACHABLE'] }] : []),
      ], { all: fw.client, [C.ifname]: fw.client }),
      router: view([{ dst: S.ip, dev: RS.ifname, lladdr: S.mac, state: ['REACHABLE'] }, { dst: C.ip, dev: RC.ifname, lladdr: C.mac, state: ['DELAY'] }],
        { all: fw.router, [RC.ifname]: fw.router, [RS.ifname]: fw.router }),
      server: view([{ dst: RS.ip, dev: S.ifname, lladdr: RS.mac, state: ['DELAY'] }], { all: fw.server, [S.ifname]: fw.server }),
    },
    routeGet: {
      clientToServer: { dst: S.ip, dev: C.ifname, ...(o.clientGateway === 'none' ? {} : { gateway: o.clientGateway ?? RC.ip }) },
      serverToClient: { dst: C.ip, dev: S.ifname, gateway: RS.ip },
    },
    hostForward: { before: '0', after: o.hostAfter ?? '0' },
    routerForwarded: { before: 5, after: o.noRouterLookups ? 5 : 11 },
    placement: { [`${C.ns}/${C.ifname}`]: true, [`${RC.ns}/${RC.ifname}`]: true, [`${RS.ns}/${RS.ifname}`]: true, [`${S.ns}/${S.ifname}`]: true },
  };
}

const ALL_TRUE = { sent: true, allArrivedUnchanged: true, leftForTheRouter: true, routerSourceMac: true, toItsMac: true, ttlOneLess: true };

describe('Lab 8.2 judge', () => {
  it('parses the three tracepoints as 6.18 prints them, and 6.1\'s empty dev= and spaced MACs', () => {
    expect(parseLookup({ pid: 1, ts: 5, event: 'fib_table_lookup', body: 'table 254 oif 0 iif 2 proto 0 10.31.7.66/0 -> 172.20.9.3/0 tos 0 scope 0 flags 0 ==> dev kl-h82-rb gw 10.31.7.90/:: err 0' }))
      .toEqual({ ts: 5, table: 254, oif: 0, iif: 2, src: '10.31.7.66', dst: '172.20.9.3', err: 0 });
    expect(parseLookup({ pid: 1, ts: 5, event: 'fib_table_lookup', body: 'table 254 oif 0 iif 1 proto 1 0.0.0.0/0 -> 10.2.2.2/0 tos 0 scope 0 flags 0 ==> dev  gw 0.0.0.0/:: err -101' })?.err).toBe(-101);
    expect(parseNeighCreate({ pid: 1, ts: 6, event: 'neigh_create', body: 'family 2 dev  entries 2 primary_key4 10.31.7.90 primary_key6 ::ac14:903 created 1 gc_exempt 0' })).toEqual({ ts: 6, ip: '10.31.7.90' });
    expect(parseNeighUpdate({ pid: 1, ts: 7, event: 'neigh_update', body: 'family 2 dev kl-h82-ca lladdr 000000000000 flags 00 nud_state incomplete type 01 dead 0 refcnt 3 primary_key4 10.31.7.90 primary_key6 ::ffff:10.31.7.90 confirmed 4294964884 updated 4294979884 used 4294979884 new_lladdr fa4751df5c60 new_state reachable update_flags 00 pid 0' }))
      .toEqual({ ts: 7, ip: '10.31.7.90', oldState: 'INCOMPLETE', newState: 'REACHABLE', lladdr: 'fa:47:51:df:5c:60', flags: 0, pid: 0 });
    expect(parseNeighUpdate({ pid: 1, ts: 8, event: 'neigh_update', body: 'family 2 dev  lladdr 00 00 00 00 00 00 flags 00 nud_state 0x0 type 01 dead 0 refcnt 2 primary_key4 10.2.2.1 primary_key6 :: confirmed 1 updated 2 used 3 new_lladdr 9a 94 62 59 50 a2 new_state permanent update_flags 80 pid 4021' }))
      .toMatchObject({ lladdr: '9a:94:62:59:50:a2', newState: 'PERMANENT', flags: 0x80, pid: 4021 });
  });

  it('passes a routed run on every check', () => {
    const r = makeRun();
    expect(forward(r).facts).toEqual(ALL_TRUE);
    expect(reply(r).facts).toEqual(ALL_TRUE);
    expect(lookups(r).facts).toEqual({ routerForwardedThem: true, routerLookedUpServer: true, routerLookedUpClient: true, clientViaRouter: true, serverViaRouter: true });
    const n = resolution(r);
    expect(n.facts, n.message).toEqual(n.expected);
    expect(locality(r).facts).toEqual({ clientResolvedServer: false, serverResolvedClient: false });
    const c = confinement(r);
    expect(c.facts).toEqual(c.expected);
  });

  it('a forwarder outside the IP layer (nft fwd, tc mirred, XDP) with lookups forged by ip route get: the router\'s ForwDatagrams did not count the packets', () => {
    const base = makeRun();
    const r = { ...base, routerForwarded: { before: 5, after: 5 } };
    expect(forward(r).facts).toEqual(ALL_TRUE);
    const l = lookups(r);
    expect(l.facts).toEqual({ routerForwardedThem: false, routerLookedUpServer: true, routerLookedUpClient: true, clientViaRouter: true, serverViaRouter: true });
    expect(l.message).toContain('forwarded 0 packets (Ip ForwDatagrams');
    expect(lookups({ ...base, routerForwarded: { before: 5, after: 8 } }).facts.routerForwardedThem).toBe(false);
  });

  it('a bridge: the client\'s own MAC and the same TTL at the server, no lookup in the router', () => {
    const r = makeRun({ arriveSrcMac: C.mac, arriveTtl: 64, clientDstMac: S.mac, noRouterLookups: true });
    const f = forward(r);
    expect(f.facts).toMatchObject({ allArrivedUnchanged: true, leftForTheRouter: false, routerSourceMac: false, ttlOneLess: false });
    expect(f.message).toMatch(/with the sender's own source MAC: no router rewrote the Ethernet header[\s\S]*TTL unchanged/);
    expect(lookups(r).facts).toMatchObject({ routerForwardedThem: false, routerLookedUpServer: false, routerLookedUpClient: false });
  });

  it('NAT: the packet arrives with the router\'s address as its source', () => {
    const f = forward(makeRun({ arriveSrc: RS.ip }));
    expect(f.facts).toMatchObject({ sent: true, allArrivedUnchanged: false });
    expect(f.message).toMatch(/arrived REWRITTEN at \S+: .*\(a NAT rewrote it/);
  });

  it('a neighbour written by hand is not learned by ARP', () => {
    const n = resolution(makeRun({ adminFlags: true }));
    expect(n.facts['client → its gateway']).toMatchObject({ writtenByHand: true, learnedReachable: false, inTable: false });
    expect(n.message).toContain('NEIGH_UPDATE_F_ADMIN: written over netlink, not learned by ARP');
  });

  it('a warm-up before the client\'s packets: the entries exist before the first packet needs them', () => {
    const n = resolution(makeRun({ warmUp: true }));
    expect(n.facts['router → server']).toMatchObject({ created: true, createdByTheFirstPacket: false });
    expect(n.facts['client → its gateway']).toMatchObject({ createdByTheFirstPacket: false });
  });

  it('proxy ARP: the client has no gateway and an entry for the server', () => {
    const r = makeRun({ clientAsksServer: true, clientGateway: 'none' });
    expect(lookups(r).facts.clientViaRouter).toBe(false);
    expect(lookups(r).message).toContain('no gateway (on-link');
    expect(locality(r).facts).toEqual({ clientResolvedServer: true, serverResolvedClient: false });
  });

  it('forwarding anywhere but the router, or on the host, fails the confinement', () => {
    const c = confinement(makeRun({ forwarding: { client: '1' }, hostAfter: '1' }));
    expect(c.facts).toMatchObject({ clientForwards: '1', hostIpForward: '1' });
    expect(c.facts).not.toEqual(c.expected);
    const none = confinement(makeRun({ forwarding: { router: '0' } }));
    expect(none.facts).toMatchObject({ routerForwardsOnClientSide: '0', routerForwardsOnServerSide: '0' });
  });

  it('a script that sends nothing fails the crossing and the answers', () => {
    const r = { ...makeRun(), frames: { client: [], server: [] } };
    expect(forward(r).facts).toEqual({ sent: false, allArrivedUnchanged: false, leftForTheRouter: false, routerSourceMac: false, toItsMac: false, ttlOneLess: false });
    expect(forward(r).message).toMatch(/no IPv4 packet from \S+ to \S+ left/);
    expect(reply(r).facts.sent).toBe(false);
  });
});
