/**
 * helpers/kernel/syscalls.ts against strace 6.1's real `-c -f` summaries (recorded
 * on the project's VM): fio randread with libaio, io_uring and io_uring +
 * SQPOLL, and the io_uring_enter counts of Lab 2's and Lab 3's copies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStraceSummary, straceCountArgs } from '../../helpers/kernel/syscalls.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'io_uring', name), 'utf8');

describe('parseStraceSummary', () => {
  it('counts every call, with and without an errors column', () => {
    const s = parseStraceSummary(fixture('strace-c-fio-libaio.txt'));
    expect(s.total).toBe(21004);
    expect(s.calls('io_submit')).toBe(9150);
    expect(s.calls('io_getevents')).toBe(9088);
    expect(s.calls('io_uring_enter')).toBe(0);
    expect(s.rows.reduce((n, r) => n + r.calls, 0)).toBe(21004);
    expect(s.rows.find((r) => r.name === 'newfstatat')?.errors).toBeGreaterThan(0);
  });

  it('shows SQPOLL leaving a single io_uring_enter where plain io_uring made one per submission', () => {
    const plain = parseStraceSummary(fixture('strace-c-fio-io_uring.txt'));
    const sqpoll = parseStraceSummary(fixture('strace-c-fio-sqpoll.txt'));
    expect(plain.calls('io_uring_enter')).toBe(14585);
    expect(plain.total).toBe(17363);
    expect(sqpoll.calls('io_uring_enter')).toBe(1);
    expect(sqpoll.total).toBe(2765);
    expect(sqpoll.calls('io_uring_setup')).toBe(3);
  });

  it('reads a filtered summary (-e trace=io_uring_enter)', () => {
    expect(parseStraceSummary(fixture('strace-c-uring_cp-enter.txt')).calls('io_uring_enter')).toBe(4099);
    expect(parseStraceSummary(fixture('strace-c-link_cp-enter.txt')).total).toBe(257);
  });

  it('rejects text that is not a summary', () => {
    expect(() => parseStraceSummary('strace: exec: No such file or directory')).toThrow(/not a strace -c summary/);
  });
});

describe('straceCountArgs', () => {
  it('follows children, and stops only at the counted calls when filtered', () => {
    expect(straceCountArgs('./cp', ['a', 'b'], '/t/o')).toEqual(['-f', '-c', '-o', '/t/o', '--', './cp', 'a', 'b']);
    expect(straceCountArgs('./cp', ['a'], '/t/o', { only: ['io_uring_enter'] }))
      .toEqual(['-f', '-c', '-o', '/t/o', '-e', 'trace=io_uring_enter', '--seccomp-bpf', '--', './cp', 'a']);
  });
});
