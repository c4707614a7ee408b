/**
 * Cloud Lab 1's experiment: build the rootfs (rootfs.ts), copy the student's
 * container.sh where the unprivileged uid can read it, and run it with
 * commands on its stdin, each time inside a fresh outer UTS namespace the lab
 * made and named, standing in for "the host" (`container`). Each case returns
 * what the container's shell printed (`ContainerRun`: its `key=value` lines,
 * the outer namespace's name before and after) and what the kernel says from
 * outside: the processes whose root is the rootfs with their NSpid and
 * namespace inodes (`hostView`, polled while the container runs), the owner
 * of a file made inside (`usersRun`), the real host's hostname and mounts
 * (`hostAfter`). Never throws for a wrong container.sh: the evidence says
 * what happened; judge.ts and the spec decide.
 */
import { chmodSync, copyFileSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { readStatus } from '../../../helpers/kernel/procfs.js';
import { inode } from './judge.js';
import { nsInode } from './namespaces.js';
import { makeRootfs, type Rootfs } from './rootfs.js';

/** The unprivileged uid/gid the user-namespace experiment runs as ("nobody" on Debian and Ubuntu). */
export const NOBODY = 65534;

export interface ContainerRun extends RunResult {
  /** The outer (stand-in host) UTS namespace's name before and after. */
  readonly outerName: string;
  readonly outerAfter: string;
  readonly outerUts: number;
  /** `key=value` lines the container's shell printed. */
  readonly kv: Record<string, string>;
}

export interface ContainerProcess { readonly pid: number; readonly comm: string; readonly nspid: number[]; readonly pidNs: number; readonly mntNs: number }

/** The rootfs, the copy of container.sh, and the host as it was before the first container. */
export interface ContainerSetup {
  readonly rootfs: Rootfs;
  readonly script: string;
  /** The real host's hostname. */
  readonly realHostname: string;
  /** The host's namespace inodes. */
  readonly host: { readonly pid: number; readonly mnt: number; readonly net: number };
}

export async function prepareContainer(): Promise<ContainerSetup> {
  const realHostname = hostname();
  const rootfs = await makeRootfs();
  // A copy the unprivileged uid of the user-namespace experiment can read.
  const dir = await makeTempDir('ctr');
  chmodSync(dir, 0o755);
  const script = join(dir, 'container.sh');
  copyFileSync(labSource('cloud/01-container/container.sh'), script);
  chmodSync(script, 0o755);
  return { rootfs, script, realHostname, host: { pid: nsInode('pid'), mnt: nsInode('mnt'), net: nsInode('net') } };
}

/** Processes whose root directory (/proc/<pid>/root) is `dir`, with their NSpid and pid/mnt namespace inodes. */
export function processesRootedAt(dir: string): ContainerProcess[] {
  const out: ContainerProcess[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/root`) !== dir) continue;
      const status = readStatus(Number(name));
      if (!status) continue;
      out.push({
        pid: Number(name),
        comm: status.fields.get('Name')?.split(/\s+/)[0] || '?',
        nspid: (status.fields.get('NSpid') ?? '').trim().split(/\s+/).map(Number),
        pidNs: inode(readlinkSync(`/proc/${name}/ns/pid`)),
        mntNs: inode(readlinkSync(`/proc/${name}/ns/mnt`)),
      });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/**
 * Run container.sh <rootfs> <flags…> with `commands` on its stdin, inside a
 * fresh outer UTS namespace named by the lab (optionally as uid 65534).
 */
export async function container(setup: ContainerSetup, flags: readonly string[], commands: readonly string[], opts: { asNobody?: boolean } = {}): Promise<ContainerRun> {
  const outerName = uniqueName('h');
  const launch = opts.asNobody ? `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups sh "$@"` : 'sh "$@"';
  const wrapper = `hostname "$1" || exit 3; shift; echo "outer_uts=$(readlink /proc/self/ns/uts)"; ${launch}; rc=$?; echo "outer_hostname=$(hostname)"; exit $rc`;
  const r = await run('unshare', ['--uts', '--', 'sh', '-c', wrapper, 'outer', outerName, setup.script, setup.rootfs.dir, ...flags], {
    input: `${commands.join('\n')}\nexit\n`, timeoutMs: 20_000, reject: false,
  });
  const kv: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^(\w+)=(.*)$/);
    if (m && !(m[1]! in kv)) kv[m[1]!] = m[2]!;
  }
  return { ...r, outerName, outerAfter: kv.outer_hostname ?? '', outerUts: inode(kv.outer_uts), kv };
}

/** Inside: ps, PID 1's pid namespace and the shell's $$. */
export function insideRun(setup: ContainerSetup): Promise<ContainerRun> {
  return container(setup, [], ['ps -o pid,comm', 'echo "pidns=$(readlink /proc/1/ns/pid)"', 'echo "self=$$"']);
}

/** The kernel's view from outside while the container sleeps: every process seen with the rootfs as its root. */
export interface HostView { readonly root: string; readonly procs: ContainerProcess[]; readonly run: ContainerRun }

export async function hostView(setup: ContainerSetup): Promise<HostView> {
  // Read from outside while the container runs: nothing the container prints is used.
  const seen = new Map<number, ContainerProcess>();
  const root = realpathSync(setup.rootfs.dir);
  let polling = true;
  const poll = (async () => {
    while (polling) {
      for (const p of processesRootedAt(root)) if (!seen.has(p.pid)) seen.set(p.pid, p);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const r = await container(setup, [], ['sleep 1']).finally(() => { polling = false; });
  await poll;
  return { root, procs: [...seen.values()], run: r };
}

/** `hostname <random name>` inside, with the given flags; the real host's name read afterwards. */
export interface HostnameRun { readonly name: string; readonly run: ContainerRun; readonly realHostnameAfter: string }

export async function hostnameRun(setup: ContainerSetup, flags: readonly string[]): Promise<HostnameRun> {
  const name = `kl-new-${randomBytes(3).toString('hex')}`;
  const r = await container(setup, flags, [`hostname ${name}`, 'echo "inner_hostname=$(hostname)"', 'echo "inner_uts=$(readlink /proc/self/ns/uts)"']);
  return { name, run: r, realHostnameAfter: hostname() };
}

/** --net: /proc/net/dev and the net namespace inside. */
export function netRun(setup: ContainerSetup): Promise<ContainerRun> {
  return container(setup, ['--net'], ['cat /proc/net/dev', 'echo "netns=$(readlink /proc/self/ns/net)"']);
}

/** Whether uid 65534 may make a user namespace here. */
export async function probeUserns(): Promise<{ readonly ok: boolean; readonly stderr: string }> {
  const probe = await run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--map-root-user', 'true'], { reject: false, timeoutMs: 10_000 });
  return { ok: probe.exitCode === 0, stderr: probe.stderr };
}

/** --user --map-root-user as uid 65534: id -u and uid_map inside, and the host's owner of a file touched inside (-1: not created). */
export interface UsersRun { readonly file: string; readonly run: ContainerRun; readonly owner: number }

export async function usersRun(setup: ContainerSetup): Promise<UsersRun> {
  const file = `owned-${randomBytes(3).toString('hex')}`;
  const r = await container(setup, ['--user', '--map-root-user'], ['echo "uid=$(id -u)"', 'echo "uid_map=$(cat /proc/self/uid_map)"', `touch /scratch/${file}`], { asNobody: true });
  let owner = -1;
  try { owner = statSync(join(setup.rootfs.dir, 'scratch', file)).uid; } catch { /* not created */ }
  return { file, run: r, owner };
}

/** The real host after every container: its hostname and the lines of /proc/mounts that name the rootfs. */
export function hostAfter(setup: ContainerSetup): { readonly hostname: string; readonly leaked: string[] } {
  const leaked = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(setup.rootfs.dir));
  return { hostname: hostname(), leaked };
}
