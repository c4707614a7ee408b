/**
 * System Lab 4 — 进程间通信 (seed 003 进程间通信 §1–4).
 * The student's `ipc` reads commands on stdin; the spec drives each way of
 * communicating with random parameters and reads each state from outside
 * while it holds: the pipe's capacity and contents (F_GETPIPE_SZ, FIONREAD
 * through /proc/<writer>/fd), the blocked writer (state, wchan), the
 * program's rchar; the queue's QSIZE in an mqueue mount, mq_curmsgs and the
 * kernel's order of the messages; both processes' maps and pagemap frames and
 * the program's memory; /proc/<pid>/status SigBlk, ShdPnd and SigQ, and in a
 * private tracefs instance signal_generate and the program's task_rename.
 *
 * The lab's anatomy: experiment.ts runs the program and collects the evidence
 * (`Run`), judge.ts turns it into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { buildIpc, runIpc, type Run } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

let built: { program: string; probe: string };
let ran: Promise<Run> | undefined;
/** The program's one run, shared by the tests (the first test to ask starts it). */
const once = () => (ran ??= runIpc(built.program, built.probe));
const check = holds;

describe('System Lab 4 — inter-process communication (进程间通信)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    built = await buildIpc();
  });

  it('pipe: the kernel gives the pipe the capacity asked for, rounded up to a power of two of pages (F_GETPIPE_SZ)', async (ctx) => {
    const r = await once();
    check(judge.pipeSize(r));
    recordMetric(ctx, { name: 'pipe capacity', value: r.pipe.capacity ?? 0, unit: 'bytes', group: 'ipc' });
  });

  it('pipe: a writer of more than the capacity sleeps in pipe_write (state S) while the kernel holds a full pipe', async () => {
    check(judge.pipeBlocks(await once()));
  });

  it('pipe: drain wakes the writer — it finishes, and the program has read every byte written (rchar)', async () => {
    check(judge.pipeDrains(await once()));
  });

  it('message queue: the messages wait in the kernel — QSIZE is the sum of their sizes, mq_curmsgs their number', async () => {
    check(judge.mqHolds(await once()));
  });

  it('message queue: the kernel hands them out highest priority first, first-in first-out within one; mqdone removes the name', async () => {
    check(judge.mqOrder(await once()));
  });

  it('shared memory: one object mapped shared by the program and its child — same inode, the same frames in both pagemaps, the child\'s words in the program\'s memory', async () => {
    check(judge.shmShared(await once()));
  });

  it('signal: sigsend queues the value with the signal — the receiver gets it from the program with si_code SI_QUEUE (signal_generate)', async () => {
    check(judge.sigSend(await once()));
  });

  it('signal: blocked real-time signals wait in the kernel — SigBlk and ShdPnd show them, SigQ counts them', async () => {
    check(judge.sigPending(await once()));
  });

  it('signal: sigtake takes them in the kernel\'s order (lower signal first, FIFO within one) and shows each value (task_rename)', async () => {
    check(judge.sigTaken(await once()));
  });

  it('at the end of its input the program exits 0 and leaves no child behind', async (ctx) => {
    afterCorrectness(ctx, ['pipe: drain wakes', 'shared memory:'], 'ending cleanly');
    check(judge.ending(await once()));
  });
});
