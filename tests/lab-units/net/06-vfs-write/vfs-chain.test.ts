import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EBADF, MAX_RW_COUNT, expectedChain, ofPid, parseChain, parseLinks, parseWriteCalls } from '../../../../labs/net/06-vfs-write/vfs-chain.js';
import { parseLdd } from '../../../../helpers/kernel/initramfs.js';

const trace = readFileSync(join(import.meta.dirname, '../../../fixtures/net/vfs-write-trace.txt'), 'utf8');

describe('vfs-chain', () => {
  it('pairs sys_enter_write with sys_exit_write per pid, results signed (a recorded guest trace; its last call edited into a failing one)', () => {
    const calls = parseWriteCalls(trace);
    expect(calls.map((c) => [c.comm, c.pid, c.fd, c.count, c.ret])).toEqual([
      ['kl_vfs_writer', 111, 7, 2623, 1741],
      ['kl_vfs_writer', 111, 8, 3242, 3242],
      ['kl_vfs_writer', 111, 7, 11013, 11013],
      ['kl_vfs_child', 112, 7, 9763, 9763],
      ['kl_vfs_child', 112, 9, 16, -9],
    ]);
  });

  it('parses the loader\'s records and leaves other lines out', () => {
    expect(parseChain('attached progs=3 ino=2\nvfs_write pid=111 ino=2 bytes=2623\nvfs_write_ret pid=111 ino=2 bytes=-14\nstopped\n'))
      .toEqual([{ step: 'vfs_write', pid: 111, ino: 2, bytes: 2623 }, { step: 'vfs_write_ret', pid: 111, ino: 2, bytes: -14 }]);
  });

  it('builds the expected chain of each write: count, count, result', () => {
    const calls = parseWriteCalls(trace).filter((c) => c.fd === 7);
    expect(ofPid(expectedChain(calls, 2), 111).map((r) => `${r.step} ${r.bytes}`))
      .toEqual(['vfs_write 2623', 'write_iter 2623', 'vfs_write_ret 1741', 'vfs_write 11013', 'write_iter 11013', 'vfs_write_ret 11013']);
  });

  it('leaves write_iter out of a write that vfs_write refused with -EBADF (a read-only fd: the file system is never called)', () => {
    const calls = [{ pid: 7, comm: 'kl_vfs_ro', fd: 1, count: 3, ret: -EBADF }, { pid: 8, comm: 'kl_vfs_child', fd: 7, count: 10, ret: 10 }];
    expect(expectedChain(calls, 5).map((r) => `${r.pid} ${r.step} ${r.bytes}`))
      .toEqual(['7 vfs_write 3', '7 vfs_write_ret -9', '8 vfs_write 10', '8 write_iter 10', '8 vfs_write_ret 10']);
  });

  it('caps the write_iter count of a write that asked for more than MAX_RW_COUNT: vfs_write cuts it before the file system', () => {
    const calls = [{ pid: 9, comm: 'kl_vfs_writer', fd: 7, count: 0x80000b3c, ret: 2876 }];
    expect(expectedChain(calls, 5).map((r) => `${r.step} ${r.bytes}`))
      .toEqual(['vfs_write 2147486524', `write_iter ${MAX_RW_COUNT}`, 'vfs_write_ret 2876']);
    expect(MAX_RW_COUNT).toBe(2147479552);
  });

  it('parses bpf_links lines, a module\'s function (ext4) named from the module\'s BTF', () => {
    expect(parseLinks('link=3 prog=7 name=write_iter_enter type=tracing attach=fentry target=ext4_file_write_iter target_obj=40 target_btf=3521'))
      .toEqual([{ link: 3, prog: 7, name: 'write_iter_enter', attach: 'fentry', target: 'ext4_file_write_iter' }]);
  });

  it('parses bpf_links lines', () => {
    expect(parseLinks('link=1 prog=5 name=vfs_write_enter type=tracing attach=fentry target=vfs_write target_obj=1 target_btf=11602\nlink=4 prog=9 name=x type=2 attach=- target=-'))
      .toEqual([{ link: 1, prog: 5, name: 'vfs_write_enter', attach: 'fentry', target: 'vfs_write' }, { link: 4, prog: 9, name: 'x', attach: '-', target: '-' }]);
  });

  it('finds a program\'s shared libraries and interpreter in ldd output', () => {
    const ldd = '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x00007f9e)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f9e)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f9e)\n';
    expect(parseLdd(ldd)).toEqual(['/lib/x86_64-linux-gnu/libelf.so.1', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });
});
