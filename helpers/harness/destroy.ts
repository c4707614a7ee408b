/**
 * One destroy routine per kind of resource the suite makes, used both by a
 * test's `defer()` and by the reaper (after the kernel selftests'
 * `cg_destroy`: kill the members, remove, retry with a bound). Each one is
 * synchronous (the reaper runs in signal handlers), kills what is inside the
 * object first, waits a bounded time for it to be gone, and returns whether
 * it is, with the reason when it is not. Nothing here throws.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidsIn } from './cgroup-files.js';
import { readMountinfo } from './mountinfo.js';
import { readStat } from './proc-stat.js';

export interface Destroyed {
  readonly gone: boolean;
  /** Why it is still there (with the errno or the tool's message). */
  readonly reason?: string;
}

const GONE: Destroyed = { gone: true };
const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
/** Block this thread for `ms` (no child process, no busy loop). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepBuf, 0, 0, ms);
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code} (${err.message.split('\n')[0]})` : String(err.message ?? e);
}

function tool(file: string, args: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(file, [...args], { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim() };
}

function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try { process.kill(pid, signal); } catch { /* gone */ }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // a zombie still answers kill(0): it is dead for our purposes
    const st = readStat(pid);
    return st !== undefined && st.state !== 'Z';
  } catch {
    return false;
  }
}

function groupAlive(pgid: number): boolean {
  try { process.kill(-pgid, 0); return true; } catch { return false; }
}

/** Wait (bounded) until `done()`; true when it held. */
function waitSync(done: () => boolean, timeoutMs: number, stepMs = 10): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(stepMs);
  }
}

/** SIGKILL a process group (recorded with its start time by the caller) and wait until it is empty. */
export function destroyProcessGroup(pgid: number, timeoutMs = 2_000): Destroyed {
  try { process.kill(-pgid, 'SIGKILL'); } catch { return GONE; }
  return waitSync(() => !groupAlive(pgid) || onlyZombies(pgid), timeoutMs) ? GONE : { gone: false, reason: `process group ${pgid} still has members after SIGKILL (uninterruptible sleep?)` };
}

function onlyZombies(pgid: number): boolean {
  // Members of the group that are zombies await their parent's wait(): they hold nothing.
  let names: string[] = [];
  try { names = readdirSync('/proc').filter((n) => /^\d+$/.test(n)); } catch { return false; }
  for (const n of names) {
    try {
      const st = readStat(Number(n));
      if (st && st.pgrp === pgid && st.state !== 'Z') return false;
    } catch { /* gone */ }
  }
  return true;
}

const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return false; } };
const subdirs = (dir: string) => { try { return readdirSync(dir).map((n) => join(dir, n)).filter(isDir); } catch { return []; } };

/**
 * Kill every process in a cgroup and its descendants: `cgroup.kill` on v2;
 * on v1 freeze (when the cgroup has a freezer directory among `dirs`), SIGKILL
 * every listed task, thaw. Returns the pids that remained listed.
 */
export function killCgroupMembers(dirs: readonly string[], timeoutMs = 2_000): number[] {
  const all = (ds: readonly string[]): string[] => ds.flatMap((d) => [d, ...all(subdirs(d))]);
  const tree = all(dirs.filter(existsSync));
  const members = () => [...new Set(tree.flatMap(pidsIn))].filter(alive);
  if (members().length === 0) return []; // the common case: the program and its children are gone already
  const v2kill = tree.find((d) => existsSync(join(d, 'cgroup.kill')) && dirs.includes(d));
  if (v2kill) {
    for (const d of dirs) { try { writeFileSync(join(d, 'cgroup.kill'), '1'); } catch { /* not v2 there */ } }
  }
  const freezer = dirs.find((d) => existsSync(join(d, 'freezer.state')));
  if (freezer) {
    try { writeFileSync(join(freezer, 'freezer.state'), 'FROZEN'); } catch { /* gone */ }
    waitSync(() => { try { return readFileSync(join(freezer, 'freezer.state'), 'utf8').trim() === 'FROZEN'; } catch { return true; } }, Math.min(500, timeoutMs));
  }
  // Frozen tasks cannot fork: kill them all, then thaw so SIGKILL is delivered.
  for (let i = 0; i < 3; i++) members().forEach((p) => killPid(p));
  if (freezer) { try { writeFileSync(join(freezer, 'freezer.state'), 'THAWED'); } catch { /* gone */ } }
  waitSync(() => { const m = members(); m.forEach((p) => killPid(p)); return m.length === 0; }, timeoutMs, 10);
  return members();
}

/**
 * Destroy a cgroup given its directories (one on v2, one per hierarchy on
 * v1): kill the members (descendant cgroups included), remove the
 * directories deepest first, retrying while rmdir answers EBUSY.
 */
export function destroyCgroup(dirs: readonly string[], timeoutMs = 3_000): Destroyed {
  // Fast path: empty leaf cgroups go at the first rmdir.
  const quick = dirs.filter((d) => { try { rmdirSync(d); return false; } catch { return existsSync(d); } });
  if (!quick.length) return GONE;
  const present = quick;
  const left = killCgroupMembers(present, timeoutMs);
  const deepestFirst = (d: string): string[] => [...subdirs(d).flatMap(deepestFirst), d];
  let lastError = '';
  const removed = waitSync(() => {
    for (const d of present.flatMap(deepestFirst)) {
      if (!existsSync(d)) continue;
      try { rmdirSync(d); } catch (e) { lastError = `${d}: ${errText(e)}`; }
    }
    return present.every((d) => !existsSync(d));
  }, timeoutMs, 20);
  if (removed) return GONE;
  const members = present.flatMap(pidsIn);
  return { gone: false, reason: `${lastError}${members.length ? `; members still listed: ${members.join(' ')}` : left.length ? `; members: ${left.join(' ')}` : ''}` };
}

/** Kill the processes inside a network namespace, delete it, wait until it is gone. */
export function destroyNetns(name: string, timeoutMs = 5_000): Destroyed {
  const exists = () => existsSync(`/run/netns/${name}`) || tool('ip', ['netns', 'list']).out.split('\n').some((l) => l.split(' ')[0] === name);
  if (!exists()) return GONE;
  const pids = () => tool('ip', ['netns', 'pids', name]).out.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  waitSync(() => { const p = pids(); p.forEach((x) => killPid(x)); return p.length === 0; }, Math.min(2_000, timeoutMs), 25);
  const del = tool('ip', ['netns', 'del', name]);
  if (waitSync(() => !exists(), timeoutMs, 25)) return GONE;
  const holders = pids();
  return { gone: false, reason: `ip netns del ${name}: ${del.ok ? 'still listed' : del.err}${holders.length ? `; processes inside: ${holders.join(' ')}` : ''}` };
}

/** Delete a network interface in the host namespace (or in `netns`). */
export function destroyLink(name: string, netns?: string): Destroyed {
  const ns = netns ? ['-n', netns] : [];
  if (!tool('ip', [...ns, 'link', 'show', 'dev', name]).ok) return GONE;
  const r = tool('ip', [...ns, 'link', 'del', name]);
  if (!tool('ip', [...ns, 'link', 'show', 'dev', name]).ok) return GONE;
  return { gone: false, reason: `ip link del ${name}: ${r.err || 'still present'}` };
}

function mounted(path: string): boolean {
  return readMountinfo().some((m) => m.mountPoint === path);
}

/** Processes whose cwd, root or an open file lies under `path` (for a busy mount's report). */
export function holdersOf(path: string): number[] {
  const out: number[] = [];
  let names: string[] = [];
  try { names = readdirSync('/proc').filter((n) => /^\d+$/.test(n)); } catch { return out; }
  const under = (p: string) => p === path || p.startsWith(`${path}/`);
  for (const n of names) {
    try {
      const paths = [readlinkSync(`/proc/${n}/cwd`), readlinkSync(`/proc/${n}/root`)];
      try { for (const fd of readdirSync(`/proc/${n}/fd`)) { try { paths.push(readlinkSync(`/proc/${n}/fd/${fd}`)); } catch { /* closed */ } } } catch { /* gone */ }
      if (paths.some(under)) out.push(Number(n));
    } catch { /* gone or kernel thread */ }
  }
  return out;
}

/**
 * Unmount a mount point (not lazily: a busy mount is reported with the
 * processes that hold it, and `umount -l` is named as the way to detach it).
 */
export function destroyMount(path: string): Destroyed {
  if (!mounted(path)) return GONE;
  const r = tool('umount', [path]);
  if (!mounted(path)) return GONE;
  const holders = holdersOf(path);
  return { gone: false, reason: `umount ${path}: ${r.err}${holders.length ? `; held by pids ${holders.join(' ')}` : ''} (detach anyway: umount -l ${path})` };
}

/** Disable a tracefs instance's events and remove it (rmdir answers EBUSY while a reader has its buffer open). */
export function destroyTraceInstance(dir: string, timeoutMs = 5_000): Destroyed {
  if (!existsSync(dir)) return GONE;
  try { writeFileSync(join(dir, 'events', 'enable'), '0'); } catch { /* gone */ }
  let lastError = '';
  if (waitSync(() => { try { rmdirSync(dir); } catch (e) { lastError = errText(e); } return !existsSync(dir); }, timeoutMs, 25)) return GONE;
  return { gone: false, reason: `rmdir ${dir}: ${lastError}` };
}

/** Remove a pinned BPF object (or a directory of pins) under /sys/fs/bpf. */
export function destroyBpffsPin(path: string): Destroyed {
  return destroyTempDir(path);
}

/** Remove a temp directory, unmounting anything mounted inside it first (deepest first). */
export function destroyTempDir(path: string): Destroyed {
  if (!existsSync(path)) return GONE;
  // Mount points decoded (\040 → space): the paths umount and the comparison need.
  const mounts = readMountinfo().map((m) => m.mountPoint)
    .filter((m) => m === path || m.startsWith(`${path}/`)).sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    const d = destroyMount(m);
    if (!d.gone) return { gone: false, reason: `a mount inside it stays: ${d.reason}` };
  }
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (e) {
    return { gone: false, reason: `rm -rf ${path}: ${errText(e)}` };
  }
  return existsSync(path) ? { gone: false, reason: `rm -rf ${path}: still present` } : GONE;
}
