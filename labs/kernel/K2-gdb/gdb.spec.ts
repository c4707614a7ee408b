/**
 * Lab K2 — 用 GDB 调试内核 (debug the kernel with GDB).
 * QEMU starts the kernel stopped (-S) with its gdbstub on a Unix socket made
 * for the run; gdb (batch mode, contained: lab.json) runs the student's commands
 * (c/kernel/K2-gdb/syscall_break.gdb): a hardware breakpoint at do_syscall_64 that
 * stops only for getcpu (309). The guest's /init runs getcpu_trigger, which
 * makes that call with a magic third argument. The breakpoint proves the
 * mechanism (the xv6 grader's trick): the number is in %rsi and in the saved
 * regs->orig_ax, the magic in regs->dx.
 *
 * The lab's anatomy: experiment.ts boots the guest and runs gdb, judge.ts
 * turns gdb's lines and the console into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { holds } from '../../../helpers/harness/verdict.js';
import { qemuProcesses } from '../../../helpers/kernel/qemu.js';
import { debugGetcpu, ENTRY, type GdbSession } from './experiment.js';
import * as judge from './judge.js';

describe('K2 — debug the kernel with GDB (用 GDB 调试内核)', () => {
  requires(...labRequires(import.meta.url));
  let s: GdbSession;

  beforeAll(async () => {
    s = await debugGetcpu();
  }, 450_000);

  it(`stops at ${ENTRY} on a hardware breakpoint, through a gdbstub made for this run`, async (ctx) => {
    console.log(`[K2] kernel: ${s.target.kernel} (Debian's; K2 never uses K3's build); breakpoint address from ${s.target.source}`);
    if (!s.target.source.startsWith('/boot/System.map')) await adapted(ctx, `Debian's System.map is a stub: breakpoint address from ${s.target.source}`);
    if (s.boot.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${s.boot.accelNote}`);
    recordMetric(ctx, { name: 'boot + gdb session', value: s.seconds, unit: 's', group: 'K2 gdb' });
    expect(s.socket, 'a gdbstub socket made for this run, not a fixed port').toMatch(/\.sock$/);
    holds(judge.stoppedAtEntry(s));
  });

  it('has the getcpu number in %rsi and in the saved orig_ax, and the trigger’s magic (chosen at random for this run) in regs->dx', () => {
    holds(judge.registersOfGetcpu(s));
  });

  it('control: lets the guest finish after the breakpoint: the call returned and QEMU ended by itself', () => {
    holds(judge.guestFinished(s));
  });

  it('control: leaves no QEMU or gdb process behind', () => {
    expect(s.socket).toBeTruthy();
    expect(qemuProcesses().filter((p) => p.cmdline.includes(s.socket!))).toEqual([]);
  });
});
