/**
 * Lab K2 — 用 GDB 调试内核 (debug the kernel with GDB).
 * QEMU starts the kernel stopped (-S) with its gdbstub on a port chosen free
 * at run time; gdb (batch mode) runs the student's commands
 * (c/kernel/syscall_break.gdb): a hardware breakpoint at do_syscall_64 that
 * stops only for getcpu (309). The guest's /init runs getcpu_trigger, which
 * makes that call with a magic third argument. The breakpoint proves the
 * mechanism (the xv6 grader's trick): the number is in %rsi and in the saved
 * regs->orig_ax, the magic in regs->dx.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/compile.js';
import { waitUntil } from '../../../helpers/exec.js';
import { freePort, gdbBatch, parseHits } from '../../../helpers/gdb.js';
import { buildInitramfs, initScript } from '../../../helpers/initramfs.js';
import { newestCachedBuild, systemMapAddress } from '../../../helpers/kbuild.js';
import { CACHE_DIR, labSource, REFERENCE_SRC } from '../../../helpers/paths.js';
import { boot, debianKernel, hostKvmVerdict, qemuProcesses, startQemu, type BootResult } from '../../../helpers/qemu.js';
import { recordMetric } from '../../../helpers/report.js';
import { adapted, requires } from '../../../helpers/requires.js';

const NR_GETCPU = 309;
const TRIGGER_MAGIC = '0x4b4c4b32';
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

function target(): Promise<Target> {
  const built = newestCachedBuild();
  if (built) {
    const addr = systemMapAddress(readFileSync(built.systemMap, 'utf8'), ENTRY);
    if (addr) return Promise.resolve({ kernel: built.bzImage, vmlinux: built.vmlinux, entry: addr, source: `${built.systemMap} (the kernel built by K3, with debug info)` });
  }
  return debianTarget();
}

describe('K2 — debug the kernel with GDB (用 GDB 调试内核)', () => {
  requires('qemu', 'gdb', 'busybox', 'cc');

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
      init: initScript({ commands: ['/lab/getcpu_trigger'] }),
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
      script: readFileSync(labSource('kernel/syscall_break.gdb'), 'utf8'),
      after: ['delete', 'continue'], timeoutMs: BOOT_TIMEOUT_MS,
    });
    gdbOut = `${g.stdout}\n${g.stderr}`;
    gdbFile = readFileSync(g.commandFile, 'utf8');
    result = await q.finished();
    seconds = (Date.now() - started) / 1000;
  }, BOOT_TIMEOUT_MS * 3);

  it(`stops at ${ENTRY} on a hardware breakpoint from a port chosen at run time`, async (ctx) => {
    if (t.vmlinux) console.log(`[K2] breakpoint address from ${t.source}`);
    else await adapted(ctx, `breakpoint address from ${t.source}`);
    if (result.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${result.accelNote}`);
    recordMetric(ctx, { name: 'boot + gdb session', value: seconds, unit: 's', group: 'K2 gdb' });
    expect(port, 'a free port, not a fixed one').toBeGreaterThan(0);
    const hits = parseHits(gdbOut);
    expect(hits.length, `gdb printed no KL_HIT line (the breakpoint never stopped).\ngdb output:\n${gdbOut.slice(-2500)}\ncommand file:\n${gdbFile}`).toBeGreaterThanOrEqual(1);
    expect(BigInt(hits[0]!.pc!), `stopped elsewhere than ${ENTRY}=0x${t.entry.toString(16)}`).toBe(t.entry);
  });

  it('has the getcpu number in %rsi and in the saved orig_ax, and the trigger’s magic in regs->dx', () => {
    const hit = parseHits(gdbOut)[0];
    expect(hit, `no KL_HIT line; gdb output:\n${gdbOut.slice(-1500)}`).toBeDefined();
    expect({ nr: Number(hit!.nr), orig_ax: Number(hit!.orig_ax), dx: hit!.dx }, `gdb: ${JSON.stringify(hit)}`)
      .toEqual({ nr: NR_GETCPU, orig_ax: NR_GETCPU, dx: TRIGGER_MAGIC });
  });

  it('lets the guest finish after the breakpoint: the call returned and QEMU ended by itself', () => {
    expect(result.output, `console tail:\n${result.lines.slice(-12).join('\n')}`).toMatch(new RegExp(`^getcpu_trigger nr=${NR_GETCPU} ret=0 `, 'm'));
    expect(result.output).toMatch(/^KL_DONE$/m);
    expect(result.exitedByItself, 'QEMU was killed at the time bound').toBe(true);
  });

  it('leaves no QEMU or gdb process behind', () => {
    expect(qemuProcesses().filter((p) => p.cmdline.includes(`tcp:127.0.0.1:${port}`))).toEqual([]);
  });
});
