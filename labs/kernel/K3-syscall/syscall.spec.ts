/**
 * Lab K3 — 编译内核并添加系统调用 (build a kernel and add a system call).
 * helpers/kernel/kbuild.ts builds linux-source-6.1 (tinyconfig + console, initramfs,
 * ELF, printk, debug info) with the student's sys_sayhelloworld
 * (c/kernel/K3-syscall/sayhello.c) and table entry (c/kernel/K3-syscall/syscall_64.tbl), cached by
 * a hash of config + sources. The kernel boots in QEMU; the static
 * sayhello_test calls the new syscall with a good string, oversized and
 * negative lengths and a kernel pointer, and prints what each returned.
 *
 * The lab's anatomy: experiment.ts builds, boots and calls, judge.ts turns the
 * build and the console into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { holds } from '../../../helpers/harness/verdict.js';
import { BOOT_TIMEOUT_MS, BUILD_TIMEOUT_MS, buildAgain, buildAndCall, type K3Run } from './experiment.js';
import * as judge from './judge.js';

describe('K3 — build a kernel and add a system call (编译内核并添加系统调用)', () => {
  requires(...labRequires(import.meta.url));
  let r: K3Run;

  beforeAll(async () => {
    r = await buildAndCall();
  }, BUILD_TIMEOUT_MS + 3 * BOOT_TIMEOUT_MS);

  it('builds linux-source-6.1 with the new table entry and its entry point, and boots it', async (ctx) => {
    recordMetric(ctx, { name: r.build.cached ? 'kernel build (cached)' : 'kernel build', value: r.build.seconds, unit: 's', group: 'K3 build' });
    recordMetric(ctx, { name: `boot to poweroff (${r.boot.accel})`, value: r.boot.seconds, unit: 's', group: 'K3 build' });
    if (r.boot.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${r.boot.accelNote}`);
    holds(judge.builtAndBooted(r));
  });

  it(`prints "${judge.HELLO_LINE}" once when called with ("hello", 5)`, () => {
    holds(judge.saysHello(r));
  });

  it('rejects an oversized, a negative or an exactly-buffer-sized (512: no room for the NUL) length with EINVAL, printing nothing', () => {
    holds(judge.rejectsLengths(r));
  });

  it('returns EFAULT for a pointer into the kernel instead of crashing, and the guest finishes', () => {
    holds(judge.efaultNoCrash(r));
  });

  it('control: finds the same build in the cache on a re-run (no make)', async (ctx) => {
    const again = await buildAgain();
    recordMetric(ctx, { name: 'cache lookup', value: again.seconds, unit: 's', group: 'K3 build' });
    expect({ cached: again.cached, key: again.key }).toEqual({ cached: true, key: r.build.key });
  });
});
