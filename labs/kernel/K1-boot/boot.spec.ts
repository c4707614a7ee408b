/**
 * Lab K1 — 用 QEMU 启动内核 (boot a kernel in QEMU).
 * Debian's own kernel (/boot/vmlinuz-*-amd64) boots under QEMU with an
 * initramfs holding a static busybox, the lab's static program and the
 * student's /init (c/kernel/K1-boot/init.sh). The serial console is read line by
 * line; the guest ends QEMU itself (reboot -f with -no-reboot).
 *
 * The lab's anatomy: experiment.ts boots the guest, judge.ts turns its console
 * into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { holds } from '../../../helpers/harness/verdict.js';
import { BOOT_TIMEOUT_MS, bootStudentInit, runGuestPart, type K1Boot } from './experiment.js';
import * as judge from './judge.js';

describe('K1 — boot a kernel in QEMU (用 QEMU 启动内核)', () => {
  requires(...labRequires(import.meta.url));
  let k: K1Boot | undefined;

  beforeAll(async () => {
    k = await bootStudentInit();
  }, BOOT_TIMEOUT_MS * 2 + 60_000);

  /** The boot, once the first test has said why there is none. */
  const booted = () => k!;

  it("boots Debian's kernel and runs the student's /init as PID 1", async (ctx) => {
    expect(k, 'no /boot/vmlinuz-*-amd64: apt-get install linux-image-amd64').toBeDefined();
    if (k!.boot.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${k!.boot.accelNote}`);
    recordMetric(ctx, { name: `boot to poweroff (${k!.boot.accel})`, value: k!.boot.seconds, unit: 's', group: 'K1 boot' });
    const runInit = k!.boot.output.match(/\[\s*(\d+\.\d+)\] Run \/init as init process/);
    if (runInit) recordMetric(ctx, { name: 'guest time to /init', value: Number(runInit[1]), unit: 's', group: 'K1 boot' });
    holds(judge.initIsPid1(k!));
  });

  it('reports, from inside the guest, the release of the kernel QEMU booted', () => {
    holds(judge.reportsRelease(booted()));
  });

  it("runs the lab's static program in the guest, which talks to that kernel", () => {
    holds(judge.ranTheProgram(booted()));
  });

  it('ends by itself: the guest reboots, -no-reboot ends QEMU, before the time bound', () => {
    holds(judge.endsByItself(booted()));
  });

  it('control: leaves no QEMU process behind', () => {
    holds(judge.noQemuLeft(booted()));
  });

  // Beyond the seed: what this host lacks (kprobes, cgroup v2 controllers), the guest kernel has.
  it('control: runs a lab part inside the guest: a kprobe on do_exit sees exit(7), cgroup v2 takes cpu.max', async (ctx) => {
    const caps = await capabilities();
    if (!caps.kprobes.ok) await adapted(ctx, `host lacks kprobes (${caps.kprobes.detail}): this part runs in a QEMU guest of Debian's kernel`);
    const g = await runGuestPart();
    recordMetric(ctx, { name: 'guest run (boot + script)', value: g.boot.seconds, unit: 's', group: 'K1 boot' });
    holds(judge.guestPart(g));
  });
});
