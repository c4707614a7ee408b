/** System Lab 4's fd-table follower (labs/system/04-ipc/fd-table.ts) on made-up trace lines: each write is judged by the file its number held. */
import { describe, expect, it } from 'vitest';
import { attributeWrites, SNAPSHOT_MARK } from '../../../../labs/system/04-ipc/fd-table.js';

const W = 301;
let clock = 100;
/** One line of the write instance's trace (record-tgid on), as the kernel prints it. */
const line = (body: string, tid = W, tgid = tid === 302 ? W : tid) => `             ipc-${tid}   (  ${tgid}) [001] ..... ${(clock += 0.001).toFixed(6)}: ${body}`;
const hex = (n: number) => (n < 10 ? String(n) : `0x${n.toString(16)}`);
const ret = (n: number) => `0x${BigInt.asUintN(64, BigInt(n)).toString(16)}`;
/** A ...write(2) of 512 bytes: its entry and, unless it is still in the kernel, its exit with what it returned. */
const write = (fd: number, tid = W, r: number | null = 512) => [line(`sys_write(fd: ${hex(fd)}, buf: 0x5608ed5051a0, count: 0x200)`, tid), ...(r === null ? [] : [line(`sys_write -> ${ret(r)}`, tid)])];
const call = (name: string, args: string, r: number, tid = W) => [line(`sys_${name}(${args})`, tid), line(`sys_${name} -> ${ret(r)}`, tid)];
const openat = (fd: number, flags = 1) => call('openat', `dfd: 0xffffff9c, filename: 0x5603f3eec050, flags: ${hex(flags)}, mode: 0`, fd);
const dup2 = (from: number, to: number, r = to) => call('dup2', `oldfd: ${hex(from)}, newfd: ${hex(to)}`, r);
const close = (fd: number) => call('close', `fd: ${hex(fd)}`, 0);
const mark = `            node-50    (     50) [000] ..... ${(clock += 0.001).toFixed(6)}: tracing_mark_write: ${SNAPSHOT_MARK}`;
const PIPE = 'pipe:[77]';
const asleep = new Map([[1, 'pipe:[5]'], [4, PIPE], [5, '/dev/null']]);

describe('System Lab 4 fd table: writes judged by the file, not the number', () => {
  it('a writer that keeps its pipe at one number: every write is the pipe\'s, before and after the look', () => {
    const a = attributeWrites([...write(4), ...write(4), mark, ...write(4), ...close(4), ...close(3)], W, new Map([[4, PIPE]]));
    expect(a).toEqual({ writes: [{ fd: 4, calls: 3, bytes: 1536, target: PIPE }] });
  });

  it('dup2 of /dev/null onto the pipe\'s number after the writer slept: the later writes go to /dev/null, with the call that did it', () => {
    const a = attributeWrites([...openat(5), ...write(4), mark, ...write(4), ...dup2(5, 4), ...write(4), ...write(4)], W, asleep);
    expect(a.writes).toEqual([
      { fd: 4, calls: 2, bytes: 1024, target: PIPE },
      { fd: 4, calls: 2, bytes: 1024, target: '/dev/null', via: 'dup2(5, 4) after it slept' },
    ]);
  });

  it('dup3 of a file opened after the look, fcntl F_DUPFD into a closed number, close + open at the same number: not the pipe', () => {
    const d3 = attributeWrites([...write(4), mark, ...openat(6), ...call('dup3', 'oldfd: 6, newfd: 4, flags: 0x80000', 4), ...write(4)], W, new Map([[4, PIPE]]));
    expect(d3.writes[1]).toEqual({ fd: 4, calls: 1, bytes: 512, via: 'dup3(6, 4) after it slept; the file: openat() = 6 after it slept' });
    const fc = attributeWrites([...write(4), mark, ...close(4), ...call('fcntl', 'fd: 5, cmd: 0, arg: 4', 4), ...write(4)], W, asleep);
    expect(fc.writes[1]).toEqual({ fd: 4, calls: 1, bytes: 512, target: '/dev/null', via: 'fcntl(5, F_DUPFD) = 4 after it slept' });
    const re = attributeWrites([...write(4), mark, ...close(4), ...openat(4), ...write(4)], W, new Map([[4, PIPE]]));
    expect(re.writes[1]).toEqual({ fd: 4, calls: 1, bytes: 512, via: 'openat() = 4 after it slept' });
  });

  it('a number reused by a call the trace does not follow (socket, memfd…) after close, close_range or a close-on-exec execve: not the pipe', () => {
    const c = attributeWrites([...write(4), mark, ...close(4), ...write(4)], W, new Map([[4, PIPE]]));
    expect(c.writes[1]).toEqual({ fd: 4, calls: 1, bytes: 512, via: 'after close(4) after it slept; the file: fd 4 after close(4) after it slept: put there by a call the trace does not follow' });
    const r = attributeWrites([...write(4), mark, ...call('close_range', 'fd: 3, max_fd: 0xffffffff, flags: 0', 0), ...write(4)], W, new Map([[4, PIPE]]));
    expect(r.writes[1]?.target).toBeUndefined();
    expect(r.writes[1]?.via).toMatch(/^after close_range\(3, ~0\) after it slept/);
    const x = attributeWrites([...write(4), mark, ...call('fcntl', 'fd: 4, cmd: 2, arg: 1', 0), ...call('execve', 'filename: 0x1, argv: 0x2, envp: 0x3', 0), ...write(4)], W, new Map([[4, PIPE]]));
    expect(x.writes[1]?.target).toBeUndefined();
    expect(x.writes[1]?.via).toMatch(/^after execve\(\) after it slept \(close-on-exec\)/);
  });

  it('correct styles: the pipe dup2\'d to stdout before an exec, a dup of it, a failed dup2 (EBADF) changes nothing', () => {
    const ex = attributeWrites([...dup2(4, 1), ...close(4), ...call('execve', 'filename: 0x1, argv: 0x2, envp: 0x3', 0), ...write(1), mark, ...write(1)], W, new Map([[1, PIPE]]));
    expect(ex.writes.map((w) => w.target)).toEqual([PIPE]);
    const dup = attributeWrites([...call('dup', 'fildes: 4', 7), ...write(7), mark, ...write(4)], W, new Map([[4, PIPE], [7, PIPE]]));
    expect(dup.writes.every((w) => w.target === PIPE)).toBe(true);
    const bad = attributeWrites([...write(4), mark, ...dup2(9, 4, -9), ...write(4)], W, new Map([[4, PIPE]]));
    expect(bad.writes).toEqual([{ fd: 4, calls: 2, bytes: 1024, target: PIPE }]);
  });

  it('one table for the thread group: another thread\'s dup2 counts, another process\'s does not', () => {
    const other = 999;
    const t = attributeWrites([...write(4), mark, line('sys_dup2(oldfd: 5, newfd: 4)', 302), line('sys_dup2 -> 0x4', 302), ...write(4)], W, asleep);
    expect(t.writes[1]).toMatchObject({ target: '/dev/null', via: 'dup2(5, 4) after it slept' });
    const p = attributeWrites([...write(4), mark, line('sys_dup2(oldfd: 5, newfd: 4)', other), line('sys_dup2 -> 0x4', other), ...write(4), ...write(5, other)], W, asleep);
    expect(p.writes).toEqual([{ fd: 4, calls: 2, bytes: 1024, target: PIPE }]);
  });

  it('bytes are what each call returned: a short write counts short, a call still in the kernel counts 0, an error nothing', () => {
    const a = attributeWrites([...write(4, W, 100), mark, ...write(4, W, -11), ...write(4, W, null)], W, new Map([[4, PIPE]]));
    expect(a.writes).toEqual([{ fd: 4, calls: 3, bytes: 100, target: PIPE }]);
    // Two threads writing at once: each exit goes with its own thread's call.
    const t = attributeWrites([mark, line('sys_write(fd: 4, buf: 0x1, count: 0x200)'), line('sys_write(fd: 5, buf: 0x1, count: 0x200)', 302), line('sys_write -> 0x7', 302), line('sys_write -> 0x200')], W, asleep);
    expect(t.writes).toEqual([{ fd: 4, calls: 1, bytes: 512, target: PIPE }, { fd: 5, calls: 1, bytes: 7, target: '/dev/null' }]);
  });

  it('a trace without the look\'s mark, or a writer with an io_uring, is not followed', () => {
    expect(attributeWrites([...write(4)], W, new Map([[4, PIPE]])).unfollowed).toMatch(/mark .* is not in the trace/);
    expect(attributeWrites([...write(4), mark, ...call('io_uring_setup', 'entries: 8, params: 0x1', 3)], W, new Map([[4, PIPE]])).unfollowed).toMatch(/io_uring_setup after it slept/);
  });
});
