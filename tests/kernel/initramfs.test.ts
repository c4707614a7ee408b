import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initScript, isStaticElf, newcArchive, readNewc } from '../../helpers/kernel/initramfs.js';

describe('initramfs newc writer', () => {
  const archive = newcArchive([
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: 'init', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
  ]);

  it('round-trips names, modes, data and device numbers', () => {
    const e = readNewc(archive);
    expect(e.map((x) => x.path)).toEqual(['bin', 'init', 'bin/sh', 'dev/console']);
    expect(e[1]!.mode).toBe(0o100755);
    expect(e[1]!.data.toString()).toBe('#!/bin/sh\necho hi\n');
    expect(e[2]!.data.toString()).toBe('busybox');
    expect([e[3]!.mode & 0o170000, e[3]!.rdevmajor, e[3]!.rdevminor]).toEqual([0o020000, 5, 1]);
    expect(archive.length % 4).toBe(0);
  });

  it('is read by the cpio tool the same way', (ctx) => {
    let list: string;
    const dir = mkdtempSync(join(tmpdir(), 'kl-unit-cpio-'));
    try {
      writeFileSync(join(dir, 'a.cpio'), archive);
      list = execFileSync('cpio', ['-it', '-F', join(dir, 'a.cpio')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return ctx.skip('cpio(1) not installed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(list.trim().split('\n')).toEqual(['bin', 'init', 'bin/sh', 'dev/console']);
  });

  it('writes an /init that prints the markers and reboots', () => {
    const s = initScript({ commands: ['/lab/x'], symbols: ['do_syscall_64'] });
    expect(s.startsWith('#!/bin/busybox sh\n')).toBe(true);
    expect(s).toMatch(/KL_BOOT release=\$\(uname -r\)/);
    expect(s).toMatch(/grep -E ' \(do_syscall_64\)\$' \/proc\/kallsyms/);
    expect(s.indexOf('/lab/x')).toBeLessThan(s.indexOf('echo KL_DONE'));
    expect(s).toMatch(/reboot -f/);
  });

  it('tells a static program from a dynamic one', () => {
    expect(isStaticElf('/bin/busybox')).toBe(true);
    expect(isStaticElf(process.execPath)).toBe(false);
  });
});
