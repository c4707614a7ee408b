import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appletLinks, findStaticBusybox, isStaticElf, makeRootfs } from '../../../../labs/cloud/01-container/rootfs.js';

describe('rootfs helper', () => {
  it('tells a static ELF from a dynamic one by PT_INTERP', () => {
    expect(isStaticElf(readFileSync(process.execPath).subarray(0, 4096))).toBe(false); // node is dynamically linked
    expect(isStaticElf(Buffer.from('#!/bin/sh\n'))).toBe(false);
  });

  it('lists applet links without busybox itself', () => {
    expect(appletLinks('[\n[[\nash\nbusybox\nsh\nsh\n')).toEqual(['[', '[[', 'ash', 'sh']);
  });

  it('builds a busybox rootfs with /bin/sh, /proc and a world-writable /scratch', async (ctx) => {
    if (!findStaticBusybox()) return ctx.skip('no static busybox (sudo apt install -y busybox-static)');
    const fs = await makeRootfs({ tarball: '' });
    expect(fs.kind).toBe('busybox');
    expect(readlinkSync(join(fs.dir, 'bin', 'sh'))).toBe('busybox');
    expect(existsSync(join(fs.dir, 'proc'))).toBe(true);
    expect(statSync(join(fs.dir, 'scratch')).mode & 0o7777).toBe(0o1777);
    expect(statSync(fs.dir).mode & 0o777).toBe(0o755);
  });
});
