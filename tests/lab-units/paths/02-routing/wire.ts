/** Made-up frames in wire_frames' line format for Lab 8.2's unit tests (not a test file itself). */
const macHex = (m: string) => m.replace(/:/g, '');
const ipHex = (ip: string) => ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
const u16 = (n: number) => n.toString(16).padStart(4, '0');

/** One line of wire_frames: `<n> <ifindex> <pkttype> <length> <hex>`. */
export const line = (n: number, ifindex: number, pkttype: number, hex: string) => `${n} ${ifindex} ${pkttype} ${hex.length / 2} ${hex}`;

export function arpHex(op: number, sha: string, spa: string, tha: string, tpa: string, dstMac: string): string {
  return `${macHex(dstMac)}${macHex(sha)}0806` + `00010800060400${op.toString(16).padStart(2, '0')}` + `${macHex(sha)}${ipHex(spa)}${macHex(tha)}${ipHex(tpa)}`;
}

export interface IcmpFrame {
  readonly src: string; readonly dst: string; readonly ttl: number; readonly id: number; readonly seq: number;
  readonly srcMac?: string; readonly dstMac?: string; readonly options?: number; readonly type?: number; readonly checksum?: number;
}

/** Ethernet + IPv4 (+ options) + an ICMP echo with a payload that differs per seq. */
export function icmpHex(f: IcmpFrame): string {
  const opts = '01'.repeat(f.options ?? 0);
  const ihl = 5 + (f.options ?? 0) / 4;
  const icmp = `${(f.type ?? 8).toString(16).padStart(2, '0')}00${u16(f.checksum ?? 0x1111)}abcd${u16(f.seq)}` + `5a${u16(f.seq)}a5`.repeat(4);
  const total = 4 * ihl + icmp.length / 2;
  const ip = `4${ihl.toString(16)}00${u16(total)}${u16(f.id)}4000${f.ttl.toString(16).padStart(2, '0')}010000${ipHex(f.src)}${ipHex(f.dst)}${opts}`;
  return `${macHex(f.dstMac ?? '02:00:00:00:00:02')}${macHex(f.srcMac ?? '02:00:00:00:00:01')}0800${ip}${icmp}`;
}
