import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeRequests, followRequests, readRequests } from '../../helpers/kernel/io-uring-trace.js';

// Recorded on this host (6.18): uring_cp_pipelined built with NJOBS=4 copying 300000 bytes (pid 28239)
// and the naive uring_cp copying 70000 bytes (pid 28240), at the same time, cold source, global clock.
const lines = readFileSync(join(import.meta.dirname, '../fixtures/io_uring/trace-pipelined-and-naive.txt'), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#'));

describe('io_uring request tracing', () => {
  it('follows the pipelined copy: 5 reads and 5 writes, 4 requests in flight after the first submit, completions out of order', () => {
    const t = followRequests(lines, 28239);
    expect(t).toMatchObject({ rings: ['00000000902324d7'], submits: 10, completes: 10, maxInFlight: 4 });
    expect(t.outOfOrder).toBeGreaterThan(0);
    expect(t.sample.split('\n')[0]).toContain('user_data 0x0, opcode READ');
  });

  it('follows the naive copy on its own ring, completions posted by its io-wq worker included: one request at a time, in order', () => {
    expect(followRequests(lines, 28240)).toMatchObject({ rings: ['000000009ca22e51'], submits: 7, completes: 7, maxInFlight: 1, outOfOrder: 0 });
  });

  it('sees nothing for a pid that created no ring', () => {
    expect(followRequests(lines, 1)).toMatchObject({ rings: [], submits: 0, completes: 0, maxInFlight: 0 });
  });
});

// Recorded on this host (6.18): the reference uring_cp (pid 11506) then link_cp (pid 11509) copying 70000 bytes
// (two blocks of 32 KiB and 4464 bytes), with io_uring_link and syscalls:sys_enter_io_uring_enter filtered to each pid.
const linked = readFileSync(join(import.meta.dirname, '../fixtures/io_uring/trace-naive-and-linked-enters.txt'), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#'));

describe('io_uring requests by opcode, bytes, links and enters', () => {
  it('the naive copy: 4 READ (the last one at the end of the file) and 3 WRITE, 70000 bytes each way, one enter per request, no links', () => {
    expect(followRequests(linked, 11506)).toMatchObject({ opcodes: { READ: 4, WRITE: 3 }, bytes: { read: 70000, write: 70000 }, links: 0, readWriteLinks: 0, enters: 7, submitEnters: 7 });
  });

  it('the linked copy: 3 READ→WRITE chains (3 io_uring_link events) in one enter, 70000 bytes each way', () => {
    expect(followRequests(linked, 11509)).toMatchObject({ opcodes: { READ: 3, WRITE: 3 }, bytes: { read: 70000, write: 70000 }, links: 3, readWriteLinks: 3, enters: 1, submitEnters: 1 });
  });

  it('counts no enters when the syscall tracepoint was not recorded (undefined, not 0)', () => {
    expect(followRequests(lines, 28240).enters).toBeUndefined();
    expect(followRequests(lines, 28240).submitEnters).toBeUndefined();
    expect(followRequests(lines, 28240).bytes).toEqual({ read: 70000, write: 70000 });
  });

  it('counts the calls that submit apart from those that only wait (to_submit in hex, with or without 0x)', () => {
    const calls = [
      '        link_cp-500   [000] .....  10.000001: sys_io_uring_enter(fd: 5, to_submit: 10, min_complete: 1, flags: 1, argp: 0, argsz: 8)',
      '        link_cp-500   [000] .....  10.000002: sys_io_uring_enter(fd: 5, to_submit: 0, min_complete: 1, flags: 1, argp: 0, argsz: 8)',
      '        link_cp-500   [001] .....  10.000003: sys_enter_io_uring_enter: fd: 0x00000005, to_submit: 0x00000000, min_complete: 0x00000001, flags: 0x00000001, argp: 0x00000000, argsz: 0x00000008',
      '        link_cp-500   [001] .....  10.000004: sys_enter_io_uring_enter: fd: 0x00000005, to_submit: 0x0000000a, min_complete: 0x00000002, flags: 0x00000001, argp: 0x00000000, argsz: 0x00000008',
      '          other-501   [001] .....  10.000005: sys_io_uring_enter(fd: 5, to_submit: 4, min_complete: 1, flags: 1, argp: 0, argsz: 8)',
    ];
    expect(followRequests(calls, 500)).toMatchObject({ enters: 4, submitEnters: 2 });
  });

  it('counts as read→write links only a write queued behind a read (a read linked to a NOP is not one)', () => {
    const ev = (t: number, body: string) => `         link_cp-600   [000] .....  20.${String(t).padStart(6, '0')}: ${body}`;
    const lines = [
      ev(1, 'io_uring_create: ring 00000000000000aa, fd 5 sq size 4, cq size 8, flags 0x0'),
      ev(2, 'io_uring_submit_req: ring 00000000000000aa, req 0000000000000001, user_data 0x1, opcode READ, flags 0x4, sq_thread 0'),
      ev(3, 'io_uring_submit_req: ring 00000000000000aa, req 0000000000000002, user_data 0x2, opcode NOP, flags 0x0, sq_thread 0'),
      ev(4, 'io_uring_link: ring 00000000000000aa, request 0000000000000002 linked after 0000000000000001'),
      ev(5, 'io_uring_submit_req: ring 00000000000000aa, req 0000000000000003, user_data 0x3, opcode READV, flags 0x4, sq_thread 0'),
      ev(6, 'io_uring_submit_req: ring 00000000000000aa, req 0000000000000004, user_data 0x4, opcode WRITEV, flags 0x0, sq_thread 0'),
      ev(7, 'io_uring_link: ring 00000000000000aa, request 0000000000000004 linked after 0000000000000003'),
    ];
    expect(followRequests(lines, 600)).toMatchObject({ links: 2, readWriteLinks: 1 });
  });

  it('describes the requests for a message', () => {
    expect(describeRequests(followRequests(linked, 11509))).toBe('3 READ, 3 WRITE; bytes done by read requests 70000, by write requests 70000');
  });
});

describe('io_uring requests on Linux 5.15 (numeric opcodes, completions without a req pointer)', () => {
  // The 5.15 formats (include/trace/events/io_uring.h at v5.15): submit_sqe "ring %p, req %p, op %d, data 0x%llx, flags %u,
  // non block %d, sq_thread %d"; complete "ring %p, user_data 0x%llx, result %d, cflags %u". Written by hand from those formats.
  const old = [
    '  uring_cp-100 [000] .... 1.000001: io_uring_create: ring 00000000aaaa0001, fd 5 sq size 4, cq size 8, flags 0',
    '  uring_cp-100 [000] .... 1.000002: io_uring_submit_sqe: ring 00000000aaaa0001, req 00000000bbbb0001, op 22, data 0x7, flags 0, non block 1, sq_thread 0',
    '  uring_cp-100 [000] .... 1.000003: io_uring_complete: ring 00000000aaaa0001, user_data 0x7, result 4096, cflags 0',
    '  uring_cp-100 [000] .... 1.000004: io_uring_submit_sqe: ring 00000000aaaa0001, req 00000000bbbb0001, op 23, data 0x8, flags 0, non block 1, sq_thread 0',
    '  uring_cp-100 [000] .... 1.000005: io_uring_complete: ring 00000000aaaa0001, user_data 0x8, result 4096, cflags 0',
  ];
  it('names the opcodes and counts the bytes by user_data', () => {
    expect(followRequests(old, 100)).toMatchObject({ opcodes: { READ: 1, WRITE: 1 }, bytes: { read: 4096, write: 4096 }, maxInFlight: 1 });
  });
});

describe('io_uring requests: one definition of a read, and completions that overflowed the CQ', () => {
  // Lines as the 6.18 host prints them (io_uring_cqe_overflow recorded from tests/fixtures/io_uring/02-uring-cp/correct-cq-overflow.c).
  const lines = [
    '  cp-7250 [001] ...1. 2060.600000: io_uring_create: ring 00000000e6bb632b, fd 3 sq size 8, cq size 16, flags 0x0',
    '  cp-7250 [001] ...1. 2060.600001: io_uring_submit_req: ring 00000000e6bb632b, req 00000000c0000001, user_data 0x10, opcode READV, flags 0x4, sq_thread 0',
    '  cp-7250 [001] ...1. 2060.600002: io_uring_submit_req: ring 00000000e6bb632b, req 00000000c0000002, user_data 0x11, opcode READ_FIXED, flags 0x0, sq_thread 0',
    '  cp-7250 [001] ...1. 2060.600003: io_uring_complete: ring 00000000e6bb632b, req 00000000c0000001, user_data 0x10, result 16384, cflags 0x0 extra1 0 extra2 0 ',
    '  cp-7250 [001] ...1. 2060.671878: io_uring_cqe_overflow: ring 00000000e6bb632b, user_data 0x11, res 16384, cflags 0x0, overflow_cqe 0000000086b43f87',
  ];
  it('counts READV and READ_FIXED as read requests, and a completion kept on the overflow list as a completion with its bytes', () => {
    const t = followRequests(lines, 7250);
    expect(readRequests(t)).toBe(2);
    expect(t).toMatchObject({ submits: 2, completes: 2, bytes: { read: 32768, write: 0 } });
  });
});
