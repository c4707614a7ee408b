/**
 * Lab K1's experiment: Debian's own kernel (/boot/vmlinuz-*-amd64) boots under
 * QEMU with an initramfs holding a static busybox, the lab's static program
 * (getcpu_trigger) and the student's /init (c/kernel/K1-boot/init.sh); the
 * serial console is read line by line and the guest ends QEMU itself (reboot
 * -f with -no-reboot). A second boot runs a lab part inside the guest: a
 * kprobe on do_exit and a cgroup v2 cpu.max, what this host's kernel lacks. It
 * returns the consoles and the QEMU processes still alive; no verdicts here:
 * judge.ts and the spec decide.
 */
import { readFileSync } from 'node:fs';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { runInGuest, type GuestRunResult } from '../../../helpers/kernel/guest.js';
import { buildInitramfs } from '../../../helpers/kernel/initramfs.js';
import { boot, debianKernel, qemuProcesses, type BootResult } from '../../../helpers/kernel/qemu.js';

/** Wall-clock bound of one boot (TCG takes ~10–15 s here, KVM ~1–2 s). */
export const BOOT_TIMEOUT_MS = 90_000;

/** The boot of the student's /init: the kernel's release, the console, and the QEMU processes of this initrd left afterwards. */
export interface K1Boot { readonly release: string; readonly boot: BootResult; readonly qemuLeft: readonly string[] }

/** Undefined when Debian's kernel is not installed (the first test says so). */
export async function bootStudentInit(): Promise<K1Boot | undefined> {
  const kernel = debianKernel();
  if (!kernel) return undefined;
  const trigger = await buildProgram({ src: `${REFERENCE_SRC}/kernel/getcpu_trigger.c`, static: true });
  const initrd = await buildInitramfs({
    init: readFileSync(labSource('kernel/K1-boot/init.sh'), 'utf8'),
    programs: [{ name: 'getcpu_trigger', path: trigger.path }],
  });
  const result = await boot({
    kernel: kernel.path, initrd, timeoutMs: BOOT_TIMEOUT_MS,
    onLine: (l) => { if (/KL_|Kernel panic|Run \/init/.test(l)) console.log(`[guest] ${l}`); },
  });
  return { release: kernel.release, boot: result, qemuLeft: qemuProcesses().filter((p) => p.cmdline.includes(initrd)).map((p) => `${p.pid} ${p.cmdline}`) };
}

/** Beyond the seed: a kprobe on do_exit sees exit(7) (the wait status 7 << 8 = 1792), cgroup v2 takes cpu.max. */
const GUEST_PART = [
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

export const runGuestPart = (): Promise<GuestRunResult> => runInGuest({ script: GUEST_PART, tracefs: true, cgroup2: true, timeoutMs: BOOT_TIMEOUT_MS });
