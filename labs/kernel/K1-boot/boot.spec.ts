/**
 * Lab K1 — 用 QEMU 启动内核 (boot a kernel in QEMU).
 * Debian's own kernel (/boot/vmlinuz-*-amd64) boots under QEMU with an
 * initramfs holding a static busybox, the lab's static program and the
 * student's /init (c/kernel/K1-boot/init.sh). The serial console is read line by
 * line; the guest ends QEMU itself (reboot -f with -no-reboot).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { runInGuest } from '../../../helpers/kernel/guest.js';
import { buildInitramfs } from '../../../helpers/kernel/initramfs.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { boot, debianKernel, qemuProcesses, type BootResult } from '../../../helpers/kernel/qemu.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';

/** Wall-clock bound of one boot (TCG takes ~10–15 s here, KVM ~1–2 s). */
const BOOT_TIMEOUT_MS = 90_000;

describe('K1 — boot a kernel in QEMU (用 QEMU 启动内核)', () => {
  requires(...labRequires(import.meta.url));

  let result: BootResult;
  let release: string;

  beforeAll(async () => {
    const kernel = debianKernel();
    if (!kernel) return; // the first test says why
    release = kernel.release;
    const trigger = await buildProgram({ src: `${REFERENCE_SRC}/kernel/getcpu_trigger.c`, static: true });
    const initrd = await buildInitramfs({
      init: readFileSync(labSource('kernel/K1-boot/init.sh'), 'utf8'),
      programs: [{ name: 'getcpu_trigger', path: trigger.path }],
    });
    result = await boot({
      kernel: kernel.path, initrd, timeoutMs: BOOT_TIMEOUT_MS,
      onLine: (l) => { if (/KL_|Kernel panic|Run \/init/.test(l)) console.log(`[guest] ${l}`); },
    });
  }, BOOT_TIMEOUT_MS * 2 + 60_000);

  const console_ = () => result.output;

  it("boots Debian's kernel and runs the student's /init as PID 1", async (ctx) => {
    expect(debianKernel(), 'no /boot/vmlinuz-*-amd64: apt-get install linux-image-amd64').toBeDefined();
    if (result.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${result.accelNote}`);
    recordMetric(ctx, { name: `boot to poweroff (${result.accel})`, value: result.seconds, unit: 's', group: 'K1 boot' });
    const runInit = console_().match(/\[\s*(\d+\.\d+)\] Run \/init as init process/);
    if (runInit) recordMetric(ctx, { name: 'guest time to /init', value: Number(runInit[1]), unit: 's', group: 'K1 boot' });
    expect(console_(), 'the kernel never started /init (see the console)').toMatch(/Run \/init as init process/);
    expect(console_().match(/^KL_INIT pid=(\d+)$/m)?.[1], `/init must print "KL_INIT pid=$$" (and be PID 1); console tail:\n${result.lines.slice(-15).join('\n')}`).toBe('1');
  });

  it('reports, from inside the guest, the release of the kernel QEMU booted', () => {
    const banner = console_().match(/Linux version (\S+)/)?.[1];
    expect(banner, 'kernel banner').toBe(release);
    expect(console_().match(/^KL_RELEASE=(\S+)$/m)?.[1], `/init must print "KL_RELEASE=$(uname -r)"; console tail:\n${result.lines.slice(-15).join('\n')}`).toBe(release);
  });

  it("runs the lab's static program in the guest, which talks to that kernel", () => {
    const line = console_().match(/^getcpu_trigger nr=309 ret=(\S+) cpu=(\d+)/m);
    expect(line?.[1], `/init must run every program in /lab; console tail:\n${result.lines.slice(-15).join('\n')}`).toBe('0');
  });

  it('ends by itself: the guest reboots, -no-reboot ends QEMU, before the time bound', () => {
    expect(console_(), 'init must print KL_DONE after the programs').toMatch(/^KL_DONE$/m);
    expect(console_(), 'PID 1 must not exit (that panics the kernel): end with reboot -f').not.toMatch(/Attempted to kill init/);
    expect({ exitedByItself: result.exitedByItself, exitCode: result.exitCode },
      `QEMU ran until the ${BOOT_TIMEOUT_MS / 1000} s bound and was killed; console tail:\n${result.lines.slice(-10).join('\n')}`)
      .toEqual({ exitedByItself: true, exitCode: 0 });
    expect(console_()).toMatch(/reboot: Restarting system/);
  });

  it('control: leaves no QEMU process behind', () => {
    const initrd = result.command.match(/-initrd (\S+)/)?.[1] ?? '(none)';
    const alive = qemuProcesses().filter((p) => p.cmdline.includes(initrd));
    expect(alive, `a QEMU of this lab (initrd ${initrd}) is still running`).toEqual([]);
  });

  // Beyond the seed: what this host lacks (kprobes, cgroup v2 controllers), the guest kernel has.
  it('control: runs a lab part inside the guest: a kprobe on do_exit sees exit(7), cgroup v2 takes cpu.max', async (ctx) => {
    const caps = await capabilities();
    if (!caps.kprobes.ok) await adapted(ctx, `host lacks kprobes (${caps.kprobes.detail}): this part runs in a QEMU guest of Debian's kernel`);
    const script = [
      'cd /sys/kernel/tracing',
      "echo 'p:kl_exit do_exit code=%di:s64' > kprobe_events",
      'echo 1 > events/kprobes/kl_exit/enable',
      "sh -c 'exit 7'",
      'echo 0 > events/kprobes/kl_exit/enable',
      'grep -c "kl_exit: .* code=1792$" trace | sed "s/^/exit7_hits=/"',
      'mkdir /sys/fs/cgroup/kl-demo',
      'echo "50000 100000" > /sys/fs/cgroup/kl-demo/cpu.max',
      'echo "cpu.max=$(cat /sys/fs/cgroup/kl-demo/cpu.max)"',
      'echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"',
    ].join('\n');
    const g = await runInGuest({ script, tracefs: true, cgroup2: true, timeoutMs: BOOT_TIMEOUT_MS });
    recordMetric(ctx, { name: 'guest run (boot + script)', value: g.boot.seconds, unit: 's', group: 'K1 boot' });
    expect(g.exitCode, `guest script output:\n${g.output}\nconsole tail:\n${g.boot.lines.slice(-10).join('\n')}`).toBe(0);
    // do_exit(code) gets the wait status: exit(7) is 7 << 8.
    expect(Number(g.output.match(/^exit7_hits=(\d+)$/m)?.[1]), `guest output:\n${g.output}`).toBeGreaterThanOrEqual(1);
    expect(g.output, `guest output:\n${g.output}`).toMatch(/^cpu\.max=50000 100000$/m);
    expect(g.output).toMatch(/^controllers=.*\bcpu\b.*\bmemory\b/m);
  });
});
