/** Paths Lab 3's verdicts (labs/paths/03-descriptors/judge.ts) and its parsers, on made-up runs. */
import { describe, expect, it } from 'vitest';
import type { DescriptorsSetup, Fs, Plan, Run, Share } from '../../../../labs/paths/03-descriptors/experiment.js';
import { parseDumpe2fs, parseFdinfo } from '../../../../labs/paths/03-descriptors/experiment.js';
import { deletedHeld, dfFresh, dfMatches, duVsDf, ending, lastClose, mechanism, parseDf, separate, shared } from '../../../../labs/paths/03-descriptors/judge.js';
import type { TraceEvent } from '../../../../helpers/kernel/tracefs.js';

const PROG = 100;
const CHILD = 101;
const plan: Plan = { imageMiB: 32, reservePct: 5, shareName: 's.dat', shareBytes: 100_000, k: 123, seekX: 70_000, seekY: 500, deletedName: 'd.log', deletedBytes: 2_000_001 };
const MNT = '/tmp/kl-t-desc/mnt';
const PATH = `${MNT}/s.dat`;
const DPATH = `${MNT}/d.log`;
// 1 KiB blocks: 26000 data blocks, 20000 free, 1300 + 500 reserved.
const fresh: Fs = { bsize: 1024, blocks: 26_000, bfree: 20_000, bavail: 18_200 };
const setup: DescriptorsSetup = {
  plan, program: '/x', probe: '/p', mnt: MNT, device: '/dev/loop3', reservedClusters: 500,
  dumpe2fs: { blockSize: 1024, blockCount: 32_768, overhead: 6_768, free: 20_000, reserved: 1_300, text: '' },
};
const fileBlocks = 1954; // ceil(2000001 / 1024)
const held: Fs = { ...fresh, bfree: fresh.bfree - fileBlocks, bavail: fresh.bavail - fileBlocks };

function goodShare(extra: Partial<Share> = {}): Share {
  return {
    path: PATH, line: `3 4 5 ${CHILD}`, fd: 3, dup: 4, again: 5, child: CHILD, childParent: PROG,
    childFds: [{ pid: CHILD, fd: 3, target: PATH, pos: 123, flags: '0100000' }, { pid: CHILD, fd: 4, target: PATH, pos: 123, flags: '0100000' }], childFd: 3,
    childRchar: 123,
    views: [{ pid: PROG, fd: 3, target: PATH, pos: 123 }, { pid: PROG, fd: 4, target: PATH, pos: 123 }, { pid: PROG, fd: 5, target: PATH, pos: 0 }],
    kcmp: { dup: '0', child: '0', again: '1' },
    afterSeekX: { through: '70000', dup: 70_000, child: 70_000, again: 0 },
    afterSeekY: { through: '500', fd: 500, dup: 500, again: 0 },
    ...extra,
  };
}

const ev = (pid: number, event: string, body: string): TraceEvent => ({ pid, tgid: pid, ts: 1, event, body });

function goodRun(extra: Partial<Run> = {}): Run {
  return {
    pid: PROG, plan, events: [ev(PROG, 'sys_statfs', '(pathname: 1, buf: 2)')], lost: false, childLeft: false, output: '',
    df1: { line: `${26_000 * 1024} ${6_000 * 1024} ${18_200 * 1024}`, before: fresh, after: fresh },
    share: goodShare(),
    deleted: {
      path: DPATH, line: '6', fd: 6, before: { fs: fresh, du: 50_000 },
      held: { target: `${DPATH} (deleted)`, unwritten: 'none', nlink: 0, size: 2_000_001, blocks512: fileBlocks * 2, ino: 12, nameExists: false, fs: held, du: 50_000 },
      df: { line: `${26_000 * 1024} ${(6_000 + fileBlocks) * 1024} ${(18_200 - fileBlocks) * 1024}`, before: held, after: held },
      after: { line: 'closed 6', fs: fresh, du: 50_000, stillHeldBy: [] },
    },
    exit: { reason: 'exited', exitCode: 0 } as Run['exit'],
    ...extra,
  };
}

const ok = (v: { facts: unknown; expected: unknown }) => expect(v.facts).toEqual(v.expected);
const notOk = (v: { facts: unknown; expected: unknown }) => expect(v.facts).not.toEqual(v.expected);

describe('Paths Lab 3 judge', () => {
  it('parses df answers, fdinfo and dumpe2fs -h', () => {
    expect(parseDf('1 2 3')).toEqual({ size: 1, used: 2, avail: 3 });
    expect(parseDf('1 2')).toBeUndefined();
    expect(parseDf('-1 2 3')).toBeUndefined();
    expect(parseFdinfo('pos:\t123\nflags:\t02100000\nmnt_id:\t30\nino:\t12\n')).toEqual({ pos: 123, flags: '02100000' });
    const d = parseDumpe2fs('Block count:              40960\nReserved block count:     2867\nOverhead clusters:        7441\nFree blocks:              33505\nBlock size:               1024\n');
    expect(d).toMatchObject({ blockCount: 40_960, reserved: 2867, overhead: 7441, free: 33_505, blockSize: 1024 });
  });

  it('df: statfs\'s figures, and free − available = the reserve dumpe2fs and sysfs give', () => {
    ok(dfFresh(goodRun(), setup));
    expect(dfMatches({ line: `${26_000 * 1024} ${6_000 * 1024} ${18_200 * 1024}`, before: held, after: fresh })).toBe(true);
    // available = free (no reserve), as f_bfree would give
    const bfree = goodRun({ df1: { line: `${26_000 * 1024} ${6_000 * 1024} ${20_000 * 1024}`, before: fresh, after: fresh } });
    notOk(dfFresh(bfree, setup));
    expect(dfFresh(bfree, setup).message).toMatch(/reserved = free − available 0;/);
    // in KiB instead of bytes
    notOk(dfFresh(goodRun({ df1: { line: `26000 6000 18200`, before: fresh, after: fresh } }), setup));
    // statfs right but a kernel whose reserve differs from dumpe2fs's: the reserved figure says so
    notOk(dfFresh(goodRun(), { ...setup, reservedClusters: 0 }));
  });

  it('mechanism: statfs by the program itself, no exec', () => {
    ok(mechanism(goodRun()));
    notOk(mechanism(goodRun({ events: [] })));
    // statfs by a child is not the program's
    notOk(mechanism(goodRun({ events: [ev(CHILD, 'sys_statfs', '()')] })));
    const shell = mechanism(goodRun({ events: [ev(PROG, 'sys_fstatfs', '()'), ev(CHILD, 'sched_process_exec', 'filename=/usr/bin/df pid=101 old_pid=101')] }));
    notOk(shell);
    expect(shell.message).toMatch(/exec: pid 101: filename=\/usr\/bin\/df/);
  });

  it('share: one struct file through dup and fork, one offset', () => {
    ok(shared(goodRun()));
    // reopen instead of dup: kcmp says two files, and the spec's seek does not show through
    const reopen = goodRun({ share: goodShare({ kcmp: { dup: '1', child: '0', again: '2' }, afterSeekX: { through: '70000', dup: 123, child: 70_000, again: 0 } }) });
    notOk(shared(reopen));
    expect(shared(reopen).message).toMatch(/dup 1, child's fd/);
    // the child read with pread: the offset did not move
    notOk(shared(goodRun({ share: goodShare({ views: [{ pid: PROG, fd: 3, target: PATH, pos: 0 }, { pid: PROG, fd: 4, target: PATH, pos: 0 }, { pid: PROG, fd: 5, target: PATH, pos: 0 }] }) })));
    // the child is not the program's
    notOk(shared(goodRun({ share: goodShare({ childParent: 1 }) })));
    // the parent lseeked to k itself: the child read nothing
    notOk(shared(goodRun({ share: goodShare({ childRchar: 0 }) })));
    notOk(shared(goodRun({ share: undefined })));
    // the child moved the offset with lseek (after reading k bytes elsewhere)
    const seeker = goodRun({ events: [ev(PROG, 'sys_statfs', '(pathname: 1, buf: 2)'), ev(CHILD, 'sys_lseek', '(fd: 3, offset: 9, whence: 0)')] });
    notOk(shared(seeker));
    expect(shared(seeker).message).toMatch(/its lseek calls: sys_lseek/);
  });

  it('separate: the second open has its own file and offset', () => {
    ok(separate(goodRun()));
    notOk(separate(goodRun({ share: goodShare({ kcmp: { dup: '0', child: '0', again: '0' } }) })));
    notOk(separate(goodRun({ share: goodShare({ afterSeekX: { through: '70000', dup: 70_000, child: 70_000, again: 70_000 } }) })));
    notOk(separate(goodRun({ share: goodShare({ kcmp: { dup: '0', child: '0', again: 'error: kcmp: EBADF' } }) })));
  });

  it('deleted: no name, every byte, still counted; du vs df; freed at the close', () => {
    const r = goodRun();
    ok(deletedHeld(r));
    ok(duVsDf(r));
    ok(lastClose(r));
    // renamed to "<path> (deleted)": nlink 1, du counts it
    const renamed = goodRun();
    renamed.deleted!.held = { ...renamed.deleted!.held!, nlink: 1, du: 50_000 + fileBlocks * 1024 };
    notOk(deletedHeld(renamed));
    expect(deletedHeld(renamed).message).toMatch(/nlink 1/);
    notOk(duVsDf(renamed));
    // sparse: st_blocks of one block
    const sparse = goodRun();
    sparse.deleted!.held = { ...sparse.deleted!.held!, blocks512: 2, fs: { ...fresh, bfree: fresh.bfree - 1 } };
    notOk(deletedHeld(sparse));
    // fallocate: blocks allocated, no data written (unwritten extents)
    const falloc = goodRun();
    falloc.deleted!.held = { ...falloc.deleted!.held!, unwritten: 'unwritten extents' };
    notOk(deletedHeld(falloc));
    expect(deletedHeld(falloc).message).toMatch(/FIEMAP of the held file: unwritten extents/);
    // closed before the answer
    const early = goodRun();
    early.deleted!.held = { ...early.deleted!.held!, target: undefined, nlink: undefined, size: undefined, blocks512: undefined, fs: fresh };
    notOk(deletedHeld(early));
    // never closed: the child still holds it, the blocks stay used
    const kept = goodRun();
    kept.deleted!.after = { line: 'closed 6', fs: held, du: 50_000, stillHeldBy: [`${CHILD}/fd/6`] };
    notOk(lastClose(kept));
    // the program's df while held that leaves the deleted file out
    const dfStale = goodRun();
    dfStale.deleted!.df = { ...dfStale.deleted!.df!, line: `${26_000 * 1024} ${6_000 * 1024} ${18_200 * 1024}` };
    notOk(duVsDf(dfStale));
  });

  it('ending: exit 0 and the child gone', () => {
    ok(ending(goodRun()));
    notOk(ending(goodRun({ childLeft: true })));
    notOk(ending(goodRun({ exit: undefined })));
    notOk(ending(goodRun({ exit: { reason: 'exited', exitCode: 1 } as Run['exit'] })));
  });
});
