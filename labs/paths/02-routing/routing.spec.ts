/**
 * Lab 8.2 — 网络管理: routing and ARP across a router (seed 003 网络管理 §1–2:
 * a packet crosses networks through routers; MAC addresses only locate within
 * one network, found by ARP broadcasts, and change at every router).
 * The spec builds client — router — server (three lab namespaces, two veth
 * pairs, random networks and addresses); the student's router.sh addresses
 * them, routes, turns forwarding on in the router and pings the server from
 * the client. The kernel judges: the frames on both wires, the router's FIB
 * lookups, each next hop's neighbour events, the neighbour tables, the
 * forwarding sysctls of each namespace and the host's.
 *
 * The lab's anatomy: experiment.ts builds and runs (`Run`), judge.ts turns the
 * evidence into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { buildCapture, runRouting, type Run } from './experiment.js';
import * as judge from './judge.js';

let capture: string;
let ran: Promise<Run> | undefined;
/** The script's one run, shared by the tests (the first test to ask starts it; its resources live until the file ends). */
const once = () => (ran ??= runRouting(capture));
const GROUP = 'routing across a router';

describe('Lab 8.2 — routing and ARP across a router (网络管理)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    capture = await buildCapture();
    await once();
  });

  it('control: the lab builds three namespaces joined by two veth pairs (every end in a lab namespace, unaddressed) and records the kernel', async () => {
    const r = await once();
    expect({ setup: r.setup.ok, recorded: r.stuck ?? 'ok' }, `${r.setup.detail}${r.stuck ? `\n${r.stuck}` : ''}`).toEqual({ setup: true, recorded: 'ok' });
  });

  it('forwards the client\'s packets to the server: each arrives unchanged but for the router\'s source MAC and a TTL one lower', async (ctx) => {
    const f = judge.forward(await once());
    expect(f.facts, f.message).toEqual({ sent: true, allArrivedUnchanged: true, leftForTheRouter: true, routerSourceMac: true, toItsMac: true, ttlOneLess: true });
    recordMetric(ctx, { name: 'packets forwarded client → server', value: f.arrived, unit: 'packets', group: GROUP });
  });

  it('the router looks the destination up in its own FIB (fib:fib_table_lookup) and forwards in its IP layer (Ip ForwDatagrams), and client and server route through it as their gateway', async (ctx) => {
    const l = judge.lookups(await once());
    expect(l.facts, l.message).toEqual({ routerForwardedThem: true, routerLookedUpServer: true, routerLookedUpClient: true, clientViaRouter: true, serverViaRouter: true });
    recordMetric(ctx, { name: 'router FIB lookups toward the server', value: l.forwardLookups, unit: 'lookups', group: GROUP });
  });

  it('resolves every next hop by ARP: the first packet makes the entry and waits for the reply; the neighbour tables hold the learned MACs afterwards', async (ctx) => {
    const r = await once();
    const n = judge.resolution(r);
    expect(n.facts, n.message).toEqual(n.expected);
    const arp = [...r.frames.client, ...r.frames.server].filter((f) => f.arp?.op === 1).length;
    recordMetric(ctx, { name: 'ARP requests on the two wires', value: arp, unit: 'requests', group: GROUP });
  });

  it('routes the answers back through the router the same way (router\'s MAC, TTL one lower)', async () => {
    const b = judge.reply(await once());
    expect(b.facts, b.message).toEqual({ sent: true, allArrivedUnchanged: true, leftForTheRouter: true, routerSourceMac: true, toItsMac: true, ttlOneLess: true });
  });

  it('keeps MAC addresses within each network: the client never resolves the server\'s address, nor the server the client\'s', async (ctx) => {
    afterCorrectness(ctx, ['forwards the client\'s packets', 'routes the answers back'], 'a script that sends nothing resolves nothing');
    const m = judge.locality(await once());
    expect(m.facts, m.message).toEqual({ clientResolvedServer: false, serverResolvedClient: false });
  });

  it('changes only the lab: forwarding on in the router\'s namespace alone, the links where the lab put them, the host\'s ip_forward untouched', async () => {
    const c = judge.confinement(await once());
    expect(c.facts, c.message).toEqual(c.expected);
  });
});
