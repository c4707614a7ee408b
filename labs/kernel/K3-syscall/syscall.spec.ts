/**
 * Lab K3 — 编译内核并添加系统调用 (build a kernel and add a system call).
 * helpers/kernel/kbuild.ts builds linux-source-6.1 (tinyconfig + console, initramfs,
 * ELF, printk, debug info) with the student's sys_sayhelloworld
 * (c/kernel/K3-syscall/sayhello.c) and table entry (c/kernel/K3-syscall/syscall_64.tbl), cached by
 * a hash of config + sources. The kernel boots in QEMU; the static
 * sayhello_test calls the new syscall with a good string, oversized and
 * negative lengths and a kernel pointer, and prints what each returned.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { buildInitramfs, initScript } from '../../../helpers/kernel/initramfs.js';
import { buildKernel, parseSyscallTable, systemMapAddress, type KernelBuild } from '../../../helpers/kernel/kbuild.js';
import { labSource, REFERENCE_SRC, sourceRoot } from '../../../helpers/harness/paths.js';
import { boot, type BootResult } from '../../../helpers/kernel/qemu.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';

const DEFAULT_NR = 451;
const EINVAL = 22;
const EFAULT = 14;
const HELLO_LINE = 'User Mode says hello to the Kernel Mode!';
/** The first build takes ~10 min on 2 busy cores; CI allows 90. */
const BUILD_TIMEOUT_MS = 60 * 60_000;
const BOOT_TIMEOUT_MS = 90_000;

/** `sayhello nr=451 ok=5/0 oversized=-1/22 …` → { ok: [5, 0], … }. */
function parseResult(output: string): Record<string, [number, number]> | undefined {
  const line = output.split('\n').find((l) => l.startsWith('sayhello nr='));
  if (!line) return undefined;
  return Object.fromEntries(line.split(' ').slice(1).map((kv) => {
    const [k, v = ''] = kv.split('=');
    const [ret, err] = v.split('/').map(Number);
    return [k!, [ret!, err ?? 0]];
  }));
}

/** Console lines without the printk timestamp. */
function kernelLines(result: BootResult): string[] {
  return result.lines.map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''));
}

describe('K3 — build a kernel and add a system call (编译内核并添加系统调用)', () => {
  requires(...labRequires(import.meta.url));

  let build: KernelBuild;
  let result: BootResult;
  let nr = DEFAULT_NR;

  beforeAll(async () => {
    build = await buildKernel({ srcRoot: sourceRoot(), log: (l) => console.log(l), timeoutMs: BUILD_TIMEOUT_MS });
    nr = build.syscalls.find((s) => s.name === 'sayhelloworld')?.nr ?? DEFAULT_NR;
    // The harness's test program, never the workspace's copy: the student's files are the two of lab.json.
    const test = await buildProgram({ src: `${REFERENCE_SRC}/kernel/K3-syscall/sayhello_test.c`, static: true });
    const initrd = await buildInitramfs({
      init: initScript({ commands: [`/lab/sayhello_test ${nr}`] }),
      programs: [{ name: 'sayhello_test', path: test.path }],
    });
    result = await boot({
      kernel: build.bzImage, initrd, timeoutMs: BOOT_TIMEOUT_MS,
      onLine: (l) => { if (/KL_|sayhello|User Mode|Oops|BUG:|Kernel panic/.test(l)) console.log(`[guest] ${l}`); },
    });
  }, BUILD_TIMEOUT_MS + 3 * BOOT_TIMEOUT_MS);

  it('builds linux-source-6.1 with the new table entry and its entry point, and boots it', async (ctx) => {
    recordMetric(ctx, { name: build.cached ? 'kernel build (cached)' : 'kernel build', value: build.seconds, unit: 's', group: 'K3 build' });
    recordMetric(ctx, { name: `boot to poweroff (${result.accel})`, value: result.seconds, unit: 's', group: 'K3 build' });
    if (result.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${result.accelNote}`);
    const entry = parseSyscallTable(readFileSync(labSource('kernel/K3-syscall/syscall_64.tbl'), 'utf8')).find((e) => e.name === 'sayhelloworld');
    expect(entry, 'c/kernel/K3-syscall/syscall_64.tbl has no entry named sayhelloworld').toBeDefined();
    expect(entry!.entry, 'entry point').toBe('sys_sayhelloworld');
    const map = readFileSync(build.systemMap, 'utf8');
    expect(systemMapAddress(map, '__x64_sys_sayhelloworld'), `${build.systemMap} lacks __x64_sys_sayhelloworld (define it with SYSCALL_DEFINE2)`).toBeDefined();
    expect(result.output.match(/Linux version (\S+)/)?.[1], 'the booted kernel is the one built').toBe(build.release);
  });

  it(`prints "${HELLO_LINE}" once when called with ("hello", 5)`, () => {
    const r = parseResult(result.output);
    expect(r, `sayhello_test printed no result line; console tail:\n${result.lines.slice(-15).join('\n')}`).toBeDefined();
    expect(r!.ok, `syscall(${nr}, "hello", 5) returned ${r!.ok?.join('/')} (ret/errno); 38 = ENOSYS: no table entry or a stub`).toEqual([5, 0]);
    const said = kernelLines(result).filter((l) => l.includes('User Mode says'));
    expect(said, `kernel lines with "User Mode says":\n${said.join('\n')}`).toEqual([HELLO_LINE]);
  });

  it('rejects an oversized, a negative or an exactly-buffer-sized (512: no room for the NUL) length with EINVAL, printing nothing', () => {
    const r = parseResult(result.output);
    expect({ oversized: r?.oversized, negative: r?.negative, edge: r?.edge }, `your workspace file kernel/K3-syscall/sayhello.c; result line: ${JSON.stringify(r)}`)
      .toEqual({ oversized: [-1, EINVAL], negative: [-1, EINVAL], edge: [-1, EINVAL] });
  });

  it('returns EFAULT for a pointer into the kernel instead of crashing, and the guest finishes', () => {
    const r = parseResult(result.output);
    expect(r?.badptr, `result line: ${JSON.stringify(r)}`).toEqual([-1, EFAULT]);
    const bad = kernelLines(result).filter((l) => /Oops|BUG:|general protection|Kernel panic|Call Trace/.test(l));
    expect(bad, 'the kernel reported a fault').toEqual([]);
    expect(result.output).toMatch(/^KL_DONE$/m);
    expect(result.exitedByItself, 'QEMU was killed at the time bound').toBe(true);
  });

  it('control: finds the same build in the cache on a re-run (no make)', async (ctx) => {
    const again = await buildKernel({ srcRoot: sourceRoot(), log: () => {} });
    recordMetric(ctx, { name: 'cache lookup', value: again.seconds, unit: 's', group: 'K3 build' });
    expect({ cached: again.cached, key: again.key }).toEqual({ cached: true, key: build.key });
  });
});
