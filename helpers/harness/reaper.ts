/**
 * Reaping what killed runs left behind. Every resource the suite makes is
 * named `kl-<run>-…`; a run is live while its owner process runs. This
 * module finds resources of runs that are not live (or of one given run, at
 * its teardown) and releases them: process groups the run recorded (checked
 * by start time, never by name), network namespaces (after killing the
 * processes inside them), interfaces, cgroups (after killing their
 * members), mounts, pinned BPF objects, temp dirs and the keys a contained
 * program linked into its uid's keyrings. Synchronous, so that a
 * signal handler can call it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { destroyBpffsPin, destroyCgroup, destroyLink, destroyMount, destroyNetns, destroyProcessGroup, destroyTempDir, destroyTraceInstance, type Destroyed } from './destroy.js';
import { parseCgroupMounts } from './cgroup-mounts.js';
import { programUid } from './contain.js';
import { clearKeyrings, clearKeyringsCommand, keysLeft } from './keyrings.js';
import { STATE_DIR } from './paths.js';
import { RESOURCE_PREFIX, processStartTime, runDir, runIsLive } from './run-state.js';

const RUN_OF = new RegExp(`(?:^|/)${RESOURCE_PREFIX}([0-9a-f]{6})(?:-|$)`);

function sh(file: string, args: string[]): string {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout : '';
}

export interface Leftover {
  readonly kind: 'process-group' | 'netns' | 'link' | 'cgroup' | 'trace-instance' | 'mount' | 'bpffs' | 'tempdir' | 'keys';
  readonly name: string;
  readonly run: string;
}

function recordedGroups(run: string): Leftover[] {
  const file = join(runDir(run), 'pgids');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((line) => {
    const [pgid, start] = line.split(' ');
    return processStartTime(Number(pgid)) === start ? [{ kind: 'process-group' as const, name: `${pgid} ${line.split(' ').slice(2).join(' ')}`, run }] : [];
  });
}

function netnsNames(): string[] {
  return sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(RESOURCE_PREFIX));
}

function linkNames(): string[] {
  return sh('ip', ['-o', 'link', 'show']).split('\n')
    .map((l) => l.match(/^\d+:\s+([^:@\s]+)/)?.[1] ?? '').filter((n) => n.startsWith(RESOURCE_PREFIX));
}

/**
 * cgroup directories named kl-… at the top of every cgroup mount in
 * /proc/self/mountinfo (the v2 tree, each v1 hierarchy), plus the old guess
 * (/sys/fs/cgroup/<dir>/kl-…) for trees the mount table does not show.
 */
function cgroupDirs(base = '/sys/fs/cgroup'): string[] {
  const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return false; } };
  const list = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };
  let mounts: string[] = [];
  try { mounts = parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8')).map((m) => m.mountPoint); } catch { /* no mountinfo */ }
  const top = list(base).map((n) => join(base, n)).filter(isDir);
  const roots = [...new Set([base, ...mounts, ...top.filter((d) => !basename(d).startsWith(RESOURCE_PREFIX))])];
  const candidates = roots.flatMap((d) => list(d).map((n) => join(d, n)));
  return [...new Set(candidates)].filter((p) => basename(p).startsWith(RESOURCE_PREFIX) && isDir(p));
}

function mountPoints(): string[] {
  try {
    return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
      .map((p) => p.replace(/\\040/g, ' ')).filter((p) => RUN_OF.test(p));
  } catch { return []; }
}

function bpffsPins(): string[] {
  try { return readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(RESOURCE_PREFIX)).map((n) => join('/sys/fs/bpf', n)); } catch { return []; }
}

/** tracefs instances (private ring buffers) named kl-… */
function traceInstances(): string[] {
  const dir = '/sys/kernel/tracing/instances';
  try { return readdirSync(dir).filter((n) => n.startsWith(RESOURCE_PREFIX)).map((n) => join(dir, n)); } catch { return []; }
}

function tempDirs(): string[] {
  try { return readdirSync(tmpdir()).filter((n) => n.startsWith(RESOURCE_PREFIX)).map((n) => join(tmpdir(), n)); } catch { return []; }
}

/** Keys a contained program of `run` left (its uid owns more than its two keyrings: keyrings.ts): named by the uid. */
function programKeys(run: string): Leftover[] {
  const uid = programUid(run);
  const n = keysLeft(uid);
  return n ? [{ kind: 'keys', name: `uid ${uid}: ${n} key(s) beyond its keyrings`, run }] : [];
}

const uidOf = (name: string) => Number(/^uid (\d+)/.exec(name)?.[1]);

function runOf(name: string): string | undefined {
  return name.match(RUN_OF)?.[1];
}

/** Everything named by the suite that belongs to a run for which `select(run)` holds. */
export function findLeftovers(select: (run: string) => boolean): Leftover[] {
  const out: Leftover[] = [];
  const add = (kind: Leftover['kind'], name: string) => { const run = runOf(name); if (run && select(run)) out.push({ kind, name, run }); };
  let runs: string[] = [];
  try { runs = readdirSync(STATE_DIR).filter((r) => /^[0-9a-f]{6}$/.test(r)); } catch { /* none */ }
  // 256 run ids share a program uid (contain.ts programUid): a uid a live run also has is its, keys and all.
  const liveUids = new Set(runs.filter((r) => !select(r) && runIsLive(r)).map((r) => programUid(r)));
  for (const run of runs) if (select(run)) out.push(...recordedGroups(run), ...(liveUids.has(programUid(run)) ? [] : programKeys(run)));
  netnsNames().forEach((n) => add('netns', n));
  linkNames().forEach((n) => add('link', n));
  cgroupDirs().forEach((n) => add('cgroup', n));
  traceInstances().forEach((n) => add('trace-instance', n));
  mountPoints().forEach((n) => add('mount', n));
  bpffsPins().forEach((n) => add('bpffs', n));
  tempDirs().forEach((n) => add('tempdir', n));
  return out;
}

export interface Unreleased extends Leftover {
  /** Why the destroy routine could not release it (errno, tool message, members left). */
  readonly reason: string;
}

/** The command a person runs to remove one leftover by hand. */
export function removeCommand(l: Pick<Leftover, 'kind' | 'name'>): string {
  switch (l.kind) {
    case 'process-group': return `kill -KILL -- -${l.name.split(' ')[0]}`;
    case 'netns': return `ip netns del ${l.name}`;
    case 'link': return `ip link del ${l.name}`;
    case 'cgroup': return `rmdir ${l.name}   (after killing its members: cat ${l.name}/cgroup.procs)`;
    case 'trace-instance': return `rmdir ${l.name}`;
    case 'mount': return `umount ${l.name}`;
    case 'bpffs': case 'tempdir': return `rm -rf ${l.name}`;
    case 'keys': return clearKeyringsCommand(uidOf(l.name));
  }
}

/** Release the given leftovers, most dependent first, each through its kind's destroy routine. Returns what could not be released, with the reason. */
export function reap(leftovers: readonly Leftover[]): Unreleased[] {
  const order: Leftover['kind'][] = ['process-group', 'cgroup', 'netns', 'link', 'trace-instance', 'mount', 'bpffs', 'tempdir', 'keys'];
  const failed: Unreleased[] = [];
  const note = (l: Leftover, d: Destroyed) => { if (!d.gone) failed.push({ ...l, reason: d.reason ?? 'still present' }); };
  for (const kind of order) {
    const items = leftovers.filter((l) => l.kind === kind);
    if (kind === 'mount') items.sort((a, b) => b.name.length - a.name.length); // deepest first
    if (kind === 'cgroup') {
      // One cgroup is a directory per v1 hierarchy: destroy them together (the freezer one stops forks).
      const byName = new Map<string, Leftover[]>();
      for (const l of items) byName.set(basename(l.name), [...(byName.get(basename(l.name)) ?? []), l]);
      for (const group of byName.values()) {
        const d = destroyCgroup(group.map((l) => l.name));
        if (!d.gone) group.filter((l) => existsSync(l.name)).forEach((l) => note(l, d));
      }
      continue;
    }
    for (const l of items) {
      try {
        switch (kind) {
          case 'process-group': note(l, destroyProcessGroup(Number(l.name.split(' ')[0]))); break;
          case 'netns': note(l, destroyNetns(l.name)); break;
          case 'link': note(l, destroyLink(l.name)); break;
          case 'trace-instance': note(l, destroyTraceInstance(l.name)); break;
          case 'mount': note(l, destroyMount(l.name)); break;
          case 'bpffs': note(l, destroyBpffsPin(l.name)); break;
          case 'tempdir': note(l, destroyTempDir(l.name)); break;
          case 'keys': note(l, clearKeyrings(uidOf(l.name))); break;
          default: break;
        }
      } catch (e) {
        failed.push({ ...l, reason: (e as Error).message });
      }
    }
  }
  return failed;
}

export interface ReapReport {
  /** Everything found that belonged to the selected runs. */
  readonly found: Leftover[];
  /** What could not be released, by name and reason. */
  readonly failed: Unreleased[];
  /** Runs skipped because they were kept with LABS_KEEP=1 (only when `respectKept`). */
  readonly kept: string[];
}

/** A run ended with LABS_KEEP=1 leaves a `kept` file: its objects stay until a clean or the next run. */
export function runWasKept(run: string): boolean {
  return existsSync(join(runDir(run), 'kept'));
}

/**
 * Reap the leftovers of every run that is no longer live (the start of each
 * suite run, `npm run clean`), with what could not be released.
 */
export function reapStaleRunsReport(current?: string, only: (run: string) => boolean = () => true, options: StaleOptions = {}): ReapReport {
  const live = new Map<string, boolean>();
  const stale = (run: string) => {
    if (run === current || !only(run)) return false;
    if (!live.has(run)) live.set(run, runIsLive(run));
    return !live.get(run);
  };
  const grace = options.orphanGraceMs ?? ORPHAN_GRACE_MS;
  // A run this state dir has never heard of may be another's (a unit test with its own LABS_STATE_DIR, a
  // concurrent suite with another): its resources are reaped only once they are old.
  const found = findLeftovers(stale).filter((l) => existsSync(runDir(l.run)) || ageMs(l) >= grace);
  const failed = reap(found);
  // (keys that cannot be unlinked stay until reboot: reported once, not at every later run's start)
  const keepState = new Set(failed.filter((f) => f.kind !== 'keys').map((f) => f.run));
  try {
    for (const run of readdirSync(STATE_DIR)) {
      if (/^[0-9a-f]{6}$/.test(run) && stale(run) && !keepState.has(run)) rmSync(runDir(run), { recursive: true, force: true });
    }
  } catch { /* no state dir */ }
  return { found, failed, kept: [] };
}

/**
 * How old a resource of a run with no state here must be before a run's start reaps it. A run killed
 * with -9 keeps its state dir (owner, pgids), so this only delays resources of runs recorded elsewhere.
 */
export const ORPHAN_GRACE_MS = 10 * 60_000;

export interface StaleOptions {
  /** Reap resources of runs with no state dir here only when at least this old. Default ORPHAN_GRACE_MS; `npm run clean` passes 0. */
  readonly orphanGraceMs?: number;
}

/** Age of a leftover from its inode's change time; links and process groups have none here: treated as old. */
function ageMs(l: Leftover): number {
  const path = l.kind === 'netns' ? `/run/netns/${l.name}` : l.kind === 'link' || l.kind === 'process-group' ? undefined : l.name;
  if (!path) return Infinity;
  try { return Date.now() - statSync(path).ctimeMs; } catch { return Infinity; }
}

/** Reap the leftovers of every run that is no longer live (run at the start of each suite run). */
export function reapStaleRuns(current?: string, only: (run: string) => boolean = () => true, options: StaleOptions = {}): Leftover[] {
  return reapStaleRunsReport(current, only, options).found;
}

/** Reap what one run left (its teardown, or its SIGINT handler), with what could not be released. */
export function reapRunReport(run: string): ReapReport {
  const found = findLeftovers((r) => r === run);
  return { found, failed: reap(found), kept: [] };
}

/** Reap what one run left (its teardown, or its SIGINT handler). */
export function reapRun(run: string): Leftover[] {
  return reapRunReport(run).found;
}

/** Lines for a report: each leftover that could not be released, with its reason and the command that removes it. */
export function describeUnreleased(failed: readonly Unreleased[]): string {
  return failed.map((f) => `  ${f.kind} ${f.name}: ${f.reason}
    remove by hand: ${removeCommand(f)}`).join('\n');
}
