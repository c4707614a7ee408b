/** helpers/kernel/procfs.ts on /proc output recorded on the lab host (tests/fixtures/process/). */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseIo, readIo,
  descendants, fdinfoField, formatVma, openFds, parseMaps, parsePagemapEntry, parseSched, parseSmaps, parseStat, parseStatus,
  readStat, vmaContaining, type ProcStat,
} from '../../helpers/kernel/procfs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const fixture = (name: string) => readFileSync(join(REPO_ROOT, 'tests/fixtures/process', name), 'utf8');

describe('parseStat', () => {
  it('splits after the last ")" so a comm with ") (" in it does not shift the fields', () => {
    const s = parseStat(fixture('stat-paren-comm.txt'));
    expect(s).toMatchObject({ pid: 10986, comm: 'a) (b', state: 'S', ppid: 10985, pgrp: 10974, session: 4262, ttyNr: 0, tpgid: -1, minflt: 126, majflt: 0, numThreads: 1, nice: 0, priority: 20, rss: 415, processor: 1 });
    expect(s.vsize).toBe(2990080);
  });

  it('reads a zombie (state Z, no memory left)', () => {
    const s = parseStat(fixture('stat-zombie.txt'));
    expect(s).toMatchObject({ pid: 11064, comm: 'python3', state: 'Z', ppid: 11023, vsize: 0, rss: 0 });
  });

  it('rejects what is not a stat line', () => {
    expect(() => parseStat('hello')).toThrow(/not a \/proc\/<pid>\/stat line/);
  });

  it('reads this process live', () => {
    expect(readStat(process.pid)).toMatchObject({ pid: process.pid, ppid: process.ppid });
    expect(readStat(2 ** 22 + 1)).toBeUndefined();
  });
});

describe('parseStatus', () => {
  it('gives Tgid, Pid, PPid, Threads and kB fields', () => {
    const s = parseStatus(fixture('status-sleep.txt'));
    expect({ name: s.name, state: s.state, tgid: s.tgid, pid: s.pid, ppid: s.ppid, threads: s.threads }).toEqual({ name: 'a) (b', state: 'S', tgid: 10986, pid: 10986, ppid: 10985, threads: 1 });
    expect(s.kb('VmRSS')).toBeGreaterThan(0);
    expect(s.kb('Threads')).toBeUndefined();
    expect(s.kb('NoSuchField')).toBeUndefined();
  });
});

describe('parseMaps / parseSmaps', () => {
  it('reads each VMA with its path, even one with spaces and parentheses', () => {
    const vmas = parseMaps(fixture('maps-sleep.txt'));
    expect(vmas[0]).toMatchObject({ start: 0x55897fce8000n, end: 0x55897fcea000n, perms: 'r--p', offset: 0n, dev: 'fe:00', inode: 2147311, path: '/tmp/a) (b' });
    expect(vmas.some((v) => v.path === '[stack]')).toBe(true);
    expect(vmas.some((v) => v.path === '[vdso]')).toBe(true);
    expect(formatVma(vmas[0]!)).toBe('55897fce8000-55897fcea000 r--p 00000000 fe:00 2147311 /tmp/a) (b');
  });

  it('fills the per-VMA kB lines and VmFlags from smaps', () => {
    const smaps = parseSmaps(fixture('smaps-sleep.txt'));
    const maps = parseMaps(fixture('maps-sleep.txt'));
    expect(smaps.length).toBe(maps.length);
    expect(smaps[0]!.kb.get('Rss')).toBe(8);
    expect(smaps[0]!.kb.get('Private_Dirty')).toBe(8);
    expect(smaps[0]!.kb.has('AnonHugePages')).toBe(true);
    expect(smaps[0]!.vmFlags).toContain('rd');
    const stack = smaps.find((v) => v.path === '[stack]')!;
    expect(vmaContaining(smaps, stack.start + 8n)).toBe(stack);
    expect(vmaContaining(smaps, 0n)).toBeUndefined();
  });
});

describe('parseSched', () => {
  it('reads vruntime, sum_exec_runtime (ms) and the load weight', () => {
    const s = parseSched(fixture('sched-sleep.txt'));
    expect(s.get('se.vruntime')).toBeCloseTo(234.514328, 6);
    expect(s.get('se.sum_exec_runtime')).toBeCloseTo(0.968385, 6);
    expect(s.get('se.load.weight')).toBe(1048576);
    expect(s.get('nr_switches')).toBe(1);
    expect(s.get('prio')).toBe(120);
  });
});

describe('parsePagemapEntry', () => {
  it('decodes a touched shared-anonymous page (present, bit 61, exclusive, PFN) and an untouched one', () => {
    const [touched, untouched] = fixture('pagemap-anon-touched-untouched.txt').trim().split('\n').map((l) => parsePagemapEntry(BigInt(`0x${l.split(' ')[1]}`)));
    expect(touched).toEqual({ present: true, swapped: false, fileOrShared: true, exclusive: true, softDirty: false, pfn: 0x1cd708n });
    expect(untouched).toEqual({ present: false, swapped: false, fileOrShared: false, exclusive: false, softDirty: false, pfn: 0n });
  });

  it('gives no PFN for a swapped page (bits 0-4 are then the swap type)', () => {
    expect(parsePagemapEntry((1n << 62n) | 0x1fn).pfn).toBe(0n);
  });
});

describe('descendants', () => {
  it('walks the tree below a pid breadth first', () => {
    const p = (pid: number, ppid: number) => ({ pid, ppid } as ProcStat);
    const all = [p(1, 0), p(10, 1), p(11, 10), p(12, 10), p(13, 12), p(20, 1)];
    expect(descendants(all, 10).map((s) => s.pid)).toEqual([11, 12, 13]);
    expect(descendants(all, 13)).toEqual([]);
  });

  it('reads /proc/<pid>/io by field (rchar, wchar, …), and nothing for a task that is gone', () => {
    const io = parseIo('rchar: 4242\nwchar: 17\nsyscr: 3\nsyscw: 1\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n');
    expect([io.get('rchar'), io.get('wchar'), io.get('write_bytes')]).toEqual([4242, 17, 4096]);
    if (process.getuid?.() === 0) expect(readIo(process.pid)?.get('rchar')).toBeGreaterThan(0);
    expect(readIo(2 ** 22 + 1)).toBeUndefined();
  });
});

describe('openFds / fdinfoField', () => {
  it('lists the descriptors a process holds with their targets and fdinfo, filtered by target, and none for a process that is gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openfds-'));
    const file = join(dir, 'f');
    const fd = openSync(file, 'w');
    try {
      const mine = openFds('self', (t) => t === file);
      expect(mine.map((f) => f.fd)).toEqual([fd]);
      // O_WRONLY|O_CREAT|O_TRUNC, printed in octal: the access mode is 1.
      expect((fdinfoField(mine[0]!.fdinfo, 'flags', 8) ?? 0) & 3).toBe(1);
      expect(fdinfoField(mine[0]!.fdinfo, 'pos')).toBe(0);
      expect(fdinfoField(mine[0]!.fdinfo, 'no_such_key')).toBeUndefined();
      expect(openFds(2 ** 22 + 1)).toEqual([]);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
