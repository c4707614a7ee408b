/**
 * System Lab 2's experiment: boot Debian's kernel under QEMU, stopped at the
 * reset vector (-S) with its gdbstub on a Unix socket made for the run (gdb
 * reaches it through the harness's relay, which refuses `monitor`), and
 * run the student's gdb script (c/system/02-boot/boot_trail.gdb) against it:
 * gdb runs it, so gdb is the student's program (lab.json `contain`,
 * interpreters gdb: the script's `shell` and `python` run contained).
 * The harness gives the script the addresses of start_kernel, rest_init,
 * kernel_init, kthreadd, the per-CPU current_task and boot_command_line
 * (from /proc/kallsyms of a nokaslr guest, cached per vmlinuz), and adds one
 * boot parameter chosen at random (`kl_boot=<hex>`).
 *
 * The kernel's own account of each stop does not come from the student, nor
 * from anything inside gdb (a script can reach gdb's Python): QEMU traces its
 * gdbstub (`-trace gdbstub_io_command,gdbstub_io_reply -D <file>`), every
 * packet gdb sent and every reply — the stops, the registers (rip, gs_base),
 * the breakpoints inserted and the bytes of every memory read. `current`, its
 * pid and comm (offsets from the BTF of the very kernel it boots: the vmlinux
 * inside /boot/vmlinuz, `bpftool btf dump … format raw`) and the command line
 * are what QEMU answered to the script's own reads at that stop. A gdb Python
 * stop observer, registered before the script and tagged with a random nonce,
 * only marks where in gdb's output each stop fell (pc and breakpoint, no
 * memory read); each mark must match a stop in QEMU's record. After the script
 * the harness deletes the breakpoints and lets the guest boot; its /init
 * prints what /proc/1 and /proc/2 are. Never throws for a wrong script: the
 * evidence says what happened and the judge decides.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../helpers/harness/exec.js';
import { CACHE_DIR, labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { gdbBatch, gdbStub } from '../../../helpers/kernel/gdb.js';
import { buildInitramfs, initScript } from '../../../helpers/kernel/initramfs.js';
import { boot, debianKernel, hostKvmVerdict, startQemu, type BootResult } from '../../../helpers/kernel/qemu.js';
import { kallsymsValue, parseBoot, parseGdbstubTrace, taskOffsets, type BootTrail, type TaskOffsets } from './judge.js';

/** The four functions of the boot the script must stop in. */
export const STOPS = ['start_kernel', 'rest_init', 'kernel_init', 'kthreadd'] as const;
export type StopName = (typeof STOPS)[number];
/** Every symbol the harness hands to the script (as `$<name>`). */
export const SYMBOLS = [...STOPS, 'current_task', 'boot_command_line'] as const;
export type SymbolName = (typeof SYMBOLS)[number];

export const BOOT_TIMEOUT_MS = 150_000;
/** The random boot parameter of this run: only a script that read the kernel's memory at a real stop can print it. */
export const MAGIC = `kl_boot=${(0x10000000 + randomInt(0x6fffffff)).toString(16)}`;

export interface Target {
  readonly kernel: string;
  readonly release: string;
  readonly symbols: Readonly<Record<SymbolName, bigint>>;
  readonly offsets: TaskOffsets;
  /** Where the addresses and offsets came from (for the first line of the run). */
  readonly source: string;
}

export interface BootRun extends BootTrail {
  readonly target: Target;
  /** QEMU's gdbstub socket (gdbStub().qemu: in its command line). */
  readonly socket: string;
  readonly gdbOut: string;
  /** What gdb ran: the harness's prelude, the student's file, the harness's `after`. */
  readonly commandFile: string;
  readonly result: BootResult;
  readonly seconds: number;
}

/** The vmlinux inside a bzImage: the first compressed stream that unpacks to an ELF file (xz, zstd or gzip). */
async function extractVmlinux(vmlinuz: string, dir: string): Promise<string> {
  const image = readFileSync(vmlinuz);
  const kinds: { magic: Buffer; cmd: string }[] = [
    { magic: Buffer.from('fd377a585a00', 'hex'), cmd: 'xz -dc --single-stream' },
    { magic: Buffer.from('28b52ffd', 'hex'), cmd: 'zstd -dc' },
    { magic: Buffer.from('1f8b0800', 'hex'), cmd: 'gzip -dc' },
  ];
  const out = join(dir, 'vmlinux');
  for (const k of kinds) {
    const at = image.indexOf(k.magic);
    if (at < 0) continue;
    const packed = join(dir, 'packed');
    await writeFile(packed, image.subarray(at));
    await run('sh', ['-c', `${k.cmd} < '${packed}' > '${out}'`], { timeoutMs: 60_000, reject: false });
    if (existsSync(out) && readFileSync(out).subarray(0, 4).toString('latin1') === '\x7fELF') return out;
  }
  throw new Error(`found no xz/zstd/gzip stream in ${vmlinuz} that unpacks to an ELF vmlinux`);
}

/**
 * Debian's kernel with the addresses (from /proc/kallsyms of a nokaslr guest:
 * Debian's System.map is a stub) and the task_struct offsets (its BTF),
 * cached per vmlinuz in .cache/qemu/.
 */
export async function bootTarget(): Promise<Target> {
  const k = debianKernel();
  if (!k) throw new Error('no /boot/vmlinuz-*-amd64: apt-get install linux-image-amd64');
  const st = statSync(k.path);
  const cache = join(CACHE_DIR, 'qemu', `boot-trail-${k.release}-${st.size}-${Math.floor(st.mtimeMs)}.json`);
  if (!existsSync(cache)) {
    const initrd = await buildInitramfs({ init: initScript({ symbols: [...SYMBOLS] }) });
    const r = await boot({ kernel: k.path, initrd, accel: 'tcg', timeoutMs: BOOT_TIMEOUT_MS });
    const map = r.lines.filter((l) => l.startsWith('KL_SYM ')).map((l) => l.slice('KL_SYM '.length)).join('\n');
    const symbols: Record<string, string> = {};
    for (const s of SYMBOLS) {
      const a = kallsymsValue(map, s);
      if (a === undefined) throw new Error(`the guest's /proc/kallsyms has no ${s}:\n${r.lines.slice(-15).join('\n')}`);
      symbols[s] = `0x${a.toString(16)}`;
    }
    const dir = await makeTempDir('vmlinux');
    const vmlinux = await extractVmlinux(k.path, dir);
    const dump = join(dir, 'btf.txt');
    await run('sh', ['-c', `bpftool btf dump file '${vmlinux}' format raw > '${dump}'`], { timeoutMs: 60_000 });
    const offsets = taskOffsets(readFileSync(dump, 'utf8'));
    await mkdir(join(CACHE_DIR, 'qemu'), { recursive: true });
    await writeFile(cache, `${JSON.stringify({ symbols, offsets }, null, 1)}\n`);
  }
  const c = JSON.parse(readFileSync(cache, 'utf8')) as { symbols: Record<SymbolName, string>; offsets: TaskOffsets };
  const symbols = Object.fromEntries(SYMBOLS.map((s) => [s, BigInt(c.symbols[s])])) as Record<SymbolName, bigint>;
  return {
    kernel: k.path, release: k.release, symbols, offsets: c.offsets,
    source: `addresses from /proc/kallsyms of the guest booted with nokaslr, offsets from the BTF of ${k.path}, cached in ${cache}`,
  };
}

/**
 * The harness's stop observer (gdb Python, run before the student's script):
 * one `<tag> {json}` line per stop with the pc, the breakpoints that caused it
 * and `current` (its address, pid and comm) read with the offsets the spec
 * computed. The tag carries a random nonce, so no script can print one.
 */
export function stopObserver(tag: string): string {
  return [
    'python',
    'import gdb, json',
    `_kl = {"tag": "${tag}", "n": 0}`,
    'def _kl_stop(ev):',
    '    _kl["n"] += 1',
    '    rec = {"n": _kl["n"]}',
    '    try:',
    '        rec["pc"] = hex(int(gdb.parse_and_eval("$pc")) & 0xffffffffffffffff)',
    '        rec["bp"] = [{"n": b.number, "hw": b.type == gdb.BP_HARDWARE_BREAKPOINT} for b in getattr(ev, "breakpoints", [])]',
    '    except Exception as e:',
    '        rec["error"] = str(e)',
    '    print(_kl["tag"] + " " + json.dumps(rec), flush=True)',
    'gdb.events.stop.connect(_kl_stop)',
    'end',
  ].join('\n');
}

/** Boot once with the student's script in gdb and collect the evidence. */
export async function runBootTrail(t: Target): Promise<BootRun> {
  const started = Date.now();
  const tag = `KL_KERNEL_${randomBytes(6).toString('hex')}`;
  const initrd = await buildInitramfs({
    init: initScript({
      // The kernel's own console messages off first (busybox dmesg -n 1: emergencies only): a late one printed in the
      // middle of a line cut it (measured: "ppid=0[" on a slow boot, two guests at once).
      commands: ['dmesg -n 1 2>/dev/null; for p in 1 2; do echo "KL_PROC pid=$p comm=$(cat /proc/$p/comm) ppid=$(awk \'/^PPid:/{print $2}\' /proc/$p/status)"; done'],
    }),
  });
  // QEMU's stub on a Unix socket in a dir of the harness's alone, gdb on the relay's in a temp dir the contained gdb sees
  // (its network namespace is empty; the relay refuses `monitor`: gdb.ts); QEMU's record of the stub in a dir of the
  // harness's alone (makeTempDir hidden: out of the contained gdb's sight and reach)
  const stub = await gdbStub();
  const verdict = hostKvmVerdict();
  const trace = join(await makeTempDir('gdbstub-trace', { hidden: true }), 'gdbstub.log');
  const q = startQemu({
    kernel: t.kernel, initrd, gdbSocket: stub.qemu, append: [MAGIC], timeoutMs: BOOT_TIMEOUT_MS,
    extraArgs: ['-trace', 'enable=gdbstub_io_command', '-trace', 'enable=gdbstub_io_reply', '-D', trace],
  },
    verdict.tryKvm ? 'kvm' : 'tcg', verdict.note);
  // gdb runs the harness's stop observer, then the student's file (gdb is the student's program: lab.json "contain"
  // interpreters gdb), then deletes the breakpoints and lets the guest boot; uncontained (LABS_CONTAIN=0), as nobody in
  // a PID namespace of its own (isolate)
  const g = await gdbBatch({
    stub, vars: Object.fromEntries(SYMBOLS.map((s) => [s, t.symbols[s]])),
    prelude: stopObserver(tag), scriptFile: labSource('system/02-boot/boot_trail.gdb'),
    after: ['delete', 'continue'], timeoutMs: BOOT_TIMEOUT_MS, isolate: true,
  });
  const gdbOut = `${g.stdout}\n${g.stderr}`;
  const result = await q.finished();
  const log = existsSync(trace) ? readFileSync(trace, 'latin1') : '';
  // gdb always talks to the stub (target remote comes before the script): no packet traced is this QEMU's, not the script's, fault.
  if (!/^gdbstub_io_command Received: /m.test(log)) {
    throw new Error(`QEMU traced no gdbstub packet into ${trace} (-trace enable=gdbstub_io_command -D): this lab needs QEMU's "log" trace backend (\`qemu-system-x86_64 -trace help\` lists gdbstub_io_command)\ngdb output tail:\n${gdbOut.slice(-1500)}`);
  }
  const wire = parseGdbstubTrace(log);
  return {
    ...parseBoot(g.stdout, tag, result.lines, { stops: wire, symbols: t.symbols, offsets: t.offsets }),
    target: t, socket: stub.qemu, gdbOut, commandFile: g.commands, result,
    seconds: (Date.now() - started) / 1000,
  };
}
