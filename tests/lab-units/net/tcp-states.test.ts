import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { otherProtocolLines, parseKernelStateChange, parseRawSocketChanges, parseSocketChangeRecord, parseTraceFormat, ringBufferRecords, parseSs, parseStateChange, parseStateChanges, socketLives, ssStateName, stateName, timeBetween } from '../../../labs/net/tcp-states.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/net', name), 'utf8');

describe('tcp-states', () => {
  it('parses one tracer line and ignores bpftrace noise', () => {
    expect(parseStateChange('2883475091 0xffff888117395c80 10.199.0.1:56350 10.199.0.2:7001 SYN_SENT -> ESTABLISHED')).toMatchObject({
      us: 2883475091, sk: '0xffff888117395c80', saddr: '10.199.0.1', sport: 56350, daddr: '10.199.0.2', dport: 7001, from: 'SYN_SENT', to: 'ESTABLISHED',
    });
    expect(parseStateChange('Attaching 3 probes...')).toBeUndefined();
    expect(stateName('TCP_FIN_WAIT_1')).toBe('FIN_WAIT1');
  });

  it('reads the kernel\'s record of the tracepoint and finds the lines only another protocol\'s socket explains', () => {
    // tracefs lines of an MPTCP listener on 7777 (6.18): the MPTCP socket, its TCP subflow listener, then the MPTCP socket's own LISTEN -> LISTEN.
    const kernel = [
      'family=AF_INET protocol=IPPROTO_MPTCP sport=7777 dport=0 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=:: daddrv6=:: oldstate=TCP_CLOSE newstate=TCP_LISTEN',
      'family=AF_INET protocol=IPPROTO_TCP sport=7777 dport=0 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=:: daddrv6=:: oldstate=TCP_CLOSE newstate=TCP_LISTEN',
      'family=AF_INET protocol=IPPROTO_MPTCP sport=7777 dport=0 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=:: daddrv6=:: oldstate=TCP_LISTEN newstate=TCP_LISTEN',
      'family=AF_INET protocol=0x106 sport=7777 dport=0 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=:: daddrv6=:: oldstate=10 newstate=7',
    ].map((b) => parseKernelStateChange(b)!);
    expect(kernel.map((k) => [k.protocol, k.from, k.to])).toEqual([[262, 'CLOSE', 'LISTEN'], [6, 'CLOSE', 'LISTEN'], [262, 'LISTEN', 'LISTEN'], [262, 'LISTEN', 'CLOSE']]);
    const line = (sk: string, from: string, to: string) => `100 ${sk} 0.0.0.0:7777 0.0.0.0:0 ${from} -> ${to}`;
    const tcpOnly = parseStateChanges([line('0xffff1', 'CLOSE', 'LISTEN')]);
    expect(otherProtocolLines(tcpOnly, kernel)).toEqual([]);
    const blind = parseStateChanges([line('0xffff2', 'CLOSE', 'LISTEN'), line('0xffff1', 'CLOSE', 'LISTEN'), line('0xffff2', 'LISTEN', 'LISTEN')]);
    expect(otherProtocolLines(blind, kernel).map((x) => [x.key, x.tcp, x.lines.length])).toEqual([
      ['0.0.0.0:7777 0.0.0.0:0 CLOSE -> LISTEN', 1, 1], ['0.0.0.0:7777 0.0.0.0:0 LISTEN -> LISTEN', 0, 1],
    ]);
  });

  it('follows the timestamps, not the print order: bpftrace prints each CPU\'s events in turn, so lines can come out of order', () => {
    const lines = fixture('tcpstates-run.txt').split('\n').filter((l) => l.trim());
    const shuffled = [...lines].reverse();
    const paths = (ls: string[]) => socketLives(parseStateChanges(ls)).map((l) => `${l.local.port}>${l.remote.port} ${l.states.join(' ')}`);
    expect(paths(shuffled)).toEqual(paths(lines));
  });

  it('splits a recorded run into socket lives, even when the kernel reuses a socket address', () => {
    const lives = socketLives(parseStateChanges(fixture('tcpstates-run.txt').split('\n')));
    const paths = lives.map((l) => `${l.local.port}>${l.remote.port} ${l.states.join(' ')}`);
    expect(paths).toEqual([
      '7001>0 CLOSE LISTEN CLOSE',
      '56350>7001 CLOSE SYN_SENT ESTABLISHED FIN_WAIT1 FIN_WAIT2 CLOSE',
      '7001>56350 LISTEN SYN_RECV ESTABLISHED CLOSE_WAIT LAST_ACK CLOSE',
      '56360>7001 CLOSE SYN_SENT ESTABLISHED CLOSE_WAIT LAST_ACK CLOSE',
      '7001>56360 LISTEN SYN_RECV ESTABLISHED FIN_WAIT1 FIN_WAIT2 CLOSE',
      '56366>7001 CLOSE SYN_SENT CLOSE',
    ]);
    // 0xffff888117392500 was the server's child of the first connection, then the refused client's socket.
    expect(lives.filter((l) => l.sk === '0xffff888117392500')).toHaveLength(2);
    expect(timeBetween(lives[1]!, 'SYN_SENT', 'ESTABLISHED')).toBe(302);
  });

  it('reads tracefs format files: each field\'s offset and size by name, and the event\'s ID', () => {
    const event = parseTraceFormat(fixture('inet_sock_set_state-format.txt'));
    expect(event.id).toBe(2287);
    expect(event.fields.get('skaddr')).toEqual({ offset: 8, size: 8, signed: false });
    expect(event.fields.get('oldstate')).toEqual({ offset: 16, size: 4, signed: true });
    expect(event.fields.get('saddr')).toEqual({ offset: 32, size: 4, signed: false });
    expect(event.fields.get('common_type')).toEqual({ offset: 0, size: 2, signed: false });
    const header = parseTraceFormat(fixture('header_page.txt'));
    expect(header.id).toBeUndefined();
    expect([header.fields.get('commit'), header.fields.get('data')]).toEqual([{ offset: 8, size: 8, signed: true }, { offset: 16, size: 4080, signed: false }]);
  });

  it('reads the record with each change\'s socket from a trace_pipe_raw page (recorded on 6.18): skaddr, ports, protocol and states of every event', () => {
    const page = Buffer.from(fixture('inet_sock_set_state-trace_pipe_raw.hex').replace(/\s/g, ''), 'hex');
    expect(page.length).toBe(4096);
    const changes = parseRawSocketChanges([page], fixture('header_page.txt'), fixture('inet_sock_set_state-format.txt'));
    // Three connections to a listener on 46096, each 10 changes, between the listener's CLOSE -> LISTEN and LISTEN -> CLOSE.
    expect(changes).toHaveLength(32);
    expect(changes[0]).toEqual({ sk: '0xffff8881764a1bc0', protocol: 6, sport: 46096, dport: 0, from: 'CLOSE', to: 'LISTEN' });
    expect(changes[1]).toEqual({ sk: '0xffff8881764a40c0', protocol: 6, sport: 0, dport: 46096, from: 'CLOSE', to: 'SYN_SENT' });
    expect(changes[3]).toEqual({ sk: '0xffff8881764a2e40', protocol: 6, sport: 46096, dport: 59326, from: 'LISTEN', to: 'SYN_RECV' });
    expect(changes.at(-1)).toEqual({ sk: '0xffff8881764a1bc0', protocol: 6, sport: 46096, dport: 0, from: 'LISTEN', to: 'CLOSE' });
    // Each socket's changes chain: the old state is the one the socket's previous change entered.
    const last = new Map<string, string>();
    for (const c of changes) { if (c.from !== 'CLOSE' && !(c.from === 'LISTEN' && c.to === 'SYN_RECV')) expect(last.get(c.sk)).toBe(c.from); last.set(c.sk, c.to); }
  });

  it('walks a ring buffer page: long records (type_len 0), time extends and stamps, discarded events (padding), another event\'s record, the end of the data', () => {
    const header = parseTraceFormat(fixture('header_page.txt'));
    const event = parseTraceFormat(fixture('inet_sock_set_state-format.txt'));
    const rec = (sk: bigint, from: number, to: number, sport: number, dport: number, protocol = 6, type = 2287) => {
      const b = Buffer.alloc(72);
      b.writeUInt16LE(type, 0); b.writeBigUInt64LE(sk, 8); b.writeInt32LE(from, 16); b.writeInt32LE(to, 20);
      b.writeUInt16LE(sport, 24); b.writeUInt16LE(dport, 26); b.writeUInt16LE(2, 28); b.writeUInt16LE(protocol, 30);
      return b;
    };
    const word = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };
    const hdr = (typeLen: number, delta: number) => word((delta << 5) | typeLen);
    const events = Buffer.concat([
      hdr(30, 5), word(1),                                                  // time extend
      hdr(18, 3), rec(0xffff888100001000n, 7, 10, 9, 0),                    // 72 bytes: type_len 18
      hdr(29, 1), word(72), Buffer.alloc(68),                               // an event the filter discarded (76 bytes: the length after the header)
      hdr(0, 2), word(76 + 4), rec(0xffff888100002000n, 7, 2, 0, 9, 262), Buffer.alloc(4),  // type_len 0: the length in the next word
      hdr(31, 0), word(0),                                                  // absolute time stamp
      hdr(18, 1), rec(0xffff888100003000n, 1, 2, 3, 4, 6, 99),              // another event
      hdr(18, 1), rec(0xffff888100004000n, 8, 9, 9, 40000),
    ]);
    const page = Buffer.alloc(4096);
    page.writeBigUInt64LE(123n, 0);
    page.writeBigUInt64LE(BigInt(events.length) | (1n << 31n), 8);              // commit, with RB_MISSED_EVENTS set
    events.copy(page, 16);
    hdr(18, 1).copy(page, 16 + events.length);                                  // beyond commit: not data
    expect(ringBufferRecords(page, header).map((r) => r.length)).toEqual([72, 76, 72, 72]);
    expect(ringBufferRecords(page, header).map((r) => parseSocketChangeRecord(r, event))).toEqual([
      { sk: '0xffff888100001000', protocol: 6, sport: 9, dport: 0, from: 'CLOSE', to: 'LISTEN' },
      { sk: '0xffff888100002000', protocol: 262, sport: 0, dport: 9, from: 'CLOSE', to: 'SYN_SENT' },
      undefined,
      { sk: '0xffff888100004000', protocol: 6, sport: 9, dport: 40000, from: 'CLOSE_WAIT', to: 'LAST_ACK' },
    ]);
    // Null padding (time_delta 0) ends the page's events.
    const padded = Buffer.alloc(4096);
    const early = Buffer.concat([hdr(18, 1), rec(0xffff888100005000n, 2, 1, 5, 9), hdr(29, 0), word(0), hdr(18, 1), rec(0xffff888100006000n, 2, 1, 5, 9)]);
    padded.writeBigUInt64LE(BigInt(early.length), 8);
    early.copy(padded, 16);
    expect(parseRawSocketChanges([padded], fixture('header_page.txt'), fixture('inet_sock_set_state-format.txt')).map((c) => c.sk)).toEqual(['0xffff888100005000']);
  });

  it('parses ss -tan (LISTEN with a * peer, TIME-WAIT) and maps tracepoint names to ss names', () => {
    expect(parseSs(fixture('ss-tan-listen.txt'))).toMatchObject([{ state: 'LISTEN', local: { addr: '0.0.0.0', port: 7001 }, peer: { port: '*' } }]);
    expect(parseSs(fixture('ss-tan-timewait.txt'))).toMatchObject([{ state: 'TIME-WAIT', local: { addr: '10.199.0.1', port: 56350 }, peer: { addr: '10.199.0.2', port: 7001 } }]);
    expect(['ESTABLISHED', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE_WAIT'].map(ssStateName)).toEqual(['ESTAB', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSE-WAIT']);
  });
});
