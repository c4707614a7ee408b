/**
 * Lab K1's verdicts: pure functions from the experiment's evidence (the
 * guest's console, the QEMU processes left) to what each test compares —
 * `got` against `want` — with the message that shows the evidence.
 * Unit-tested in tests/lab-units/kernel/K1-boot/judge.test.ts.
 */
import type { Verdict } from '../../../helpers/harness/verdict.js';
import type { GuestRunResult } from '../../../helpers/kernel/guest.js';
import { BOOT_TIMEOUT_MS, type K1Boot } from './experiment.js';

export type { Verdict };

const tail = (k: K1Boot, n = 15) => k.boot.lines.slice(-n).join('\n');

/** The kernel started /init, and /init is PID 1 ($$ as it reports it). */
export function initIsPid1(k: K1Boot): Verdict<{ ranInit: boolean; initPid?: string }> {
  return {
    got: { ranInit: /Run \/init as init process/.test(k.boot.output), initPid: k.boot.output.match(/^KL_INIT pid=(\d+)$/m)?.[1] },
    want: { ranInit: true, initPid: '1' },
    message: `the kernel must start /init ("Run /init as init process"), and /init must print "KL_INIT pid=$$" (and be PID 1); console tail:\n${tail(k)}`,
  };
}

/** The banner and uname -r inside the guest name the release of the kernel QEMU booted. */
export function reportsRelease(k: K1Boot): Verdict<{ banner?: string; reported?: string }> {
  return {
    got: { banner: k.boot.output.match(/Linux version (\S+)/)?.[1], reported: k.boot.output.match(/^KL_RELEASE=(\S+)$/m)?.[1] },
    want: { banner: k.release, reported: k.release },
    message: `the kernel banner, and /init's "KL_RELEASE=$(uname -r)"; console tail:\n${tail(k)}`,
  };
}

/** getcpu_trigger ran in the guest and its getcpu call returned 0. */
export function ranTheProgram(k: K1Boot): Verdict<string | undefined> {
  return { got: k.boot.output.match(/^getcpu_trigger nr=309 ret=(\S+) cpu=(\d+)/m)?.[1], want: '0', message: `/init must run every program in /lab; console tail:\n${tail(k)}` };
}

/** /init ends the guest itself (reboot -f; PID 1 must not exit), and -no-reboot ends QEMU before the time bound. */
export function endsByItself(k: K1Boot): Verdict<Record<string, boolean | number>> {
  const out = k.boot.output;
  return {
    got: { done: /^KL_DONE$/m.test(out), initExited: /Attempted to kill init/.test(out), rebooted: /reboot: Restarting system/.test(out), exitedByItself: k.boot.exitedByItself, exitCode: k.boot.exitCode },
    want: { done: true, initExited: false, rebooted: true, exitedByItself: true, exitCode: 0 },
    message: `init must print KL_DONE after the programs and end with reboot -f (PID 1 exiting panics the kernel: "Attempted to kill init"); ` +
      `exitedByItself false: QEMU ran until the ${BOOT_TIMEOUT_MS / 1000} s bound and was killed; console tail:\n${tail(k, 10)}`,
  };
}

export function noQemuLeft(k: K1Boot): Verdict<readonly string[]> {
  return { got: k.qemuLeft, want: [], message: 'a QEMU of this lab (its initrd) is still running' };
}

/** In the guest: the kprobe saw exit(7)'s wait status, cgroup v2 took cpu.max and offers cpu and memory. */
export function guestPart(g: GuestRunResult): Verdict<Record<string, boolean | number>> {
  return {
    got: {
      exitCode: g.exitCode ?? -1, kprobeSawExit7: Number(g.output.match(/^exit7_hits=(\d+)$/m)?.[1] ?? 0) >= 1,
      cpuMax: /^cpu\.max=50000 100000$/m.test(g.output), controllers: /^controllers=.*\bcpu\b.*\bmemory\b/m.test(g.output),
    },
    want: { exitCode: 0, kprobeSawExit7: true, cpuMax: true, controllers: true },
    message: `guest script output:\n${g.output}\nconsole tail:\n${g.boot.lines.slice(-10).join('\n')}`,
  };
}
