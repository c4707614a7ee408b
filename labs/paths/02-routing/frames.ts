/**
 * Lab 8.2's reader of the harness capture (c/paths/02-routing/wire_frames.c):
 * one line per frame an AF_PACKET socket saw in a namespace —
 * `<n> <ifindex> <pkttype> <length> <hex>` — decoded into the Ethernet
 * header, ARP (RFC 826) and IPv4 (RFC 791) with the first bytes of what the
 * IPv4 header carries. Pure; unit-tested in
 * tests/lab-units/paths/02-routing/frames.test.ts.
 */

/** packet(7) sll_pkttype. */
export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_OUTGOING = 4;

export interface Arp {
  /** 1 request, 2 reply. */
  readonly op: number;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

export interface Ipv4 {
  readonly src: string;
  readonly dst: string;
  readonly ttl: number;
  readonly protocol: number;
  readonly id: number;
  /** The bytes after the IPv4 header that the capture holds, as hex (ICMP/UDP header and payload: unchanged by a router). */
  readonly payload: string;
}

export interface Frame {
  /** Order in its capture. */
  readonly n: number;
  readonly ifindex: number;
  readonly pkttype: number;
  readonly length: number;
  readonly dstMac: string;
  readonly srcMac: string;
  readonly ethertype: number;
  readonly arp?: Arp;
  readonly ipv4?: Ipv4;
}

const mac = (b: Buffer, at: number) => [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ip = (b: Buffer, at: number) => [...b.subarray(at, at + 4)].join('.');

/** One line of wire_frames; undefined for "listening", "done N" and anything torn. */
export function parseFrame(line: string): Frame | undefined {
  const m = line.trim().match(/^(\d+) (\d+) (\d+) (\d+) ((?:[0-9a-f]{2})+)$/);
  if (!m) return undefined;
  const b = Buffer.from(m[5]!, 'hex');
  if (b.length < 14) return undefined;
  const ethertype = b.readUInt16BE(12);
  const base = { n: Number(m[1]), ifindex: Number(m[2]), pkttype: Number(m[3]), length: Number(m[4]), dstMac: mac(b, 0), srcMac: mac(b, 6), ethertype };
  if (ethertype === 0x0806 && b.length >= 42) {
    return { ...base, arp: { op: b.readUInt16BE(20), senderMac: mac(b, 22), senderIp: ip(b, 28), targetMac: mac(b, 32), targetIp: ip(b, 38) } };
  }
  if (ethertype === 0x0800 && b.length >= 34 && b[14]! >> 4 === 4) {
    const ihl = (b[14]! & 0x0f) * 4;
    return {
      ...base,
      ipv4: { src: ip(b, 26), dst: ip(b, 30), ttl: b[22]!, protocol: b[23]!, id: b.readUInt16BE(18), payload: b.subarray(14 + ihl).toString('hex') },
    };
  }
  return base;
}

export const parseFrames = (text: string): Frame[] => text.split('\n').flatMap((l) => parseFrame(l) ?? []);

const PROTOCOLS: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' };

/** A short description of a frame for assertion messages. */
export function describeFrame(f: Frame): string {
  const dir = f.pkttype === PACKET_OUTGOING ? 'out' : 'in';
  if (f.arp) {
    const what = f.arp.op === 1 ? `ARP who-has ${f.arp.targetIp} tell ${f.arp.senderIp}` : f.arp.op === 2 ? `ARP ${f.arp.senderIp} is-at ${f.arp.senderMac}` : `ARP op ${f.arp.op}`;
    return `#${f.n} ${dir} if${f.ifindex} ${f.srcMac} > ${f.dstMac} ${what}`;
  }
  if (f.ipv4) {
    const p = f.ipv4;
    const icmp = p.protocol === 1 && p.payload.length >= 2 ? ` type ${parseInt(p.payload.slice(0, 2), 16)}` : '';
    return `#${f.n} ${dir} if${f.ifindex} ${f.srcMac} > ${f.dstMac} IPv4 ${p.src} > ${p.dst} ${PROTOCOLS[p.protocol] ?? `proto ${p.protocol}`}${icmp} TTL ${p.ttl}`;
  }
  return `#${f.n} ${dir} if${f.ifindex} ${f.srcMac} > ${f.dstMac} ethertype 0x${f.ethertype.toString(16).padStart(4, '0')}`;
}

/**
 * Is `b` the same IPv4 packet as `a` after a router (or none) passed it on: same addresses,
 * protocol and identification, and the same bytes after the IPv4 header as far as both captures hold them.
 */
export function samePacket(a: Ipv4, b: Ipv4): boolean {
  const n = Math.min(a.payload.length, b.payload.length);
  return a.src === b.src && a.dst === b.dst && a.protocol === b.protocol && a.id === b.id && n > 0 && a.payload.slice(0, n) === b.payload.slice(0, n);
}

/** The same transport bytes whatever the addresses say (a packet whose source a NAT rewrote keeps its ICMP echo id or UDP payload, not its checksum). */
export function sameTransport(a: Ipv4, b: Ipv4): boolean {
  // Skip the first 4 bytes (ICMP type/code/checksum or UDP ports) for ICMP and the 8-byte header for UDP/TCP:
  // a source NAT changes the checksum (and for UDP may change the port).
  const skip = a.protocol === 1 ? 8 : 16;
  const n = Math.min(a.payload.length, b.payload.length);
  return a.protocol === b.protocol && n > skip && a.payload.slice(skip, n) === b.payload.slice(skip, n);
}
