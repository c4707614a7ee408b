/** Lab 8.2's addressing plan (labs/paths/02-routing/plan.ts): random, private, non-overlapping networks and distinct hosts in them. */
import { describe, expect, it } from 'vitest';
import { cidr, hostCidr, intToIp, ipToInt, makePlan, MAX_PREFIX, MIN_PREFIX, onNetwork, randomHosts, randomNetwork } from '../../../../labs/paths/02-routing/plan.js';

/** A deterministic generator (a linear congruential one) for repeatable "random" plans. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

const PRIVATE = [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const;
const isPrivate = (ip: string) => PRIVATE.some(([b, l]) => onNetwork(ip, { base: ipToInt(b), prefix: l }));

describe('Lab 8.2 plan', () => {
  it('converts addresses both ways', () => {
    expect(ipToInt('10.31.7.66')).toBe(0x0a1f0742);
    expect(intToIp(0xc0a80001)).toBe('192.168.0.1');
    expect(cidr({ base: ipToInt('10.31.7.64'), prefix: 27 })).toBe('10.31.7.64/27');
    expect(hostCidr('10.31.7.66', { base: ipToInt('10.31.7.64'), prefix: 27 })).toBe('10.31.7.66/27');
    expect(onNetwork('10.31.7.95', { base: ipToInt('10.31.7.64'), prefix: 27 })).toBe(true);
    expect(onNetwork('10.31.7.96', { base: ipToInt('10.31.7.64'), prefix: 27 })).toBe(false);
  });

  it('picks aligned private networks of /24 to /29', () => {
    const rand = lcg(7);
    for (let i = 0; i < 500; i++) {
      const n = randomNetwork(rand);
      expect(n.prefix).toBeGreaterThanOrEqual(MIN_PREFIX);
      expect(n.prefix).toBeLessThanOrEqual(MAX_PREFIX);
      expect(n.base % 2 ** (32 - n.prefix), cidr(n)).toBe(0);
      expect(isPrivate(intToIp(n.base)), cidr(n)).toBe(true);
    }
  });

  it('never hands out the network or the broadcast address, nor one address twice', () => {
    const n = { base: ipToInt('10.9.9.8'), prefix: 29 };
    const rand = lcg(3);
    for (let i = 0; i < 200; i++) {
      const h = randomHosts(n, 6, rand);
      expect(new Set(h).size).toBe(6);
      expect(h).not.toContain('10.9.9.8');
      expect(h).not.toContain('10.9.9.15');
      expect(h.every((x) => onNetwork(x, n))).toBe(true);
    }
    expect(() => randomHosts(n, 7, rand)).toThrow(/only 6 host addresses/);
  });

  it('makes two networks that never overlap, each host on its own network, and varies from run to run', () => {
    const rand = lcg(11);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const p = makePlan(rand);
      const a = p.clientNet;
      const b = p.serverNet;
      const overlap = a.base < b.base + 2 ** (32 - b.prefix) && b.base < a.base + 2 ** (32 - a.prefix);
      expect(overlap, `${cidr(a)} and ${cidr(b)}`).toBe(false);
      expect([onNetwork(p.client, a), onNetwork(p.routerC, a), onNetwork(p.server, b), onNetwork(p.routerS, b)]).toEqual([true, true, true, true]);
      expect(p.client).not.toBe(p.routerC);
      expect(p.server).not.toBe(p.routerS);
      seen.add(`${cidr(a)} ${cidr(b)}`);
    }
    expect(seen.size).toBeGreaterThan(250);
  });
});
