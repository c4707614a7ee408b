/**
 * Lab 8.2's experiment: three lab network namespaces — client, router,
 * server — joined by two veth pairs (client ↔ router, router ↔ server; every
 * end in a lab namespace, no address, down), forwarding off in all three. The
 * student's router.sh gets the namespaces, the interface names and random
 * addresses on two random networks (plan.ts) in its environment, configures
 * them and pings the server from the client. Meanwhile the kernel records:
 * one private tracefs instance per veth end, filtered to that device, with
 * neigh:neigh_create, neigh:neigh_update and fib:fib_table_lookup (the
 * lookups whose result is that device) on one shared counter clock; and a
 * harness capture (c/paths/02-routing/wire_frames.c, an AF_PACKET socket) in
 * the client's and the server's namespace, which shows every frame as it was
 * on each wire. Afterwards it reads each namespace's neighbour table, routes,
 * `ip route get`, forwarding sysctls and links, and the host's ip_forward.
 * Never throws for a wrong script: the evidence says what happened, judge.ts
 * and the spec decide.
 */
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, scaledTimeout, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { defer } from '../../../helpers/harness/resources.js';
import { MAX_IFNAME, uniqueName } from '../../../helpers/harness/run-state.js';
import { waitUntil } from '../../../helpers/harness/wait.js';
import { createNetns, linkInfo, type Netns } from '../../../helpers/kernel/netns.js';
import { makeTraceInstance, type TraceEvent } from '../../../helpers/kernel/tracefs.js';
import { parseFrames, type Frame } from './frames.js';
import { cidr, hostCidr, makePlan, type Plan } from './plan.js';

/** This run's networks and addresses (random: a script that hard-codes addresses cannot pass). */
export const PLAN: Plan = makePlan();

export const EVENTS = ['neigh/neigh_create', 'neigh/neigh_update', 'fib/fib_table_lookup'] as const;
/** The script's time bound: a few ip commands and three pings (each reply waited for at most 2 s). */
export const SCRIPT_MS = scaledTimeout(20_000);
/** How long the capture waits after the script for frames still on their way (the answer to the last datagram). */
const SETTLE_MS = scaledTimeout(1_500);

/** One veth end the lab made: its namespace, name, MAC and ifindex (in its namespace). */
export interface End {
  readonly role: 'client' | 'routerC' | 'routerS' | 'server';
  readonly ns: string;
  readonly ifname: string;
  readonly mac: string;
  readonly ifindex: number;
  /** The address the spec gives it (no prefix length). */
  readonly ip: string;
}

/** What `ip -j neigh` lists in a namespace. */
export interface NeighEntry {
  readonly dst: string;
  readonly dev: string;
  readonly lladdr?: string;
  readonly state: readonly string[];
}

/** What one namespace looked like after the script. */
export interface NsView {
  readonly neigh: readonly NeighEntry[];
  /** `ip route` as text (for messages). */
  readonly routes: string;
  /** `ip -br link` as text (for messages: a bridge, a link the script made). */
  readonly links: string;
  /** net.ipv4.conf.<name>.forwarding for "all" and each of the lab's interfaces in it. */
  readonly forwarding: Readonly<Record<string, string>>;
}

/** `ip -j route get <dst>` in a namespace: the kernel's answer. */
export interface RouteGet {
  readonly dst: string;
  readonly dev?: string;
  readonly gateway?: string;
  readonly prefsrc?: string;
  readonly error?: string;
}

export interface Run {
  readonly plan: Plan;
  readonly ends: { readonly client: End; readonly routerC: End; readonly routerS: End; readonly server: End };
  readonly namespaces: { readonly client: string; readonly router: string; readonly server: string };
  /** The lab's set-up as checked before the script (the control). */
  readonly setup: { readonly ok: boolean; readonly detail: string };
  readonly script?: RunResult;
  /** The environment the script got. */
  readonly env: Readonly<Record<string, string>>;
  /** Frames the captures saw in the client's and the server's namespace, in the order each saw them. */
  readonly frames: { readonly client: readonly Frame[]; readonly server: readonly Frame[] };
  /** The kernel's record per device (its instance's events; the device is the instance's, not the printed name). */
  readonly trace: Readonly<Record<string, readonly TraceEvent[]>>;
  readonly traceLost: boolean;
  readonly views: { readonly client: NsView; readonly router: NsView; readonly server: NsView };
  /** The client's route to the server and the server's to the client, as the kernel answers. */
  readonly routeGet: { readonly clientToServer: RouteGet; readonly serverToClient: RouteGet };
  /** net.ipv4.ip_forward of the host's namespace before and after. */
  readonly hostForward: { readonly before: string; readonly after: string };
  /**
   * The router's Ip ForwDatagrams (/proc/net/snmp read inside its namespace) before and after the script:
   * the packets its IP layer forwarded (ip_forward_finish). A forwarder outside the IP layer (tc, nft fwd, XDP,
   * an AF_PACKET program) moves frames without counting here.
   */
  readonly routerForwarded: { readonly before: number; readonly after: number };
  /** Where each of the lab's links is after the script: its namespace, or missing. */
  readonly placement: Readonly<Record<string, boolean>>;
  readonly stuck?: string;
}

const TIMEOUT = { timeoutMs: 10_000 } as const;

/** The environment router.sh reads (documented in its header and the README). */
export function scriptEnv(ns: Run['namespaces'], ends: Run['ends'], plan: Plan): Record<string, string> {
  return {
    CLIENT_NS: ns.client, ROUTER_NS: ns.router, SERVER_NS: ns.server,
    CLIENT_IF: ends.client.ifname, ROUTER_IF_C: ends.routerC.ifname, ROUTER_IF_S: ends.routerS.ifname, SERVER_IF: ends.server.ifname,
    CLIENT_ADDR: hostCidr(plan.client, plan.clientNet), ROUTER_ADDR_C: hostCidr(plan.routerC, plan.clientNet),
    ROUTER_ADDR_S: hostCidr(plan.routerS, plan.serverNet), SERVER_ADDR: hostCidr(plan.server, plan.serverNet),
    CLIENT_NET: cidr(plan.clientNet), SERVER_NET: cidr(plan.serverNet),
  };
}

/** A veth pair made inside two lab namespaces (never in the host's), no address, down; deleted with the test. */
async function vethPair(a: Netns, tagA: string, b: Netns, tagB: string): Promise<[string, string]> {
  const nameA = uniqueName(tagA, MAX_IFNAME);
  const nameB = uniqueName(tagB, MAX_IFNAME);
  await run('ip', ['link', 'add', nameA, 'netns', a.name, 'type', 'veth', 'peer', 'name', nameB, 'netns', b.name], TIMEOUT);
  defer(`veth ${a.name}/${nameA} <-> ${b.name}/${nameB}`, () => run('ip', ['-n', a.name, 'link', 'del', nameA], { reject: false, ...TIMEOUT }), `ip -n ${a.name} link del ${nameA}`);
  return [nameA, nameB];
}

async function text(ns: string, args: string[]): Promise<string> {
  const r = await run('ip', ['-n', ns, ...args], { reject: false, ...TIMEOUT });
  return (r.stdout || r.stderr).trim();
}

async function neighbours(ns: string): Promise<NeighEntry[]> {
  const r = await run('ip', ['-n', ns, '-4', '-j', 'neigh', 'show'], { reject: false, ...TIMEOUT });
  try { return (JSON.parse(r.stdout || '[]') as NeighEntry[]).map((e) => ({ dst: e.dst, dev: e.dev, lladdr: e.lladdr, state: e.state ?? [] })); } catch { return []; }
}

/** A sysctl of a namespace, read inside it (its own /proc/sys/net). */
async function nsSysctl(ns: string, key: string): Promise<string> {
  const r = await run('ip', ['netns', 'exec', ns, 'cat', `/proc/sys/${key.replace(/\./g, '/')}`], { reject: false, ...TIMEOUT });
  return r.exitCode === 0 ? r.stdout.trim() : `(unreadable: ${r.stderr.trim().split('\n')[0]})`;
}

async function view(ns: string, ifnames: readonly string[]): Promise<NsView> {
  const forwarding: Record<string, string> = {};
  for (const n of ['all', ...ifnames]) forwarding[n] = await nsSysctl(ns, `net.ipv4.conf.${n}.forwarding`);
  return { neigh: await neighbours(ns), routes: await text(ns, ['-4', 'route', 'show']), links: await text(ns, ['-br', 'link', 'show']), forwarding };
}

async function routeGet(ns: string, dst: string): Promise<RouteGet> {
  const r = await run('ip', ['-n', ns, '-j', 'route', 'get', dst], { reject: false, ...TIMEOUT });
  if (r.exitCode !== 0) return { dst, error: r.stderr.trim() || `exit ${r.exitCode}` };
  try {
    const [g] = JSON.parse(r.stdout) as { dev?: string; gateway?: string; prefsrc?: string }[];
    return { dst, dev: g?.dev, gateway: g?.gateway, prefsrc: g?.prefsrc };
  } catch { return { dst, error: `unparsable: ${r.stdout.slice(0, 200)}` }; }
}

/** Ip ForwDatagrams of a namespace (its own /proc/net/snmp), NaN if unreadable. */
export async function forwDatagrams(ns: string): Promise<number> {
  const r = await run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { reject: false, ...TIMEOUT });
  const ip = r.stdout.split('\n').filter((l) => l.startsWith('Ip:')).map((l) => l.trim().split(/\s+/));
  const i = ip[0]?.indexOf('ForwDatagrams') ?? -1;
  return i > 0 && ip[1] ? Number(ip[1][i]) : Number.NaN;
}

/** The script as its #! line says when it is executable, else with sh (a file copied without its mode). */
function scriptCommand(path: string): [string, string[]] {
  try { accessSync(path, constants.X_OK); return [path, []]; } catch { return ['sh', [path]]; }
}

const hostForward = () => { try { return readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(); } catch { return '?'; } };

/** Build the harness capture (from the reference: students never edit it). */
export async function buildCapture(): Promise<string> {
  return (await buildProgram({ src: join(REFERENCE_SRC, 'paths/02-routing/wire_frames.c') })).path;
}

/** Build the lab, run the student's router.sh once, collect the kernel's evidence. */
export async function runRouting(capture: string, plan: Plan = PLAN): Promise<Run> {
  // Three namespaces, IPv6 off (no router or neighbour solicitations on the wires), forwarding off in each
  // (a new namespace copies the host's IPv4 settings: on a host that forwards, the router would forward already).
  const client = await createNetns({ tag: 'cl', disableIpv6: true });
  const router = await createNetns({ tag: 'rt', disableIpv6: true });
  const server = await createNetns({ tag: 'sv', disableIpv6: true });
  for (const ns of [client, router, server]) await ns.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0'], TIMEOUT);
  const [cIf, rcIf] = await vethPair(client, 'c', router, 'r');
  const [rsIf, sIf] = await vethPair(router, 'r', server, 's');
  const info = async (role: End['role'], ns: Netns, ifname: string, ip: string): Promise<End> => {
    const l = await linkInfo(ns.name, ifname);
    return { role, ns: ns.name, ifname, mac: l.address, ifindex: l.ifindex, ip };
  };
  const ends = {
    client: await info('client', client, cIf, plan.client),
    routerC: await info('routerC', router, rcIf, plan.routerC),
    routerS: await info('routerS', router, rsIf, plan.routerS),
    server: await info('server', server, sIf, plan.server),
  };
  const namespaces = { client: client.name, router: router.name, server: server.name };
  const env = scriptEnv(namespaces, ends, plan);
  const hostBefore = hostForward();
  const placementNow = async () => {
    const out: Record<string, boolean> = {};
    for (const e of Object.values(ends)) out[`${e.ns}/${e.ifname}`] = (await run('ip', ['-n', e.ns, 'link', 'show', 'dev', e.ifname], { reject: false, ...TIMEOUT })).exitCode === 0;
    return out;
  };
  const before = await placementNow();
  const unaddressed = (await Promise.all(Object.values(ends).map((e) => text(e.ns, ['-4', '-br', 'addr', 'show', 'dev', e.ifname])))).filter((t) => /\d+\.\d+\.\d+\.\d+\//.test(t));
  // No end in the host's namespace: the names resolve only inside the lab's namespaces.
  const inHost: string[] = [];
  for (const e of Object.values(ends)) if ((await run('ip', ['link', 'show', 'dev', e.ifname], { reject: false, ...TIMEOUT })).exitCode === 0) inHost.push(e.ifname);
  const setup = {
    ok: Object.values(before).every(Boolean) && unaddressed.length === 0 && inHost.length === 0,
    detail: `namespaces ${namespaces.client} (client), ${namespaces.router} (router), ${namespaces.server} (server); ` +
      `links ${cIf} ↔ ${rcIf} and ${rsIf} ↔ ${sIf}: ${Object.entries(before).map(([k, v]) => `${k} ${v ? 'present' : 'MISSING'}`).join(', ')}` +
      `${unaddressed.length ? `; already addressed: ${unaddressed.join('; ')}` : ''}${inHost.length ? `; in the host's namespace: ${inHost.join(', ')}` : ''}`,
  };

  // The kernel's record: one instance per veth end, filtered to that device, one counter for all of them.
  const instances = Object.values(ends).map((e, i) => {
    const t = makeTraceInstance([...EVENTS], { tag: `rt${i}`, enable: false, clock: 'counter', bufferKb: 512 });
    if (!t) return undefined;
    writeFileSync(join(t.dir, 'events/neigh/neigh_create/filter'), `dev == "${e.ifname}"`);
    writeFileSync(join(t.dir, 'events/neigh/neigh_update/filter'), `dev == "${e.ifname}"`);
    writeFileSync(join(t.dir, 'events/fib/fib_table_lookup/filter'), `name == "${e.ifname}"`);
    return { dev: e.ifname, t };
  });
  const empty = (): Omit<Run, 'stuck'> => ({
    plan, ends, namespaces, setup, env, frames: { client: [], server: [] }, trace: {}, traceLost: false,
    views: { client: { neigh: [], routes: '', links: '', forwarding: {} }, router: { neigh: [], routes: '', links: '', forwarding: {} }, server: { neigh: [], routes: '', links: '', forwarding: {} } },
    routeGet: { clientToServer: { dst: plan.server }, serverToClient: { dst: plan.client } }, hostForward: { before: hostBefore, after: hostForward() }, placement: before, routerForwarded: { before: 0, after: 0 },
  });
  if (instances.some((x) => !x)) return { ...empty(), stuck: `no tracefs instances, or one of ${EVENTS.join(', ')} is missing in /sys/kernel/tracing/events` };

  // The captures: every frame on the client's and the server's wire, from before the script's first command.
  const caps = [client, server].map((ns) => ns.background(capture, [String(Math.ceil((SCRIPT_MS + SETTLE_MS) / 1000) + 10)], { timeoutMs: SCRIPT_MS + SETTLE_MS + 30_000 }));
  try {
    await Promise.all(caps.map((c) => c.waitFor(/^listening/m, 'the capture to open its AF_PACKET socket', scaledTimeout(10_000))));
  } catch (e) {
    await Promise.all(caps.map((c) => c.stop()));
    return { ...empty(), stuck: `the harness capture did not start: ${(e as Error).message.split('\n')[0]}` };
  }
  const forwardedBefore = await forwDatagrams(router.name);
  instances.forEach((x) => x!.t.setEnabled(true));

  const script = await run(...scriptCommand(labSource('paths/02-routing/router.sh')), { env, reject: false, timeoutMs: SCRIPT_MS, failFast: false });
  // Frames still on their way: wait (bounded) until the client's wire has carried something back from the server.
  const back = () => parseFrames(caps[0]!.stdout()).some((f) => f.ipv4?.src === plan.server && f.ifindex === ends.client.ifindex && f.pkttype !== 4);
  await waitUntil('an answer from the server on the client\'s wire', back, Boolean, { timeoutMs: SETTLE_MS, intervalMs: 50 }).catch(() => undefined);
  instances.forEach((x) => x!.t.setEnabled(false));
  const [cOut, sOut] = await Promise.all(caps.map(async (c) => { await c.stop('SIGTERM'); return c.stdout(); }));
  const routerForwarded = { before: forwardedBefore, after: await forwDatagrams(router.name) };
  const trace: Record<string, TraceEvent[]> = {};
  let traceLost = false;
  for (const x of instances) {
    const { events, lost } = x!.t.read();
    trace[x!.dev] = events;
    traceLost ||= lost;
    await x!.t.release();
  }
  return {
    plan, ends, namespaces, setup, script, env,
    frames: { client: parseFrames(cOut ?? ''), server: parseFrames(sOut ?? '') },
    trace, traceLost,
    views: {
      client: await view(client.name, [cIf]),
      router: await view(router.name, [rcIf, rsIf]),
      server: await view(server.name, [sIf]),
    },
    routeGet: { clientToServer: await routeGet(client.name, plan.server), serverToClient: await routeGet(server.name, plan.client) },
    hostForward: { before: hostBefore, after: hostForward() },
    placement: await placementNow(),
    routerForwarded,
  };
}
