/**
 * Lab K2's verdicts: pure functions from the experiment's evidence (gdb's
 * KL_HIT lines: the registers it read where the kernel stopped; the guest's
 * console) to what each test compares — `got` against `want` — with the
 * message that shows the evidence. Unit-tested in tests/lab-units/kernel/K2-gdb/judge.test.ts.
 */
import { parseHits } from '../../../helpers/kernel/gdb.js';
import type { Verdict } from '../../../helpers/harness/verdict.js';
import { ENTRY, NR_GETCPU, TRIGGER_MAGIC, type GdbSession } from './experiment.js';

export type { Verdict };

/** A number gdb printed, in hex (0x…) or decimal; undefined when absent or not a number. */
export function num(v: string | undefined): bigint | undefined {
  try { return v === undefined ? undefined : BigInt(v); } catch { return undefined; }
}

const STUDENT_FILE = 'your workspace file kernel/K2-gdb/syscall_break.gdb';

/** The breakpoint stopped (a KL_HIT line), and at do_syscall_64's address. */
export function stoppedAtEntry(s: GdbSession): Verdict<{ stopped: boolean; pc?: string }> {
  const hit = parseHits(s.gdbOutput)[0];
  const pc = num(hit?.pc);
  return {
    got: { stopped: hit !== undefined, pc: pc === undefined ? hit?.pc : `0x${pc.toString(16)}` },
    want: { stopped: true, pc: `0x${s.target.entry.toString(16)}` },
    message: hit
      ? `${STUDENT_FILE} stopped elsewhere than ${ENTRY}=0x${s.target.entry.toString(16)}: ${JSON.stringify(hit)}`
      : `${STUDENT_FILE}: gdb printed no KL_HIT line (the breakpoint never stopped).\ngdb output:\n${s.gdbOutput.slice(-2500)}\ncommand file:\n${s.gdbCommands}`,
  };
}

/** At the first stop: getcpu's number in %rsi and in the saved regs->orig_ax, and this run's magic in regs->dx. */
export function registersOfGetcpu(s: GdbSession, magic = TRIGGER_MAGIC): Verdict<{ nr?: bigint; orig_ax?: bigint; dx?: bigint } | undefined> {
  const hit = parseHits(s.gdbOutput)[0];
  return {
    got: hit && { nr: num(hit.nr), orig_ax: num(hit.orig_ax), dx: num(hit.dx) },
    want: { nr: BigInt(NR_GETCPU), orig_ax: BigInt(NR_GETCPU), dx: magic },
    message: hit
      ? `${STUDENT_FILE} printed: ${JSON.stringify(hit)}; the trigger passed 0x${magic.toString(16)} this run`
      : `no KL_HIT line; gdb output:\n${s.gdbOutput.slice(-1500)}`,
  };
}

/** After the breakpoint the guest went on: the call returned, /init finished, QEMU ended by itself. */
export function guestFinished(s: GdbSession): Verdict<{ callReturned: boolean; done: boolean; exitedByItself: boolean }> {
  const out = s.boot.output;
  return {
    got: { callReturned: new RegExp(`^getcpu_trigger nr=${NR_GETCPU} ret=0 `, 'm').test(out), done: /^KL_DONE$/m.test(out), exitedByItself: s.boot.exitedByItself },
    want: { callReturned: true, done: true, exitedByItself: true },
    message: `console tail (exitedByItself false: QEMU was killed at the time bound):\n${s.boot.lines.slice(-12).join('\n')}`,
  };
}
