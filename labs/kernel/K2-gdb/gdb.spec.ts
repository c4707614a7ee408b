/**
 * Lab K2 — 用 GDB 调试内核 (debug the kernel with GDB).
 * QEMU starts the kernel stopped (-S) with its gdbstub on a port chosen free
 * at run time; gdb (batch mode) runs the student's commands
 * (c/kernel/K2-gdb/syscall_break.gdb): a hardware breakpoint at do_syscall_64 that
 * stops only for getcpu (309). The guest's /init runs getcpu_trigger, which
 * makes that call with a magic third argument. The breakpoint proves the
 * mechanism (the xv6 grader's trick): the number is in %rsi and in the saved
 * regs->orig_ax, the magic in regs->dx.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { waitUntil } from '../../../helpers/harness/exec.js';
import { freePort, gdbBatch, parseHits } from '../../../helpers/kernel/gdb.js';
import { buildInitramfs, initScript } from '../../../helpers/kernel/initramfs.js';
import { systemMapAddress } from '../../../helpers/kernel/kbuild.js';
import { CACHE_DIR, labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { boot, debianKernel, hostKvmVerdict, qemuProcesses, startQemu, type BootResult } from '../../../helpers/kernel/qemu.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';

const NR_GETCPU = 309;
/** The trigger's third argument, chosen at random per run: only a real stop in that call can read it from regs->dx. */
const TRIGGER_MAGIC = BigInt(0x10000000 + randomInt(0x6fffffff));
const ENTRY = 'do_syscall_64';
const BOOT_TIMEOUT_MS = 150_000;

interface Target {
  kernel: string;
  vmlinux?: string;
  entry: bigint;
  source: string;
}

/** do_syscall_64's address in Debian's kernel: /proc/kallsyms of a nokaslr guest, cached per vmlinuz. */
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

/**
 * K2 always breaks into Debian's kernel (/boot/vmlinuz-*-amd64): every student
 * has it, whether or not K3's kernel was built. (The README shows how to do the
 * same by hand with K3's vmlinux and its debug info.)
 */
function target(): Promise<Target> {
  return debianTarget();
}

/** A number gdb printed, in hex (0x…) or decimal; undefined when absent or not a number. */
function num(v: string | undefined): bigint | undefined {
  try { return v === undefined ? undefined : BigInt(v); } catch { return undefined; }
}

describe('K2 — debug the kernel with GDB (用 GDB 调试内核)', () => {
  requires(...labRequires(import.meta.url));

  let t: Target;
  let gdbOut = '';
  let gdbFile = '';
  let result: BootResult;
  let port = 0;
  let seconds = 0;

  beforeAll(async () => {
    const started = Date.now();
    t = await target();
    const trigger = await buildProgram({ src: `${REFERENCE_SRC}/kernel/getcpu_trigger.c`, static: true });
    const initrd = await buildInitramfs({
      init: initScript({ commands: [`/lab/getcpu_trigger 0x${TRIGGER_MAGIC.toString(16)}`] }),
      programs: [{ name: 'getcpu_trigger', path: trigger.path }],
    });
    port = await freePort();
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const verdict = hostKvmVerdict();
    const q = startQemu({ kernel: t.kernel, initrd, gdbPort: port, timeoutMs: BOOT_TIMEOUT_MS }, verdict.tryKvm ? 'kvm' : 'tcg', verdict.note);
    await waitUntil(`QEMU's gdbstub listening on 127.0.0.1:${port}`, () => readFileSync('/proc/net/tcp', 'utf8'),
      (tcp) => new RegExp(`^\\s*\\d+: 0100007F:${hex} 00000000:0000 0A`, 'm').test(tcp), { timeoutMs: 15_000 });
    const g = await gdbBatch({
      port, file: t.vmlinux, vars: { entry: t.entry, nr: NR_GETCPU },
      script: readFileSync(labSource('kernel/K2-gdb/syscall_break.gdb'), 'utf8'),
      after: ['delete', 'continue'], timeoutMs: BOOT_TIMEOUT_MS,
    });
    gdbOut = `${g.stdout}\n${g.stderr}`;
    gdbFile = readFileSync(g.commandFile, 'utf8');
    result = await q.finished();
    seconds = (Date.now() - started) / 1000;
  }, BOOT_TIMEOUT_MS * 3);

  it(`stops at ${ENTRY} on a hardware breakpoint from a port chosen at run time`, async (ctx) => {
    console.log(`[K2] kernel: ${t.kernel} (Debian's; K2 never uses K3's build); breakpoint address from ${t.source}`);
    if (!t.source.startsWith('/boot/System.map')) await adapted(ctx, `Debian's System.map is a stub: breakpoint address from ${t.source}`);
    if (result.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${result.accelNote}`);
    recordMetric(ctx, { name: 'boot + gdb session', value: seconds, unit: 's', group: 'K2 gdb' });
    expect(port, 'a free port, not a fixed one').toBeGreaterThan(0);
    const hits = parseHits(gdbOut);
    expect(hits.length, `your workspace file kernel/K2-gdb/syscall_break.gdb: gdb printed no KL_HIT line (the breakpoint never stopped).\ngdb output:\n${gdbOut.slice(-2500)}\ncommand file:\n${gdbFile}`).toBeGreaterThanOrEqual(1);
    expect(num(hits[0]!.pc), `your workspace file kernel/K2-gdb/syscall_break.gdb stopped elsewhere than ${ENTRY}=0x${t.entry.toString(16)}: ${JSON.stringify(hits[0])}`).toBe(t.entry);
  });

  it('has the getcpu number in %rsi and in the saved orig_ax, and the trigger’s magic (chosen at random for this run) in regs->dx', () => {
    const hit = parseHits(gdbOut)[0];
    expect(hit, `no KL_HIT line; gdb output:\n${gdbOut.slice(-1500)}`).toBeDefined();
    expect({ nr: num(hit!.nr), orig_ax: num(hit!.orig_ax), dx: num(hit!.dx) },
      `your workspace file kernel/K2-gdb/syscall_break.gdb printed: ${JSON.stringify(hit)}; the trigger passed 0x${TRIGGER_MAGIC.toString(16)} this run`)
      .toEqual({ nr: BigInt(NR_GETCPU), orig_ax: BigInt(NR_GETCPU), dx: TRIGGER_MAGIC });
  });

  it('control: lets the guest finish after the breakpoint: the call returned and QEMU ended by itself', () => {
    expect(result.output, `console tail:\n${result.lines.slice(-12).join('\n')}`).toMatch(new RegExp(`^getcpu_trigger nr=${NR_GETCPU} ret=0 `, 'm'));
    expect(result.output).toMatch(/^KL_DONE$/m);
    expect(result.exitedByItself, 'QEMU was killed at the time bound').toBe(true);
  });

  it('control: leaves no QEMU or gdb process behind', () => {
    expect(qemuProcesses().filter((p) => p.cmdline.includes(`tcp:127.0.0.1:${port}`))).toEqual([]);
  });
});
