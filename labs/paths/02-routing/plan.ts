/**
 * Lab 8.2's addressing plan (pure): two IPv4 networks picked at random on
 * every run — the client's and the server's, each a /24 to a /29 of the
 * private ranges, never overlapping — and random host addresses in them for
 * the client, the router's two interfaces and the server. A script that
 * hard-codes the README's example addresses, a /24 or ".1 is the router"
 * cannot pass. Unit-tested in tests/lab-units/paths/02-routing/plan.test.ts.
 */

/** One IPv4 network: its address (host bits zero) and prefix length. */
export interface Network {
  readonly base: number;
  readonly prefix: number;
}

/** The addresses the spec gives the script (each with its network's prefix length). */
export interface Plan {
  readonly clientNet: Network;
  readonly serverNet: Network;
  /** Dotted quads without prefix length. */
  readonly client: string;
  readonly routerC: string;
  readonly routerS: string;
  readonly server: string;
}

export const MIN_PREFIX = 24;
export const MAX_PREFIX = 29;

export const ipToInt = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const size = (n: Network) => 2 ** (32 - n.prefix);

/** `a.b.c.d/len` of a network. */
export const cidr = (n: Network): string => `${intToIp(n.base)}/${n.prefix}`;
/** `a.b.c.d/len` of a host on `n`. */
export const hostCidr = (ip: string, n: Network): string => `${ip}/${n.prefix}`;
/** Is `ip` on network `n`? */
export const onNetwork = (ip: string, n: Network): boolean => ipToInt(ip) >= n.base && ipToInt(ip) < n.base + size(n);
const overlap = (a: Network, b: Network) => a.base < b.base + size(b) && b.base < a.base + size(a);

/** A random network of the private ranges (10/8, 172.16/12, 192.168/16), prefix MIN_PREFIX..MAX_PREFIX. */
export function randomNetwork(rand: () => number): Network {
  const prefix = MIN_PREFIX + Math.floor(rand() * (MAX_PREFIX - MIN_PREFIX + 1));
  const ranges = [[ipToInt('10.0.0.0'), 8], [ipToInt('172.16.0.0'), 12], [ipToInt('192.168.0.0'), 16]] as const;
  const [start, len] = ranges[Math.floor(rand() * ranges.length)]!;
  const blocks = 2 ** (prefix - len);
  return { base: start + Math.floor(rand() * blocks) * 2 ** (32 - prefix), prefix };
}

/** `count` distinct random host addresses of `n` (neither the network address nor the broadcast). */
export function randomHosts(n: Network, count: number, rand: () => number): string[] {
  const hosts = size(n) - 2;
  if (count > hosts) throw new Error(`${cidr(n)} has only ${hosts} host addresses`);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(1 + Math.floor(rand() * hosts));
  return [...picked].map((h) => intToIp(n.base + h));
}

/** The plan of one run: two networks that do not overlap and four host addresses. */
export function makePlan(rand: () => number = Math.random): Plan {
  const clientNet = randomNetwork(rand);
  let serverNet = randomNetwork(rand);
  while (overlap(clientNet, serverNet)) serverNet = randomNetwork(rand);
  const [client, routerC] = randomHosts(clientNet, 2, rand) as [string, string];
  const [server, routerS] = randomHosts(serverNet, 2, rand) as [string, string];
  return { clientNet, serverNet, client, routerC, routerS, server };
}
