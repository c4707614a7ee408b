/**
 * The guest pass (`npm run test:guest`): lab specs, unchanged, inside a QEMU
 * TCG guest of Debian's kernel (kprobes, loadable modules, cgroup v2) that
 * runs this machine's own userland. The host's / is shared read-only over 9p
 * (virtio) with an overlay whose upper layer is a tmpfs in the guest, so the
 * same node, vitest, clang, bpftrace, BCC and fio run there and nothing the
 * guest writes reaches the host, except two directories shared read-write:
 * the guest's report directory and the guest's own build cache.
 *
 * The initramfs holds static busybox and the virtio/9p/overlay modules of the
 * guest kernel; its /init mounts the shares, moves /proc, /sys and /dev into
 * the new root, mounts tracefs, cgroup2 and bpffs there, and switch_root's
 * into a shell that runs the command and prints `KL_PASS_EXIT=<status>`.
 * switch_root (not chroot) so that the kernel's own module loader
 * (request_module → /sbin/modprobe) finds the host's kmod and
 * /lib/modules/<release>.
 *
 * Everything here is pure (command lines, the /init script, console
 * markers, which labs the guest can run); scripts/test-guest.ts runs it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Modules the initramfs loads, in dependency order (paths under /lib/modules/<release>/kernel/). */
export const GUEST_MODULES: readonly string[] = [
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'fs/netfs/netfs.ko',
  'fs/fscache/fscache.ko',
  'net/9p/9pnet.ko',
  'net/9p/9pnet_virtio.ko',
  'fs/9p/9p.ko',
  'fs/overlayfs/overlay.ko',
];

/** What the initramfs needs before it can mount the host's root: virtio PCI, 9p over virtio, overlayfs (with their dependencies). */
export const GUEST_MODULE_NAMES: readonly string[] = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];

const modName = (path: string) => (path.split('/').pop() ?? '').replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

/**
 * The module files to load, in load order, for `wanted` (pure): each one's
 * dependencies from modules.dep first (depth first), then itself; a module
 * built into the kernel (modules.builtin) needs no file. `missing` names what
 * neither has.
 */
export function moduleLoadOrder(modulesDep: string, modulesBuiltin: string, wanted: readonly string[]): { files: string[]; missing: string[] } {
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of modulesDep.split('\n')) {
    const m = line.match(/^([^:]+):\s*(.*)$/);
    if (m) deps.set(modName(m[1]!), { path: m[1]!, deps: m[2]!.split(/\s+/).filter(Boolean) });
  }
  const builtin = new Set(modulesBuiltin.split('\n').filter(Boolean).map(modName));
  const files: string[] = [];
  const missing: string[] = [];
  const visit = (name: string) => {
    const e = deps.get(name);
    if (!e) { if (!builtin.has(name)) missing.push(name); return; }
    if (files.includes(e.path)) return;
    for (const d of e.deps) visit(modName(d));
    if (!files.includes(e.path)) files.push(e.path);
  };
  for (const w of wanted) visit(w.replace(/-/g, '_'));
  return { files, missing };
}

/**
 * The module files of a release (absolute; compressed ones as they are: the
 * pass unpacks them into the initramfs), or what is missing. From the
 * release's modules.dep and modules.builtin where they exist (any kernel:
 * Debian 6.12 builds virtio_pci in and compresses with xz), else the fixed
 * list of Debian 6.1.
 */
export function guestModuleFiles(release: string, modulesRoot = '/lib/modules'): { files: string[]; missing: string[] } {
  const dir = join(modulesRoot, release);
  if (existsSync(join(dir, 'modules.dep'))) {
    const read = (f: string) => { try { return readFileSync(join(dir, f), 'utf8'); } catch { return ''; } };
    const r = moduleLoadOrder(read('modules.dep'), read('modules.builtin'), GUEST_MODULE_NAMES);
    const files = r.files.map((f) => join(dir, f));
    return { files, missing: [...r.missing.map((n) => join(dir, `${n}.ko`)), ...files.filter((f) => !existsSync(f))] };
  }
  const files = GUEST_MODULES.map((m) => join(dir, 'kernel', m));
  return { files, missing: files.filter((f) => !existsSync(f)) };
}

/** A directory of the host shared into the guest at the same path. */
export interface Share {
  /** 9p mount tag (letters, digits, _). */
  readonly tag: string;
  readonly hostPath: string;
  readonly readonly: boolean;
  /** Where the guest mounts it (made if absent); default: the same path as on the host. */
  readonly guestPath?: string;
}

export interface PassOptions {
  readonly kernel: string;
  readonly initrd: string;
  readonly memoryMb: number;
  readonly cpus: number;
  /** Read-write shares mounted over the same path in the guest (the root share is always there, read-only). */
  readonly shares: readonly Share[];
  /** A raw ext4 image (a sparse file in the pass's temp dir) that becomes the guest's /tmp as /dev/vda. */
  readonly scratch?: string;
  /** A unix socket for QEMU's monitor (the pass asks it where the vCPUs are before killing a hung guest). */
  readonly monitor?: string;
  /** QEMU's CPU model (default "max": every feature TCG emulates). */
  readonly cpu?: string;
  /** QEMU's -accel (default "tcg,thread=multi": one host thread per vCPU). */
  readonly accel?: string;
}

/** 9p options: msize 512 KiB; the read-only root caches (loose), the read-write shares do not. */
export const NINEP_RO = 'trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose';
export const NINEP_RW = 'trans=virtio,version=9p2000.L,msize=524288,cache=none';

/**
 * The guest kernel's command line.
 * - tsc=reliable: under TCG the kernel finds the vCPUs' TSCs "unsynchronized" and falls back to HPET, every
 *   clock read becomes an emulated MMIO access and clock_gettime a real system call (Lab 2.1 counted 5.6
 *   syscalls per I/O for SQPOLL). QEMU's TSC follows the host's, as a KVM guest's does.
 * - softlockup_panic with watchdog_thresh=30: a guest whose CPUs stop scheduling for 60 s panics (the stuck
 *   CPU's stack on the console) and QEMU exits, instead of hanging until the pass's bound. Seen twice in 11 whole
 *   passes on 2026-11-23 (both vCPUs stuck in node at the start; the ext4 journal thread in the page allocator).
 */
export const GUEST_CMDLINE = [
  'console=ttyS0', 'panic=-1', 'oops=panic', 'quiet', 'loglevel=3', 'nokaslr', 'tsc=reliable',
  'softlockup_panic=1', 'watchdog_thresh=30',
] as const;

/** QEMU's arguments for the pass (pure). */
export function passQemuArgs(o: PassOptions): string[] {
  const virtfs = (s: Share) => ['-virtfs', `local,path=${s.hostPath},mount_tag=${s.tag},security_model=none,multidevs=remap${s.readonly ? ',readonly=on' : ''}`];
  return [
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-accel', o.accel ?? 'tcg,thread=multi', '-smp', String(o.cpus), '-m', `${o.memoryMb}M`,
    '-cpu', o.cpu ?? 'max',
    '-serial', 'stdio', '-monitor', o.monitor ? `unix:${o.monitor},server=on,wait=off` : 'none',
    '-kernel', o.kernel, '-initrd', o.initrd,
    '-append', GUEST_CMDLINE.join(' '),
    ...virtfs({ tag: 'host', hostPath: '/', readonly: true }),
    ...o.shares.flatMap(virtfs),
    ...(o.scratch ? ['-drive', `file=${o.scratch},if=virtio,format=raw,cache=unsafe,discard=unmap`] : []),
  ];
}

/** Shell-quote one word for busybox sh. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const STAGE = 'KL_PASS_STAGE';
export const EXIT = 'KL_PASS_EXIT=';

export interface PassInitOptions {
  /** Module files (absolute host paths); packed into the initramfs at the same path. */
  readonly modules: readonly string[];
  readonly shares: readonly Share[];
  /** Working directory in the guest. */
  readonly cwd: string;
  /** Environment for the command. */
  readonly env: Readonly<Record<string, string>>;
  /** The command (argv) run in the new root. */
  readonly command: readonly string[];
  /**
   * Shell commands run one after another before it, output discarded: the first
   * start of bpftrace, clang or python3 reads hundreds of MB over 9p, and many of
   * them at once (the capability probes run in parallel) exceed the probes' bounds.
   */
  readonly warm?: readonly string[];
  /**
   * Mount this ext4 block device on /tmp (else a tmpfs): the labs' files go to
   * /tmp, and fio's O_DIRECT (Lab 2.1) needs a file system that has it, as the host's ext4 does.
   */
  readonly scratchDevice?: string;
}

/** Programs whose first start over 9p is slow: started once, in turn, before the specs. */
export const WARM_UP: readonly string[] = [
  'node -e 0', 'clang --version', 'cc --version', 'bpftrace --version', 'bpftool version',
  'python3 -c "import bcc"', 'fio --version', 'strace -V', 'ip -V', 'nft --version', 'ping -V', 'unshare --version',
];

/**
 * The initramfs /init (pure). Stages are printed as `KL_PASS_STAGE <name> <uptime>`
 * so the runner can show progress and name the stage a hung guest stopped in.
 */
export function passInitScript(o: PassInitOptions): string {
  const stage = (name: string) => `echo "${STAGE} ${name} $(cut -d' ' -f1 /proc/uptime)"`;
  const fail = (what: string) => `|| { echo "KL_PASS_FAIL ${what}"; echo "${EXIT}125"; reboot -f; }`;
  const N = '/newroot';
  const envWords = Object.entries(o.env).map(([k, v]) => `${k}=${shq(v)}`).join(' ');
  const inner = [
    // The new root: a private /tmp and /run (the guest never sees the host's), mounts the labs expect.
    ...(o.scratchDevice
      // ext4 and crc32c are modules: loaded here, where the host's kmod and /lib/modules are.
      ? ['modprobe virtio_blk', 'modprobe ext4', 'modprobe crc32c_generic 2>/dev/null',
        `mount -t ext4 -o noatime,discard ${o.scratchDevice} /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp`, 'chmod 1777 /tmp']
      : ['mount -t tmpfs -o mode=1777 tmpfs /tmp']),
    'mount -t tmpfs -o mode=755 tmpfs /run',
    'mkdir -p /dev/pts /dev/shm',
    // The links systemd makes at boot on every distribution (dev-setup; devtmpfs has none): without them a program opening
    // /dev/stdout (perf stat -o /dev/stdout) creates a regular file there and its output is lost.
    'ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr; ln -sf /proc/kcore /dev/core',
    'mount -t devpts devpts /dev/pts 2>/dev/null',
    'mount -t tmpfs tmpfs /dev/shm',
    'mount -t tracefs tracefs /sys/kernel/tracing',
    'mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null',
    'mount -t cgroup2 cgroup2 /sys/fs/cgroup',
    // What systemd does on a unified host: every controller available to the root's children.
    'for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done',
    'mount -t bpf bpf /sys/fs/bpf 2>/dev/null',
    'ip link set lo up 2>/dev/null || busybox ip link set lo up',
    'hostname kl-guest 2>/dev/null',
    stage('root-ready'),
    ...(o.warm ?? []).map((c) => `${c} >/dev/null 2>&1`),
    ...(o.warm?.length ? [stage('warm')] : []),
    `cd ${shq(o.cwd)}`,
    // Through a pipe: vitest sees no terminal (no redraws on the serial console); pipefail keeps its status.
    'set -o pipefail',
    `env -i ${envWords} ${o.command.map(shq).join(' ')} </dev/null 2>&1 | cat`,
    'status=$?',
    `echo; echo "${EXIT}$status"`,
    'sync',
    '/bin/busybox reboot -f',
  ].join('\n');
  const lines = [
    '#!/bin/busybox sh',
    '# /init of the guest pass, written by helpers/kernel/guest-pass.ts',
    '/bin/busybox --install -s /bin',
    'export PATH=/bin',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev',
    stage('init'),
    ...o.modules.map((m) => `insmod ${shq(m)} ${fail(`insmod ${m}`)}`),
    stage('modules'),
    `mkdir -p /host /upper ${N}`,
    `mount -t 9p -o ${NINEP_RO} host /host ${fail('mount of the host root over 9p')}`,
    'mount -t tmpfs -o mode=755 tmpfs /upper',
    'mkdir -p /upper/data /upper/work',
    `mount -t overlay -o lowerdir=/host,upperdir=/upper/data,workdir=/upper/work overlay ${N} ${fail('overlay over the host root')}`,
    ...o.shares.flatMap((s) => [...(s.guestPath ? [`mkdir -p ${N}${shq(s.guestPath)}`] : []), `mount -t 9p -o ${s.readonly ? NINEP_RO : NINEP_RW} ${s.tag} ${N}${shq(s.guestPath ?? s.hostPath)} ${fail(`mount of ${s.guestPath ?? s.hostPath}`)}`]),
    stage('switch-root'),
    `mount --move /proc ${N}/proc`,
    `mount --move /sys ${N}/sys`,
    `mount --move /dev ${N}/dev`,
    `cat > ${N}/run-kl-guest.sh <<'KL_EOF'`,
    inner,
    'KL_EOF',
    `exec switch_root ${N} /bin/busybox sh /run-kl-guest.sh`,
  ];
  return `${lines.join('\n')}\n`;
}

export interface ConsoleState {
  readonly stages: readonly { readonly name: string; readonly uptime: number }[];
  readonly exitCode?: number;
  readonly failure?: string;
  /** The guest kernel's "BUG: soft lockup" line, if it printed one. */
  readonly lockup?: string;
}

/** A stage marker in a console line (after any terminal escapes the firmware left on it). */
export function stageOf(line: string): { name: string; uptime: number } | undefined {
  const m = line.match(/KL_PASS_STAGE (\S+) ([\d.]+)/);
  return m ? { name: m[1]!, uptime: Number(m[2]) } : undefined;
}

/** Stages, the exit status and an /init failure from the console text (pure). */
export function parseConsole(text: string): ConsoleState {
  const stages: { name: string; uptime: number }[] = [];
  let exitCode: number | undefined;
  let failure: string | undefined;
  let lockup: string | undefined;
  for (const raw of text.replace(/\r/g, '').split('\n')) {
    const s = stageOf(raw);
    if (s) stages.push(s);
    const e = raw.match(/KL_PASS_EXIT=(\d+)$/);
    if (e) exitCode = Number(e[1]);
    const f = raw.match(/^KL_PASS_FAIL (.*)/);
    if (f) failure = f[1];
    const l = raw.match(/BUG: soft lockup - CPU#\d+ stuck for \d+s! \[[^\]]*\]/);
    if (l && !lockup) lockup = l[0];
  }
  return { stages, ...(exitCode !== undefined ? { exitCode } : {}), ...(failure ? { failure } : {}), ...(lockup ? { lockup } : {}) };
}

/** What the runner needs of a lab (a slice of LabInfo). */
export interface PassLab {
  readonly id: string;
  readonly spec: string;
  readonly requires: readonly string[];
  /** Seconds the lab takes on the host (lab.json), for the boot groups and their bounds. */
  readonly seconds?: number;
}

/** Host seconds assumed for a lab whose lab.json gives none. */
const DEFAULT_LAB_S = 10;

/**
 * The labs in boots (pure): in course order, at most `perBoot` labs and about a
 * minute of host time per boot (a lab longer than that boots alone), so that an
 * emulator hang costs one group's bound, not the whole pass (issue #31).
 */
export function bootGroups<L extends PassLab>(labs: readonly L[], perBoot: number, hostSecondsPerBoot = 60): L[][] {
  const groups: L[][] = [];
  let cur: L[] = [];
  let sum = 0;
  for (const l of labs) {
    const s = l.seconds ?? DEFAULT_LAB_S;
    if (cur.length && (cur.length >= perBoot || sum + s > hostSecondsPerBoot)) { groups.push(cur); cur = []; sum = 0; }
    cur.push(l);
    sum += s;
  }
  if (cur.length) groups.push(cur);
  return groups;
}

/**
 * One boot's bound in seconds (pure): boot, warm-up and vitest's start (measured ~40 s; 240 s of margin for a
 * loaded host), plus for each lab 60 s (its spec's own start under TCG: imports, capability probes, the
 * first run of clang or bpftrace — 10–30 s in the guest whatever the lab) and 15 × its host seconds (TCG runs
 * the work 3–20 times slower). Measured 2026-12-07 on 6.1, the machine busy: Lab 0, 1.1, 1.2 and 1.3
 * (14 host seconds) took 418 s in one boot, 2.1–2.3 and 3.1 (32 s) 397 s — 450 and 720 s by the old
 * 240 + 15 × seconds, the first too close.
 */
export function groupBoundS(labs: readonly PassLab[]): number {
  return 240 + labs.reduce((a, l) => a + 60 + 15 * (l.seconds ?? DEFAULT_LAB_S), 0);
}

/** The whole pass's bound when none is given (pure): every boot's bound, and one more of the longest for a retry. */
export function passBoundS(groups: readonly (readonly PassLab[])[]): number {
  const bounds = groups.map(groupBoundS);
  return bounds.reduce((a, b) => a + b, 0) + Math.max(0, ...bounds) + 120;
}

/** Capabilities whose labs do not run in the guest: TCG offers no KVM, and a QEMU inside TCG is far too slow. */
export const NOT_IN_GUEST: Readonly<Record<string, string>> = {
  kvm: 'needs /dev/kvm, which a TCG guest does not have (it runs on the host)',
  qemu: 'boots its own QEMU guest, which inside a TCG guest would be emulation inside emulation (it runs on the host)',
};

/**
 * Which labs the guest runs and which it skips (with the reason). `filters`
 * work like vitest's: a lab is selected when its id or spec path contains
 * one of them; no filters selects every lab.
 */
export function selectGuestLabs<L extends PassLab>(labs: readonly L[], filters: readonly string[]): { run: L[]; skip: { lab: L; reason: string }[] } {
  const chosen = filters.length ? labs.filter((l) => filters.some((f) => l.id.includes(f) || l.spec.includes(f))) : [...labs];
  const run: L[] = [];
  const skip: { lab: L; reason: string }[] = [];
  for (const lab of chosen) {
    const blocker = lab.requires.find((r) => r in NOT_IN_GUEST);
    if (blocker) skip.push({ lab, reason: NOT_IN_GUEST[blocker]! });
    else run.push(lab);
  }
  return { run, skip };
}

/** The last `n` console lines (for a hung or failed guest), printk timestamps kept. */
export function lastLines(text: string, n = 30): string {
  const lines = text.replace(/\r/g, '').split('\n');
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n).join('\n');
}

export interface GuestKernelFacts {
  readonly kernel?: { readonly path: string; readonly release: string };
  readonly missingModules: readonly string[];
  /** /lib/modules/<release>/build exists (BCC compiles against it in the guest). */
  readonly headers: boolean;
  readonly qemu: boolean;
}

/** The doctor's line for the guest kernel (pure). */
export function guestKernelLine(f: GuestKernelFacts): { ok: boolean; text: string } {
  const fix = 'sudo apt-get install linux-image-amd64 linux-headers-amd64 qemu-system-x86 busybox-static (or: sudo npm run setup)';
  if (!f.kernel) return { ok: false, text: `guest kernel for npm run test:guest: no /boot/vmlinuz-*-amd64\n  fix: ${fix}` };
  const problems = [
    ...(f.qemu ? [] : ['qemu-system-x86_64 not found']),
    ...(f.missingModules.length ? [`modules missing: ${f.missingModules.map((m) => m.split('/').pop()).join(', ')}`] : []),
    ...(f.headers ? [] : [`no /lib/modules/${f.kernel.release}/build (BCC needs the headers in the guest)`]),
  ];
  if (problems.length) return { ok: false, text: `guest kernel for npm run test:guest: ${f.kernel.release}: ${problems.join('; ')}\n  fix: ${fix}` };
  return { ok: true, text: `guest kernel for npm run test:guest: ${f.kernel.release} (${f.kernel.path}), its virtio/9p/overlay modules and headers present` };
}

/** The facts of guestKernelLine, read from this machine. */
export function guestKernelFacts(kernel: { path: string; release: string } | undefined, hasQemu: boolean): GuestKernelFacts {
  return {
    ...(kernel ? { kernel } : {}),
    missingModules: kernel ? guestModuleFiles(kernel.release).missing : [],
    headers: kernel ? existsSync(join('/lib/modules', kernel.release, 'build')) : false,
    qemu: hasQemu,
  };
}
