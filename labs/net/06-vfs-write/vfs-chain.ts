/**
 * Net Lab 5.6's evidence, parsed (pure): the chain records a loader printed
 * for a BPF program on vfs_write and a file system's write_iter
 * (`<step> pid=<pid> ino=<ino> bytes=<n>`), the write(2) calls the syscall
 * tracepoints recorded (syscalls:sys_enter_write / sys_exit_write lines of a
 * tracefs instance, paired per pid in order), and the links a kernel lists
 * with their targets (c/net/bpf_links.c: `link=… prog=… name=… attach=… target=…`).
 */
import { parseTraceLine } from '../../../helpers/kernel/tracefs.js';

export type VfsStep = 'vfs_write' | 'write_iter' | 'vfs_write_ret';
export interface ChainRecord { readonly step: VfsStep; readonly pid: number; readonly ino: number; readonly bytes: number }

/** The chain lines of a loader's output; other lines (attached, stopped) are left out. */
export function parseChain(text: string): ChainRecord[] {
  const out: ChainRecord[] = [];
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^(vfs_write|write_iter|vfs_write_ret) pid=(\d+) ino=(\d+) bytes=(-?\d+)$/);
    if (m) out.push({ step: m[1] as VfsStep, pid: Number(m[2]), ino: Number(m[3]), bytes: Number(m[4]) });
  }
  return out;
}

export interface WriteCall { readonly pid: number; readonly comm: string; readonly fd: number; readonly count: number; readonly ret?: number }

/** write(2) calls from sys_enter_write/sys_exit_write trace lines, each exit paired with its pid's last enter. */
export function parseWriteCalls(traceText: string): WriteCall[] {
  const calls: { pid: number; comm: string; fd: number; count: number; ret?: number }[] = [];
  const open = new Map<number, number>();
  for (const line of traceText.split('\n')) {
    const ev = parseTraceLine(line);
    if (ev?.event === 'sys_write') {
      const comm = line.trim().match(/^(.+)-\d+\s+\[/)?.[1] ?? '';
      const enter = ev.body.match(/^\(fd: ([0-9a-f]+), buf: [0-9a-f]+, count: ([0-9a-f]+)\)$/);
      if (enter) {
        open.set(ev.pid, calls.length);
        calls.push({ pid: ev.pid, comm, fd: parseInt(enter[1]!, 16), count: parseInt(enter[2]!, 16) });
      }
      continue;
    }
    // The exit line ("sys_write -> 0x6cd") has neither ':' nor '(' after the event name.
    const exit = line.match(/^\s*.+-(\d+)\s+\[\d+\]\s+\S+\s+[\d.]+:\s+sys_write -> (0x[0-9a-f]+)$/);
    const at = exit ? open.get(Number(exit[1])) : undefined;
    if (exit && at !== undefined) {
      // The kernel prints the return value as unsigned hex: 0xfffffffffffffff2 is -14.
      calls[at]!.ret = Number(BigInt.asIntN(64, BigInt(exit[2]!)));
      open.delete(Number(exit[1]));
    }
  }
  return calls;
}

export interface TracingLink { readonly link: number; readonly prog: number; readonly name: string; readonly attach: string; readonly target: string }

/** bpf_links output lines. */
export function parseLinks(text: string): TracingLink[] {
  const out: TracingLink[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^link=(\d+) prog=(\d+) name=(\S+) type=\S+ attach=(\S+) target=(\S+)/);
    if (m) out.push({ link: Number(m[1]), prog: Number(m[2]), name: m[3]!, attach: m[4]!, target: m[5]! });
  }
  return out;
}

/** -EBADF: vfs_write's answer for a file not open for writing, given before it calls the file system. */
export const EBADF = 9;

/**
 * MAX_RW_COUNT (include/linux/fs.h: INT_MAX & PAGE_MASK, 4 KiB pages): vfs_write cuts a larger count down to
 * this before it builds the iov_iter, so the file system's write_iter is handed at most this much.
 */
export const MAX_RW_COUNT = 0x7ffff000;

/**
 * What a correct chain holds for these write(2) calls to the lab's file
 * (pure): per write, in the writing process's order, vfs_write with the
 * syscall's count, the file system's write_iter with the same count (the
 * iov_iter built from the one buffer; a count above MAX_RW_COUNT is cut
 * down to it by vfs_write first), vfs_write's return with the
 * syscall's result. A write that returned -EBADF (the file open read-only)
 * never reached the file system: vfs_write and its return only.
 */
export function expectedChain(calls: readonly WriteCall[], ino: number): ChainRecord[] {
  return calls.flatMap((c) => [
    { step: 'vfs_write' as const, pid: c.pid, ino, bytes: c.count },
    ...(c.ret === -EBADF ? [] : [{ step: 'write_iter' as const, pid: c.pid, ino, bytes: Math.min(c.count, MAX_RW_COUNT) }]),
    { step: 'vfs_write_ret' as const, pid: c.pid, ino, bytes: c.ret ?? NaN },
  ]);
}

/** Records of one pid, in order. */
export function ofPid<T extends { pid: number }>(list: readonly T[], pid: number): T[] {
  return list.filter((r) => r.pid === pid);
}

/** One line per record, for messages. */
export function showChain(list: readonly ChainRecord[]): string {
  return list.map((r) => `${r.step} pid=${r.pid} ino=${r.ino} bytes=${r.bytes}`).join('\n') || '(none)';
}
