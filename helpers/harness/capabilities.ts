/**
 * What this host can do, probed once per run and shared by `npm run doctor`
 * and every spec. Specs adapt or skip through this module only (see
 * requires.ts); each capability says what was found and the exact command
 * that fixes it when it is missing.
 */
import { existsSync, readFileSync, statfsSync, writeFileSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from './compile.js';
import { run } from './exec.js';
import { runDir } from './run-state.js';
import { v1ControllerDir } from './cgroup-mounts.js';

export { cgroupV1Controllers, parseCgroupMounts, v1ControllerDir, type CgroupMount } from './cgroup-mounts.js';

/** Tiny C programs that probe KVM and io_uring (harness programs, not lab sources). */
const PROBES_DIR = join(import.meta.dirname, 'probes');

export const CAPABILITY_IDS = [
  'root', 'kernel-config', 'cc', 'btf', 'tracefs', 'kprobes', 'cgroup', 'kvm', 'io_uring',
  'clang-bpf', 'libbpf', 'bpftool', 'bpftrace', 'bcc', 'fio', 'liburing', 'strace',
  'iproute2', 'ping', 'nftables', 'busybox', 'unshare', 'qemu', 'gdb',
  'modules', 'psi', 'perf', 'zero-page',
] as const;
export type CapabilityId = (typeof CAPABILITY_IDS)[number];

export interface Capability {
  readonly id: CapabilityId;
  readonly title: string;
  readonly ok: boolean;
  /** What was found (a version, a path, an errno). */
  readonly detail: string;
  /** The exact command (or step) that fixes a ✗. */
  readonly fix: string;
  /** A lab that needs this can adapt when it is missing (e.g. tracepoints instead of kprobes). */
  readonly adaptable: boolean;
}

export interface CgroupInfo {
  /** 2 when cgroup v2 has the cpu and memory controllers, 1 when v1 has them, 0 when neither. */
  readonly version: 0 | 1 | 2;
  /** Mount point of the tree that has cpu/memory (v2 root, or the v1 parent dir). */
  readonly root: string;
  readonly detail: string;
}

export type Capabilities = Readonly<Record<CapabilityId, Capability>> & { readonly cgroupInfo: CgroupInfo; readonly kernelRelease: string };

const SETUP = 'sudo npm run setup';
const apt = (pkgs: string) => `sudo apt install -y ${pkgs}   (or: ${SETUP})`;

/**
 * The compiler a Debian headers tree builds modules with: `CC = … gcc-12` in
 * its .kernelvariables (Debian pins the kernel's own compiler; other
 * distributions' headers use the default `gcc`, and so does a tree without the file).
 */
export function headersCompiler(kernelVariables: string): string | undefined {
  return kernelVariables.match(/^CC\s*=.*?(gcc-\d+)\s*$/m)?.[1];
}

/** Why a headers tree cannot build here (its pinned compiler is not on PATH), or undefined when it can. */
export function headersUnbuildable(buildDir: string, path = process.env.PATH ?? ''): string | undefined {
  let vars = '';
  try { vars = readFileSync(join(buildDir, '.kernelvariables'), 'utf8'); } catch { return undefined; }
  const cc = headersCompiler(vars);
  if (!cc || path.split(':').some((d) => d && existsSync(join(d, cc)))) return undefined;
  return `the headers at ${buildDir} build modules with ${cc} (their .kernelvariables), which this machine lacks — fix: apt-get install ${cc}, where the distribution has it (Debian 12 ships gcc-12 only)`;
}

/** 'modules': this kernel loads modules, its headers are there, and the compiler they pin exists. */
function modulesCapability(kernelRelease: string): Capability {
  const build = `/lib/modules/${kernelRelease}/build`;
  const loads = existsSync('/proc/modules');
  const headers = existsSync(join(build, 'Makefile'));
  const unbuildable = loads && headers ? headersUnbuildable(build) : undefined;
  return cap('modules', 'loadable kernel modules with matching headers', loads && headers && !unbuildable,
    !loads ? 'kernel built without CONFIG_MODULES (no /proc/modules)' : !headers ? `no headers at ${build}` : unbuildable ?? build,
    !loads ? 'a kernel with CONFIG_MODULES=y; the module lab loads its module in a QEMU guest of Debian\'s kernel instead'
      : unbuildable ? unbuildable.replace(/^.* — fix: /, '') : apt(`linux-headers-${kernelRelease}`), true);
}

function cap(id: CapabilityId, title: string, ok: boolean, detail: string, fix: string, adaptable = false): Capability {
  return { id, title, ok, detail, fix: ok ? '' : fix, adaptable };
}

async function version(file: string, args: string[], pattern?: RegExp): Promise<string | undefined> {
  try {
    const r = await run(file, args, { timeoutMs: 15_000, reject: false });
    const text = `${r.stdout}\n${r.stderr}`;
    if (r.exitCode !== 0 && !pattern) return undefined;
    if (pattern) return text.match(pattern)?.[0];
    return text.trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

/** Which cgroup interface offers cpu and memory on this host. */
export function probeCgroups(base = '/sys/fs/cgroup'): CgroupInfo {
  const isCgroup2 = (p: string) => { try { return statfsSync(p).type === CGROUP2_SUPER_MAGIC; } catch { return false; } };
  const controllers = (p: string) => { try { return readFileSync(join(p, 'cgroup.controllers'), 'utf8').trim().split(/\s+/); } catch { return []; } };
  if (isCgroup2(base)) {
    const c = controllers(base);
    if (c.includes('cpu') && c.includes('memory')) return { version: 2, root: base, detail: `v2 at ${base} (controllers: ${c.join(' ')})` };
  }
  const v1cpu = v1ControllerDir('cpu', base, 'cpu.cfs_quota_us');
  const v1memDir = v1ControllerDir('memory', base, 'memory.limit_in_bytes');
  const v1mem = Boolean(v1memDir);
  const unified = join(base, 'unified');
  const note = isCgroup2(unified) ? `; cgroup2 at ${unified} has [${controllers(unified).join(' ') || 'no controllers'}]` : '';
  if (v1cpu && v1mem) return { version: 1, root: base, detail: `v1 (cpu at ${v1cpu}, memory at ${v1memDir})${note}` };
  return { version: 0, root: base, detail: `no cpu+memory controllers found under ${base}${note}` };
}

async function probeKvm(): Promise<Capability> {
  const title = '/dev/kvm usable (KVM_GET_API_VERSION == 12)';
  if (!existsSync('/dev/kvm')) return cap('kvm', title, false, '/dev/kvm is absent', 'enable virtualization (VT-x/AMD-V, or nested virtualization for a VM) and load kvm_intel/kvm_amd');
  try {
    const probe = await buildProgram({ src: join(PROBES_DIR, 'kvm_probe.c') });
    const r = await run(probe.path, [], { timeoutMs: 10_000, reject: false });
    if (r.exitCode === 0) return cap('kvm', title, true, r.stdout.trim(), '');
    return cap('kvm', title, false, r.stderr.trim() || `exit ${r.exitCode}`, 'check /dev/kvm permissions (run as root) and that KVM_CREATE_VM works');
  } catch (e) {
    return cap('kvm', title, false, `probe failed: ${(e as Error).message.split('\n')[0]}`, apt('gcc'));
  }
}

/**
 * The shared zero page: on a stock kernel a first read of anonymous memory maps it and allocates nothing (4.2 and
 * 7.5 tell a program that reads its pages from one that writes them by that). Some VM kernels turn it off
 * (pvm_no_zero_page=1): there a read takes a page of its own, like a write.
 */
async function probeZeroPage(): Promise<Capability> {
  const title = 'shared zero page (a first read of anonymous memory allocates nothing)';
  const noZero = /(^|\s)pvm_no_zero_page=1(\s|$)/.test(readFileSync('/proc/cmdline', 'utf8')) ? ' (the kernel command line has pvm_no_zero_page=1)' : '';
  try {
    const probe = await buildProgram({ src: join(PROBES_DIR, 'zero_page_probe.c') });
    const r = await run(probe.path, [], { timeoutMs: 10_000, reject: false });
    return cap('zero-page', title, r.exitCode === 0, `${(r.stdout.trim() || r.stderr.trim() || `exit ${r.exitCode}`)}${noZero}`,
      'a kernel that maps the zero page on read faults (every stock kernel; a VM kernel may turn it off at boot); the labs say so where it matters', true);
  } catch (e) {
    return cap('zero-page', title, false, `probe failed: ${(e as Error).message.split('\n')[0]}`, apt('gcc'), true);
  }
}

async function probeIoUring(): Promise<Capability> {
  const title = 'io_uring usable (io_uring_setup succeeds)';
  let disabled = '0';
  try { disabled = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim(); } catch { /* older kernels lack it */ }
  try {
    const probe = await buildProgram({ src: join(PROBES_DIR, 'io_uring_probe.c') });
    const r = await run(probe.path, [], { timeoutMs: 10_000, reject: false });
    if (r.exitCode === 0) return cap('io_uring', title, true, `${r.stdout.trim()} (io_uring_disabled=${disabled})`, '');
    const fix = disabled !== '0' ? 'sudo sysctl kernel.io_uring_disabled=0' : 'io_uring is blocked (seccomp in a container?) or the kernel lacks CONFIG_IO_URING';
    return cap('io_uring', title, false, `${r.stderr.trim()} (io_uring_disabled=${disabled})`, fix);
  } catch (e) {
    return cap('io_uring', title, false, `probe failed: ${(e as Error).message.split('\n')[0]}`, apt('gcc'));
  }
}

async function probeClangBpf(): Promise<Capability> {
  const title = 'clang can target bpf';
  try {
    const r = await run('clang', ['-target', 'bpf', '-O2', '-c', '-x', 'c', '-', '-o', '/dev/null'], { input: 'int f(void) { return 0; }\n', timeoutMs: 20_000, reject: false });
    const v = await version('clang', ['--version']);
    return cap('clang-bpf', title, r.exitCode === 0, r.exitCode === 0 ? `${v}` : r.stderr.trim(), apt('clang llvm'));
  } catch {
    return cap('clang-bpf', title, false, 'clang not found', apt('clang llvm'));
  }
}

async function probeBcc(kernelRelease: string): Promise<Capability> {
  const title = 'BCC (python3 bcc module + kernel headers)';
  const build = `/lib/modules/${kernelRelease}/build`;
  let imported = false;
  let detail = '';
  try {
    const r = await run('/usr/bin/python3', ['-c', 'import bcc; print(bcc.__version__ if hasattr(bcc, "__version__") else "bcc")'], { timeoutMs: 20_000, reject: false });
    imported = r.exitCode === 0;
    detail = imported ? `python3 bcc ${r.stdout.trim()}` : r.stderr.trim().split('\n').pop() ?? '';
  } catch (e) {
    detail = (e as Error).message.split('\n')[0] ?? '';
  }
  if (!imported) return cap('bcc', title, false, detail, apt('bpfcc-tools python3-bpfcc'));
  const headers = existsSync(join(build, 'include')) || existsSync(join(build, 'Makefile'));
  return cap('bcc', title, headers, headers ? `${detail}; headers at ${build}` : `${detail}; no kernel headers at ${build}`,
    `${SETUP}   (links the distribution's headers under /lib/modules/${kernelRelease}/{build,source} when linux-headers-${kernelRelease} does not exist)`);
}

async function probeFio(): Promise<Capability> {
  const title = 'fio with the io_uring and libaio engines';
  const v = await version('fio', ['--version']);
  if (!v) return cap('fio', title, false, 'fio not found', apt('fio'));
  const engines = await run('fio', ['--enghelp'], { timeoutMs: 10_000, reject: false }).then((r) => r.stdout).catch(() => '');
  const has = (e: string) => new RegExp(`^\\s*${e}\\s*$`, 'm').test(engines);
  const ok = has('io_uring') && has('libaio');
  return cap('fio', title, ok, `${v}; engines: ${['io_uring', 'libaio'].filter(has).join(', ') || 'neither'}`, apt('fio'));
}

function probeKernelConfig(kernelRelease: string): Capability {
  const title = 'kernel release and config readable';
  const paths = ['/proc/config.gz', `/boot/config-${kernelRelease}`];
  const found = paths.find((p) => existsSync(p));
  return cap('kernel-config', title, Boolean(found), found ? `${kernelRelease}, config at ${found}` : `${kernelRelease}, no config at ${paths.join(' or ')}`,
    'sudo modprobe configs   (or install the kernel package that ships /boot/config-$(uname -r))');
}

async function probeBinary(id: CapabilityId, title: string, file: string, args: string[], fix: string, pattern?: RegExp): Promise<Capability> {
  const v = await version(file, args, pattern);
  return cap(id, title, Boolean(v), v ?? `${file} not found`, fix);
}

/** Probe every capability (a few seconds: it compiles two tiny C probes and imports bcc). */
export async function probeAll(): Promise<Capabilities> {
  const kernelRelease = release();
  const cgroupInfo = probeCgroups();
  const tracefs = existsSync('/sys/kernel/tracing/events/syscalls');
  const list = await Promise.all([
    cap('root', 'running as root', process.getuid?.() === 0, `uid ${process.getuid?.()}`, 'run it with sudo: sudo npm test'),
    probeKernelConfig(kernelRelease),
    probeBinary('cc', 'C compiler (gcc)', 'gcc', ['--version'], apt('gcc make')),
    cap('btf', 'kernel BTF (/sys/kernel/btf/vmlinux)', existsSync('/sys/kernel/btf/vmlinux'), existsSync('/sys/kernel/btf/vmlinux') ? '/sys/kernel/btf/vmlinux' : 'absent', 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Ubuntu 22.04 and Debian 12 kernels have it)'),
    cap('tracefs', 'tracefs mounted with syscall tracepoints', tracefs, tracefs ? '/sys/kernel/tracing/events/syscalls' : 'not mounted at /sys/kernel/tracing', `sudo mount -t tracefs nodev /sys/kernel/tracing   (or: ${SETUP})`),
    cap('kprobes', 'kprobes (/sys/kernel/tracing/kprobe_events)', existsSync('/sys/kernel/tracing/kprobe_events'),
      existsSync('/sys/kernel/tracing/kprobe_events') ? 'kprobe_events present' : (tracefs ? 'kernel built without CONFIG_KPROBES' : 'tracefs not mounted'),
      tracefs ? 'a kernel with CONFIG_KPROBES=y; labs use tracepoints instead' : `mount tracefs first: ${SETUP}`, true),
    cap('cgroup', 'cgroup cpu + memory controllers (v2, else v1)', cgroupInfo.version > 0, cgroupInfo.detail, 'mount cgroup2 with cpu and memory enabled (systemd.unified_cgroup_hierarchy=1), or the v1 cpu and memory hierarchies'),
    probeKvm(),
    probeIoUring(),
    probeZeroPage(),
    probeClangBpf(),
    cap('libbpf', 'libbpf headers', existsSync('/usr/include/bpf/libbpf.h'), existsSync('/usr/include/bpf/libbpf.h') ? '/usr/include/bpf/libbpf.h' : 'absent', apt('libbpf-dev')),
    probeBinary('bpftool', 'bpftool', 'bpftool', ['version'], apt('bpftool   (Ubuntu: linux-tools-common linux-tools-$(uname -r))')),
    probeBinary('bpftrace', 'bpftrace', 'bpftrace', ['--version'], apt('bpftrace')),
    probeBcc(kernelRelease),
    probeFio(),
    cap('liburing', 'liburing headers', existsSync('/usr/include/liburing.h'), existsSync('/usr/include/liburing.h') ? '/usr/include/liburing.h' : 'absent', apt('liburing-dev')),
    probeBinary('strace', 'strace', 'strace', ['-V'], apt('strace')),
    probeBinary('iproute2', 'iproute2 (ip)', 'ip', ['-V'], apt('iproute2')),
    probeBinary('ping', 'ping', 'ping', ['-V'], apt('iputils-ping')),
    probeBinary('nftables', 'nft (nftables)', 'nft', ['--version'], apt('nftables')),
    probeBinary('busybox', 'busybox (static)', 'busybox', ['--help'], apt('busybox-static'), /BusyBox v[\d.]+/),
    probeBinary('unshare', 'unshare and chroot (util-linux)', 'unshare', ['--version'], apt('util-linux')),
    probeBinary('qemu', 'QEMU (qemu-system-x86_64)', 'qemu-system-x86_64', ['--version'], apt('qemu-system-x86')),
    probeBinary('gdb', 'gdb', 'gdb', ['--version'], apt('gdb')),
    modulesCapability(kernelRelease),
    cap('psi', 'pressure stall information (/proc/pressure/memory)', existsSync('/proc/pressure/memory'),
      existsSync('/proc/pressure/memory') ? '/proc/pressure/memory' : 'absent: kernel without CONFIG_PSI=y, or PSI off (CONFIG_PSI_DEFAULT_DISABLED)',
      'a kernel with CONFIG_PSI=y; if it is built with CONFIG_PSI_DEFAULT_DISABLED, boot with psi=1'),
    probeBinary('perf', 'perf (perf stat on tracepoints)', 'perf', ['--version'], apt('linux-perf   (Ubuntu: linux-tools-common linux-tools-$(uname -r))')),
  ]);
  const byId = Object.fromEntries(list.map((c) => [c.id, c])) as Record<CapabilityId, Capability>;
  return { ...byId, cgroupInfo, kernelRelease };
}

let memo: Promise<Capabilities> | undefined;

/**
 * The capabilities for this run: read from the run's cache file when the
 * global setup has probed already, else probed (once per process).
 */
export function capabilities(): Promise<Capabilities> {
  if (!memo) {
    memo = (async () => {
      const file = cacheFile();
      if (file && existsSync(file)) {
        try { return JSON.parse(readFileSync(file, 'utf8')) as Capabilities; } catch { /* reprobe */ }
      }
      return probeAll();
    })();
  }
  return memo;
}

function cacheFile(): string | undefined {
  return process.env.LABS_RUN_ID ? join(runDir(process.env.LABS_RUN_ID), 'capabilities.json') : undefined;
}

/** Probe and write the run's cache file (global setup). */
export async function probeAndCache(): Promise<Capabilities> {
  const caps = await probeAll();
  const file = cacheFile();
  if (file) writeFileSync(file, JSON.stringify(caps, null, 2));
  memo = Promise.resolve(caps);
  return caps;
}

/** Tracepoints available on this host under a tracefs event group (e.g. "syscalls"). */
export function tracepoints(group: string): string[] {
  try { return readdirSync(join('/sys/kernel/tracing/events', group)).filter((n) => !n.includes('.') && n !== 'enable' && n !== 'filter'); } catch { return []; }
}
