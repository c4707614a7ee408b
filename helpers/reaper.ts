/**
 * Reaping what killed runs left behind. Every resource the suite makes is
 * named `kl-<run>-…`; a run is live while its owner process runs. This
 * module finds resources of runs that are not live (or of one given run, at
 * its teardown) and releases them: process groups the run recorded (checked
 * by start time, never by name), network namespaces (after killing the
 * processes inside them), interfaces, cgroups (after killing their
 * members), mounts, pinned BPF objects and temp dirs. Synchronous, so that a
 * signal handler can call it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_DIR } from './paths.js';
import { RESOURCE_PREFIX, processStartTime, runDir, runIsLive } from './run-state.js';

const RUN_OF = new RegExp(`(?:^|/)${RESOURCE_PREFIX}([0-9a-f]{6})(?:-|$)`);

function sh(file: string, args: string[]): string {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout : '';
}

function killPid(pid: number): void {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

export interface Leftover {
  readonly kind: 'process-group' | 'netns' | 'link' | 'cgroup' | 'trace-instance' | 'mount' | 'bpffs' | 'tempdir';
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

/** cgroup directories named kl-… at the top of the v2 tree or of any v1 hierarchy (/sys/fs/cgroup/<ctrl>/kl-…). */
function cgroupDirs(base = '/sys/fs/cgroup'): string[] {
  const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return false; } };
  const list = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };
  const top = list(base).map((n) => join(base, n)).filter(isDir);
  const candidates = [...top, ...top.filter((d) => !d.split('/').pop()!.startsWith(RESOURCE_PREFIX)).flatMap((d) => list(d).map((n) => join(d, n)))];
  return candidates.filter((p) => p.split('/').pop()!.startsWith(RESOURCE_PREFIX) && isDir(p));
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

function runOf(name: string): string | undefined {
  return name.match(RUN_OF)?.[1];
}

/** Everything named by the suite that belongs to a run for which `select(run)` holds. */
export function findLeftovers(select: (run: string) => boolean): Leftover[] {
  const out: Leftover[] = [];
  const add = (kind: Leftover['kind'], name: string) => { const run = runOf(name); if (run && select(run)) out.push({ kind, name, run }); };
  let runs: string[] = [];
  try { runs = readdirSync(STATE_DIR).filter((r) => /^[0-9a-f]{6}$/.test(r)); } catch { /* none */ }
  for (const run of runs) if (select(run)) out.push(...recordedGroups(run));
  netnsNames().forEach((n) => add('netns', n));
  linkNames().forEach((n) => add('link', n));
  cgroupDirs().forEach((n) => add('cgroup', n));
  traceInstances().forEach((n) => add('trace-instance', n));
  mountPoints().forEach((n) => add('mount', n));
  bpffsPins().forEach((n) => add('bpffs', n));
  tempDirs().forEach((n) => add('tempdir', n));
  return out;
}

function removeCgroup(dir: string): void {
  // Children first; kill the members (they were started by the suite: the cgroup carries its name).
  let names: string[] = [];
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) {
    const p = join(dir, n);
    try { if (statSync(p).isDirectory()) removeCgroup(p); } catch { /* gone */ }
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    let pids: number[] = [];
    try { pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number); } catch { return; }
    pids.forEach(killPid);
    try { rmSync(dir, { recursive: false }); } catch { /* rmdir below */ }
    const r = spawnSync('rmdir', [dir]);
    if (r.status === 0 || !existsSync(dir)) return;
    spawnSync('sleep', ['0.02']);
  }
}

/** Release the given leftovers, most dependent first. Returns what could not be released. */
export function reap(leftovers: readonly Leftover[]): Leftover[] {
  const order: Leftover['kind'][] = ['process-group', 'netns', 'link', 'cgroup', 'trace-instance', 'mount', 'bpffs', 'tempdir'];
  const failed: Leftover[] = [];
  for (const kind of order) {
    const items = leftovers.filter((l) => l.kind === kind);
    if (kind === 'mount') items.sort((a, b) => b.name.length - a.name.length); // deepest first
    for (const l of items) {
      try {
        switch (kind) {
          case 'process-group': {
            const pgid = Number(l.name.split(' ')[0]);
            try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
            break;
          }
          case 'netns':
            sh('ip', ['netns', 'pids', l.name]).split('\n').filter(Boolean).map(Number).forEach(killPid);
            spawnSync('ip', ['netns', 'del', l.name]);
            break;
          case 'link':
            spawnSync('ip', ['link', 'del', l.name]);
            break;
          case 'cgroup':
            removeCgroup(l.name);
            break;
          case 'trace-instance':
            // Disable its events first, then rmdir (tracefs removes the instance's files with it).
            try { writeFileSync(join(l.name, 'events', 'enable'), '0'); } catch { /* already gone */ }
            spawnSync('rmdir', [l.name]);
            break;
          case 'mount':
            spawnSync('umount', ['-l', l.name]);
            break;
          case 'bpffs':
          case 'tempdir':
            if (kind === 'tempdir' && mountPoints().some((m) => m.startsWith(l.name))) {
              mountPoints().filter((m) => m.startsWith(l.name)).sort((a, b) => b.length - a.length).forEach((m) => spawnSync('umount', ['-l', m]));
            }
            rmSync(l.name, { recursive: true, force: true });
            break;
        }
      } catch {
        failed.push(l);
      }
    }
  }
  return failed;
}

/** Reap the leftovers of every run that is no longer live (run at the start of each suite run). */
export function reapStaleRuns(current?: string, only: (run: string) => boolean = () => true): Leftover[] {
  const live = new Map<string, boolean>();
  const stale = (run: string) => {
    if (run === current || !only(run)) return false;
    if (!live.has(run)) live.set(run, runIsLive(run));
    return !live.get(run);
  };
  const found = findLeftovers(stale);
  reap(found);
  try {
    for (const run of readdirSync(STATE_DIR)) if (/^[0-9a-f]{6}$/.test(run) && stale(run)) rmSync(runDir(run), { recursive: true, force: true });
  } catch { /* no state dir */ }
  return found;
}

/** Reap what one run left (its teardown, or its SIGINT handler). */
export function reapRun(run: string): Leftover[] {
  const found = findLeftovers((r) => r === run);
  reap(found);
  return found;
}
