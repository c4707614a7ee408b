/** Lab K2's verdicts (labs/kernel/K2-gdb/judge.ts) on made-up gdb output and consoles. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { GdbSession } from '../../../../labs/kernel/K2-gdb/experiment.js';
import { guestFinished, num, registersOfGetcpu, stoppedAtEntry } from '../../../../labs/kernel/K2-gdb/judge.js';
import type { BootResult } from '../../../../helpers/kernel/qemu.js';

const console_ = ['getcpu_trigger nr=309 ret=0 cpu=0', 'KL_DONE'];
const bootOf = (lines: string[], exitedByItself = true) => ({ accel: 'tcg', accelNote: '', lines, output: lines.join('\n'), exitedByItself, exitCode: 0, seconds: 9, command: '' }) as BootResult;
const session = (gdbOutput: string, lines = console_): GdbSession => ({
  target: { kernel: '/boot/vmlinuz', entry: 0xffffffff81c3e8b0n, source: '/boot/System.map-6.1' }, socket: '/tmp/kl-test-gdbstub/qemu.sock', gdbOutput, gdbCommands: 'hbreak *$entry', boot: bootOf(lines), seconds: 12,
});

describe('Lab K2 judge', () => {
  it('reads gdb\'s numbers in hex or decimal', () => {
    expect([num('0x135'), num('309'), num('$1'), num(undefined)]).toEqual([309n, 309n, undefined, undefined]);
  });

  it('wants a stop at do_syscall_64 with getcpu\'s number and this run\'s magic', () => {
    const s = session('KL_HIT pc=0xffffffff81c3e8b0 nr=309 orig_ax=0x135 dx=0x12345678\n');
    expect(holds(stoppedAtEntry(s))).toBe(true);
    expect(holds(registersOfGetcpu(s, 0x12345678n))).toBe(true);
    expect(holds(registersOfGetcpu(s, 0x12345679n))).toBe(false);
  });

  it('refuses no stop, a stop elsewhere, and the first syscall of all', () => {
    expect(stoppedAtEntry(session('Breakpoint 1 at 0xffffffff81c3e8b0\n')).got).toEqual({ stopped: false, pc: undefined });
    expect(holds(stoppedAtEntry(session('KL_HIT pc=0xffffffff81c3e8b4 nr=309 orig_ax=309 dx=1\n')))).toBe(false);
    expect(registersOfGetcpu(session('KL_HIT pc=0xffffffff81c3e8b0 nr=59 orig_ax=59 dx=0\n'), 1n).got).toEqual({ nr: 59n, orig_ax: 59n, dx: 0n });
  });

  it('wants the guest to go on after the stop and QEMU to end by itself', () => {
    expect(holds(guestFinished(session('')))).toBe(true);
    expect(guestFinished(session('', ['KL_DONE'])).got.callReturned).toBe(false);
  });
});
