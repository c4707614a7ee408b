/**
 * Lab 1 — 手动造轮: a container with unshare and chroot.
 * The student's container.sh starts the rootfs's /bin/sh as PID 1 of new PID
 * and mount namespaces with its own /proc. Every run happens inside an outer
 * UTS namespace the lab made and named, standing in for "the host": the
 * seed's flags share it (so `hostname new-name` renames it), --uts does not.
 * The real host's hostname is never touched and is checked at the end.
 */
import { copyFileSync, chmodSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { nsInode } from './namespaces.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { adapted, labRequires, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeRootfs, type Rootfs } from './rootfs.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';

/** The unprivileged uid/gid the user-namespace experiment runs as ("nobody" on Debian and Ubuntu). */
const NOBODY = 65534;

interface ContainerRun extends RunResult {
  /** The outer (stand-in host) UTS namespace's name before and after. */
  readonly outerName: string;
  readonly outerAfter: string;
  readonly outerUts: number;
  /** `key=value` lines the container's shell printed. */
  readonly kv: Record<string, string>;
}

function show(r: RunResult): string {
  return `${r.command} (stdin: the container's commands) exited ${r.signal ?? r.exitCode}\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim()}`;
}

/** The inode in `pid:[4026532179]`, NaN when absent. */
const inode = (s?: string) => Number(s?.match(/\[(\d+)\]/)?.[1] ?? NaN);

interface ContainerProcess { readonly pid: number; readonly comm: string; readonly nspid: number[]; readonly pidNs: number; readonly mntNs: number }

/** Processes whose root directory (/proc/<pid>/root) is `dir`, with their NSpid and pid/mnt namespace inodes. */
function processesRootedAt(dir: string): ContainerProcess[] {
  const out: ContainerProcess[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/root`) !== dir) continue;
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      out.push({
        pid: Number(name),
        comm: status.match(/^Name:\s+(\S+)/m)?.[1] ?? '?',
        nspid: (status.match(/^NSpid:\s+(.*)$/m)?.[1] ?? '').trim().split(/\s+/).map(Number),
        pidNs: inode(readlinkSync(`/proc/${name}/ns/pid`)),
        mntNs: inode(readlinkSync(`/proc/${name}/ns/mnt`)),
      });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

const realHostname = hostname();
let rootfs: Rootfs;
let script: string;

/**
 * Run container.sh <rootfs> <flags…> with `commands` on its stdin, inside a
 * fresh outer UTS namespace named by the lab (optionally as uid 65534).
 */
async function container(flags: readonly string[], commands: readonly string[], opts: { asNobody?: boolean } = {}): Promise<ContainerRun> {
  const outerName = uniqueName('h');
  const launch = opts.asNobody ? `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups sh "$@"` : 'sh "$@"';
  const wrapper = `hostname "$1" || exit 3; shift; echo "outer_uts=$(readlink /proc/self/ns/uts)"; ${launch}; rc=$?; echo "outer_hostname=$(hostname)"; exit $rc`;
  const r = await run('unshare', ['--uts', '--', 'sh', '-c', wrapper, 'outer', outerName, script, rootfs.dir, ...flags], {
    input: `${commands.join('\n')}\nexit\n`, timeoutMs: 20_000, reject: false,
  });
  const kv: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^(\w+)=(.*)$/);
    if (m && !(m[1]! in kv)) kv[m[1]!] = m[2]!;
  }
  return { ...r, outerName, outerAfter: kv.outer_hostname ?? '', outerUts: inode(kv.outer_uts), kv };
}

describe('Lab 1 — a container by hand with unshare and chroot (手动造轮)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    rootfs = await makeRootfs();
    // A copy the unprivileged uid of the user-namespace experiment can read.
    const dir = await makeTempDir('ctr');
    chmodSync(dir, 0o755);
    script = join(dir, 'container.sh');
    copyFileSync(labSource('cloud/01-container/container.sh'), script);
    chmodSync(script, 0o755);
  });

  it('inside, ps lists only the shell and ps itself, and the shell is PID 1', async (ctx) => {
    if (rootfs.kind === 'alpine') await adapted(ctx, `using ${rootfs.detail}`);
    const r = await container([], ['ps -o pid,comm', 'echo "pidns=$(readlink /proc/1/ns/pid)"', 'echo "self=$$"']);
    const rows = r.stdout.split('\n').map((l) => l.match(/^\s*(\d+)\s+(\S+)\s*$/)).filter(Boolean).map((m) => ({ pid: Number(m![1]), comm: m![2]! }));
    const procs = rows.map((p) => `${p.pid} ${p.comm}`).join(', ');
    expect(rows.map((p) => p.comm).sort(), `ps inside the container must list exactly sh and ps (saw: ${procs || 'nothing'}):\n${show(r)}`).toEqual(['ps', 'sh']);
    expect(rows.find((p) => p.comm === 'sh')?.pid, `the container's shell must be PID 1 (saw: ${procs}):\n${show(r)}`).toBe(1);
    expect(r.kv.self, `$$ in the container's shell:\n${show(r)}`).toBe('1');
    const inner = inode(r.kv.pidns);
    expect(inner, `PID 1's pid namespace inside (${r.kv.pidns}) must differ from the host's (pid:[${nsInode('pid')}]):\n${show(r)}`).not.toBe(nsInode('pid'));
  });

  it("seen from the host, the container's shell has the rootfs as its root, is PID 1 of a new PID namespace (NSpid) and has its own mount namespace (namespace inodes)", async () => {
    // The kernel's view, read from outside while the container runs: nothing the container prints is used.
    const seen = new Map<number, ContainerProcess>();
    const root = realpathSync(rootfs.dir);
    let polling = true;
    const poll = (async () => {
      while (polling) {
        for (const p of processesRootedAt(root)) if (!seen.has(p.pid)) seen.set(p.pid, p);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const r = await container([], ['sleep 1']).finally(() => { polling = false; });
    await poll;
    const procs = [...seen.values()];
    const host = { pid: nsInode('pid'), mnt: nsInode('mnt') };
    const evidence = `processes whose /proc/<pid>/root is ${root}:\n${procs.map((p) => `  pid ${p.pid} ${p.comm}: NSpid ${p.nspid.join(' ')}, pid:[${p.pidNs}] mnt:[${p.mntNs}]`).join('\n') || '  none'}\n` +
      `the host's: pid:[${host.pid}] mnt:[${host.mnt}]\n${show(r)}`;
    const shell = procs.find((p) => p.comm === 'sh');
    expect(shell, `the container's shell must run with the rootfs as its root (chroot). ${evidence}`).toBeDefined();
    expect(shell!.nspid.length, `the shell must be in a PID namespace of its own (NSpid in /proc/<pid>/status has a second level). ${evidence}`).toBeGreaterThanOrEqual(2);
    expect({ innermostPid: shell!.nspid.at(-1), newPidNs: shell!.pidNs !== host.pid, newMntNs: shell!.mntNs !== host.mnt }, evidence)
      .toEqual({ innermostPid: 1, newPidNs: true, newMntNs: true });
  });

  it("with the seed's flags (no UTS namespace), hostname new-name inside renames the host — here the lab's stand-in", async () => {
    const name = `kl-new-${randomBytes(3).toString('hex')}`;
    const r = await container([], [`hostname ${name}`, 'echo "inner_hostname=$(hostname)"', 'echo "inner_uts=$(readlink /proc/self/ns/uts)"']);
    expect(r.kv.inner_hostname, `inside, hostname must print the new name:\n${show(r)}`).toBe(name);
    expect(inode(r.kv.inner_uts), `without --uts the container shares the outer UTS namespace:\n${show(r)}`).toBe(r.outerUts);
    expect(r.outerAfter, `after the container exits the outer name is the one set inside (${r.outerName} before):\n${show(r)}`).toBe(name);
    expect(hostname(), 'the real host kept its name (the change stayed in the lab\'s outer UTS namespace)').toBe(realHostname);
  });

  it('with --uts, the new hostname lives only inside the container', async () => {
    const name = `kl-new-${randomBytes(3).toString('hex')}`;
    const r = await container(['--uts'], [`hostname ${name}`, 'echo "inner_hostname=$(hostname)"', 'echo "inner_uts=$(readlink /proc/self/ns/uts)"']);
    expect(r.kv.inner_hostname, `inside, hostname must print the new name:\n${show(r)}`).toBe(name);
    expect(inode(r.kv.inner_uts), `with --uts the container has its own UTS namespace (outer uts:[${r.outerUts}]):\n${show(r)}`).not.toBe(r.outerUts);
    expect(r.outerAfter, `outside, the name must still be ${r.outerName}:\n${show(r)}`).toBe(r.outerName);
  });

  it('思考 network: with --net the container sees only lo', async () => {
    const r = await container(['--net'], ['cat /proc/net/dev', 'echo "netns=$(readlink /proc/self/ns/net)"']);
    const ifaces = r.stdout.split('\n').map((l) => l.match(/^\s*([\w.@-]+):\s+\d/)?.[1]).filter(Boolean);
    expect(ifaces, `/proc/net/dev inside the container:\n${show(r)}`).toEqual(['lo']);
    expect(inode(r.kv.netns), `the container's net namespace (${r.kv.netns}) must differ from the host's (net:[${nsInode('net')}])`).not.toBe(nsInode('net'));
  });

  it('思考 users: with --user, uid 0 inside is the unprivileged uid 65534 outside', async (ctx) => {
    const probe = await run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'unshare', '--user', '--map-root-user', 'true'], { reject: false, timeoutMs: 10_000 });
    if (probe.exitCode !== 0) {
      skipOrFail(ctx, `unprivileged user namespaces are disabled here (${probe.stderr.trim()}). Fix: sudo sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`);
    }
    const file = `owned-${randomBytes(3).toString('hex')}`;
    const r = await container(['--user', '--map-root-user'], ['echo "uid=$(id -u)"', 'echo "uid_map=$(cat /proc/self/uid_map)"', `touch /scratch/${file}`], { asNobody: true });
    expect(r.kv.uid, `id -u inside the container:\n${show(r)}`).toBe('0');
    expect(r.kv.uid_map?.trim().split(/\s+/), `/proc/self/uid_map inside (inside-uid outside-uid count):\n${show(r)}`).toEqual(['0', String(NOBODY), '1']);
    let owner = -1;
    try { owner = statSync(join(rootfs.dir, 'scratch', file)).uid; } catch { /* not created */ }
    expect(owner, `a file "root" created inside (/scratch/${file}) is owned on the host by:\n${show(r)}`).toBe(NOBODY);
  });

  it("control: leaves the real host's hostname and mounts as they were", () => {
    expect(hostname()).toBe(realHostname);
    const leaked = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(rootfs.dir));
    expect(leaked, 'the container\'s /proc must have been mounted in its own mount namespace only').toEqual([]);
  });
});
