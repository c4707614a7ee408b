import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { otherProtocolLines, parseKernelStateChange, parseRawSocketChanges, parseSs, parseStateChange, parseStateChanges, socketLives, ssStateName, stateName, timeBetween } from '../../../labs/net/tcp-states.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/net', name), 'utf8');
const headerPage = readFileSync(join(import.meta.dirname, '../../fixtures/tracefs/header_page.txt'), 'utf8');

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

  it('reads the record with each change\'s socket from a trace_pipe_raw page (recorded on 6.18): skaddr, ports, protocol and states of every event', () => {
    const page = Buffer.from(fixture('inet_sock_set_state-trace_pipe_raw.hex').replace(/\s/g, ''), 'hex');
    expect(page.length).toBe(4096);
    const changes = parseRawSocketChanges([page], headerPage, fixture('inet_sock_set_state-format.txt'));
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

  it('parses ss -tan (LISTEN with a * peer, TIME-WAIT) and maps tracepoint names to ss names', () => {
    expect(parseSs(fixture('ss-tan-listen.txt'))).toMatchObject([{ state: 'LISTEN', local: { addr: '0.0.0.0', port: 7001 }, peer: { port: '*' } }]);
    expect(parseSs(fixture('ss-tan-timewait.txt'))).toMatchObject([{ state: 'TIME-WAIT', local: { addr: '10.199.0.1', port: 56350 }, peer: { addr: '10.199.0.2', port: 7001 } }]);
    expect(['ESTABLISHED', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE_WAIT'].map(ssStateName)).toEqual(['ESTAB', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSE-WAIT']);
  });
});
