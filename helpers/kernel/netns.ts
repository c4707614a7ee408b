/**
 * Network namespaces and veth pairs for the networking labs (after
 * xdp-tutorial's testenv). Every namespace is named `kl-<run>-…` and every
 * veth end lives inside a namespace the lab made — the host's interfaces,
 * routes and sysctls are never touched. IPv6 duplicate address detection is
 * off inside the lab namespaces (so addresses are usable at once) and IPv6
 * can be switched off entirely for labs that count packets exactly.
 *
 * Release (registered with defer() where the namespace is made): kill every
 * pid in the namespace, delete it, wait until `ip netns list` no longer shows
 * it. Deleting the namespace destroys its veth ends and their XDP attachments.
 */
import { formatRejection, rememberRejection, rejectedBefore, verifierLog } from './bpf-verifier.js';
import { existsSync } from 'node:fs';
import { run, startBackground, waitUntil, type Background, type BackgroundOptions, type RunOptions, type RunResult } from '../harness/exec.js';
import { CommandError, LabError } from '../harness/errors.js';
import { defer } from '../harness/resources.js';
import { destroyNetns } from '../harness/destroy.js';
import { MAX_IFNAME, uniqueName } from '../harness/run-state.js';

export interface NetnsOptions {
  /** Tag inside the generated name (kl-<run>-<tag><n>). Default "ns". */
  readonly tag?: string;
  /** Disable IPv6 inside the namespace (no router/neighbour solicitations, MLD reports). Default false. */
  readonly disableIpv6?: boolean;
}

export interface Netns extends AsyncDisposable {
  readonly name: string;
  /** Run a program inside the namespace (`ip netns exec <name> file args…`). */
  exec(file: string, args?: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Start a long-running program inside the namespace. */
  background(file: string, args?: readonly string[], options?: BackgroundOptions): Background;
  /** PIDs of processes inside the namespace (`ip netns pids`). */
  pids(): Promise<number[]>;
  /** Kill the namespace's processes and delete it. Idempotent. */
  release(): Promise<void>;
}

/** The argv prefix that runs a command in `ns`. */
export function nsExecArgs(ns: string, file: string, args: readonly string[] = []): string[] {
  return ['netns', 'exec', ns, file, ...args];
}

export async function netnsExists(name: string): Promise<boolean> {
  if (existsSync(`/run/netns/${name}`)) return true;
  const r = await run('ip', ['netns', 'list'], { reject: false, timeoutMs: 10_000 });
  return r.stdout.split('\n').some((l) => l.split(' ')[0] === name);
}

async function netnsPids(name: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', name], { reject: false, timeoutMs: 10_000 });
  return r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

async function deleteNetns(name: string): Promise<void> {
  // The one netns destroy routine (shared with the reaper): kill the members, ip netns del, wait until gone.
  const d = destroyNetns(name);
  if (!d.gone) throw new LabError(`could not delete network namespace ${name}: ${d.reason}`, { code: 'E_RESOURCE' });
}

/** Make a network namespace `kl-<run>-<tag>…` with lo up; released when the test (or suite) ends. */
export async function createNetns(options: NetnsOptions = {}): Promise<Netns> {
  const name = uniqueName(options.tag ?? 'ns');
  await run('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
  const release = defer(`network namespace ${name}`, () => deleteNetns(name), `ip netns del ${name}`);
  const exec = (file: string, args: readonly string[] = [], opts: RunOptions = {}) => run('ip', nsExecArgs(name, file, args), opts);
  try {
    // Per-namespace sysctls only: the host's are never changed.
    const sysctls = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];
    if (options.disableIpv6) sysctls.push('net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    if (existsSync('/proc/sys/net/ipv6')) await exec('sysctl', ['-q', '-w', ...sysctls], { timeoutMs: 10_000 });
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
  } catch (e) {
    await release();
    throw e;
  }
  return {
    name,
    exec,
    background: (file, args = [], opts = {}) => startBackground('ip', nsExecArgs(name, file, args), opts),
    pids: () => netnsPids(name),
    release,
    async [Symbol.asyncDispose]() { await release(); },
  };
}

export interface VethEnd {
  readonly ns: Netns;
  readonly ifname: string;
  /** IPv4 address without prefix length. */
  readonly ip: string;
  readonly mac: string;
  readonly ifindex: number;
}

export interface VethPairOptions {
  /** IPv4 addresses of the two ends (same /24). Default 10.199.0.1 and 10.199.0.2. */
  readonly ips?: readonly [string, string];
  readonly prefixLength?: number;
  /**
   * Write permanent neighbour entries on both sides, so no ARP is ever sent:
   * every packet on the wire is one the lab sent (exact counts). Default false.
   */
  readonly staticNeighbours?: boolean;
}

interface LinkJson { ifindex: number; ifname: string; address: string; operstate?: string; flags?: string[]; xdp?: XdpJson }
interface XdpJson { mode?: number; prog?: { id: number; name?: string; tag?: string }; attached?: { mode: number; prog?: { id: number; name?: string } }[] }

/** `ip -j link show dev <ifname>` inside `ns`. */
export async function linkInfo(ns: string, ifname: string): Promise<LinkJson> {
  const r = await run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', ifname], { timeoutMs: 10_000 });
  const parsed = JSON.parse(r.stdout) as LinkJson[];
  if (!parsed[0]) throw new LabError(`ip -n ${ns} link show dev ${ifname} returned nothing`, { code: 'E_RESOURCE' });
  return parsed[0];
}

/**
 * A veth pair with one end in `a` and the other in `b`, created directly in
 * the namespaces (`ip link add … netns A type veth peer … netns B`): no end
 * ever exists in the host's namespace. Both ends up, addressed, reachable.
 */
export async function createVethPair(a: Netns, b: Netns, options: VethPairOptions = {}): Promise<readonly [VethEnd, VethEnd]> {
  const [ipA, ipB] = options.ips ?? ['10.199.0.1', '10.199.0.2'];
  const prefix = options.prefixLength ?? 24;
  const nameA = uniqueName('a', MAX_IFNAME);
  const nameB = uniqueName('b', MAX_IFNAME);
  await run('ip', ['link', 'add', nameA, 'netns', a.name, 'type', 'veth', 'peer', 'name', nameB, 'netns', b.name], { timeoutMs: 10_000 });
  // The pair goes with either namespace; deleting it explicitly also covers a namespace that outlives the test.
  defer(`veth ${a.name}/${nameA} <-> ${b.name}/${nameB}`, () => run('ip', ['-n', a.name, 'link', 'del', nameA], { reject: false, timeoutMs: 10_000 }));
  for (const [ns, ifname, ip] of [[a, nameA, ipA], [b, nameB, ipB]] as const) {
    await run('ip', ['-n', ns.name, 'addr', 'add', `${ip}/${prefix}`, 'dev', ifname], { timeoutMs: 10_000 });
    await run('ip', ['-n', ns.name, 'link', 'set', ifname, 'up'], { timeoutMs: 10_000 });
  }
  const [infoA, infoB] = await Promise.all([linkInfo(a.name, nameA), linkInfo(b.name, nameB)]);
  if (options.staticNeighbours) {
    await run('ip', ['-n', a.name, 'neigh', 'replace', ipB, 'lladdr', infoB.address, 'dev', nameA, 'nud', 'permanent'], { timeoutMs: 10_000 });
    await run('ip', ['-n', b.name, 'neigh', 'replace', ipA, 'lladdr', infoA.address, 'dev', nameB, 'nud', 'permanent'], { timeoutMs: 10_000 });
  }
  await waitUntil(`veth ${nameA} and ${nameB} to be up`,
    async () => [await linkInfo(a.name, nameA), await linkInfo(b.name, nameB)].map((l) => l.operstate ?? '?'),
    (states) => states.every((s) => s === 'UP'), { timeoutMs: 10_000 });
  return [
    { ns: a, ifname: nameA, ip: ipA, mac: infoA.address, ifindex: infoA.ifindex },
    { ns: b, ifname: nameB, ip: ipB, mac: infoB.address, ifindex: infoB.ifindex },
  ] as const;
}

export interface TwoHosts {
  readonly left: VethEnd;
  readonly right: VethEnd;
}

/** Two namespaces joined by a veth pair: the lab's "two machines on one wire". */
export async function twoHosts(options: VethPairOptions & Pick<NetnsOptions, 'disableIpv6'> = {}): Promise<TwoHosts> {
  const a = await createNetns({ tag: 'l', disableIpv6: options.disableIpv6 });
  const b = await createNetns({ tag: 'r', disableIpv6: options.disableIpv6 });
  const [left, right] = await createVethPair(a, b, options);
  return { left, right };
}

/** The XDP program attached to a link, as `ip -j link` reports it. */
export interface XdpAttachment {
  readonly progId: number;
  /** "xdp" (driver), "xdpgeneric", "xdpoffload" or "xdpmulti". */
  readonly mode: string;
  readonly progName?: string;
}

const XDP_MODES: Record<number, string> = { 1: 'xdp', 2: 'xdpgeneric', 3: 'xdpoffload', 4: 'xdpmulti' };

/** Parse the `xdp` member of one `ip -j link show` entry (undefined: nothing attached). */
export function parseXdp(link: Pick<LinkJson, 'xdp'>): XdpAttachment | undefined {
  const x = link.xdp;
  if (!x) return undefined;
  const prog = x.prog ?? x.attached?.[0]?.prog;
  if (!prog) return undefined;
  return { progId: prog.id, mode: XDP_MODES[x.mode ?? x.attached?.[0]?.mode ?? 0] ?? `mode ${x.mode}`, progName: prog.name };
}

export async function xdpAttachment(end: Pick<VethEnd, 'ns' | 'ifname'>): Promise<XdpAttachment | undefined> {
  return parseXdp(await linkInfo(end.ns.name, end.ifname));
}

export type XdpMode = 'xdp' | 'xdpgeneric' | 'xdpdrv';

/**
 * Attach a BPF object's XDP section to the end with iproute2, as the seed
 * does (`ip link set dev <if> xdp obj <o> sec xdp`), inside the namespace
 * the end lives in. Detached again when the test ends (and with the namespace).
 */


export async function attachXdp(end: Pick<VethEnd, 'ns' | 'ifname'>, object: string, options: { readonly section?: string; readonly mode?: XdpMode } = {}): Promise<XdpAttachment> {
  const mode = options.mode ?? 'xdp';
  rejectedBefore(object);
  try {
    await end.ns.exec('ip', ['link', 'set', 'dev', end.ifname, mode, 'obj', object, 'sec', options.section ?? 'xdp'], { timeoutMs: 30_000 });
  } catch (e) {
    const log = e instanceof CommandError ? verifierLog(e.stderr) : undefined;
    if (log) {
      rememberRejection(object, log);
      // The log once: not again in the cause's stderr.
      throw new LabError(formatRejection(object, `ip link set dev ${end.ifname} ${mode} obj ${object}`, log), { code: 'E_COMMAND', cause: new Error((e as Error).message.split('\n')[0]) });
    }
    throw e;
  }
  defer(`XDP program on ${end.ns.name}/${end.ifname}`, () => detachXdp(end, mode));
  const att = await xdpAttachment(end);
  if (!att) throw new LabError(`ip link set dev ${end.ifname} ${mode} obj ${object} succeeded but ip link shows no XDP program`, { code: 'E_RESOURCE' });
  return att;
}

export async function detachXdp(end: Pick<VethEnd, 'ns' | 'ifname'>, mode: XdpMode = 'xdp'): Promise<void> {
  if (!(await netnsExists(end.ns.name))) return;
  await end.ns.exec('ip', ['link', 'set', 'dev', end.ifname, mode, 'off'], { reject: false, timeoutMs: 10_000 });
}

export interface PingStats {
  readonly transmitted: number;
  readonly received: number;
  readonly lossPercent: number;
  /** The ping summary lines, for assertion messages. */
  readonly summary: string;
}

/** Parse iputils ping's summary ("3 packets transmitted, 0 received, 100% packet loss"). */
export function parsePing(output: string): PingStats {
  const m = output.match(/(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+\d+ errors)?, ([\d.]+)% packet loss/);
  const summary = output.split('\n').filter((l) => /packets transmitted|rtt|---/.test(l)).join('\n') || output.trim().split('\n').slice(-3).join('\n');
  if (!m) return { transmitted: 0, received: 0, lossPercent: 100, summary: summary || '(ping printed no statistics)' };
  return { transmitted: Number(m[1]), received: Number(m[2]), lossPercent: Number(m[3]), summary };
}

/** Ping `to` from `from`'s namespace: `count` echoes, `intervalS` apart, each waiting `waitS` for its reply. */
export async function ping(from: Pick<VethEnd, 'ns'>, to: string, options: { readonly count?: number; readonly intervalS?: number; readonly waitS?: number } = {}): Promise<PingStats> {
  const count = options.count ?? 3;
  const args = ['-n', '-c', String(count), '-i', String(options.intervalS ?? 0.2), '-W', String(options.waitS ?? 1), to];
  const r = await from.ns.exec('ping', args, { reject: false, timeoutMs: 30_000 });
  return parsePing(`${r.stdout}\n${r.stderr}`);
}
