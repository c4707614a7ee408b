/** Lab 8.2's reader of the harness capture (labs/paths/02-routing/frames.ts) on made-up frames. */
import { describe, expect, it } from 'vitest';
import { describeFrame, parseFrame, parseFrames, samePacket, sameTransport } from '../../../../labs/paths/02-routing/frames.js';
import { arpHex, icmpHex, line } from './wire.js';

describe('Lab 8.2 frames', () => {
  it('decodes an ARP request and reply', () => {
    const req = parseFrame(line(1, 2, 4, arpHex(1, '02:00:00:00:00:01', '10.1.1.2', '00:00:00:00:00:00', '10.1.1.1', 'ff:ff:ff:ff:ff:ff')))!;
    expect(req).toMatchObject({ n: 1, ifindex: 2, pkttype: 4, dstMac: 'ff:ff:ff:ff:ff:ff', srcMac: '02:00:00:00:00:01', ethertype: 0x0806 });
    expect(req.arp).toEqual({ op: 1, senderMac: '02:00:00:00:00:01', senderIp: '10.1.1.2', targetMac: '00:00:00:00:00:00', targetIp: '10.1.1.1' });
    expect(describeFrame(req)).toContain('ARP who-has 10.1.1.1 tell 10.1.1.2');
    const rep = parseFrame(line(2, 2, 0, arpHex(2, '02:00:00:00:00:02', '10.1.1.1', '02:00:00:00:00:01', '10.1.1.2', '02:00:00:00:00:01')))!;
    expect(describeFrame(rep)).toContain('ARP 10.1.1.1 is-at 02:00:00:00:00:02');
  });

  it('decodes IPv4 with its TTL, protocol, id and the bytes after the header (options skipped)', () => {
    const f = parseFrame(line(3, 2, 0, icmpHex({ src: '10.1.1.2', dst: '10.2.2.2', ttl: 63, id: 0x1234, seq: 1, srcMac: '02:00:00:00:00:03', dstMac: '02:00:00:00:00:04', options: 8 })))!;
    expect(f.ipv4).toMatchObject({ src: '10.1.1.2', dst: '10.2.2.2', ttl: 63, protocol: 1, id: 0x1234 });
    expect(f.ipv4!.payload.slice(0, 2)).toBe('08');
    expect(describeFrame(f)).toBe('#3 in if2 02:00:00:00:00:03 > 02:00:00:00:00:04 IPv4 10.1.1.2 > 10.2.2.2 ICMP type 8 TTL 63');
  });

  it('skips the capture\'s own lines and torn ones', () => {
    const ok = line(1, 2, 4, icmpHex({ src: '1.1.1.1', dst: '2.2.2.2', ttl: 64, id: 1, seq: 1 }));
    expect(parseFrames(`listening\n${ok}\n5 2 0 60 0a0b\ndone 1\n`)).toHaveLength(1);
  });

  it('tells the same packet after a router from another one, and a NAT-rewritten one by its transport bytes', () => {
    const a = parseFrame(line(1, 2, 4, icmpHex({ src: '10.1.1.2', dst: '10.2.2.2', ttl: 64, id: 7, seq: 1 })))!.ipv4!;
    const routed = parseFrame(line(1, 2, 0, icmpHex({ src: '10.1.1.2', dst: '10.2.2.2', ttl: 63, id: 7, seq: 1 })))!.ipv4!;
    const next = parseFrame(line(2, 2, 0, icmpHex({ src: '10.1.1.2', dst: '10.2.2.2', ttl: 63, id: 8, seq: 2 })))!.ipv4!;
    const natted = parseFrame(line(1, 2, 0, icmpHex({ src: '10.2.2.1', dst: '10.2.2.2', ttl: 63, id: 7, seq: 1, checksum: 0xbeef })))!.ipv4!;
    expect(samePacket(a, routed)).toBe(true);
    expect(samePacket(a, next)).toBe(false);
    expect(samePacket(a, natted)).toBe(false);
    expect(sameTransport(a, natted)).toBe(true);
  });
});
