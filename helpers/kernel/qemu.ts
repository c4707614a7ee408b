/**
 * Booting a kernel in QEMU (labs K1–K3): serial console on stdio, read line
 * by line, bounded in time, `-no-reboot` so the guest's reboot ends QEMU.
 * Every QEMU runs in its own process group through exec.ts, so a timeout,
 * a failing test or a stop() kills it (and the reaper kills the groups of a
 * dead run).
 *
 * KVM is used only where it really boots a kernel. On a PVM host (a
 * /dev/kvm without vmx/svm in /proc/cpuinfo) it hangs or dies in emulation,
 * so TCG is chosen directly; elsewhere KVM is tried and a boot that prints
 * nothing within `silentMs` is killed and retried under TCG, which the
 * result reports (`accelNote`). LABS_QEMU_ACCEL=tcg|kvm overrides the choice
 * (kvm: tried first even on PVM, still with the silent-boot fallback).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackground, type Background, type RunResult } from '../harness/exec.js';

export type Accel = 'kvm' | 'tcg';

export interface BootOptions {
  readonly kernel: string;
  readonly initrd: string;
  /** Extra kernel command-line words (console=ttyS0 panic=-1 nokaslr are always there). */
  readonly append?: readonly string[];
  readonly memoryMb?: number;
  /** Kill QEMU after this long. Default 120 s. */
  readonly timeoutMs?: number;
  /** 'auto' (default): KVM when it works, else TCG. */
  readonly accel?: Accel | 'auto';
  /** With KVM: a guest that prints nothing for this long is retried under TCG. Default 20 s. */
  readonly silentMs?: number;
  /**
   * gdbstub on a Unix socket at this path (helpers/kernel/gdb.ts gdbStub; a contained gdb has no network), CPU
   * stopped until gdb continues (-S). No comma in the path (QEMU's option syntax).
   */
  readonly gdbSocket?: string;
  /** More QEMU arguments, after the others (e.g. `-trace` and `-D` for a record of the gdbstub's packets). */
  readonly extraArgs?: readonly string[];
  /** Called with each console line as it arrives. */
  readonly onLine?: (line: string) => void;
}

export interface BootResult {
  readonly accel: Accel;
  /** Why the accelerator was chosen or changed (for adapted()). */
  readonly accelNote: string;
  readonly lines: readonly string[];
  readonly output: string;
  /** QEMU ended by itself (guest reboot/poweroff/panic with -no-reboot), not by our timeout. */
  readonly exitedByItself: boolean;
  readonly exitCode: number;
  readonly seconds: number;
  readonly command: string;
}

/** Fixed part of every command line the helpers use. */
export const BASE_APPEND = ['console=ttyS0', 'panic=-1', 'nokaslr', 'oops=panic'];

/** The QEMU arguments for a boot (pure). */
export function qemuArgs(opts: BootOptions, accel: Accel): string[] {
  const args = [
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-accel', accel,
    '-m', `${opts.memoryMb ?? 256}M`,
    '-serial', 'stdio', '-monitor', 'none',
    '-kernel', opts.kernel, '-initrd', opts.initrd,
    '-append', [...BASE_APPEND, ...(opts.append ?? [])].join(' '),
  ];
  if (accel === 'tcg') args.splice(args.indexOf('-accel') + 1, 1, 'tcg,thread=single');
  if (accel === 'kvm') args.push('-cpu', 'host');
  if (opts.gdbSocket !== undefined) {
    if (opts.gdbSocket.includes(',')) throw new Error(`gdbSocket: a comma in ${opts.gdbSocket} would end QEMU's path=`);
    args.push('-chardev', `socket,id=kl-gdb,path=${opts.gdbSocket},server=on,wait=off`, '-gdb', 'chardev:kl-gdb', '-S');
  }
  if (opts.extraArgs) args.push(...opts.extraArgs);
  return args;
}

/** Whether to try KVM, and why (pure given the inputs). */
export function kvmVerdict(facts: { devKvm: boolean; cpuinfo: string; env?: string }): { tryKvm: boolean; note: string } {
  if (facts.env === 'tcg') return { tryKvm: false, note: 'LABS_QEMU_ACCEL=tcg: TCG (software emulation)' };
  if (facts.env === 'kvm' && facts.devKvm) return { tryKvm: true, note: 'LABS_QEMU_ACCEL=kvm: KVM tried first' };
  if (!facts.devKvm) return { tryKvm: false, note: '/dev/kvm absent: TCG (software emulation), boots take ~10 s instead of ~1 s' };
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(facts.cpuinfo)) {
    return { tryKvm: false, note: '/dev/kvm without vmx/svm in /proc/cpuinfo (PVM or paravirtual nested KVM, where full kernels hang): TCG' };
  }
  return { tryKvm: true, note: 'KVM' };
}

export function hostKvmVerdict(): { tryKvm: boolean; note: string } {
  let cpuinfo = '';
  try { cpuinfo = readFileSync('/proc/cpuinfo', 'utf8'); } catch { /* none */ }
  return kvmVerdict({ devKvm: existsSync('/dev/kvm'), cpuinfo, env: process.env.LABS_QEMU_ACCEL });
}

/** Debian's installed kernel: /boot/vmlinuz-<release> (newest *-amd64), or undefined. */
export function debianKernel(): { path: string; release: string } | undefined {
  let names: string[] = [];
  try { names = readdirSync('/boot'); } catch { return undefined; }
  const rel = names.filter((n) => /^vmlinuz-.*-amd64$/.test(n)).map((n) => n.slice('vmlinuz-'.length))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).pop();
  return rel ? { path: join('/boot', `vmlinuz-${rel}`), release: rel } : undefined;
}

export interface Qemu {
  readonly accel: Accel;
  readonly process: Background;
  readonly command: string;
  lines(): string[];
  /** Resolve at the first console line matching. */
  waitFor(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Wait for QEMU to end (by itself or by our timeout). */
  finished(): Promise<BootResult>;
  stop(): Promise<RunResult>;
}

function splitLines(text: string): string[] {
  return text.replace(/\r/g, '').split('\n');
}

/** Start QEMU in the background with the given accelerator (stopped with the test). */
export function startQemu(opts: BootOptions, accel: Accel, accelNote: string = accel): Qemu {
  const args = qemuArgs(opts, accel);
  const started = Date.now();
  const proc = startBackground('qemu-system-x86_64', args, { timeoutMs: opts.timeoutMs ?? 120_000, limits: { memoryMiB: Math.max(4096, (opts.memoryMb ?? 256) + 2048) } });
  let delivered = 0;
  const deliver = () => {
    if (!opts.onLine) return;
    const lines = splitLines(proc.output());
    const complete = lines.length - 1;
    for (; delivered < complete; delivered++) opts.onLine(lines[delivered]!);
  };
  const poll = setInterval(deliver, 100);
  const finished = proc.exited.then((r): BootResult => {
    clearInterval(poll);
    deliver();
    const output = proc.output().replace(/\r/g, '');
    return {
      accel, accelNote, lines: splitLines(output), output,
      exitedByItself: !r.timedOut && !r.signal, exitCode: r.exitCode,
      seconds: (Date.now() - started) / 1000, command: proc.command,
    };
  });
  return {
    accel, process: proc, command: proc.command,
    lines: () => splitLines(proc.output()),
    waitFor: (pattern, what, timeoutMs) => proc.waitFor(pattern, what, timeoutMs),
    finished: () => finished,
    stop: () => proc.stop(),
  };
}

/**
 * Boot and wait for QEMU to end. With accel 'auto', KVM is tried where it
 * can work and a silent boot falls back to TCG (the note says so).
 */
export async function boot(opts: BootOptions): Promise<BootResult> {
  const verdict = opts.accel && opts.accel !== 'auto'
    ? { tryKvm: opts.accel === 'kvm', note: `accel ${opts.accel} requested` }
    : hostKvmVerdict();
  if (verdict.tryKvm && opts.gdbSocket === undefined) {
    const silentMs = opts.silentMs ?? 20_000;
    const q = startQemu(opts, 'kvm', 'KVM');
    const spoke = await q.waitFor(/Linux version|KL_BOOT/, 'the kernel banner under KVM', silentMs).then(() => true, () => false);
    if (spoke) return q.finished();
    await q.stop();
    return { ...(await startQemu(opts, 'tcg').finished()), accelNote: `KVM printed no kernel banner in ${silentMs / 1000} s (a silent boot): killed it and fell back to TCG` };
  }
  return startQemu(opts, 'tcg', verdict.note).finished();
}

/** QEMU processes on the host with their command lines (to prove none is left). */
export function qemuProcesses(): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/^\S*qemu-system/.test(cmdline)) out.push({ pid: Number(d), cmdline });
    } catch { /* gone */ }
  }
  return out;
}
