/**
 * The host guard: what a lab must leave exactly as it found it, read before
 * and after each spec file, so that a student's script (or a lab) that writes
 * a host sysctl, makes or changes a cgroup outside the lab's `kl-…` ones,
 * changes the hostname, adds, removes or changes an interface, an address or
 * a route of the host's network namespace, changes the nftables ruleset or one
 * of the system files listed in ETC_FILES, fails the lab with the change named and the
 * command that undoes it. Nothing is undone automatically: the guard cannot
 * know that the change was not made by the machine's own work meanwhile.
 *
 * Read in the vitest worker, which lives in the host's namespaces (uts, net,
 * cgroup, mount); labs work in namespaces and cgroups of their own.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseCgroupMounts } from './cgroup-mounts.js';
import { parseMountinfo } from './mountinfo.js';
// The lab's own objects (cgroups, interfaces) carry this prefix ("kl-"): they are the lab's to change.
import { RESOURCE_PREFIX as LAB_PREFIX, runIsLive } from './run-state.js';

/**
 * Writable sysctls the kernel itself changes: the last pid handed out, the
 * perf sample rate it lowers when perf interrupts take too long (eBPF labs),
 * the taint flags and hung-task warning budget it spends on a warning, the
 * random pool's state, and (kernels before 5.13 with CONFIG_SCHED_DEBUG, e.g.
 * Debian's 5.10) the scheduler domains' balancing costs it updates on every
 * idle balance. Measured: over 20 s of a running suite only
 * kernel/ns_last_pid changed of the 1276 writable files here; in a 5.10
 * guest, kernel/sched_domain/cpuN/domainM/max_newidle_lb_cost changed in
 * every lab file.
 */
const VOLATILE_SYSCTLS = [
  /^kernel\/ns_last_pid$/,
  /^kernel\/perf_event_max_sample_rate$/,
  /^kernel\/tainted$/,
  /^kernel\/hung_task_warnings$/,
  /^kernel\/random\//,
  /^kernel\/sched_domain\/cpu\d+\/domain\d+\/max_newidle_lb_cost$/,
  /^fs\/binfmt_misc(\/|$)/, // (reading it would trigger systemd's automount)
  /^vm\/drop_caches$/,
  /^vm\/compact_memory$/,
  /^net\/ipv4\/route\/flush$/,
  /^net\/ipv6\/route\/flush$/,
];

/**
 * Mount points the machine's own services add and remove while labs run:
 * snaps being refreshed, containers of docker/containerd/podman, user
 * sessions, removable media, systemd's binfmt_misc automount, the tracefs
 * the kernel automounts under debugfs when a tool (bpftrace) opens
 * /sys/kernel/debug/tracing (seen in the guest pass), and the
 * /run/netns bind mount `ip netns add` makes the first time after a boot.
 */
const SERVICE_MOUNTS = [/^\/snap\//, /^\/var\/snap\//, /^\/run\/user\//, /^\/run\/(docker|containerd)\//, /^\/run\/netns$/, /^\/run\/netns\/cni-/, /^\/var\/lib\/(docker|containerd|containers|kubelet)\//, /^\/run\/(containers|credentials)\//, /^\/media\//, /^\/proc\/sys\/fs\/binfmt_misc$/, /^\/sys\/kernel\/debug\/tracing$/];

/** Cgroup files a script might write to limit or move work in the host's own groups. */
const CGROUP_KNOBS = [
  'cgroup.subtree_control', 'cgroup.type', 'cgroup.freeze',
  'memory.max', 'memory.high', 'memory.low', 'memory.min', 'memory.swap.max', 'memory.limit_in_bytes', 'memory.soft_limit_in_bytes',
  'cpu.max', 'cpu.weight', 'cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpuset.cpus', 'cpuset.mems',
  'pids.max', 'io.max', 'io.weight', 'freezer.state',
];

/**
 * System files a program running as root could change to outlast the lab or
 * reach beyond it (accounts, privileges, name resolution, boot-time and
 * scheduled jobs, preloaded libraries), and directories whose entries do the
 * same. Compared by content; `/etc/resolv.conf` and other files the machine's
 * own services rewrite are not listed.
 */
export const ETC_FILES: readonly string[] = [
  'passwd', 'shadow', 'group', 'gshadow', 'sudoers', 'hosts', 'fstab', 'crontab', 'ld.so.preload', 'ld.so.conf',
  'environment', 'profile', 'bash.bashrc', 'modules', 'rc.local', 'ssh/sshd_config', 'security/limits.conf', 'sysctl.conf',
];
export const ETC_DIRS: readonly string[] = ['sudoers.d', 'cron.d', 'cron.hourly', 'cron.daily', 'profile.d', 'sysctl.d', 'modules-load.d', 'modprobe.d', 'ld.so.conf.d', 'systemd/system', 'udev/rules.d'];

export interface HostLink {
  readonly mtu: number;
  readonly up: boolean;
  readonly address: string;
  readonly master: string;
  readonly qdisc: string;
  /** XDP program id attached to the interface, 0 for none. */
  readonly xdp: number;
}

export interface HostSnapshot {
  readonly hostname: string;
  /** `/proc/sys` path relative to /proc/sys → value, writable files only. */
  readonly sysctls: ReadonlyMap<string, string>;
  /** Interfaces of the host's network namespace by name; undefined when `ip` could not be run. */
  readonly links?: ReadonlyMap<string, HostLink>;
  /** Per cgroup mount point: the names of its top-level groups outside `kl-…`. */
  readonly cgroupDirs: ReadonlyMap<string, readonly string[]>;
  /** `<cgroup dir>/<knob>` → value, for the roots and the top-level groups outside `kl-…`. */
  readonly cgroupKnobs: ReadonlyMap<string, string>;
  /** Per cgroup2 mount root: the BPF programs attached to it ("<attach type> <name> id <id>"); undefined without bpftool. */
  readonly cgroupBpf: ReadonlyMap<string, readonly string[]>;
  /** Per bpffs mount: the names pinned at its top level outside `kl-…`. */
  readonly bpffsPins: ReadonlyMap<string, readonly string[]>;
  /** The host mount namespace's mounts ("<mount point> <fstype>"), but the lab's own (kl-…) and those the machine's own services make. */
  readonly mounts: ReadonlySet<string>;
  /** Addresses of the host network namespace's interfaces (not kl-…): "<if> <family> <address>/<prefix>"; undefined without `ip`. */
  readonly addresses?: ReadonlySet<string>;
  /** Routes of every table of the host network namespace (not via kl-… interfaces); undefined without `ip`. */
  readonly routes?: ReadonlySet<string>;
  /** The nftables ruleset as `nft list ruleset` prints it; undefined without nft. */
  readonly nftRuleset?: string;
  /** ETC_FILES and the entries of ETC_DIRS → sha256 of the content ("absent" for a missing file). */
  readonly etc: ReadonlyMap<string, string>;
  /**
   * IPC objects of the host's IPC namespace that root made ("shm <id> <key>", "sem …", "msg …", "mqueue <name>"):
   * an uncontained lab's program runs as root, a contained one in an IPC namespace of its own; other users' objects
   * (a desktop's shared memory) come and go on their own and are not compared. Undefined where none can be read.
   */
  readonly ipc?: ReadonlySet<string>;
}

export interface HostGuardOptions {
  /** Root of the sysctl tree (a fake tree in a unit test). Default /proc/sys. */
  readonly sysctlRoot?: string;
  /** The mountinfo text to find cgroup mounts in. Default: /proc/self/mountinfo. */
  readonly mountinfo?: string;
  /** Interfaces as `ip -j -d link show` prints them (a unit test); default: run it. */
  readonly ipLinkJson?: string;
  readonly hostname?: string;
  /** `bpftool -j cgroup show <dir>` output per cgroup2 root (a unit test); default: run it. */
  readonly cgroupBpfJson?: (dir: string) => string | undefined;
  /** `ip -j addr show` output (a unit test); default: run it. */
  readonly ipAddrJson?: string;
  /** `ip -j route show table all` and the same with -6, concatenated as two JSON arrays on two lines (a unit test). */
  readonly ipRouteJson?: string;
  /** `nft list ruleset` output (a unit test); default: run it. */
  readonly nftRuleset?: string;
  /** Where ETC_FILES live (a fake tree in a unit test). Default /etc. */
  readonly etcRoot?: string;
  /** Whether the run of a `kl-<run>-…` name is live (a unit test); default: run-state's runIsLive. */
  readonly runIsLive?: (id: string) => boolean;
  /** Where the System V IPC tables are (a fake dir in a unit test). Default /proc/sysvipc. */
  readonly sysvipcRoot?: string;
  /** The POSIX message queue file system (a fake dir in a unit test). Default /dev/mqueue. */
  readonly mqueueDir?: string;
}

const SYSV_IDS = { shm: 'shmid', sem: 'semid', msg: 'msqid' } as const;

/** /proc/sysvipc/{shm,sem,msg} and /dev/mqueue → the objects root made ("<kind> <id> <key>", "mqueue <name>"). */
export function readRootIpc(sysvipcRoot = '/proc/sysvipc', mqueueDir = '/dev/mqueue'): Set<string> | undefined {
  const out = new Set<string>();
  let read = false;
  for (const [kind, idColumn] of Object.entries(SYSV_IDS)) {
    const text = readTrimmed(join(sysvipcRoot, kind));
    if (text === undefined) continue;
    read = true;
    const [header = '', ...rows] = text.split('\n');
    const cols = header.trim().split(/\s+/);
    const [id, key, cuid] = [idColumn, 'key', 'cuid'].map((c) => cols.indexOf(c));
    if (id! < 0 || key! < 0 || cuid! < 0) continue;
    for (const row of rows) {
      const f = row.trim().split(/\s+/);
      if (f[cuid!] === '0') out.add(`${kind} ${f[id!]} ${f[key!]}`);
    }
  }
  try {
    for (const name of readdirSync(mqueueDir)) if (statSync(join(mqueueDir, name)).uid === 0) out.add(`mqueue ${name}`);
    read = true;
  } catch { /* not mounted */ }
  return read ? out : undefined;
}

/**
 * A mount of a live run of the labs: a path component named `kl-<run>-…`
 * (a lab's temp dir, cgroup2 or bpffs mount) whose run is still going. A
 * mount at some other path that merely contains "/kl-", or named for a run
 * that is not live, is the host's: a program cannot hide a mount behind the
 * prefix (issue #29).
 */
export function isLiveLabPath(path: string, live: (id: string) => boolean = runIsLive): boolean {
  return path.split('/').some((c) => { const m = /^kl-([0-9a-z]+)-/.exec(c); return Boolean(m && live(m[1]!)); });
}

function tool(cmd: string, args: readonly string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** "<if> <family> <address>/<prefix>" for each address of `ip -j addr show` output, but on kl-… interfaces. */
export function parseIpAddrs(json: string): Set<string> {
  const out = new Set<string>();
  let rows: unknown;
  try { rows = JSON.parse(json); } catch { return out; }
  if (!Array.isArray(rows)) return out;
  for (const row of rows as { ifname?: string; addr_info?: { family?: string; local?: string; prefixlen?: number }[] }[]) {
    if (!row.ifname || row.ifname.startsWith(LAB_PREFIX)) continue;
    for (const a of row.addr_info ?? []) if (a.local) out.add(`${row.ifname} ${a.family ?? '?'} ${a.local}/${a.prefixlen ?? '?'}`);
  }
  return out;
}

/** One string per route of `ip -j route` output (one JSON array per line), but those through kl-… interfaces. */
export function parseIpRoutes(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    let rows: unknown;
    try { rows = JSON.parse(line); } catch { continue; }
    if (!Array.isArray(rows)) continue;
    for (const r of rows as Record<string, unknown>[]) {
      const dev = String(r.dev ?? '');
      if (dev.startsWith(LAB_PREFIX)) continue;
      out.add([`table ${String(r.table ?? 'main')}`, String(r.type ?? 'unicast'), String(r.dst ?? '?'), r.gateway ? `via ${String(r.gateway)}` : '', dev ? `dev ${dev}` : '', r.metric !== undefined ? `metric ${String(r.metric)}` : '']
        .filter(Boolean).join(' '));
    }
  }
  return out;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex').slice(0, 16);

function readEtc(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of ETC_FILES) {
    try { out.set(f, sha(readFileSync(join(root, f)))); } catch { out.set(f, 'absent'); }
  }
  for (const d of ETC_DIRS) {
    let names: string[] = [];
    try { names = readdirSync(join(root, d)).sort(); } catch { continue; }
    for (const n of names) {
      const rel = `${d}/${n}`;
      try { out.set(rel, statSync(join(root, rel)).isFile() ? sha(readFileSync(join(root, rel))) : 'dir'); } catch { out.set(rel, 'unreadable'); }
    }
  }
  return out;
}

function readTrimmed(path: string): string | undefined {
  try { return readFileSync(path, 'utf8').trim(); } catch { return undefined; }
}

function walkSysctls(root: string, rel: string, out: Map<string, string>): void {
  let names: string[];
  try { names = readdirSync(join(root, rel)); } catch { return; }
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    if (VOLATILE_SYSCTLS.some((re) => re.test(r))) continue;
    const path = join(root, r);
    let st;
    try { st = statSync(path); } catch { continue; }
    if (st.isDirectory()) walkSysctls(root, r, out);
    // Owner-writable and owner-readable: a setting, not a statistic.
    else if ((st.mode & 0o600) === 0o600) {
      const v = readTrimmed(path);
      if (v !== undefined) out.set(r, v);
    }
  }
}

/** Interfaces from `ip -j -d link show` output: mtu, up, address, master, qdisc, XDP program id. */
export function parseIpLinks(json: string): Map<string, HostLink> {
  const out = new Map<string, HostLink>();
  let rows: unknown;
  try { rows = JSON.parse(json); } catch { return out; }
  if (!Array.isArray(rows)) return out;
  for (const row of rows as Record<string, unknown>[]) {
    const name = String(row.ifname ?? '');
    if (!name) continue;
    const flags = Array.isArray(row.flags) ? (row.flags as string[]) : [];
    const xdp = row.xdp as { prog?: { id?: number }; attached?: { prog?: { id?: number } }[] } | undefined;
    const xdpId = xdp?.prog?.id ?? xdp?.attached?.find((a) => a.prog?.id)?.prog?.id ?? (xdp ? -1 : 0);
    out.set(name, {
      mtu: Number(row.mtu ?? 0), up: flags.includes('UP'), address: String(row.address ?? ''),
      master: String(row.master ?? ''), qdisc: String(row.qdisc ?? ''), xdp: xdpId,
    });
  }
  return out;
}

function readLinks(opts: HostGuardOptions): Map<string, HostLink> | undefined {
  if (opts.ipLinkJson !== undefined) return parseIpLinks(opts.ipLinkJson);
  const json = tool('ip', ['-j', '-d', 'link', 'show']);
  return json === undefined ? undefined : parseIpLinks(json);
}

/** Programs attached to one cgroup, from `bpftool -j cgroup show <dir>` (empty output: none). */
export function parseCgroupBpf(json: string): string[] {
  if (!json.trim()) return [];
  let rows: unknown;
  try { rows = JSON.parse(json); } catch { return []; }
  if (!Array.isArray(rows)) return [];
  return (rows as Record<string, unknown>[]).map((r) => `${String(r.attach_type ?? '?')} ${String(r.name ?? '')} id ${String(r.id ?? '?')}`).sort();
}

function bpftoolCgroupShow(dir: string): string | undefined {
  return tool('bpftool', ['-j', 'cgroup', 'show', dir]);
}

/** Read what the guard compares. ~1300 sysctl files and one `ip` call: tens of milliseconds. */
export function snapshotHost(opts: HostGuardOptions = {}): HostSnapshot {
  const sysctls = new Map<string, string>();
  walkSysctls(opts.sysctlRoot ?? '/proc/sys', '', sysctls);
  let mountinfo = opts.mountinfo;
  if (mountinfo === undefined) mountinfo = readTrimmed('/proc/self/mountinfo') ?? '';
  const cgroupDirs = new Map<string, string[]>();
  const cgroupKnobs = new Map<string, string>();
  for (const m of parseCgroupMounts(mountinfo)) {
    // A lab's own cgroup2 mount (kl-… in its path) comes and goes with the lab.
    if (m.mountPoint.includes(`/${LAB_PREFIX}`) || cgroupDirs.has(m.mountPoint)) continue;
    let names: string[] = [];
    try {
      names = readdirSync(m.mountPoint, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith(LAB_PREFIX)).map((d) => d.name).sort();
    } catch { continue; }
    cgroupDirs.set(m.mountPoint, names);
    for (const dir of [m.mountPoint, ...names.map((n) => join(m.mountPoint, n))]) {
      for (const knob of CGROUP_KNOBS) {
        const v = readTrimmed(join(dir, knob));
        if (v !== undefined) cgroupKnobs.set(join(dir, knob), v);
      }
    }
  }
  const cgroupBpf = new Map<string, string[]>();
  for (const m of parseCgroupMounts(mountinfo)) {
    if (m.version !== 2 || m.mountPoint.includes(`/${LAB_PREFIX}`)) continue;
    const out = (opts.cgroupBpfJson ?? bpftoolCgroupShow)(m.mountPoint);
    if (out !== undefined) cgroupBpf.set(m.mountPoint, parseCgroupBpf(out));
  }
  const entries = parseMountinfo(mountinfo).filter((e) => e.mountPoint && !isLiveLabPath(e.mountPoint, opts.runIsLive));
  const bpffsPins = new Map<string, string[]>();
  for (const { mountPoint: mp } of entries.filter((e) => e.fsType === 'bpf')) {
    if (bpffsPins.has(mp)) continue;
    try { bpffsPins.set(mp, readdirSync(mp).filter((n) => !n.startsWith(LAB_PREFIX)).sort()); } catch { /* unreadable */ }
  }
  const mounts = new Set(entries.filter((e) => !SERVICE_MOUNTS.some((re) => re.test(e.mountPoint))).map((e) => `${e.mountPoint} ${e.fsType}`));
  const addrJson = opts.ipAddrJson ?? tool('ip', ['-j', 'addr', 'show']);
  const routeText = opts.ipRouteJson ?? [tool('ip', ['-j', 'route', 'show', 'table', 'all']), tool('ip', ['-j', '-6', 'route', 'show', 'table', 'all'])]
    .map((t) => (t ?? '').replace(/\n/g, ' ')).join('\n');
  const nftRuleset = opts.nftRuleset ?? tool('nft', ['list', 'ruleset']);
  return {
    hostname: opts.hostname ?? hostname(), sysctls, links: readLinks(opts), cgroupDirs, cgroupKnobs, cgroupBpf, bpffsPins, mounts,
    ...(addrJson !== undefined ? { addresses: parseIpAddrs(addrJson) } : {}),
    ...(routeText.trim() ? { routes: parseIpRoutes(routeText) } : {}),
    ...(nftRuleset !== undefined ? { nftRuleset } : {}),
    etc: readEtc(opts.etcRoot ?? '/etc'),
    ...(() => { const ipc = readRootIpc(opts.sysvipcRoot, opts.mqueueDir); return ipc ? { ipc } : {}; })(),
  };
}

/** One difference: what changed, and the command that puts it back. */
export interface HostChange {
  readonly what: string;
  readonly undo: string;
}

const q = (s: string) => (/^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * Every difference between two snapshots that a lab could have made. Only
 * objects present in both are compared for values; interfaces and top-level
 * cgroups that appeared or vanished are changes in themselves.
 */
export function hostChanges(before: HostSnapshot, after: HostSnapshot): HostChange[] {
  const out: HostChange[] = [];
  if (before.hostname !== after.hostname) out.push({ what: `hostname ${before.hostname} -> ${after.hostname}`, undo: `hostname ${q(before.hostname)}` });
  for (const [key, was] of before.sysctls) {
    const now = after.sysctls.get(key);
    if (now !== undefined && now !== was) out.push({ what: `sysctl ${key.replace(/\//g, '.')} ${was} -> ${now}`, undo: `sysctl -w ${q(`${key.replace(/\//g, '.')}=${was}`)}` });
  }
  if (before.links && after.links) {
    for (const [name, was] of before.links) {
      if (name.startsWith(LAB_PREFIX)) continue; // a lab's own (another lab's, in a concurrent nested run)
      const now = after.links.get(name);
      if (!now) { out.push({ what: `interface ${name} of the host's network namespace is gone`, undo: `(recreate ${name}: it was ${was.up ? 'up' : 'down'}, mtu ${was.mtu})` }); continue; }
      if (now.xdp !== was.xdp) out.push({ what: `interface ${name}: XDP program ${was.xdp || 'none'} -> ${now.xdp || 'none'}`, undo: `ip link set dev ${q(name)} xdp off` });
      if (now.up !== was.up) out.push({ what: `interface ${name}: ${was.up ? 'up' : 'down'} -> ${now.up ? 'up' : 'down'}`, undo: `ip link set dev ${q(name)} ${was.up ? 'up' : 'down'}` });
      if (now.mtu !== was.mtu) out.push({ what: `interface ${name}: mtu ${was.mtu} -> ${now.mtu}`, undo: `ip link set dev ${q(name)} mtu ${was.mtu}` });
      if (now.address !== was.address) out.push({ what: `interface ${name}: address ${was.address} -> ${now.address}`, undo: `ip link set dev ${q(name)} address ${was.address}` });
      if (now.master !== was.master) out.push({ what: `interface ${name}: master ${was.master || 'none'} -> ${now.master || 'none'}`, undo: was.master ? `ip link set dev ${q(name)} master ${q(was.master)}` : `ip link set dev ${q(name)} nomaster` });
      if (now.qdisc !== was.qdisc) out.push({ what: `interface ${name}: qdisc ${was.qdisc} -> ${now.qdisc}`, undo: `tc qdisc del dev ${q(name)} root` });
    }
    for (const name of after.links.keys()) {
      if (!before.links.has(name) && !name.startsWith(LAB_PREFIX)) out.push({ what: `interface ${name} appeared in the host's network namespace (both ends of a lab's veth belong in lab namespaces)`, undo: `ip link del dev ${q(name)}` });
    }
  }
  for (const [mount, was] of before.cgroupDirs) {
    const now = after.cgroupDirs.get(mount);
    if (!now) continue;
    for (const n of now) if (!was.includes(n)) out.push({ what: `cgroup ${join(mount, n)} was made outside the lab's kl-… groups`, undo: `rmdir ${q(join(mount, n))}` });
    for (const n of was) if (!now.includes(n)) out.push({ what: `cgroup ${join(mount, n)} of the host is gone`, undo: `(recreate ${join(mount, n)})` });
  }
  for (const [file, was] of before.cgroupKnobs) {
    const now = after.cgroupKnobs.get(file);
    if (now !== undefined && now !== was) out.push({ what: `${file} ${JSON.stringify(was)} -> ${JSON.stringify(now)} (a host cgroup, not the lab's)`, undo: `echo ${q(was.split('\n')[0] ?? '')} > ${q(file)}` });
  }
  for (const m of after.mounts) {
    if (!before.mounts.has(m)) {
      const [mp, type] = m.split(' ');
      out.push({ what: `${type} mounted at ${mp} in the host's mount namespace (a lab mounts in a mount namespace of its own, or under its kl-<run>-… temp dir)`, undo: `umount ${q(mp ?? '')}` });
    }
  }
  for (const m of before.mounts) {
    if (!after.mounts.has(m)) {
      const [mp, type] = m.split(' ');
      out.push({ what: `the host's ${type} mount at ${mp} is gone`, undo: `(mount ${type} at ${mp} again)` });
    }
  }
  for (const [root, was] of before.cgroupBpf) {
    const now = after.cgroupBpf.get(root);
    if (!now) continue;
    for (const p of now) if (!was.includes(p)) out.push({ what: `BPF program ${p} attached to the host's cgroup ${root} (it acts on every process of the machine; attach to a kl-… cgroup of the lab)`, undo: `bpftool cgroup detach ${q(root)} ${p.split(' ')[0]} id ${p.split(' ').pop()}` });
  }
  for (const [mp, was] of before.bpffsPins) {
    const now = after.bpffsPins.get(mp);
    if (!now) continue;
    for (const n of now) if (!was.includes(n)) out.push({ what: `${join(mp, n)} was pinned in the host's bpffs (a pin keeps its program, map or link alive after the lab)`, undo: `rm -r ${q(join(mp, n))}` });
  }
  if (before.addresses && after.addresses) {
    for (const a of after.addresses) if (!before.addresses.has(a)) { const [dev, , addr] = a.split(' '); out.push({ what: `address ${addr} added to ${dev} of the host's network namespace`, undo: `ip addr del ${addr} dev ${q(dev ?? '')}` }); }
    for (const a of before.addresses) if (!after.addresses.has(a)) { const [dev, , addr] = a.split(' '); out.push({ what: `address ${addr} of ${dev} of the host's network namespace is gone`, undo: `ip addr add ${addr} dev ${q(dev ?? '')}` }); }
  }
  if (before.routes && after.routes) {
    // "table T TYPE DST rest…" → "[TYPE ]DST table T rest…", as `ip route` takes it.
    const ipRoute = (r: string) => { const [, t, type, dst, ...rest] = r.split(' '); return [type === 'unicast' ? '' : type, dst, `table ${t}`, ...rest].filter(Boolean).join(' '); };
    for (const r of after.routes) if (!before.routes.has(r)) out.push({ what: `route added in the host's network namespace: ${r}`, undo: `ip route del ${ipRoute(r)}` });
    for (const r of before.routes) if (!after.routes.has(r)) out.push({ what: `route of the host's network namespace is gone: ${r}`, undo: `ip route add ${ipRoute(r)}` });
  }
  if (before.nftRuleset !== undefined && after.nftRuleset !== undefined && before.nftRuleset !== after.nftRuleset) {
    const tables = (t: string) => new Set([...t.matchAll(/^table (\S+) (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`));
    const was = tables(before.nftRuleset), now = tables(after.nftRuleset);
    const added = [...now].filter((t) => !was.has(t));
    out.push({
      what: `the host's nftables ruleset changed${added.length ? ` (table${added.length > 1 ? 's' : ''} ${added.join(', ')} added)` : ''}: compare \`nft list ruleset\``,
      undo: added.length ? added.map((t) => `nft delete table ${t}`).join('; ') : '(put the ruleset back: nft -f <the saved ruleset>)',
    });
  }
  for (const [f, was] of before.etc) {
    const now = after.etc.get(f);
    if (now === undefined) { out.push({ what: `/etc/${f} is gone`, undo: `(restore /etc/${f})` }); continue; }
    if (now !== was) out.push({ what: was === 'absent' ? `/etc/${f} was created` : now === 'absent' ? `/etc/${f} was removed` : `/etc/${f} was changed`, undo: was === 'absent' ? `rm ${q(`/etc/${f}`)}` : `(restore /etc/${f} from a backup or its package: dpkg -S /etc/${f})` });
  }
  for (const f of after.etc.keys()) if (!before.etc.has(f)) out.push({ what: `/etc/${f} was created`, undo: `rm -r ${q(`/etc/${f}`)}` });
  if (before.ipc && after.ipc) {
    const names = { shm: ['System V shared memory segment', '-m'], sem: ['System V semaphore set', '-s'], msg: ['System V message queue', '-q'] } as const;
    for (const o of after.ipc) {
      if (before.ipc.has(o)) continue;
      const [kind, id, key] = o.split(' ') as [keyof typeof names | 'mqueue', string, string?];
      out.push(kind === 'mqueue'
        ? { what: `POSIX message queue /${id} left in the host's IPC namespace (it outlives every process until removed)`, undo: `rm ${q(`/dev/mqueue/${id}`)}` }
        : { what: `${names[kind][0]} ${id} (key ${key}) left by root in the host's IPC namespace (it outlives every process until removed)`, undo: `ipcrm ${names[kind][1]} ${id}` });
    }
  }
  return out;
}

/** The failure message: every change, each with its undo command. */
export function hostChangeMessage(where: string, changes: readonly HostChange[]): string {
  return `${where} changed the host, which a lab must leave exactly as it found it (only its own kl-… namespaces, cgroups and mounts are its to change):\n` +
    changes.map((c) => `  ${c.what}\n    undo: ${c.undo}`).join('\n');
}

/**
 * A snapshot as JSON text and back (Maps and Sets as entry arrays): the labs
 * project's setup file leaves the host as the last lab file left it in the
 * run's state directory, and the reporter (vitest's main process) compares
 * once more after the last file, when a process left behind could have
 * changed the host after the file's own check.
 */
export function snapshotToJson(s: HostSnapshot): string {
  return JSON.stringify(s, (_k, v: unknown) => (v instanceof Map ? { $map: [...v] } : v instanceof Set ? { $set: [...v] } : v));
}

export function snapshotFromJson(text: string): HostSnapshot {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v && typeof v === 'object' && '$map' in v) return new Map((v as { $map: [string, unknown][] }).$map);
    if (v && typeof v === 'object' && '$set' in v) return new Set((v as { $set: unknown[] }).$set);
    return v;
  }) as HostSnapshot;
}

/** Where the setup file leaves the host as the last lab file left it (the run's state directory). */
export const LAST_HOST_FILE = 'host-after-last-lab.json';

/** LABS_HOST_GUARD=0 turns the guard off (a machine whose own work changes these while the labs run). */
export function hostGuardEnabled(): boolean {
  return process.env.LABS_HOST_GUARD !== '0';
}
