import { describe, expect, it } from 'vitest';
import { freePort, gdbCommandFile, parseHits } from '../../helpers/kernel/gdb.js';

describe('gdb helpers', () => {
  it('writes a batch command file with the variables before the script', () => {
    const f = gdbCommandFile({ port: 4321, vars: { entry: 0xffffffff81000000n, nr: 309 }, script: 'hbreak *$entry\n', after: ['continue'] });
    const lines = f.trim().split('\n');
    expect(lines).toContain('target remote 127.0.0.1:4321');
    expect(lines.indexOf('set $entry = 0xffffffff81000000')).toBeLessThan(lines.indexOf('hbreak *$entry'));
    expect(lines.at(-1)).toBe('continue');
  });

  it('parses KL_HIT lines', () => {
    expect(parseHits('x\nKL_HIT pc=0xffffffff81a43dc0 nr=309 orig_ax=309 dx=0x4b4c4b32\n')).toEqual([
      { pc: '0xffffffff81a43dc0', nr: '309', orig_ax: '309', dx: '0x4b4c4b32' },
    ]);
  });

  it('picks distinct free ports', async () => {
    const [a, b] = await Promise.all([freePort(), freePort()]);
    expect(a).toBeGreaterThan(1024);
    expect(b).toBeGreaterThan(1024);
  });
});
