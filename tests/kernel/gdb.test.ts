import { describe, expect, it } from 'vitest';
import { gdbPrelude, parseHits, REFUSED_PACKET, RspFilter, rspPacket } from '../../helpers/kernel/gdb.js';

describe('gdb helpers', () => {
  it("writes the harness's prelude: the relay's socket as the target, then the variables, then its own commands", () => {
    const lines = gdbPrelude({ stub: { qemu: '/q/qemu.sock', socket: '/tmp/kl-g/gdb.sock' }, vars: { entry: 0xffffffff81000000n, nr: 309 }, prelude: 'python pass\n' }).trim().split('\n');
    expect(lines).toContain('target remote /tmp/kl-g/gdb.sock');
    expect(lines.join('\n')).not.toContain('/q/qemu.sock');
    expect(lines.indexOf('target remote /tmp/kl-g/gdb.sock')).toBeLessThan(lines.indexOf('set $entry = 0xffffffff81000000'));
    expect(lines.at(-1)).toBe('python pass');
  });

  it('parses KL_HIT lines', () => {
    expect(parseHits('x\nKL_HIT pc=0xffffffff81a43dc0 nr=309 orig_ax=309 dx=0x4b4c4b32\n')).toEqual([
      { pc: '0xffffffff81a43dc0', nr: '309', orig_ax: '309', dx: '0x4b4c4b32' },
    ]);
  });

  it("passes gdb's packets to QEMU unchanged but refuses monitor (qRcmd), however it is framed or split", () => {
    const through = (...chunks: (string | Buffer)[]) => {
      const f = new RspFilter();
      const out = Buffer.concat(chunks.map((c) => f.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c)));
      return { out: out.toString('latin1'), refused: f.refused };
    };
    const refused = rspPacket(REFUSED_PACKET).toString('latin1');
    const g = rspPacket('g').toString('latin1');
    const m = rspPacket('m ffffffff81000000,8'.replace(' ', '')).toString('latin1');
    // ordinary traffic, acks and an interrupt byte pass as they are
    expect(through('+', g, '-', m, '\x03')).toEqual({ out: `+${g}-${m}\x03`, refused: 0 });
    // monitor, plain and byte by byte
    const monitor = rspPacket(`qRcmd,${Buffer.from('info registers').toString('hex')}`);
    expect(through(monitor)).toEqual({ out: refused, refused: 1 });
    expect(through(...[...monitor].map((b) => Buffer.from([b])))).toEqual({ out: refused, refused: 1 });
    // "q}R…": an escaped byte that QEMU decodes to qRcmd ('R' ^ 0x20 is 'r', so the escape of 'r' reads as 'R')
    const escaped = `$q}${String.fromCharCode('R'.charCodeAt(0) ^ 0x20)}cmd,6869#00`;
    expect(through(escaped).refused).toBe(1);
    // what could make QEMU frame packets otherwise than the relay: a run-length '*', a '$' inside, a bad checksum, an overlong packet
    expect(through('$g*"#00').refused).toBe(1);
    expect(through('$qR$qRcmd,6869#00').refused).toBe(1);
    expect(through('$g#zz').refused).toBe(1);
    expect(through(rspPacket(`M0,1:${'0'.repeat(5000)}`)).refused).toBe(1);
    // junk between packets is dropped, the next packet still passes
    expect(through('junk', g)).toEqual({ out: g, refused: 0 });
  });
});
