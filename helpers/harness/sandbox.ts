/**
 * The sandbox every process a lab starts through the harness runs in (`run`,
 * `startBackground`): a cgroup of the run, `kl-<run>-sb…`, with a memory
 * limit (swap closed where the kernel accounts it) and a pids limit, joined
 * before the program's first instruction, so that `setsid()`, double forks
 * and daemons stay inside and die with it.
 *
 * - v2: one directory `<root>/kl-<run>-sb…` with memory.max, memory.swap.max,
 *   pids.max; killed through `cgroup.kill`.
 * - v1 (this host): one directory per hierarchy — memory, pids and freezer
 *   (found in /proc/self/mountinfo); killed by freezing, SIGKILLing every
 *   listed task and thawing.
 *
 * The program is started as `setpriv --pdeathsig KILL sh -c '<join cgroups>;
 * exec "$@"' kl-sandbox <cgroup.procs…> -- file args…`: the shell writes its
 * own pid into each cgroup.procs, then becomes the program (same pid), which
 * also gets SIGKILL when the harness process that started it dies.
 *
 * LABS_SANDBOX=0 turns the sandbox off (debugging, or measuring its cost).
 * LABS_MEMORY_MIB / LABS_PIDS_MAX change the defaults for a whole run; a lab
 * raises them for one command with `limits` in RunOptions.
 */
import { mkdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { v1ControllerDir } from './cgroup-mounts.js';
import { parseKeyed, pidsIn } from './cgroup-files.js';
import { destroyCgroup, killCgroupMembers, type Destroyed } from './destroy.js';
import { systemTool } from './programs.js';
import { uniqueName } from './run-state.js';

export interface SandboxLimits {
  /** Memory limit in MiB (page cache counts too). Default: half the machine's memory, between 1024 and 4096 MiB. */
  readonly memoryMiB?: number;
  /** Most processes (threads count) at once. Default 512. */
  readonly pids?: number;
}

const MiB = 1024 * 1024;

/** The default limits: LABS_MEMORY_MIB / LABS_PIDS_MAX, else half the RAM (1–4 GiB) and 512 tasks. */
export function defaultLimits(): Required<SandboxLimits> {
  const envMem = Number(process.env.LABS_MEMORY_MIB);
  const envPids = Number(process.env.LABS_PIDS_MAX);
  const half = Math.floor(totalmem() / MiB / 2);
  return {
    memoryMiB: envMem > 0 ? envMem : Math.min(4096, Math.max(1024, half)),
    pids: envPids > 0 ? envPids : 512,
  };
}

export interface SandboxUsage {
  /** Highest memory charged, bytes (v1 memory.max_usage_in_bytes, v2 memory.peak); undefined if unknown. */
  readonly memoryPeakBytes?: number;
  /** Tasks the OOM killer killed inside the sandbox. */
  readonly oomKills: number;
  /** Forks refused because pids.max was reached. */
  readonly pidsMaxHits: number;
  readonly pidsCurrent: number;
}

export interface Sandbox {
  readonly name: string;
  readonly version: 1 | 2;
  /** The cgroup directories (one on v2; memory, pids, freezer on v1). */
  readonly dirs: readonly string[];
  readonly limits: Required<SandboxLimits>;
  /** The argv that starts `file args` inside the sandbox. */
  wrap(file: string, args: readonly string[]): { file: string; args: string[] };
  usage(): SandboxUsage;
  /** The limit the program hit, with the figure ("memory: killed at 1021 MiB (limit 1024 MiB)"), if any. */
  limitHit(): string | undefined;
  /** Processes still inside. */
  members(): number[];
  /** Kill everything inside (cgroup.kill, or freeze + SIGKILL + thaw); returns what stayed. */
  kill(): number[];
  /** Kill and remove the cgroup. Idempotent. */
  destroy(): Destroyed;
}

export interface SandboxOptions {
  /** The cgroup root. Default /sys/fs/cgroup. */
  readonly base?: string;
  /** Force an interface (unit tests on fake trees). Default: probed. */
  readonly version?: 1 | 2;
  /** A mountinfo text to find v1 hierarchies in (tests). Default /proc/self/mountinfo. */
  readonly mountinfo?: string;
  /** Wrap with setpriv --pdeathsig when available. Default true. */
  readonly pdeathsig?: boolean;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;
const JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || { echo "kl-sandbox: cannot join cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@"';
const SETPRIV = systemTool('setpriv');

const readOr = (p: string, fallback = '') => { try { return readFileSync(p, 'utf8'); } catch { return fallback; } };
const keyed = (text: string, key: string) => parseKeyed(text)[key] ?? 0;

interface Backend {
  readonly version: 1 | 2;
  /** Where to make the sandbox per role. */
  readonly memory?: string;
  readonly pids?: string;
  readonly freezer?: string;
  readonly v2root?: string;
  readonly detail: string;
}

let probed: Backend | null | undefined;

/** Which cgroup interface can host sandboxes here (undefined: none, the harness falls back to process groups). */
export function sandboxBackend(options: SandboxOptions = {}): Backend | undefined {
  const fresh = options.base !== undefined || options.version !== undefined || options.mountinfo !== undefined;
  if (!fresh && probed !== undefined) return probed ?? undefined;
  const base = options.base ?? '/sys/fs/cgroup';
  let found: Backend | undefined;
  const isCgroup2 = (p: string) => { try { return statfsSync(p).type === CGROUP2_SUPER_MAGIC; } catch { return false; } };
  if (options.version === 2 || (options.version === undefined && isCgroup2(base))) {
    const enabled = readOr(join(base, 'cgroup.subtree_control')).trim().split(/\s+/);
    if (enabled.includes('memory') || enabled.includes('pids') || options.version === 2) {
      found = { version: 2, v2root: base, detail: `v2 at ${base} (subtree_control: ${enabled.join(' ') || 'none'})` };
    }
  }
  if (!found && options.version !== 2) {
    const memory = v1ControllerDir('memory', base, 'memory.limit_in_bytes', options.mountinfo);
    const pids = v1ControllerDir('pids', base, 'pids.max', options.mountinfo);
    const freezer = v1ControllerDir('freezer', base, undefined, options.mountinfo);
    if (memory || pids || freezer) found = { version: 1, memory, pids, freezer, detail: `v1 (memory ${memory ?? 'absent'}, pids ${pids ?? 'absent'}, freezer ${freezer ?? 'absent'})` };
  }
  if (!fresh) probed = found ?? null;
  return found;
}

/** Is the sandbox on for this process? (root, a cgroup backend, LABS_SANDBOX not 0) */
export function sandboxEnabled(): boolean {
  return process.env.LABS_SANDBOX !== '0' && process.getuid?.() === 0 && Boolean(sandboxBackend());
}

function write(dir: string, file: string, value: string): boolean {
  try { writeFileSync(join(dir, file), value); return true; } catch { return false; }
}

/** Make a sandbox cgroup with `limits` (merged over the defaults). Throws if the directories cannot be made. */
export function makeSandbox(limits: SandboxLimits = {}, options: SandboxOptions = {}): Sandbox {
  const backend = sandboxBackend(options);
  if (!backend) throw new Error('no cgroup hierarchy for a sandbox (neither cgroup2 with memory/pids nor v1 memory/pids/freezer)');
  const lim = { ...defaultLimits(), ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) } as Required<SandboxLimits>;
  const name = uniqueName('sb');
  const made: string[] = [];
  const mk = (parent: string | undefined) => {
    if (!parent) return undefined;
    const d = join(parent, name);
    try { mkdirSync(d); } catch (e) {
      made.reverse().forEach((m) => { try { rmdirSync(m); } catch { /* best effort */ } });
      throw e;
    }
    made.push(d);
    return d;
  };
  let memDir: string | undefined;
  let pidsDir: string | undefined;
  let freezerDir: string | undefined;
  if (backend.version === 2) {
    memDir = pidsDir = mk(backend.v2root);
  } else {
    memDir = mk(backend.memory);
    pidsDir = mk(backend.pids);
    freezerDir = mk(backend.freezer);
  }
  const bytes = String(lim.memoryMiB * MiB);
  if (backend.version === 2) {
    write(memDir!, 'memory.max', bytes);
    write(memDir!, 'memory.swap.max', '0');
    write(pidsDir!, 'pids.max', String(lim.pids));
  } else {
    if (memDir) {
      write(memDir, 'memory.limit_in_bytes', bytes);
      write(memDir, 'memory.memsw.limit_in_bytes', bytes); // absent without swap accounting: then there is no swap to close
    }
    if (pidsDir) write(pidsDir, 'pids.max', String(lim.pids));
  }
  const dirs = [...new Set(made)];
  const usage = (): SandboxUsage => {
    if (backend.version === 2) {
      const peak = Number(readOr(join(memDir!, 'memory.peak')).trim());
      return {
        memoryPeakBytes: peak > 0 ? peak : undefined,
        oomKills: keyed(readOr(join(memDir!, 'memory.events')), 'oom_kill'),
        pidsMaxHits: keyed(readOr(join(pidsDir!, 'pids.events')), 'max'),
        pidsCurrent: Number(readOr(join(pidsDir!, 'pids.current'), '0').trim()),
      };
    }
    const peak = memDir ? Number(readOr(join(memDir, 'memory.max_usage_in_bytes')).trim()) : NaN;
    return {
      memoryPeakBytes: peak > 0 ? peak : undefined,
      oomKills: memDir ? keyed(readOr(join(memDir, 'memory.oom_control')), 'oom_kill') : 0,
      pidsMaxHits: pidsDir ? keyed(readOr(join(pidsDir, 'pids.events')), 'max') : 0,
      pidsCurrent: pidsDir ? Number(readOr(join(pidsDir, 'pids.current'), '0').trim()) : 0,
    };
  };
  let destroyed: Destroyed | undefined;
  const sandbox: Sandbox = {
    name,
    version: backend.version,
    dirs,
    limits: lim,
    wrap(file, args) {
      const procs = dirs.map((d) => join(d, 'cgroup.procs'));
      const inner = ['-c', JOIN_SCRIPT, 'kl-sandbox', ...procs, '--', file, ...args];
      if (SETPRIV && options.pdeathsig !== false) return { file: SETPRIV, args: ['--pdeathsig', 'KILL', '/bin/sh', ...inner] };
      return { file: '/bin/sh', args: inner };
    },
    usage,
    limitHit() {
      const u = usage();
      if (u.oomKills > 0) {
        const at = u.memoryPeakBytes ? `${Math.round(u.memoryPeakBytes / MiB)} MiB` : 'the limit';
        return `memory: killed at ${at} (limit ${lim.memoryMiB} MiB; ${u.oomKills} process${u.oomKills > 1 ? 'es' : ''} killed by the OOM killer)`;
      }
      if (u.pidsMaxHits > 0) return `pids: ${lim.pids} reached (${u.pidsMaxHits} fork${u.pidsMaxHits > 1 ? 's' : ''} refused)`;
      return undefined;
    },
    members: () => [...new Set(dirs.flatMap(pidsIn))],
    kill: () => killCgroupMembers(dirs),
    destroy() {
      if (!destroyed?.gone) destroyed = destroyCgroup(dirs);
      return destroyed;
    },
  };
  return sandbox;
}
