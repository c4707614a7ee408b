/** Process Lab 2's verdicts (labs/process/02-vm/judge.ts) on made-up evidence: the new range, the touch, CoW and the wait. */
import { describe, expect, it } from 'vitest';
import type { Walk } from '../../../../labs/process/02-vm/experiment.js';
import { copyOnWrite, newAnonRanges, reaping, splitRssLagKb, touch, whoMadeTheFrame } from '../../../../labs/process/02-vm/judge.js';
import type { PagemapEntry, ProcStat, Vma } from '../../../../helpers/kernel/procfs.js';
import type { TraceEvent, TracedSyscall } from '../../../../helpers/kernel/tracefs.js';

const vma = (start: bigint, end: bigint, path = '', inode = 0): Vma => ({ start, end, perms: 'rw-p', offset: 0n, dev: '00:00', inode, path } as Vma);
const entry = (pfn: bigint, present = true): PagemapEntry => ({ present, swapped: false, fileOrShared: false, exclusive: false, softDirty: false, pfn } as PagemapEntry);
const fault = (pid: number, address: bigint, code: number, tgid = pid): TraceEvent =>
  ({ pid, tgid, event: 'page_fault_user', body: `address=0x${address.toString(16)} ip=0x401000 error_code=0x${code.toString(16)}`, ts: 1 });
const stop = (minflt: number, rssAnonKb: number) => ({ stat: { minflt } as ProcStat, rssAnonKb, maps: [] as Vma[] });
const R = { start: 0x10000n, end: 0x13000n }; // 3 pages

function walk(extra: Partial<Walk>): Walk {
  return { pid: 100, stops: [stop(0, 0), stop(10, 0), stop(13, 12)], faults: [], faultLines: [], pfns: [], memfd: [], ...extra };
}

describe('Process Lab 2 judge', () => {
  it('the new anonymous range, even merged with a neighbour', () => {
    expect(newAnonRanges([vma(0x10000n, 0x11000n)], [vma(0x10000n, 0x14000n), vma(0x20000n, 0x21000n, '/lib/x.so', 7)]))
      .toEqual([{ start: 0x11000n, end: 0x14000n }]);
  });

  it('RssAnon lags on kernels before 6.2 only', () => {
    expect(splitRssLagKb('6.1.0-40-amd64')).toBe(252);
    expect(splitRssLagKb('5.15.0')).toBe(252);
    expect(splitRssLagKb('6.18.0')).toBe(0);
  });

  it('the touch counts the process\'s own write faults in the range, and names a clone(CLONE_VM) child\'s', () => {
    const own = [0x10000n, 0x11000n, 0x12000n].map((a) => fault(100, a, 6));
    const t = touch(walk({ faults: [...own, fault(100, 0x50000n, 4)] }), R, 3);
    expect(t.inRegion).toEqual({ events: 3, pages: 3, writes: 3 });
    expect(t.ofProcess).toBe(4);
    expect(t.minflt).toBe(3);
    const foreign = touch(walk({ faults: [fault(101, 0x10000n, 6, 101)] }), R, 3);
    expect(foreign.inRegion.events).toBe(0);
    expect(foreign.inRegionMessage).toMatch(/1 faults in the range came from other processes \(tgid 101\)/);
  });

  it('copy on write: the child\'s page 0 moves by a write fault on the present page; a not-present fault or an mmap over the region is not a copy', () => {
    const before = { parent: [entry(1n), entry(2n), entry(3n)], child: [entry(1n), entry(2n), entry(3n)] };
    const after = { parent: [entry(1n), entry(2n), entry(3n)], child: [entry(9n), entry(2n), entry(3n)] };
    const cow = (window: TraceEvent[]) => walk({ cow: { child: 200, before, after, window } });
    expect(copyOnWrite(cow([]), after).facts).toEqual({ childPage0Moved: true, parentFramesKept: true, otherPagesStillShared: true });
    expect(whoMadeTheFrame(cow([fault(200, 0x10000n, 7)]), R).facts).toEqual({ cowFaultsOnPage0: true, faultsNotACopy: 0, faultsOffPage0: 0, callsOverTheRegion: [] });
    const mmap: TraceEvent = { pid: 200, tgid: 200, event: 'sys_enter', body: 'NR 9 (10000, 1000, 3, 32, ffffffffffffffff, 0)', ts: 1 };
    expect(whoMadeTheFrame(cow([mmap, fault(200, 0x10000n, 6)]), R).facts)
      .toEqual({ cowFaultsOnPage0: false, faultsNotACopy: 1, faultsOffPage0: 0, callsOverTheRegion: ['mmap(0x10000, 0x1000, 0x3, 0x32…)'] });
  });

  it('reaping: a wait4 that returned the child after its exit, or a waitid(WEXITED, no WNOWAIT) of this child that returned 0 after its exit', () => {
    const exit: TraceEvent = { pid: 200, tgid: 200, event: 'sched_process_exit', body: 'comm=vm pid=200 prio=120', ts: 5 };
    const call = (name: string, ret: bigint, exitTs: number, args: Record<string, bigint> = {}): TracedSyscall =>
      ({ pid: 100, tgid: 100, name, args: new Map(Object.entries(name === 'waitid' ? { which: 1n, upid: 200n, options: 4n, ...args } : { upid: 200n, options: 0n, ...args })), ts: 4, ret, exitTs });
    const w = (calls: TracedSyscall[], others?: number[]) => walk({ cow: { child: 200, others, before: { parent: [], child: [] } }, post: { events: [exit], calls } });
    expect(reaping(w([call('wait4', 200n, 6)])).reaped).toBe(true);
    expect(reaping(w([call('waitid', 0n, 6)])).reaped).toBe(true);
    expect(reaping(w([call('waitid', 0n, 6, { which: 0n, upid: 0n })])).reaped).toBe(true);
    expect(reaping(w([call('waitid', 0n, 4)])).reaped).toBe(false);
    // wait4(WUNTRACED) returns the pid of a child that only stopped
    const untraced = reaping(w([call('wait4', 200n, 4, { options: 2n })]));
    expect(untraced.reaped).toBe(false);
    expect(untraced.message).toMatch(/wait4\(200, WUNTRACED\) = 200 \(not a reap: it returned before the child exited/);
    // WNOWAIT leaves the zombie; WSTOPPED|WNOHANG reaps nothing
    expect(reaping(w([call('waitid', 0n, 6, { options: 0x1000004n })])).message).toMatch(/waitid\(1, 200, WEXITED\|WNOWAIT\) = 0 \(not a reap: WNOWAIT/);
    expect(reaping(w([call('waitid', 0n, 6, { options: 3n })])).reaped).toBe(false);
    // another child reaped: by pid, or by P_ALL while the parent has others
    expect(reaping(w([call('waitid', 0n, 6, { upid: 300n })])).message).toMatch(/P_PID 300 is another process/);
    expect(reaping(w([call('waitid', 0n, 6, { which: 0n, upid: 0n })], [300])).message).toMatch(/the parent has others \(300\)/);
    expect(reaping(w([])).message).toMatch(/wait4\/waitid calls: none/);
  });
});
