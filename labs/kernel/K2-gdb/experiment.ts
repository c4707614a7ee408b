/**
 * Lab K2's experiment: QEMU starts Debian's kernel stopped (-S) with its
 * gdbstub on a Unix socket made for the run; gdb (batch mode) runs the
 * student's commands (c/kernel/K2-gdb/syscall_break.gdb) against it — gdb is
 * the student's program there (lab.json `contain`, interpreters gdb) — a
 * hardware breakpoint at do_syscall_64 meant to stop only for getcpu (309) —
 * then deletes the breakpoints and lets the guest go on. The guest's /init runs
 * getcpu_trigger, which makes that call with a magic third argument chosen at
 * random per run. It returns gdb's output and the guest's console; no
 * verdicts here: judge.ts and the spec decide.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { CACHE_DIR, labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { gdbBatch, gdbStub } from '../../../helpers/kernel/gdb.js';
import { buildInitramfs, initScript } from '../../../helpers/kernel/initramfs.js';
import { systemMapAddress } from '../../../helpers/kernel/kbuild.js';
import { boot, debianKernel, hostKvmVerdict, startQemu, type BootResult } from '../../../helpers/kernel/qemu.js';

export const NR_GETCPU = 309;
/** The trigger's third argument, chosen at random per run: only a real stop in that call can read it from regs->dx. */
export const TRIGGER_MAGIC = BigInt(0x10000000 + randomInt(0x6fffffff));
export const ENTRY = 'do_syscall_64';
const BOOT_TIMEOUT_MS = 150_000;

/** The kernel gdb breaks into, and where do_syscall_64 is in it (and where that address came from). */
export interface Target { readonly kernel: string; readonly vmlinux?: string; readonly entry: bigint; readonly source: string }

/**
 * do_syscall_64's address in Debian's kernel (/boot/vmlinuz-*-amd64: every student has it, whether or not K3's
 * kernel was built; the README shows the same by hand with K3's vmlinux): its System.map, or /proc/kallsyms of a
 * nokaslr guest where the System.map is a stub, cached per vmlinuz.
 */
async function debianTarget(): Promise<Target> {
  const k = debianKernel();
  if (!k) throw new Error('no /boot/vmlinuz-*-amd64: apt-get install linux-image-amd64');
  const map = readFileSync(`/boot/System.map-${k.release}`, 'utf8');
  const fromMap = systemMapAddress(map, ENTRY);
  if (fromMap) return { kernel: k.path, entry: fromMap, source: `/boot/System.map-${k.release}` };
  const st = statSync(k.path);
  const cache = join(CACHE_DIR, 'qemu', `kallsyms-${k.release}-${st.size}-${Math.floor(st.mtimeMs)}.txt`);
  if (!existsSync(cache)) {
    const initrd = await buildInitramfs({ init: initScript({ symbols: [ENTRY] }) });
    const r = await boot({ kernel: k.path, initrd, accel: 'tcg', timeoutMs: BOOT_TIMEOUT_MS });
    const lines = r.lines.filter((l) => l.startsWith('KL_SYM '));
    if (!lines.length) throw new Error(`the guest printed no KL_SYM line for ${ENTRY}:\n${r.lines.slice(-15).join('\n')}`);
    await mkdir(join(CACHE_DIR, 'qemu'), { recursive: true });
    await writeFile(cache, `${lines.map((l) => l.slice('KL_SYM '.length)).join('\n')}\n`);
  }
  const addr = systemMapAddress(readFileSync(cache, 'utf8'), ENTRY);
  if (!addr) throw new Error(`${ENTRY} not in ${cache}`);
  return { kernel: k.path, entry: addr, source: `/proc/kallsyms of the guest (nokaslr; System.map-${k.release} is a ${map.length}-byte stub), cached in ${cache}` };
}

/** The session: where gdb broke in, what it printed, the command file it ran, the guest's console. */
export interface GdbSession {
  readonly target: Target;
  /** QEMU's gdbstub socket (gdbStub().qemu: in its command line). */
  readonly socket: string;
  readonly gdbOutput: string;
  readonly gdbCommands: string;
  readonly boot: BootResult;
  readonly seconds: number;
}

export async function debugGetcpu(): Promise<GdbSession> {
  const started = Date.now();
  const target = await debianTarget();
  const trigger = await buildProgram({ src: `${REFERENCE_SRC}/kernel/getcpu_trigger.c`, static: true });
  const initrd = await buildInitramfs({
    init: initScript({ commands: [`/lab/getcpu_trigger 0x${TRIGGER_MAGIC.toString(16)}`] }),
    programs: [{ name: 'getcpu_trigger', path: trigger.path }],
  });
  // QEMU's stub on a Unix socket in a dir of the harness's alone, gdb on the relay's in a temp dir the contained gdb sees
  // (its network namespace is empty; the relay refuses `monitor`, QEMU's human monitor: gdb.ts)
  const stub = await gdbStub();
  const verdict = hostKvmVerdict();
  const q = startQemu({ kernel: target.kernel, initrd, gdbSocket: stub.qemu, timeoutMs: BOOT_TIMEOUT_MS }, verdict.tryKvm ? 'kvm' : 'tcg', verdict.note);
  // the student's file is gdb's code (lab.json "contain": interpreters gdb): gdb runs it contained, between the
  // harness's variables and its `delete`, `continue`
  const g = await gdbBatch({
    stub, file: target.vmlinux, vars: { entry: target.entry, nr: NR_GETCPU },
    scriptFile: labSource('kernel/K2-gdb/syscall_break.gdb'),
    after: ['delete', 'continue'], timeoutMs: BOOT_TIMEOUT_MS,
  });
  const gdbCommands = g.commands;
  const bootResult = await q.finished();
  return { target, socket: stub.qemu, gdbOutput: `${g.stdout}\n${g.stderr}`, gdbCommands, boot: bootResult, seconds: (Date.now() - started) / 1000 };
}
