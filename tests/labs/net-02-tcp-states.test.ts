/**
 * Teeth of Net Lab 2 (labs/net/02-tcp-states): wrong tracers fail the test
 * that names their mistake, a correct tracer in another style passes.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSpecWith, summary, type NestedResult } from './fixture-workspace.js';

const SPEC = 'labs/net/02-tcp-states/tcp-states.spec.ts';
const FIXTURES = join(import.meta.dirname, '../fixtures/net/02-tcp-states');
const runWith = (name: string) => runSpecWith(SPEC, 'net/02-tcp-states', 'net/02-tcp-states/tcpstates.bt', join(FIXTURES, name));
const root = process.getuid?.() === 0;
const statusOf = (res: NestedResult, prefix: string) => [...res.tests].find(([t]) => t.startsWith(prefix))?.[1];

describe.skipIf(!root)('Net Lab 2 fixtures', { timeout: 6 * 60_000 }, () => {
  it('a tracer that prints every TCP socket fails "prints only the connections of the port it was given"', async () => {
    const res = await runWith('wrong-no-filter.bt');
    const t = [...res.tests].find(([title]) => title.startsWith('prints only the connections'));
    expect(t?.[1].status, summary(res)).toBe('failed');
  });

  it('a tracer that keeps only dport == port (the client side) fails the handshake test: no server socket', async () => {
    const res = await runWith('wrong-client-only.bt');
    const t = [...res.tests].find(([title]) => title.startsWith('shows the three-way handshake'));
    expect(t?.[1].status, summary(res)).toBe('failed');
    expect(t?.[1].message).toMatch(/server socket not traced/);
  });

  it('a tracer whose state table is off by one fails the handshake and close tests', async () => {
    const res = await runWith('wrong-off-by-one.bt');
    const failed = [...res.tests].filter(([, v]) => v.status === 'failed').map(([t]) => t);
    expect(failed, summary(res)).toEqual(expect.arrayContaining([
      expect.stringMatching(/^shows the three-way handshake/), expect.stringMatching(/^shows both close sequences/),
    ]));
  });

  it('a tracer with two names the ordinary closes never show swapped (CLOSING and TIME_WAIT) fails the simultaneous close', async () => {
    const res = await runWith('wrong-swapped-closing.bt');
    expect(statusOf(res, 'shows a simultaneous close'), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/server socket in your trace: .*FIN_WAIT1 → TIME_WAIT/) });
  });

  it('a tracer whose clock counts milliseconds (printed as µs) fails the latency test, though the 1 s retransmission still shows', async () => {
    const res = await runWith('wrong-ms-clock.bt');
    expect(statusOf(res, 'measures connect latency'), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/does not count microseconds/) });
  });

  it('a tracer that prints the addresses the spec used to give its namespaces instead of the event\'s fails the address test', async () => {
    const res = await runWith('wrong-hardcoded-addr.bt');
    expect(statusOf(res, 'prints each socket\'s own addresses'), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/printed 10\.199\.2\.\d:\d+ 10\.199\.2\.\d:\d+, the event holds/) });
  });

  it('a tracer that prints every TCP socket but those of port + 1 (where the decoy used to be) fails "prints only the connections"', async () => {
    const res = await runWith('wrong-decoy-blacklist.bt');
    expect(statusOf(res, 'prints only the connections'), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/connections to ports \d+ and \d+/) });
  });

  it('a correct tracer in another style (probe predicate, TCP_* names, bare hex address) passes every test', async () => {
    const res = await runWith('ok-predicate-style.bt');
    expect([...res.tests.values()].map((v) => v.status), summary(res)).toEqual(Array(8).fill('passed'));
  });
});
