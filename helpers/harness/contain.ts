/**
 * Containment of the student's program (#29): a lab whose lab.json says
 * `"contain": {"capabilities": [...]}` runs its student's program in a
 * private mount namespace, with only those capabilities and `no_new_privs`.
 * In that namespace
 *
 * - the course (the whole repository: specs, helpers, reports, the build
 *   cache, the student's own sources, node_modules) is mounted read-only;
 * - `/root`, `/home`, `/run` (the host's daemons' sockets), the directory
 *   holding the repository (other checkouts, a runner's `_work`) and the
 *   run's state directory are hidden behind empty tmpfs (the repository is
 *   mounted back at its own path); `/etc/shadow`, `/etc/gshadow` and their
 *   backups read empty;
 * - every other mount is read-only — the root file system, `/sys` and the
 *   cgroup hierarchies (the program cannot move itself out of its sandbox),
 *   `/proc/sys`, `/proc/sysrq-trigger` — but `/proc` and `/dev`;
 * - `/tmp` and `/var/tmp` (and $TMPDIR's dir) are tmpfs of its own: what
 *   others leave in the host's is out of sight, what it leaves there dies
 *   with the namespace; each temp dir makeTempDir makes for the lab is bound
 *   in at its own path (showTempDir; what the harness alone must write and
 *   read back goes to `makeTempDir(label, {hidden: true})`, in the hidden
 *   run state);
 * - `/dev` is read-only and `nodev` but for null, zero, full, random,
 *   urandom, tty, ptmx and the devices the lab names (`"devices": ["kvm"]`):
 *   uid 0 without capabilities could otherwise write a disk; `/dev/shm` is
 *   a tmpfs of the namespace's own;
 * - `/proc` is a proc of the namespace's own mounted `hidepid=invisible`
 *   (kernels 5.8+, where its options are per instance): the program sees its
 *   own uid's processes, not the host's command lines;
 * - the IPC namespace is its own (System V objects and POSIX queues it makes
 *   die with the lab; a harness command that must see them joins it:
 *   inProgramIpc), and so is the network namespace, empty (the host's
 *   daemons on 127.0.0.1 and abstract sockets are out of reach) — unless the
 *   lab says `"network": "lab"`: it starts its program in a netns of the
 *   lab's, where it stays;
 *
 * The namespace is made once per spec file (helpers/harness/contain-holder.ts:
 * a shell, as root, mounts all this, then a `sleep` holds the namespace until
 * the file ends). The harness's commands run on the host as before, its tools
 * (strace, unshare, setarch, a shell writing tracefs) with their capabilities;
 * just before the student's program — a build of one of the lab's `sources` —
 * `nsenter` enters the namespace, `env -C` goes back to the working directory
 * there, and `setpriv` drops the capabilities, then the program is exec'd
 * (same pid; none of these makes a system call a lab counts: uname, getpid,
 * getppid). A tool the lab names in `"interpreters"` (`["fio"]`) is the
 * student's program where its command hands it a student source (Lab 2.1's
 * fio job file: `exec_prerun=` runs shell commands, `ioengine=external:`
 * loads a library, `filename=` opens any path, all as fio's user); the
 * enter words go just before the tool. A tool that refuses any other user
 * and whose language cannot act on the machine without a flag (bpftrace:
 * `--unsafe`) may keep uid 0 (`"user": "root"`, ROOT_INTERPRETERS): still
 * only the lab's capabilities, `no_new_privs` and the namespace's view, and a
 * command that passes it that flag is refused. Otherwise the program runs as the run's own unprivileged uid and gid
 * (programUid: no process of the host has it), with only the listed
 * capabilities (ambient, so they survive the exec): without CAP_SYS_ADMIN it
 * cannot unmount, remount or setns its way back, /proc/1/root is closed to
 * it, and it can signal, ptrace or read the /proc files of its own processes
 * only (a harness process it must signal becomes its uid itself, without an
 * exec, so that it is not dumpable: 7.4's probe, `sigwait … <uid>`).
 * It writes the temp dirs made for it (makeTempDir: root's, its group,
 * sticky) and no other file of root's. A lab whose program
 * needs CAP_SYS_ADMIN is not contained against a determined program
 * (docs/CLASSROOM.md). Mounts the host makes after the namespace was made
 * reach it only where the host's `/` is a shared mount (systemd's default;
 * not this host): one the program must see (8.3's loop image) is attached at
 * its path by showMount, and unmounted there by what it returns.
 *
 * LABS_CONTAIN=0 turns it off (the tamper checks behind it are tested so);
 * LABS_CONTAIN_LOG=<file> lists each command contained.
 */
import { accessSync, constants, existsSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { release as osRelease, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { LabError } from './errors.js';
import { readMountinfo } from './mountinfo.js';
import { CACHE_DIR, REPO_ROOT, sourceRoot, STATE_DIR, studentSources } from './paths.js';
import { systemTool } from './programs.js';
import { runId } from './run-state.js';

/** Capability names setpriv knows (capabilities(7), lower case, without CAP_). */
export const CAPABILITY_NAMES = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
  'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice',
  'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control', 'setfcap',
  'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore',
] as const;
export type CapabilityName = typeof CAPABILITY_NAMES[number];

/** Devices a lab may keep beside the harmless ones. */
export const EXTRA_DEVICES: Readonly<Record<string, string>> = { kvm: '/dev/kvm', tun: '/dev/net/tun' };
const BASE_DEVICES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/ptmx'];

/**
 * The network namespace the program runs in: `private` (the default), one of the namespace's own with nothing in it
 * (not even loopback up: the host's daemons on 127.0.0.1 and abstract sockets are out of reach); `lab`, the one the
 * harness started it in (a lab that runs its program in the lab's own netns: `ip netns exec`).
 */
export type ContainNetwork = 'private' | 'lab';

/** Who the contained program runs as (Containment.user). */
export type ContainUser = 'program' | 'root';

/**
 * Interpreters that may keep uid 0 (`"user": "root"`), each with the flag that would let its language act on the
 * machine: a contained command that passes it is refused.
 */
export const ROOT_INTERPRETERS: Readonly<Record<string, readonly string[]>> = { bpftrace: ['--unsafe'] };

export interface Containment {
  /** What the student's program keeps (none: []). */
  readonly capabilities: readonly CapabilityName[];
  /** Its network namespace (`private` unless the lab puts it in a netns of the lab's). */
  readonly network: ContainNetwork;
  /** Devices kept openable (`kvm`, `tun`). */
  readonly devices: readonly string[];
  /**
   * System tools that run a student file as their code (`["fio"]`: Lab 2.1's job file, whose `exec_prerun=`,
   * `ioengine=external:` and `filename=` act as whoever runs fio): a command that starts one with one of the
   * student's sources among its later arguments is contained from that tool on, as the student's program.
   */
  readonly interpreters?: readonly string[];
  /**
   * Who the program runs as: `program` (the default), the run's own unprivileged uid (programUid); `root`, uid 0
   * with still only `capabilities` (bounding, inheritable and ambient sets) and `no_new_privs` — only for an
   * interpreter in ROOT_INTERPRETERS, a tool that refuses to run as another user and whose language can neither
   * write a file, run a command nor send a signal unless the harness passes its unsafe flag, which a contained
   * command may not (bpftrace: `--unsafe` enables system(), signal(), override(); its scripts' reads — cat(),
   * #include, kernel memory — stay, but in the lab's namespace: `/root`, `/home` and other checkouts hidden).
   */
  readonly user?: ContainUser;
  /** The lab.json it came from (for messages). */
  readonly from: string;
}

/** The `contain` of a lab.json, checked; undefined when the lab does not declare one. */
export function parseContainment(json: unknown, from: string): Containment | undefined {
  const c = (json as { contain?: unknown }).contain;
  if (c === undefined) return undefined;
  const bad = (why: string) => new LabError(`${from}: "contain" ${why}`, { code: 'E_CAPABILITY' });
  if (typeof c !== 'object' || c === null) throw bad('must be an object: {"capabilities": [...], "devices": [...]}');
  const { capabilities = [], devices = [], network = 'private', interpreters = [], user = 'program', ...rest } = c as { capabilities?: unknown; devices?: unknown; network?: unknown; interpreters?: unknown; user?: unknown };
  if (Object.keys(rest).length) throw bad(`knows "capabilities", "devices", "network", "interpreters" and "user", not ${Object.keys(rest).map((k) => JSON.stringify(k)).join(', ')}`);
  if (user !== 'program' && user !== 'root') throw bad(`"user" is "program" (the default) or "root" (${JSON.stringify(user)})`);
  if (network !== 'private' && network !== 'lab') throw bad(`"network" is "private" (the default) or "lab" (${JSON.stringify(network)})`);
  if (!Array.isArray(capabilities) || capabilities.some((x) => !(CAPABILITY_NAMES as readonly unknown[]).includes(x))) {
    throw bad(`"capabilities" must list capability names of capabilities(7) in lower case without CAP_ (${JSON.stringify(capabilities)})`);
  }
  if (!Array.isArray(devices) || devices.some((x) => typeof x !== 'string' || !(x in EXTRA_DEVICES))) {
    throw bad(`"devices" may list ${Object.keys(EXTRA_DEVICES).join(', ')} (${JSON.stringify(devices)})`);
  }
  if (!Array.isArray(interpreters) || interpreters.some((x) => typeof x !== 'string' || !/^[\w.+-]+$/.test(x))) {
    throw bad(`"interpreters" must list the names of tools (no path) that run a student file as code, e.g. ["fio"] (${JSON.stringify(interpreters)})`);
  }
  if (user === 'root' && (!interpreters.length || (interpreters as string[]).some((x) => !(x in ROOT_INTERPRETERS)))) {
    throw bad(`"user": "root" is only for interpreters whose language cannot act on the machine without a flag the harness refuses (${Object.keys(ROOT_INTERPRETERS).join(', ')}), each named in "interpreters" (${JSON.stringify(interpreters)})`);
  }
  return { capabilities: capabilities as CapabilityName[], devices: devices as string[], network, interpreters: interpreters as string[], user, from };
}

/** A containment in force: the lab's declaration and the process holding its mount namespace. */
export interface Active extends Containment {
  readonly holder: number;
}

let current: Active | undefined;

/** Is containment wanted here? (root, LABS_CONTAIN not 0) */
export const containmentEnabled = () => process.env.LABS_CONTAIN !== '0' && process.getuid?.() === 0 && Boolean(SETPRIV && UNSHARE && NSENTER && ENV);

/** Set (or clear) the containment of the spec file now running in this worker (contain-holder.ts does). */
export function setContainment(c: Active | undefined): void { current = c; }

/** The containment for the commands this worker starts now, if any. */
export function activeContainment(): Active | undefined {
  return containmentEnabled() ? current : undefined;
}

const SETPRIV = systemTool('setpriv');
export const UNSHARE = systemTool('unshare');
const NSENTER = systemTool('nsenter');
const ENV = systemTool('env');

const execFileP = promisify(execFile);
const real = (p: string) => { try { return realpathSync(p); } catch { return p; } };
const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

let labSources: readonly string[] = [];

/** The `sources` of the lab now running (lab.json, relative to c/ or LAB_SRC); the labs project's setup file sets them. */
export function setLabSources(sources: readonly string[]): void { labSources = sources; }

const inputCopies = new Set<string>();

/**
 * Is `src` one of the student's files of this lab: a `sources` entry of its lab.json, under LAB_SRC (or c/ when the
 * reference plays the student) — by its path as written or where it leads (a link there is still the student's) —,
 * or a copy studentInputCopy made of one?
 */
export function isStudentSource(src: string): boolean {
  if (!isAbsolute(src)) return false;
  const r = real(src);
  if (inputCopies.has(r)) return true;
  const root = real(sourceRoot());
  return labSources.some((s) => under(r, join(root, s)) || under(src, join(sourceRoot(), s)));
}

/**
 * The student's file `src` (one of the lab's `sources`, handed to one of its `interpreters`: Lab 2.1's fio job
 * file) as the contained program reads it: while the lab is contained, a copy in `dir` (a temp dir makeTempDir
 * made for the lab, before any student run: root's, mode 0644, in a sticky dir — readable by the program's uid
 * whatever the workspace's modes (a teeth workspace is 0700), not replaceable by it), counted as the student's
 * source, so a command naming it is contained as one naming `src`. Read as root, it must be a regular file of the
 * workspace itself: a link (one git can check out) would let root copy a file the program may not read.
 * Uncontained, `src` itself.
 */
export async function studentInputCopy(src: string, dir: string): Promise<string> {
  if (!activeContainment()) return src;
  const refuse = (why: string) => new LabError(`${src}: ${why}`, { code: 'E_SOURCE' });
  if (!isStudentSource(src)) throw refuse('not one of the lab\'s sources');
  const rel = relative(sourceRoot(), src);
  if (!rel || rel.startsWith('..') || isAbsolute(rel) || real(src) !== join(real(sourceRoot()), rel)) {
    throw refuse(`leads elsewhere (${real(src)}): make it a regular file of the workspace, not a link`);
  }
  const fh = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW).catch((e: Error) => { throw refuse(e.message); });
  let text: Buffer;
  try {
    if (!(await fh.stat()).isFile()) throw refuse('not a regular file');
    text = await fh.readFile();
  } finally { await fh.close(); }
  const copy = join(real(dir), basename(src));
  const out = await open(copy, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try { await out.writeFile(text); await out.chmod(0o644); } finally { await out.close(); }
  inputCopies.add(real(copy));
  return copy;
}

const studentPrograms = new Set<string>();

/** Record a program built from the student's sources (compile.ts does, for every buildProgram of one). */
export function markStudentProgram(path: string): void { studentPrograms.add(path); }

const isExecutableFile = (a: string) => { try { accessSync(a, constants.X_OK); return statSync(a).isFile(); } catch { return false; } };

/** Is this argument the student's program: a build of the student's sources, or an executable file among them? */
export const isStudentProgram = (a: string) => isAbsolute(a) && (studentPrograms.has(a) || (isStudentSource(a) && isExecutableFile(a)));

/**
 * Where in `[file, ...args]` the student's program is (-1: none). The
 * harness's own programs (workloads, probes built from the lab's folder) and
 * the system's tools are not contained — but for one of the lab's
 * `interpreters` (lab.json `contain`) that is handed a student source as a
 * later argument (`fio … <the student's job file>`): that tool runs the
 * student's code, so it is the student's program. The same tool with the
 * harness's own job (no student file in its command) keeps the host's view.
 */
export function programIndex(argv: readonly string[], interpreters: readonly string[] = []): number {
  const at = argv.findIndex(isStudentProgram);
  if (at >= 0 || !interpreters.length) return at;
  const src = argv.findIndex((w) => isAbsolute(w) && isStudentSource(w));
  if (src < 0) return -1;
  return argv.findIndex((w, i) => i < src && interpreters.includes(basename(w)));
}

/**
 * The uid (and gid) the student's program runs as: one of 65 536 ids at
 * 0x7f000000, chosen by the run id. systemd leaves 1878982656…2147352575
 * unused (no user, no container range), so no process of the host has it: the
 * program can signal, ptrace or read the /proc files of its own processes
 * only, and can write no file or directory of root's but the temp dirs made
 * for it (makeTempDir chowns them while the lab is contained).
 */
export function programUid(id = runId()): number {
  return 0x7f00_0000 + (Number.parseInt(id, 16) & 0xffff);
}

/** Whether this process holds capability `c` in its permitted set (/proc/self/status CapPrm; capability numbers follow CAPABILITY_NAMES). */
export function holdsCapability(c: CapabilityName, status = readFileSync('/proc/self/status', 'utf8')): boolean {
  const m = /^CapPrm:\s*([0-9a-f]+)$/m.exec(status);
  return !m || ((BigInt(`0x${m[1]}`) >> BigInt(CAPABILITY_NAMES.indexOf(c))) & 1n) === 1n;
}

/** The setpriv words that make the program `uid` with only `caps` (ambient: they survive the exec) and no way to gain more. */
export function dropTo(caps: readonly CapabilityName[], uid = programUid()): string[] {
  // A capability the harness itself does not hold cannot be handed on (setpriv fails): left out. This host's
  // root lacks CAP_SYS_RESOURCE, which bpftrace wants only to raise RLIMIT_MEMLOCK (kernels before 5.11).
  const set = ['-all', ...caps.filter((c) => holdsCapability(c)).map((c) => `+${c}`)].join(',');
  return [SETPRIV!, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups',
    `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs'];
}

/** Directories hidden behind an empty tmpfs. */
export function hiddenDirs(repo = REPO_ROOT, state = STATE_DIR): string[] {
  const open = /^\/(tmp|var\/tmp|var|opt|srv|usr|mnt|media|run|dev|proc|sys|etc|boot)?$/;
  const dirs = ['/root', '/home', '/run', state];
  const parent = dirname(repo);
  if (!open.test(parent)) dirs.push(parent);
  const work = /^(.*\/_work)\//.exec(repo);
  if (work?.[1]) dirs.push(work[1]);
  const uniq = [...new Set(dirs.map(real))].filter((d) => d !== '/' && existsSync(d)).sort((a, b) => a.length - b.length);
  return uniq.filter((d, i) => !uniq.slice(0, i).some((p) => d.startsWith(`${p}/`)));
}

/** Directories kept visible (read-only) at their own path: the repository, the build cache, the student's sources. */
export function keptDirs(repo = REPO_ROOT): string[] {
  const dirs = [repo, CACHE_DIR, studentSources(), join(repo, 'node_modules')].filter((d): d is string => Boolean(d) && existsSync(d!)).map(real);
  const uniq = [...new Set(dirs)].sort((a, b) => a.length - b.length);
  // at most 6: CONTAIN_SCRIPT holds each open on a one-digit fd (3…8) of dash while it hides their parents
  return uniq.filter((d, i) => !uniq.slice(0, i).some((p) => d === p || d.startsWith(`${p}/`))).slice(0, 6);
}

/**
 * The namespace's shell: `sh -c CONTAIN kl-contain <kept…> -- <hidden…> -- <devices…> -- cmd…`.
 * Kept dirs are opened (fds 3…) before anything is hidden, then mounted back
 * from /proc/self/fd/N, so a repository under /home stays at its path.
 */
export const CONTAIN_SCRIPT = [
  'fail() { echo "kl-contain: $*" >&2; exit 125; }',
  'm() { mount "$@" 2>/dev/null || fail "mount $* failed"; }',
  'n=3; for p in "$@"; do [ "$p" = -- ] && break; eval "exec $n<\\"\\$p\\"" || fail "cannot open $p"; n=$((n+1)); done',
  // the host's temp dir, on fd 9, before anything is hidden (it may lie under a hidden dir)
  'exec 9<"$KL_TMP" || fail "cannot open $KL_TMP"',
  // bind the harmless devices onto themselves before /dev goes nodev
  'seen=0; for p in "$@"; do if [ "$p" = -- ]; then seen=$((seen+1)); continue; fi; [ $seen = 2 ] || continue; [ -e "$p" ] && m --bind "$p" "$p"; done',
  'm -o remount,bind,ro,nodev,nosuid /dev',
  // POSIX shared memory of its own (bounded as /tmp is): the host's /dev/shm is shared by every process
  '[ -d /dev/shm ] && m -t tmpfs -o size=256m,mode=1777,nosuid,nodev kl-shm /dev/shm',
  // and POSIX message queues of its own: /dev/mqueue (systemd mounts it) shows the host IPC namespace's queues, and a
  // file made there is a queue of the host's; an mqueue mounted here belongs to the namespace's own IPC namespace
  '[ -d /dev/mqueue ] && m -t mqueue -o nosuid,nodev,noexec kl-mqueue /dev/mqueue',
  // hide
  'seen=0; for p in "$@"; do if [ "$p" = -- ]; then seen=$((seen+1)); continue; fi; [ $seen = 1 ] || continue; [ -d "$p" ] && m -t tmpfs -o size=64k,mode=0755 kl-hidden "$p"; done',
  // a /tmp of its own (and /var/tmp, and $TMPDIR's dir where that is elsewhere): what others leave in the host's is out
  // of sight, and what the program leaves there dies with the namespace. The host's temp dir stays reachable for root
  // only, at /run/kl-tmp/host (/run is hidden above: a tmpfs of the namespace's), from where the harness binds each temp dir
  // it makes for the lab back at its own path (showTempDir)
  // (/run/kl-tmp is the 0700 dir: a mount point shows the mode of what is mounted on it, here 1777)
  'mkdir -m 0700 /run/kl-tmp && mkdir /run/kl-tmp/host || fail "mkdir /run/kl-tmp/host failed"',
  'm --no-canonicalize --bind /proc/self/fd/9 /run/kl-tmp/host; exec 9<&-',
  // (bounded: its pages outlive the program's sandbox cgroup until the namespace ends)
  'for w in /tmp /var/tmp; do [ -d "$w" ] && m -t tmpfs -o size=256m,mode=1777,nosuid,nodev kl-tmp "$w"; done',
  // $TMPDIR's dir, where it is another: under /tmp (libpam-tmpdir's /tmp/user/0) or a hidden dir (/home) it is made
  // again, in the namespace's tmpfs
  'case "$KL_TMP" in /tmp|/var/tmp) ;; *) { [ -d "$KL_TMP" ] || mkdir -p "$KL_TMP"; } && m -t tmpfs -o size=256m,mode=1777,nosuid,nodev kl-tmp "$KL_TMP" || fail "no $KL_TMP";; esac',
  // mount the kept dirs back, read-only
  'n=3; for p in "$@"; do [ "$p" = -- ] && break; mkdir -p "$p" 2>/dev/null; m --no-canonicalize --rbind "/proc/self/fd/$n" "$p"; m -o remount,bind,ro "$p"; eval "exec $n<&-"; n=$((n+1)); done',
  'for f in /etc/shadow /etc/gshadow /etc/shadow- /etc/gshadow-; do [ -f "$f" ] && m --bind /dev/null "$f"; done',
  // a proc of the namespace's own where the kernel keeps mount options per instance (5.8+): hidepid=invisible shows the
  // program its own uid's processes only (not the host's command lines); the old /proc's submounts are shadowed with it
  '[ "$KL_HIDEPID" = 1 ] && m -t proc -o hidepid=invisible,nosuid,nodev,noexec kl-proc /proc',
  // (non-recursive: what the host mounted under /proc/sys, binfmt_misc, stays below the read-only bind, out of reach)
  'for p in /proc/sys /proc/sysrq-trigger; do [ -e "$p" ] && m --bind "$p" "$p"; done',
  // every mount read-only (the root, /sys and its cgroup hierarchies, /proc/sys, any other file system of the host)
  // but the scratch dirs, /proc and /dev (its devices stay writable on a read-only mount; nodev closes the rest);
  // a mount point covered by a hidden dir is gone from the path, one unmounted meanwhile (another run's, under /tmp) from
  // mountinfo; mountinfo's octal escapes (\040) are decoded
  "awk '$5 == \"/tmp\" || $5 == \"/var/tmp\" || $5 == ENVIRON[\"KL_TMP\"] || $5 == \"/run/kl-tmp/host\" { next } ($5 != \"/proc\" && $5 != \"/dev\" && $5 !~ /^\\/(dev|proc)\\//) || $5 ~ /^\\/proc\\/(sys|sysrq-trigger)$/ { print $5 }' /proc/self/mountinfo | sort -u |"
    + " while IFS= read -r e; do p=$(printf '%b' \"$(printf '%s' \"$e\" | sed 's/\\\\\\([0-7][0-7][0-7]\\)/\\\\0\\1/g')\");"
    + ' mount -o remount,bind,ro "$p" 2>/dev/null || [ ! -e "$p" ] || ! E="$e" awk \'$5 == ENVIRON["E"] { f = 1 } END { exit !f }\' /proc/self/mountinfo'
    + ' || { echo "kl-contain: mount -o remount,bind,ro $p failed" >&2; exit 125; }; done || exit 125',
  'while [ "$1" != -- ]; do shift; done; shift; while [ "$1" != -- ]; do shift; done; shift; while [ "$1" != -- ]; do shift; done; shift',
  'echo kl-contain-ready',
  'exec "$@"',
].join('\n');

/** The arguments of the holder: `unshare … sh -c CONTAIN_SCRIPT kl-contain <kept…> -- <hidden…> -- <devices…> -- sleep infinity`. */
export function holderArgs(c: Containment): string[] {
  const devices = [...BASE_DEVICES, ...c.devices.map((d) => EXTRA_DEVICES[d]!)];
  return ['--mount', '--propagation', 'slave', '--ipc', ...(c.network === 'private' ? ['--net'] : []), '/bin/sh', '-c', CONTAIN_SCRIPT, 'kl-contain',
    ...keptDirs(), '--', ...hiddenDirs(), '--', ...devices, '--', 'sleep', 'infinity'];
}

/**
 * The programs the enter words exec in the program's own pid before the program (nsenter, env, setpriv),
 * for a judge that lists what a program exec'd: empty when the lab is not contained.
 */
export function enterPrograms(): string[] {
  return activeContainment() ? [NSENTER!, ENV!, SETPRIV!].map(real) : [];
}

/** Whether this kernel keeps proc's mount options per instance (5.8+): a proc with hidepid of the namespace's own leaves the host's alone. */
export function hidepidPerInstance(release = osRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return Boolean(m) && (Number(m![1]) > 5 || (Number(m![1]) === 5 && Number(m![2]) >= 8));
}

/** The environment of the holder's script (KL_HIDEPID=1 where a proc of its own with hidepid is safe). */
export const holderEnv = (): Record<string, string> => ({ KL_HIDEPID: hidepidPerInstance() ? '1' : '0', KL_TMP: real(tmpdir()) });

/**
 * Make a temp dir of the host's (`dir`, directly in tmpdir(), made after the namespace) visible at its own path in
 * the contained lab's namespace, whose /tmp is its own: a bind of it from /run/kl-tmp/host, the host's temp dir that
 * root alone reaches there. Removing the directory on the host leaves the bind in the namespace (`//deleted` in its
 * mountinfo, empty) until the namespace ends with the spec file. `mkdir`,
 * not `mkdir -p`: a name the program made first in its /tmp (a link to elsewhere) fails the bind rather than moving
 * it; once root's directory is there, the sticky /tmp keeps the program from replacing it.
 */
export async function showTempDir(dir: string): Promise<void> {
  const a = activeContainment();
  if (!a) return;
  const name = basename(dir);
  if (real(dirname(dir)) !== real(tmpdir()) || !name || name.includes('/')) {
    throw new Error(`showTempDir: ${dir} is not directly in ${tmpdir()}`);
  }
  try {
    await execFileP(NSENTER!, [`--mount=/proc/${a.holder}/ns/mnt`, '/bin/sh', '-c', 'mkdir -- "$1" && mount --bind -- "/run/kl-tmp/host/$2" "$1"', 'kl-show', dir, name],
      { timeout: 15_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${a.from}: the temp dir ${dir} could not be shown in the lab's namespace: ${(err.stderr || err.message).trim()}`);
  }
}

const PERL = systemTool('perl');
const UMOUNT = systemTool('umount');
/** open_tree(2) and move_mount(2): one number on every architecture (include/uapi/asm-generic/unistd.h, syscall_64.tbl). */
const OPEN_TREE_NR = 428;
const MOVE_MOUNT_NR = 429;
/**
 * Perl on the host (perl is Essential on Debian and Ubuntu; util-linux's mount has no open_tree): ARGV = open_tree's
 * number, the mount, then a command, exec'd with the fd of a detached copy of the mount and what is mounted under it
 * (OPEN_TREE_CLONE | AT_RECURSIVE, not close-on-exec) as its last argument.
 */
const OPEN_TREE_PERL = `my ($n, $p, @cmd) = @ARGV; $n += 0; # numbers: a string would go to syscall() as a pointer
my $fd = syscall($n, -100, $p, 1 | 0x8000); die "open_tree $p: $!\\n" if $fd < 0;
exec { $cmd[0] } @cmd, "$fd" or die "exec $cmd[0]: $!\\n";`;
/** Perl in the namespace: ARGV = move_mount's number, the target, the fd; attaches the copy there (a link in its place is not followed). */
const MOVE_MOUNT_PERL = `my ($n, $t, $fd) = @ARGV; my $e = ""; $n += 0; $fd += 0;
syscall($n, $fd, $e, -100, $t, 4) == 0 or die "move_mount onto $t: $!\\n"; # MOVE_MOUNT_F_EMPTY_PATH`;

const nsOf = (pid: number) => { try { return readlinkSync(`/proc/${pid}/ns/mnt`); } catch { return undefined; } };

/**
 * Show a mount the harness made on the host after the contained lab's namespace was made (8.3's ext4 image on a loop
 * device, mounted in a temp dir of the lab's) at the same path in that namespace, recursively (an rbind): where the
 * host's `/` is private (this host) a later mount does not reach the namespace, and a bind cannot cross namespaces.
 * A detached copy of it (open_tree(2) OPEN_TREE_CLONE | AT_RECURSIVE, on the host) is attached there (move_mount(2)
 * in the namespace, which must hold `path` as a directory: a temp dir's, shown by showTempDir), then made nosuid and
 * nodev. Same superblock: what either side writes, the other sees; `/proc/<pid>/fd` links of the program's files read
 * the same path from both. Returns what unmounts the namespace's copy (lazily: a file the program left open keeps
 * the superblock, not the mount): call it before the host's unmount — the copy keeps the superblock, and with it a
 * loop device, alive until the namespace ends. Nothing is done (and the release is a no-op) when the lab is not
 * contained.
 */
export async function showMount(path: string): Promise<() => Promise<void>> {
  const a = activeContainment();
  if (!a) return async () => {};
  const fail = (why: string) => new Error(`${a.from}: the mount ${path} could not be shown in the lab's namespace: ${why}`);
  if (!isAbsolute(path) || real(path) !== path) throw fail('give its real, absolute path (the namespace resolves it again)');
  if (!readMountinfo().some((m) => m.mountPoint === path)) throw fail('nothing is mounted there on the host');
  if (!PERL || !UMOUNT) throw fail('needs perl (open_tree(2), move_mount(2)) and umount');
  const ns = nsOf(a.holder);
  try {
    await execFileP(PERL, ['-e', OPEN_TREE_PERL, String(OPEN_TREE_NR), path, NSENTER!, `--mount=/proc/${a.holder}/ns/mnt`, '/bin/sh', '-c',
      '"$0" -e "$1" "$2" "$3" "$4" && mount -o remount,bind,nosuid,nodev -- "$3"', PERL, MOVE_MOUNT_PERL, String(MOVE_MOUNT_NR), path],
    { timeout: 15_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw fail((err.stderr || err.message).trim());
  }
  if (!readMountinfo(a.holder).some((m) => m.mountPoint === path)) throw fail(`no mount at ${path} in /proc/${a.holder}/mountinfo afterwards`);
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    // the holder gone (or another spec file's): its namespace, and the copy, went with it
    if (!ns || nsOf(a.holder) !== ns) return;
    try {
      await execFileP(NSENTER!, [`--mount=/proc/${a.holder}/ns/mnt`, UMOUNT, '-l', '--', path], { timeout: 15_000 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      if (nsOf(a.holder) === ns) throw new Error(`${a.from}: the namespace's copy of ${path} was not unmounted: ${(err.stderr || err.message).trim()}`);
    }
  };
}

/** The words put before the student's program: enter the namespaces, go back to `cwd` there, drop the capabilities. */
export function enterWords(a: Active, cwd: string): string[] {
  const ns = [`--mount=/proc/${a.holder}/ns/mnt`, `--ipc=/proc/${a.holder}/ns/ipc`, ...(a.network === 'private' ? [`--net=/proc/${a.holder}/ns/net`] : [])];
  return [NSENTER!, ...ns, ENV!, '-C', cwd, ...dropTo(a.capabilities, a.user === 'root' ? 0 : programUid())];
}

/**
 * A harness command that must see the program's IPC objects (its message queues, System V segments): `[file, ...args]`
 * run in the contained program's IPC namespace (its mount and user stay the host's). Unchanged when not contained.
 */
export function inProgramIpc(file: string, args: readonly string[]): { file: string; args: string[] } {
  const a = activeContainment();
  if (!a) return { file, args: [...args] };
  return { file: NSENTER!, args: [`--ipc=/proc/${a.holder}/ns/ipc`, file, ...args] };
}

const shQuote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;
const EXEC_ARG0 = /\bexec "\$0"/g;
const HAS_EXEC_ARG0 = /\bexec "\$0"/;

/**
 * `[file, ...args]` rewritten for the contained lab: the enter words just
 * before the student's program. A program handed to `sh -c` as `$0` is
 * entered where the script execs it (`exec "$0"`), so that $0, $1… keep
 * their meaning. Commands without a lab program are left alone.
 */
export function containArgv(file: string, args: readonly string[], a: Active, cwd = process.cwd()): { file: string; args: string[] } | undefined {
  const argv = [file, ...args];
  const at = programIndex(argv, a.interpreters);
  if (at >= 0 && a.user === 'root') {
    const tool = basename(argv[at]!);
    if (isStudentProgram(argv[at]!) || !(tool in ROOT_INTERPRETERS)) {
      throw new LabError(`${a.from}: "user": "root" keeps uid 0 for ${Object.keys(ROOT_INTERPRETERS).join(', ')} only, never for ${argv[at]} (${formatShort(argv)})`, { code: 'E_CAPABILITY' });
    }
    const unsafe = ROOT_INTERPRETERS[tool]!;
    const flag = argv.slice(at + 1).find((w) => unsafe.some((u) => w === u || w.startsWith(`${u}=`)));
    if (flag) {
      throw new LabError(`${a.from}: a contained ${tool} that keeps uid 0 may not be given ${flag}: it would let the student's script act on the machine (${formatShort(argv)})`, { code: 'E_CAPABILITY' });
    }
  }
  if (at < 0) {
    const named = argv.find((w) => isAbsolute(w) && isStudentSource(w));
    if (named) {
      throw new LabError(`${a.from}: "contain" cannot enter ${named}: a file of the student's sources that is not the program started `
        + `(${formatShort(argv)}); make it executable and start it, name the tool that runs it in "interpreters", or leave the lab uncontained (docs/AUTHORING.md)`, { code: 'E_CAPABILITY' });
    }
    return undefined;
  }
  if (at >= 3 && /(^|\/)(sh|bash|dash)$/.test(argv[0]!) && argv[1] === '-c') {
    const script = argv[2]!;
    if (at !== 3 || !HAS_EXEC_ARG0.test(script)) {
      throw new LabError(`${a.from}: "contain" cannot enter a program passed to \`sh -c\` unless the script runs it as \`exec "$0"\` (${formatShort(argv)}): `
        + 'start it without the shell, or so (docs/AUTHORING.md)', { code: 'E_CAPABILITY' });
    }
    const words = enterWords(a, '"$PWD"').map((w) => (w === '"$PWD"' ? w : shQuote(w))).join(' ');
    return { file, args: [argv[1]!, script.replace(EXEC_ARG0, () => `exec ${words} "$0"`), ...argv.slice(3)] };
  }
  const out = [...argv.slice(0, at), ...enterWords(a, cwd), ...argv.slice(at)];
  return { file: out[0]!, args: out.slice(1) };
}

const formatShort = (argv: readonly string[]) => argv.map((a) => (a.length > 40 ? `${a.slice(0, 37)}…` : a)).join(' ');

/** The lab.json beside a spec file. */
export const labJsonOf = (specFile: string) => join(dirname(specFile), 'lab.json');
