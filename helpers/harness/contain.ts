/**
 * Containment of the student's program (#29): a lab whose lab.json says
 * `"contain": {"capabilities": [...]}` runs every command that holds one of
 * its programs in a private mount namespace, and the program itself with
 * only those capabilities and `no_new_privs`. In that namespace
 *
 * - the course (the whole repository: specs, helpers, reports, the build
 *   cache, the student's own sources) is mounted read-only;
 * - `/root`, `/home`, the directory holding the repository (other
 *   checkouts, a runner's `_work`) and the run's state directory are hidden
 *   behind empty tmpfs (the repository is mounted back at its own path);
 *   `/etc/shadow` and `/etc/gshadow` read empty;
 * - the root file system is read-only, `/tmp` and `/var/tmp` stay writable
 *   (the lab's temp dirs are there);
 * - every mount under `/sys` (the cgroup hierarchies included: the program
 *   cannot move itself out of its sandbox), `/proc/sys` and
 *   `/proc/sysrq-trigger` are read-only;
 * - `/dev` is `nodev` but for null, zero, full, random, urandom, tty, ptmx
 *   and the devices the lab names (`"devices": ["kvm"]`): uid 0 without
 *   capabilities could otherwise write a disk.
 *
 * The mounts are made by a shell (as root, full capabilities) right after
 * the sandbox joined its cgroups; the tools of the harness in the command
 * (strace, unshare, setarch) keep their capabilities; `setpriv` drops them
 * just before the student's program, which keeps uid 0 (the cache and the
 * temp dirs stay its own) but holds only the listed capabilities: without
 * CAP_SYS_ADMIN it cannot unmount, remount or setns its way back, and
 * without a superset of pid 1's capabilities /proc/1/root is closed to it.
 * A lab whose program needs CAP_SYS_ADMIN says so, and is not contained
 * against a determined program (docs/CLASSROOM.md).
 *
 * LABS_CONTAIN=0 turns it off (the tamper checks behind it are tested so).
 */
import { existsSync, readFileSync, realpathSync, statSync, accessSync, constants } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { LabError } from './errors.js';
import { CACHE_DIR, REPO_ROOT, STATE_DIR, studentSources } from './paths.js';
import { SYSTEM_DIRS } from './programs.js';

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

export interface Containment {
  /** What the student's program keeps (none: []). */
  readonly capabilities: readonly CapabilityName[];
  /** Devices kept openable (`kvm`, `tun`). */
  readonly devices: readonly string[];
  /** The lab.json it came from (for messages). */
  readonly from: string;
}

/** The `contain` of a lab.json, checked; undefined when the lab does not declare one. */
export function parseContainment(json: unknown, from: string): Containment | undefined {
  const c = (json as { contain?: unknown }).contain;
  if (c === undefined) return undefined;
  const bad = (why: string) => new LabError(`${from}: "contain" ${why}`, { code: 'E_CAPABILITY' });
  if (typeof c !== 'object' || c === null) throw bad('must be an object: {"capabilities": [...], "devices": [...]}');
  const { capabilities = [], devices = [] } = c as { capabilities?: unknown; devices?: unknown };
  if (!Array.isArray(capabilities) || capabilities.some((x) => !(CAPABILITY_NAMES as readonly unknown[]).includes(x))) {
    throw bad(`"capabilities" must list capability names of capabilities(7) in lower case without CAP_ (${JSON.stringify(capabilities)})`);
  }
  if (!Array.isArray(devices) || devices.some((x) => typeof x !== 'string' || !(x in EXTRA_DEVICES))) {
    throw bad(`"devices" may list ${Object.keys(EXTRA_DEVICES).join(', ')} (${JSON.stringify(devices)})`);
  }
  return { capabilities: capabilities as CapabilityName[], devices: devices as string[], from };
}

/** The containment a lab.json declares (read from the file). */
export function labContainment(labJson: string): Containment | undefined {
  return parseContainment(JSON.parse(readFileSync(labJson, 'utf8')), labJson);
}

let current: Containment | undefined;

/** Set (or clear) the containment of the spec file now running in this worker (the labs project's setup file does). */
export function setContainment(c: Containment | undefined): void { current = c; }

/** Is containment on for the commands this worker starts now? (root, a lab that declares it, LABS_CONTAIN not 0) */
export function activeContainment(): Containment | undefined {
  if (process.env.LABS_CONTAIN === '0' || process.getuid?.() !== 0) return undefined;
  return current;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(existsSync);
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find(existsSync);

const isProgram = (a: string) => {
  if (!isAbsolute(a) || SYSTEM_DIRS.test(a)) return false;
  try { accessSync(a, constants.X_OK); return statSync(a).isFile(); } catch { return false; }
};

/** Where in `[file, ...args]` the student's program is: the first executable file outside the system's directories. */
export function programIndex(argv: readonly string[]): number {
  return argv.findIndex(isProgram);
}

/** The setpriv words that leave uid 0 with only `caps` and no way to gain more. */
export function dropTo(caps: readonly CapabilityName[]): string[] {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return [SETPRIV!, `--inh-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs'];
}

const real = (p: string) => { try { return realpathSync(p); } catch { return p; } };

/** Directories hidden behind an empty tmpfs. */
export function hiddenDirs(repo = REPO_ROOT, state = STATE_DIR): string[] {
  const open = /^\/(tmp|var\/tmp|var|opt|srv|usr|mnt|media|run|dev|proc|sys|etc|boot)?$/;
  const dirs = ['/root', '/home', state];
  const parent = dirname(repo);
  if (!open.test(parent)) dirs.push(parent);
  const work = /^(.*\/_work)\//.exec(repo);
  if (work?.[1]) dirs.push(work[1]);
  const uniq = [...new Set(dirs.map(real))].filter((d) => d !== '/' && existsSync(d)).sort((a, b) => a.length - b.length);
  return uniq.filter((d, i) => !uniq.slice(0, i).some((p) => d.startsWith(`${p}/`)));
}

/** Directories kept visible (read-only) at their own path: the repository, the build cache, the student's sources. */
export function keptDirs(repo = REPO_ROOT): string[] {
  const dirs = [repo, CACHE_DIR, studentSources()].filter((d): d is string => Boolean(d) && existsSync(d!)).map(real);
  const uniq = [...new Set(dirs)].sort((a, b) => a.length - b.length);
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
  // writable scratch first: their own mounts, so that the root can go read-only under them
  'for w in /tmp /var/tmp; do [ -d "$w" ] && m --bind "$w" "$w"; done',
  // bind the harmless devices onto themselves before /dev goes nodev
  'seen=0; for p in "$@"; do if [ "$p" = -- ]; then seen=$((seen+1)); continue; fi; [ $seen = 2 ] || continue; [ -e "$p" ] && m --bind "$p" "$p"; done',
  'm -o remount,bind,nodev,nosuid /dev',
  // hide
  'seen=0; for p in "$@"; do if [ "$p" = -- ]; then seen=$((seen+1)); continue; fi; [ $seen = 1 ] || continue; [ -d "$p" ] && m -t tmpfs -o size=64k,mode=0755 kl-hidden "$p"; done',
  // mount the kept dirs back, read-only
  'n=3; for p in "$@"; do [ "$p" = -- ] && break; mkdir -p "$p" 2>/dev/null; m --no-canonicalize --rbind "/proc/self/fd/$n" "$p"; m -o remount,bind,ro "$p"; eval "exec $n<&-"; n=$((n+1)); done',
  'for f in /etc/shadow /etc/gshadow; do [ -f "$f" ] && m --bind /dev/null "$f"; done',
  'm -o remount,bind,ro /',
  'for p in /proc/sys /proc/sysrq-trigger; do [ -e "$p" ] && { m --bind "$p" "$p"; m -o remount,bind,ro "$p"; }; done',
  // every mount under /sys, the cgroup hierarchies among them
  "for p in $(awk '$5 == \"/sys\" || index($5, \"/sys/\") == 1 { print $5 }' /proc/self/mountinfo); do m -o remount,bind,ro \"$p\"; done",
  'while [ "$1" != -- ]; do shift; done; shift; while [ "$1" != -- ]; do shift; done; shift; while [ "$1" != -- ]; do shift; done; shift',
  'exec "$@"',
].join('\n');

/**
 * `[file, ...args]` rewritten for the contained lab: the whole command in a
 * new mount namespace set up by CONTAIN_SCRIPT, setpriv just before the
 * student's program. Commands without a lab program are left alone.
 */
export function containArgv(file: string, args: readonly string[], c: Containment): { file: string; args: string[] } | undefined {
  const argv = [file, ...args];
  const at = programIndex(argv);
  if (at < 0 || !SETPRIV || !UNSHARE) return undefined;
  if (at >= 3 && /(^|\/)(sh|bash|dash)$/.test(argv[0]!) && argv[1] === '-c') {
    // `sh -c '… exec "$0" …' program args`: words put before the program would shift $0, $1… of the script
    throw new LabError(`${c.from}: "contain" cannot drop the capabilities of a program passed to \`sh -c\` as an argument (${formatShort(argv)}): `
      + 'start it without the shell, or leave the lab uncontained (docs/AUTHORING.md)', { code: 'E_CAPABILITY' });
  }
  const inner = [...argv.slice(0, at), ...dropTo(c.capabilities), ...argv.slice(at)];
  const devices = [...BASE_DEVICES, ...c.devices.map((d) => EXTRA_DEVICES[d]!)];
  return {
    file: UNSHARE,
    args: ['--mount', '--propagation', 'slave', '/bin/sh', '-c', CONTAIN_SCRIPT, 'kl-contain',
      ...keptDirs(), '--', ...hiddenDirs(), '--', ...devices, '--', ...inner],
  };
}

const formatShort = (argv: readonly string[]) => argv.map((a) => (a.length > 40 ? `${a.slice(0, 37)}…` : a)).join(' ');

/** The lab.json beside a spec file. */
export const labJsonOf = (specFile: string) => join(dirname(specFile), 'lab.json');
