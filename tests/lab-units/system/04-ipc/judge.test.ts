/** System Lab 4's verdicts (labs/system/04-ipc/judge.ts) on made-up runs: pipe, queue, shared memory, signals. */
import { describe, expect, it } from 'vitest';
import { bit, makePlan, pipeCapacity, type Plan, type Run } from '../../../../labs/system/04-ipc/experiment.js';
import * as judge from '../../../../labs/system/04-ipc/judge.js';
import type { Vma } from '../../../../helpers/kernel/procfs.js';
import type { TraceEvent } from '../../../../helpers/kernel/tracefs.js';

const PROG = 100;
const plan: Plan = {
  pipeBytes: 20000, pipeTotal: 100000, mqName: '/kl-x-mq1',
  messages: [{ prio: 3, size: 10 }, { prio: 9, size: 20 }, { prio: 3, size: 30 }],
  shmPages: 2, shmToken: 'kl123456', rtSignals: [36, 40],
  queued: [{ sig: 40, value: 7 }, { sig: 36, value: 8 }, { sig: 40, value: 9 }], sendSig: 50, sendValue: 4242,
};
const vma = (perms: string, inode: number): Vma => ({ start: 0x1000n, end: 0x3000n, perms, offset: 0n, dev: '00:01', inode, path: '/memfd:x (deleted)', kb: new Map(), vmFlags: [] });
const rename = (n: string): TraceEvent => ({ pid: PROG, ts: 1, event: 'task_rename', body: `pid=${PROG} oldcomm=x newcomm=${n} oom_score_adj=0` });
const gen = (sender: number, code: number): TraceEvent => ({ pid: sender, ts: 1, event: 'signal_generate', body: `sig=50 errno=0 code=${code} comm=ipc_probe pid=200 grp=1 res=0` });

function good(): Run {
  return {
    pid: PROG, execName: 'ipc', plan,
    pipe: { writer: 101, writerParent: PROG, state: 'S', wchan: 'pipe_write', stack: [], capacity: 32768, inPipe: 32768, rcharBefore: 10, rcharAfter: 100010, writerAfter: 'gone', blockedOnShared: true, wcharBefore: 5, wcharAfter: 100005 },
    mq: { qsize: 60, curmsgs: 3, maxmsg: 3, msgsize: 30, received: [{ prio: 9, size: 20 }, { prio: 3, size: 10 }, { prio: 3, size: 30 }], qsizeAfter: 0, existsAfterDone: false },
    shm: { child: 102, childParent: PROG, programVma: vma('rw-s', 7), childVma: vma('rw-s', 7), frames: [{ program: 5n, child: 5n }, { program: 6n, child: 6n }], words: ['kl123456 0', 'kl123456 1'], candidates: [] },
    sig: { probePid: 200, heard: `${PROG} -1 4242`, sigBlk: bit(36) | bit(40), shdPnd: bit(36) | bit(40), sigPnd: 0n, sigQ: 3, shdPndAfter: 0n, aliveAfterQueue: true },
    events: [rename('sh'), rename('ipc'), rename('v8'), rename('v7'), rename('v9'), gen(PROG, -1)], leftovers: [], output: '',
  };
}
const pass = (v: { got: unknown; want: unknown }) => expect(v.got).toEqual(v.want);
const fail = (v: { got: unknown; want: unknown }) => expect(v.got).not.toEqual(v.want);

describe('System Lab 4 judge', () => {
  it('rounds a pipe request like the kernel', () => {
    expect(pipeCapacity(4097)).toBe(8192);
    expect(pipeCapacity(20000)).toBe(32768);
    expect(pipeCapacity(65536)).toBe(65536);
  });

  it('plans a pipe total above both the capacity asked for and the default 64 KiB (a default-size writer blocks too)', () => {
    for (let i = 0; i < 500; i++) {
      const p = makePlan();
      expect(pipeCapacity(p.pipeBytes)).not.toBe(65536);
      expect(p.pipeTotal).toBeGreaterThan(Math.max(pipeCapacity(p.pipeBytes), 65536));
    }
  });

  it('passes a correct run', () => {
    const r = good();
    for (const f of [judge.pipeSize, judge.pipeBlocks, judge.pipeDrains, judge.mqHolds, judge.mqOrder, judge.shmShared, judge.sigSend, judge.sigPending, judge.sigTaken]) pass(f(r));
  });

  it('pipe: the writer\'s writes count once reaped (the program\'s wchar) or, not reaped yet, as its own; a killed writer fails', () => {
    const zombie = good();
    zombie.pipe.writerAfter = 'Z';
    zombie.pipe.wcharAfter = zombie.pipe.wcharBefore;
    zombie.pipe.writerWcharAfter = 100000;
    pass(judge.pipeDrains(zombie));
    const short = good();
    short.pipe.wcharAfter = 5 + 32768;
    expect(judge.pipeDrains(short).got).toMatchObject({ writerWroteAll: false });
  });

  it('pipe: wchar is every file\'s writes — each call that adds to it must go to the pipe the writer sleeps on', () => {
    const r = good();
    r.pipe.blockedTarget = 'pipe:[77]';
    r.pipe.writerWrites = [{ fd: 4, calls: 3, bytes: 100000, target: 'pipe:[77]' }];
    pass(judge.pipeDrains(r));
    const padded = good();
    padded.pipe.blockedTarget = 'pipe:[77]';
    padded.pipe.writerWrites = [{ fd: 4, calls: 1, bytes: 32768, target: 'pipe:[77]' }, { fd: 6, calls: 17, bytes: 67232, target: '/dev/null' }, { fd: 1, calls: 1, bytes: 5, target: 'pipe:[5]' }];
    const v = judge.pipeDrains(padded);
    expect(v.got).toMatchObject({ writerWroteAll: true, writesOnlyToThePipe: false, pipeGotAll: false });
    expect(v.message).toMatch(/the writer's writes by fd \(syscalls:sys_enter_write…\): fd 4 → pipe:\[77\] 1 call 32768 bytes; fd 6 → \/dev\/null 17 calls 67232 bytes — not the pipe; fd 1 → pipe:\[5\] 1 call 5 bytes — not the pipe; the pipe got 32768 bytes of its writes/);
    const late = good();
    late.pipe.blockedTarget = 'pipe:[77]';
    late.pipe.writerWrites = [{ fd: 4, calls: 1, bytes: 32768, target: 'pipe:[77]' }, { fd: 9, calls: 2, bytes: 9 }];
    expect(judge.pipeDrains(late).message).toMatch(/fd 9 → \(not open when it slept\) 2 calls 9 bytes — not the pipe/);
    const lost = good();
    lost.pipe.writerWrites = [{ fd: 4, calls: 9000, bytes: 100000, target: 'pipe:[77]' }];
    lost.pipe.blockedTarget = 'pipe:[77]';
    lost.pipe.writeTraceLost = true;
    expect(judge.pipeDrains(lost).got.writesOnlyToThePipe).toBe(false);
    expect(judge.pipeDrains(lost).message).toMatch(/the trace lost events/);
  });

  it('pipe: the pipe must get the total from the writer\'s own writes — wchar padded by the program (or another child it reaps) is not the pipe\'s', () => {
    const r = good();
    r.pipe.blockedTarget = 'pipe:[77]';
    r.pipe.writerWrites = [{ fd: 4, calls: 2, bytes: 36864, target: 'pipe:[77]' }];
    const v = judge.pipeDrains(r);
    expect(v.got).toMatchObject({ writerWroteAll: true, writesOnlyToThePipe: true, pipeGotAll: false, readAll: true });
    expect(v.message).toMatch(/the pipe got 36864 bytes of its writes \(what they returned, sys_exit_write…\) for 100000/);
  });

  it('pipe: a write is judged by the file its fd held then (fd-table.ts) — dup2 of /dev/null onto the pipe\'s number is not the pipe', () => {
    const r = good();
    r.pipe.blockedTarget = 'pipe:[77]';
    r.pipe.writerWrites = [{ fd: 4, calls: 65, bytes: 33280, target: 'pipe:[77]' }, { fd: 4, calls: 186, bytes: 66720, target: '/dev/null', via: 'dup2(5, 4) after it slept' }];
    const v = judge.pipeDrains(r);
    expect(v.got).toMatchObject({ writerWroteAll: true, readAll: true, writesOnlyToThePipe: false });
    expect(v.message).toMatch(/fd 4 → pipe:\[77\] 65 calls 33280 bytes; fd 4 → \/dev\/null \(dup2\(5, 4\) after it slept\) 186 calls 66720 bytes — not the pipe/);
    const blind = good();
    blind.pipe.blockedTarget = 'pipe:[77]';
    blind.pipe.writerWrites = [{ fd: 4, calls: 3, bytes: 100000, target: 'pipe:[77]' }];
    blind.pipe.fdTableUnfollowed = 'the writer set up an io_uring';
    expect(judge.pipeDrains(blind).got.writesOnlyToThePipe).toBe(false);
    expect(judge.pipeDrains(blind).message).toMatch(/its fd table not followed: the writer set up an io_uring/);
  });

  it('pipe: the default size, a writer asleep elsewhere, a short drain', () => {
    const r = good();
    r.pipe.capacity = 65536;
    fail(judge.pipeSize(r));
    expect(judge.pipeSize(r).message).toMatch(/the default/);
    const p = good();
    p.pipe.wchan = 'do_sys_pause';
    fail(judge.pipeBlocks(p));
    const d = good();
    d.pipe.rcharAfter = 32778;
    fail(judge.pipeDrains(d));
  });

  it('queue: priority 0 everywhere, a name left behind', () => {
    const r = good();
    r.mq.received = [{ prio: 0, size: 10 }, { prio: 0, size: 20 }, { prio: 0, size: 30 }];
    fail(judge.mqOrder(r));
    const n = good();
    n.mq.existsAfterDone = true;
    fail(judge.mqOrder(n));
  });

  it('shared memory: a System V segment is one object whatever its id, 0 included (the first of a new IPC namespace); two anonymous mappings are not', () => {
    const r = good();
    const sysv = (inode: number): Vma => ({ ...vma('rw-s', inode), path: '/SYSV00000000 (deleted)' });
    r.shm.programVma = sysv(0);
    r.shm.childVma = sysv(0);
    pass(judge.shmShared(r));
    r.shm.programVma = { ...vma('rw-s', 0), dev: '00:00', path: '' };
    r.shm.childVma = { ...vma('rw-s', 0), dev: '00:00', path: '' };
    expect(judge.shmShared(r).got.sameObject).toBe(false);
  });

  it('shared memory: a private copy, different frames', () => {
    const r = good();
    r.shm.programVma = vma('rw-p', 0);
    r.shm.frames = [{ program: 5n, child: 9n }, { program: 6n, child: 6n }];
    const v = judge.shmShared(r);
    fail(v);
    expect(v.message).toMatch(/page 0: program 0x5, child 0x9/);
  });

  it('shared memory: who wrote each page — a write fault of the child, or (read first) a store through its own PTE with the folio clean', () => {
    const faulted = good();
    faulted.shm.childWrites = [0, 1];
    pass(judge.shmShared(faulted));
    // The child read each page first: read faults only, every page dirty in its smaps, every folio clean.
    const readFirst = good();
    Object.assign(readFirst.shm, { childWrites: [], childFaults: ['0:0x4', '1:0x4'], childDirtyPages: 2, folioDirty: [false, false] });
    expect(judge.childStores(readFirst)).toEqual([0, 1]);
    pass(judge.shmShared(readFirst));
    expect(judge.shmShared(readFirst).message).toMatch(/read first and then wrote through its own page table entry .*: 0,1/);
    // The program wrote (a write fault or write(2)): the folios are dirty, the child only read.
    const parent = good();
    Object.assign(parent.shm, { childWrites: [], childFaults: ['0:0x4', '1:0x4'], childDirtyPages: 2, folioDirty: [true, true] });
    expect(judge.childStores(parent)).toEqual([]);
    const v = judge.shmShared(parent);
    fail(v);
    expect(v.message).toMatch(/pages the child did not write: 0,1 \(its mapping's dirty pages \(smaps\) 2 of 2, folios dirty 0,1\)/);
    // The program stored without a fault (folios clean) and the child only read: nothing is dirty in the child's mapping.
    const quiet = good();
    Object.assign(quiet.shm, { childWrites: [], childDirtyPages: 0, folioDirty: [false, false] });
    fail(judge.shmShared(quiet));
    // One page faulted, the other read first and stored.
    const mixed = good();
    Object.assign(mixed.shm, { childWrites: [1], childDirtyPages: 2, folioDirty: [false, true] });
    expect(judge.childStores(mixed)).toEqual([0]);
    pass(judge.shmShared(mixed));
  });

  it('signals: kill instead of sigqueue, not blocked, the wrong order', () => {
    const r = good();
    r.sig.heard = `${PROG} 0 0`;
    r.events = [gen(PROG, 0)];
    fail(judge.sigSend(r));
    const b = good();
    b.sig.aliveAfterQueue = false;
    b.sig.programExit = 'killed by SIGRTMIN+2';
    expect(judge.sigPending(b).message).toMatch(/the program ended \(killed/);
    const o = good();
    o.events = [rename('ipc'), rename('v7'), rename('v8'), rename('v9')];
    fail(judge.sigTaken(o));
  });
});
