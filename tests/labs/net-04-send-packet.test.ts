/**
 * Teeth of Net Lab 4 (labs/net/04-send-packet): each wrong tracer fails the
 * test that names its mistake, with the evidence in the message; a correct
 * tracer in another style passes.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSpecWith, summary, type NestedResult } from './fixture-workspace.js';

const SPEC = 'labs/net/04-send-packet/send-packet.spec.ts';
const FIXTURES = join(import.meta.dirname, '../fixtures/net/04-send-packet');
const runWith = (name: string) => runSpecWith(SPEC, 'net/04-send-packet', 'net/04-send-packet/sendpath.bt', join(FIXTURES, name));
const root = process.getuid?.() === 0;

const FOLLOWS = 'follows the lab\'s datagram';
const LENGTHS = 'reports each event\'s length';
const ONLY = 'prints only that datagram';

function outcome(res: NestedResult, prefix: string) {
  return [...res.tests].find(([title]) => title.startsWith(prefix))?.[1];
}

function failedOnly(res: NestedResult, prefix: string): string {
  const failed = [...res.tests].filter(([, v]) => v.status === 'failed').map(([t]) => t);
  expect(failed.length, summary(res)).toBeGreaterThan(0);
  expect(failed.every((t) => t.startsWith(prefix)), summary(res)).toBe(true);
  return outcome(res, prefix)!.message;
}

describe.skipIf(!root)('Net Lab 4 fixtures', { timeout: 6 * 60_000 }, () => {
  it('a tracer that prints every skb (no filter) fails "prints only that datagram", naming the decoys and the answer', async () => {
    const msg = failedOnly(await runWith('wrong-no-filter.bt'), ONLY);
    expect(msg).toMatch(/decoy to port \d+/);
    expect(msg).toMatch(/the answer from port \d+/);
  });

  it('a tracer that follows the 142-byte frame of the README\'s example fails "follows the lab\'s datagram": no line is its skb', async () => {
    const res = await runWith('wrong-fixed-length.bt');
    expect(outcome(res, FOLLOWS)?.status, summary(res)).toBe('failed');
    expect(outcome(res, FOLLOWS)?.message).toMatch(/no line of yours is net_dev_queue dev=\S+ skbaddr=0x[0-9a-f]{16} len=\d+/);
  });

  it('a tracer that reads the port at the sender\'s offset everywhere fails "follows the lab\'s datagram": net_dev_xmit and the peer\'s netif_receive_skb are missing', async () => {
    const msg = failedOnly(await runWith('wrong-eth-offset.bt'), FOLLOWS);
    expect(msg).toMatch(/no line of yours is net_dev_xmit dev=/);
    expect(msg).toMatch(/no line of yours is netif_receive_skb dev=/);
    expect(msg).not.toMatch(/no line of yours is net_dev_queue/);
  });

  it('a tracer that prints skb->len fails "reports each event\'s length" at net_dev_xmit: 14 bytes short', async () => {
    const msg = failedOnly(await runWith('wrong-skb-len.bt'), LENGTHS);
    expect(msg).toMatch(/len (\d+), but the kernel's net_dev_xmit reported len=(\d+)/);
    const m = msg.match(/len (\d+), but the kernel's net_dev_xmit reported len=(\d+)/)!;
    expect(Number(m[2]) - Number(m[1])).toBe(14);
  });

  it('a tracer that keeps the port at either end fails "prints only that datagram" with the answer coming back', async () => {
    const msg = failedOnly(await runWith('wrong-either-port.bt'), ONLY);
    expect(msg).toMatch(/the answer from port \d+ \(the other way\)/);
  });

  it('a correct tracer in another style (no map, the skb\'s header offsets, "N bytes", bare hex) passes every test', async () => {
    const res = await runWith('ok-headers-each-event.bt');
    expect([...res.tests.values()].map((v) => v.status), summary(res)).toEqual(Array(4).fill('passed'));
  });
});
