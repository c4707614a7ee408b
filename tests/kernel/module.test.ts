import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProcModules, parseSections, sectionExit, sectionLines, stripTimestamp, vermagicOf, withVermagicChanged } from '../../helpers/kernel/module.js';

const recorded = readFileSync(join(import.meta.dirname, '../fixtures/extend/module-guest-output.txt'), 'utf8');

describe('module helpers (recorded guest output of the module steps)', () => {
  const s = parseSections(recorded);

  it('splits the script output into its sections', () => {
    expect(s.release).toBe('6.1.0-56-amd64');
    expect(s.insmod).toBe('exit=0');
    expect(s.proc!.split('\n')).toEqual(['hello, klc0ffee', 'hello, klc0ffee', 'hello, klc0ffee']);
    expect(s.log_exit).toBe('labmod: unloaded');
    expect(s.left).toBe('');
    expect(s.tainted).toBe('12288'); // O (out-of-tree, 4096) + E (unsigned, 8192)
  });

  it('keeps the loader\'s messages for an unknown symbol and a wrong vermagic', () => {
    expect(s.log_unresolved).toMatch(/mod_unresolved: Unknown symbol kl_no_such_symbol \(err -2\)/);
    expect(s.log_badmagic).toMatch(/version magic '6\.1\.0-56-amd64 SMP mod_unload modversions ' should be '6\.1\.0-56-amd64 SMP preempt mod_unload modversions '/);
    expect(s.badmagic).toMatch(/invalid module format\nexit=8/);
  });

  it('parses a /proc/modules line with its taint flags', () => {
    expect(parseProcModules(s.lsmod!)).toEqual([{ name: 'labmod', size: 16384, refcount: 0, state: 'Live', taint: 'OE' }]);
    expect(parseProcModules('virtio_net 61440 0 - Live 0xffffffffc0010000\n')[0]).toMatchObject({ name: 'virtio_net', state: 'Live', taint: undefined });
  });

  it('strips printk timestamps', () => {
    expect(stripTimestamp('[   12.345678] labmod: unloaded')).toBe('labmod: unloaded');
    expect(stripTimestamp('labmod: unloaded')).toBe('labmod: unloaded');
    expect(sectionLines('[    1.000000] labmod: loaded\n\nsecond')).toEqual(['labmod: loaded', 'second']);
    expect([sectionExit('insmod: ERROR\nexit=1'), sectionExit('no status'), sectionExit()]).toEqual([1, Number.NaN, Number.NaN]);
  });

  it('changes a vermagic in place, same length, NUL-padded', () => {
    const ko = Buffer.concat([Buffer.from('\0license=GPL\0vermagic=6.1.0-56-amd64 SMP preempt mod_unload modversions \0name=labmod\0', 'latin1')]);
    const bad = withVermagicChanged(ko, 'preempt ');
    expect(bad.length).toBe(ko.length);
    expect(vermagicOf(bad)).toBe('6.1.0-56-amd64 SMP mod_unload modversions ');
    expect(bad.toString('latin1')).toContain('\0name=labmod\0');
    expect(() => withVermagicChanged(ko, 'nosuch')).toThrow(/has no "nosuch"/);
  });
});
