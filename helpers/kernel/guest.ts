/**
 * Running a lab's part inside a QEMU guest of Debian's kernel, for hosts
 * that lack what the lab needs (kprobes, cgroup v2 controllers): the guest
 * kernel has them. The lab gives a shell script (busybox sh) and optional
 * static programs; the guest mounts proc/sys/devtmpfs (plus tracefs and
 * cgroup2 on request), runs the script, and the helper returns what the
 * script printed and its exit status. Use it only where the host lacks the
 * capability, and say so with adapted().
 */
import { LabError } from '../harness/errors.js';
import { buildInitramfs, initScript } from './initramfs.js';
import { boot, debianKernel, type BootResult } from './qemu.js';

export interface GuestRunOptions {
  /** busybox sh script run in the guest as root (cwd /). */
  readonly script: string;
  /** Static programs, available as /lab/<name>. */
  readonly programs?: readonly { readonly name: string; readonly path: string }[];
  /** Other files of the initramfs (relative paths; parent directories are made): data, dynamic programs with their libraries (dynamicProgramFiles). */
  readonly files?: readonly { readonly path: string; readonly data: Buffer | string; readonly mode?: number }[];
  /** Mount tracefs at /sys/kernel/tracing. */
  readonly tracefs?: boolean;
  /** Mount cgroup2 at /sys/fs/cgroup with every controller enabled for children. */
  readonly cgroup2?: boolean;
  readonly memoryMb?: number;
  /** Default 120 s. */
  readonly timeoutMs?: number;
  /** A kernel other than Debian's /boot/vmlinuz-*-amd64. */
  readonly kernel?: string;
  /** More kernel command-line parameters (after loglevel=4), e.g. init_on_alloc=0. */
  readonly append?: readonly string[];
}

export interface GuestRunResult {
  /** What the script wrote to stdout and stderr (console lines between the markers). */
  readonly output: string;
  /** The script's exit status, or undefined when it never finished. */
  readonly exitCode?: number;
  readonly boot: BootResult;
}

const BEGIN = 'KL_GUEST_BEGIN';
const EXIT = 'KL_GUEST_EXIT=';

/** The /init lines that run the script between markers (pure). */
export function guestCommands(opts: Pick<GuestRunOptions, 'tracefs' | 'cgroup2'>): string[] {
  const cmds: string[] = [];
  if (opts.tracefs) cmds.push('mount -t tracefs tracefs /sys/kernel/tracing');
  if (opts.cgroup2) {
    cmds.push('mount -t cgroup2 cgroup2 /sys/fs/cgroup',
      'for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done');
  }
  cmds.push(`echo ${BEGIN}`, 'sh /lab.sh 2>&1', `echo "${EXIT}$?"`);
  return cmds;
}

/** The script's output and status from a console transcript (pure). */
export function parseGuestOutput(console_: string): { output: string; exitCode?: number } {
  const lines = console_.replace(/\r/g, '').split('\n');
  const from = lines.indexOf(BEGIN);
  if (from < 0) return { output: '' };
  const end = lines.findIndex((l, i) => i > from && l.startsWith(EXIT));
  const body = lines.slice(from + 1, end < 0 ? undefined : end)
    .filter((l) => !/^\[\s*\d+\.\d+\] /.test(l)); // printk lines interleaved on the console
  return { output: body.join('\n'), exitCode: end < 0 ? undefined : Number(lines[end]!.slice(EXIT.length)) };
}

/** Boot Debian's kernel, run the script inside, return its output. */
export async function runInGuest(opts: GuestRunOptions): Promise<GuestRunResult> {
  const kernel = opts.kernel ?? debianKernel()?.path;
  if (!kernel) throw new LabError('no /boot/vmlinuz-*-amd64 — fix: apt-get install linux-image-amd64', { code: 'E_SOURCE' });
  const initrd = await buildInitramfs({
    init: initScript({ commands: guestCommands(opts) }),
    programs: opts.programs,
    files: [{ path: 'lab.sh', data: opts.script, mode: 0o755 }, ...(opts.files ?? [])],
  });
  const result = await boot({ kernel, initrd, memoryMb: opts.memoryMb ?? 512, timeoutMs: opts.timeoutMs ?? 120_000, append: ['loglevel=4', ...(opts.append ?? [])] });
  return { ...parseGuestOutput(result.output), boot: result };
}
