import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pagesRecords, parseTraceFormat, recordFields, ringBufferRecords } from '../../helpers/kernel/ring-buffer.js';

/** Format files and a trace_pipe_raw page recorded on this host (6.18); the event is sock:inet_sock_set_state. */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures', name), 'utf8');

describe('the tracing ring buffer\'s binary pages', () => {
  it('reads tracefs format files: each field\'s offset and size by name, and the event\'s ID', () => {
    const event = parseTraceFormat(fixture('net/inet_sock_set_state-format.txt'));
    expect(event.id).toBe(2287);
    expect(event.fields.get('skaddr')).toEqual({ offset: 8, size: 8, signed: false });
    expect(event.fields.get('oldstate')).toEqual({ offset: 16, size: 4, signed: true });
    expect(event.fields.get('saddr')).toEqual({ offset: 32, size: 4, signed: false });
    expect(event.fields.get('common_type')).toEqual({ offset: 0, size: 2, signed: false });
    const header = parseTraceFormat(fixture('tracefs/header_page.txt'));
    expect(header.id).toBeUndefined();
    expect([header.fields.get('commit'), header.fields.get('data')]).toEqual([{ offset: 8, size: 8, signed: true }, { offset: 16, size: 4080, signed: false }]);
  });

  it('walks a ring buffer page: long records (type_len 0), time extends and stamps, discarded events (padding), another event\'s record, the end of the data', () => {
    const header = parseTraceFormat(fixture('tracefs/header_page.txt'));
    const event = parseTraceFormat(fixture('net/inet_sock_set_state-format.txt'));
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
    // recordFields reads a record of the event by its format (undefined for another event's record, by common_type).
    expect(ringBufferRecords(page, header).map((r) => recordFields(r, event, ['skaddr', 'oldstate', 'newstate', 'sport', 'dport', 'protocol']))).toEqual([
      { skaddr: 0xffff888100001000n, protocol: 6n, sport: 9n, dport: 0n, oldstate: 7n, newstate: 10n },
      { skaddr: 0xffff888100002000n, protocol: 262n, sport: 0n, dport: 9n, oldstate: 7n, newstate: 2n },
      undefined,
      { skaddr: 0xffff888100004000n, protocol: 6n, sport: 9n, dport: 40000n, oldstate: 8n, newstate: 9n },
    ]);
    expect(recordFields(ringBufferRecords(page, header)[0]!, event, ['skaddr', 'no_such_field'])).toBeUndefined();
    // Null padding (time_delta 0) ends the page's events.
    const padded = Buffer.alloc(4096);
    const early = Buffer.concat([hdr(18, 1), rec(0xffff888100005000n, 2, 1, 5, 9), hdr(29, 0), word(0), hdr(18, 1), rec(0xffff888100006000n, 2, 1, 5, 9)]);
    padded.writeBigUInt64LE(BigInt(early.length), 8);
    early.copy(padded, 16);
    expect(pagesRecords([padded], fixture('tracefs/header_page.txt')).map((r) => recordFields(r, event, ['skaddr'])?.skaddr)).toEqual([0xffff888100005000n]);
  });

  it('reads every record of a recorded trace_pipe_raw page in order, each of the event\'s type', () => {
    const page = Buffer.from(fixture('net/inet_sock_set_state-trace_pipe_raw.hex').replace(/\s/g, ''), 'hex');
    const event = parseTraceFormat(fixture('net/inet_sock_set_state-format.txt'));
    const records = pagesRecords([page], fixture('tracefs/header_page.txt'));
    expect(records).toHaveLength(32);
    expect(records.map((r) => recordFields(r, event, ['sport', 'dport'])).every(Boolean)).toBe(true);
    expect(recordFields(records[0]!, event, ['skaddr', 'oldstate', 'newstate'])).toEqual({ skaddr: 0xffff8881764a1bc0n, oldstate: 7n, newstate: 10n });
  });
});
