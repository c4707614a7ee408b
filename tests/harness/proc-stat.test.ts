/**
 * The one /proc/<pid>/stat parser (helpers/harness/proc-stat.ts), on lines
 * recorded on this machine: a shell that renamed itself "x) (y z" (comm with
 * spaces and parentheses), and a zombie sleep.
 */
import { describe, expect, it } from 'vitest';
import { parseStat, readStat } from '../../helpers/harness/proc-stat.js';
import { processStartTime } from '../../helpers/harness/run-state.js';

const PAREN_COMM = '24716 (x) (y z) R 24714 24714 17678 0 -1 4194304 166 0 0 0 0 0 0 0 20 0 1 0 2671827 4464640 803 18446744073709551615 94754821763072 94754822552477 140723588793184 0 0 0 81922 4 65536 0 0 0 17 0 0 0 0 0 0 94754822785776 94754822834020 94755727167488 140723588799147 140723588799220 140723588799220 140723588800490 0\n';
const ZOMBIE = '24719 (sleep) Z 24718 24714 17678 0 -1 4227084 97 0 0 0 0 0 0 0 20 0 1 0 2671828 0 0 18446744073709551615 0 0 0 0 0 0 0 6 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n';

describe('parseStat', () => {
  it('splits after the last ")": comm keeps its spaces and parentheses', () => {
    const s = parseStat(PAREN_COMM);
    expect(s).toMatchObject({ pid: 24716, comm: 'x) (y z', state: 'R', ppid: 24714, pgrp: 24714, session: 17678, ttyNr: 0, tpgid: -1, minflt: 166, numThreads: 1, starttime: 2671827, vsize: 4464640, rss: 803, processor: 0 });
    expect(s.rest[0]).toBe('R');
    expect(s.rest[19]).toBe('2671827'); // field 22, as printed
  });

  it('reads a zombie', () => {
    expect(parseStat(ZOMBIE)).toMatchObject({ pid: 24719, comm: 'sleep', state: 'Z', ppid: 24718, pgrp: 24714, starttime: 2671828, vsize: 0, rss: 0 });
  });

  it('refuses text that is not a stat line', () => {
    expect(() => parseStat('hello')).toThrow(/not a \/proc\/<pid>\/stat line/);
  });

  it('reads this process, and nothing for a pid that does not exist', () => {
    expect(readStat(process.pid)).toMatchObject({ pid: process.pid, ppid: process.ppid });
    expect(readStat(2 ** 22 + 12345)).toBeUndefined();
    expect(processStartTime(process.pid)).toBe(String(readStat(process.pid)!.starttime));
    expect(processStartTime(2 ** 22 + 12345)).toBeUndefined();
  });
});
