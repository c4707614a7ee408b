import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNetns, netnsExists, parsePing, parseXdp, ping, twoHosts } from '../../helpers/kernel/netns.js';
import { explainRejection, formatRejection, verifierLog } from '../../helpers/kernel/bpf-verifier.js';
import { run } from '../../helpers/harness/exec.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'ebpf');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

describe('parsePing', () => {
  it('reads transmitted, received and loss from iputils ping', () => {
    expect(parsePing(fixture('ping-ok.txt'))).toMatchObject({ transmitted: 2, received: 2, lossPercent: 0 });
    const lost = parsePing(fixture('ping-lost.txt'));
    expect(lost).toMatchObject({ transmitted: 3, received: 0, lossPercent: 100 });
    expect(lost.summary).toContain('3 packets transmitted, 0 received');
  });

  it('treats output without statistics as total loss and says so', () => {
    expect(parsePing('ping: connect: Network is unreachable\n')).toMatchObject({ transmitted: 0, received: 0, lossPercent: 100 });
  });
});

describe('parseXdp', () => {
  it('reads the program id and mode from ip -j link (driver and generic mode)', () => {
    const drv = JSON.parse(fixture('ip-link-xdp.json'))[0];
    const gen = JSON.parse(fixture('ip-link-xdpgeneric.json'))[0];
    expect(parseXdp(drv)).toMatchObject({ mode: 'xdp', progName: 'xdp_drop_all' });
    expect(parseXdp(gen)).toMatchObject({ mode: 'xdpgeneric', progName: 'xdp_drop_all' });
    expect(parseXdp(drv)?.progId).toBeGreaterThan(0);
  });

  it('returns undefined for a link without XDP', () => {
    expect(parseXdp(JSON.parse(fixture('ip-link-noxdp.json'))[0])).toBeUndefined();
  });
});

const canNetns = process.getuid?.() === 0 && (await run('ip', ['-V'], { reject: false }).then((r) => r.exitCode === 0, () => false));

describe.skipIf(!canNetns)('namespaces and veth pairs (root)', () => {
  it('joins two namespaces with a veth whose ends are both inside them, and releases everything', async () => {
    let names: string[] = [];
    await (async () => {
      const net = await twoHosts({ staticNeighbours: true, disableIpv6: true });
      names = [net.left.ns.name, net.right.ns.name];
      expect(net.left.ifname.length).toBeLessThanOrEqual(15);
      const hostLinks = (await run('ip', ['-o', 'link'])).stdout;
      expect(hostLinks, 'no veth end in the host namespace').not.toContain(net.left.ifname);
      expect(hostLinks).not.toContain(net.right.ifname);
      const stats = await ping(net.left, net.right.ip, { count: 1 });
      expect(stats.received, stats.summary).toBe(1);
      // A process inside is killed on release.
      net.right.ns.background('sleep', ['60'], { autoStop: false });
      await net.left.ns.release();
      await net.right.ns.release();
    })();
    for (const n of names) expect(await netnsExists(n), n).toBe(false);
  });

  it('release is idempotent', async () => {
    const ns = await createNetns({ tag: 't' });
    await ns.release();
    await ns.release();
    expect(await netnsExists(ns.name)).toBe(false);
  });
});

describe('verifierLog', () => {
  it('extracts the verifier log libbpf prints when iproute2 fails to load (recorded)', () => {
    const log = verifierLog(fixture('ip-xdp-verifier-reject.txt'));
    expect(log).toContain('invalid access to packet');
    expect(log).toContain('BPF program load failed: Permission denied');
    expect(verifierLog('Error: interface not found\n')).toBeUndefined();
  });
});

describe('the verifier\'s rejection, said for a student', () => {
  it('finds the key line and the note of an unchecked packet access, and tells EACCES from privileges', () => {
    const log = verifierLog(fixture('ip-xdp-verifier-reject.txt'))!;
    expect(explainRejection(log)).toMatchObject({ keyLine: 'invalid access to packet, off=20 size=1, R1(id=0,off=20,r=0)', note: expect.stringMatching(/bounds check against data_end/) });
    const text = formatRejection('/tmp/bad_xdp.o', 'ip link set dev v0 xdp obj /tmp/bad_xdp.o', log);
    expect(text.split('\n')[0]).toBe('the BPF verifier rejected /tmp/bad_xdp.o: invalid access to packet, off=20 size=1, R1(id=0,off=20,r=0)');
    expect(text).toMatch(/not missing privileges/);
  });

  it('names a .rodata or map-value overrun', () => {
    const log = '0: R1=ctx()\n5: (61) r1 = *(u32 *)(r0 +20)\ninvalid access to map value, value_size=20 off=20 size=4\nR0 min value is outside of the allowed memory range\nprocessed 9 insns (limit 1000000)';
    expect(explainRejection(log)).toMatchObject({ keyLine: 'invalid access to map value, value_size=20 off=20 size=4', note: expect.stringMatching(/\.rodata are map values too/) });
  });
});
