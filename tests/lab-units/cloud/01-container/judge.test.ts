/** Cloud Lab 1's verdicts (labs/cloud/01-container/judge.ts) on made-up container runs and made-up views from the host. */
import { describe, expect, it } from 'vitest';
import type { ContainerProcess, ContainerRun } from '../../../../labs/cloud/01-container/experiment.js';
import { fromHost, hostUntouched, inode, inside, mappedRoot, netDevInterfaces, ownNet, ownUts, psRows, sharedUts } from '../../../../labs/cloud/01-container/judge.js';

const HOST = { pid: 4026531836, mnt: 4026531841, net: 4026531840 };

/** A container run that printed `stdout` (its key=value lines parsed as the experiment does). */
function ran(stdout: string, extra: Partial<ContainerRun> = {}): ContainerRun {
  const kv: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = line.match(/^(\w+)=(.*)$/);
    if (m && !(m[1]! in kv)) kv[m[1]!] = m[2]!;
  }
  return {
    command: 'unshare --uts -- sh -c … container.sh /tmp/rootfs', cwd: '/', pid: 4242, exitCode: 0, stdout, stderr: '', durationMs: 5, timedOut: false, reason: 'exited',
    outerName: 'kl-run-h1', outerAfter: kv.outer_hostname ?? '', outerUts: inode(kv.outer_uts), kv, ...extra,
  };
}
const proc = (pid: number, comm: string, nspid: number[], pidNs: number, mntNs: number): ContainerProcess => ({ pid, comm, nspid, pidNs, mntNs });

describe('Cloud Lab 1 judge', () => {
  it('reads inodes from namespace links, NaN when absent', () => {
    expect(inode('pid:[4026532179]')).toBe(4026532179);
    expect(inode(undefined)).toBeNaN();
    expect(inode('nothing')).toBeNaN();
  });

  it('inside: exactly sh (PID 1) and ps, in a pid namespace not the host\'s', () => {
    const good = inside(ran('  PID COMMAND\n    1 sh\n    2 ps\npidns=pid:[4026532200]\nself=1\n'), HOST);
    expect(good.ps.facts).toEqual(good.ps.want);
    expect(good.shellPid.fact).toBe(good.shellPid.want);
    expect(good.self.fact).toBe(good.self.want);
    expect(good.pidNs.fact).not.toBe(good.pidNs.other);
    // The seed: ps sees the host's processes and $$ is 2.
    const seed = inside(ran(`  PID COMMAND\n    1 systemd\n    2 sh\n   40 ps\npidns=pid:[${HOST.pid}]\nself=2\n`), HOST);
    expect(seed.ps.facts).not.toEqual(seed.ps.want);
    expect(seed.ps.message).toContain('saw: 1 systemd, 2 sh, 40 ps');
    expect(seed.shellPid.fact).toBe(2);
    expect(seed.self.fact).not.toBe(seed.self.want);
    expect(seed.pidNs.fact).toBe(seed.pidNs.other);
    expect(inside(ran(''), HOST).ps.message).toContain('saw: nothing');
  });

  it('parses ps -o pid,comm rows and /proc/net/dev interfaces', () => {
    expect(psRows('  PID COMMAND\n    1 sh\n    7 ps\n')).toEqual([{ pid: 1, comm: 'sh' }, { pid: 7, comm: 'ps' }]);
    const dev = 'Inter-|   Receive\n face |bytes\n    lo:       0       0\n  eth0: 1234 5\n';
    expect(netDevInterfaces(dev)).toEqual(['lo', 'eth0']);
  });

  it('from the host: the shell must be rooted at the rootfs, PID 1 of a second-level pid namespace, in its own mount namespace', () => {
    const view = (procs: ContainerProcess[]) => ({ root: '/tmp/rootfs', procs, run: ran('') });
    const good = fromHost(view([proc(900, 'sh', [900, 1], 4026532300, 4026532301)]), HOST);
    expect(good.found.fact).toBeDefined();
    expect(good.levels.fact).toBeGreaterThanOrEqual(good.levels.atLeast);
    expect(good.namespaces.facts).toEqual(good.namespaces.want);
    expect(good.found.message).toContain('pid 900 sh: NSpid 900 1, pid:[4026532300] mnt:[4026532301]');

    const none = fromHost(view([]), HOST);
    expect(none.found.fact).toBeUndefined();
    expect(none.found.message).toContain('/tmp/rootfs:\n  none');
    // A chroot without namespaces.
    const chroot = fromHost(view([proc(900, 'sh', [900], HOST.pid, HOST.mnt)]), HOST);
    expect(chroot.levels.fact).toBeLessThan(chroot.levels.atLeast);
    expect(chroot.levels.message).toContain('(NSpid');
    // unshare without --fork: a new pid namespace, but the shell is not its PID 1.
    const noFork = fromHost(view([proc(900, 'sh', [900, 2], 4026532300, 4026532301)]), HOST);
    expect(noFork.namespaces.facts).toEqual({ innermostPid: 2, newPidNs: true, newMntNs: true });
    // A new pid namespace without a mount namespace.
    expect(fromHost(view([proc(900, 'sh', [900, 1], 4026532300, HOST.mnt)]), HOST).namespaces.facts.newMntNs).toBe(false);
  });

  it('hostname: shared without --uts (the outer name changes), private with --uts', () => {
    const shared = ran(`outer_uts=uts:[4026532400]\ninner_hostname=kl-new-a\ninner_uts=uts:[4026532400]\nouter_hostname=kl-new-a\n`);
    const s = sharedUts({ name: 'kl-new-a', run: shared, realHostnameAfter: 'box' }, 'box');
    for (const c of [s.inner, s.uts, s.outer, s.realHost]) expect(c.fact).toEqual(c.want);
    expect(sharedUts({ name: 'kl-new-a', run: shared, realHostnameAfter: 'kl-new-a' }, 'box').realHost.fact).not.toBe('box');

    const own = ran(`outer_uts=uts:[4026532400]\ninner_hostname=kl-new-b\ninner_uts=uts:[4026532401]\nouter_hostname=kl-run-h1\n`);
    const o = ownUts({ name: 'kl-new-b', run: own, realHostnameAfter: 'box' });
    expect(o.inner.fact).toBe(o.inner.want);
    expect(o.uts.fact).not.toBe(o.uts.other);
    expect(o.outer.fact).toBe(o.outer.want);
    // The seed's flags under --uts: the outer name is lost and the namespace is shared.
    const leak = ownUts({ name: 'kl-new-b', run: ran(`outer_uts=uts:[4026532400]\ninner_hostname=kl-new-b\ninner_uts=uts:[4026532400]\nouter_hostname=kl-new-b\n`), realHostnameAfter: 'box' });
    expect(leak.uts.fact).toBe(leak.uts.other);
    expect(leak.outer.fact).not.toBe(leak.outer.want);
    expect(leak.outer.message).toContain('outside, the name must still be kl-run-h1');
  });

  it('--net: only lo, in a net namespace not the host\'s', () => {
    const good = ownNet(ran('    lo: 0 0\nnetns=net:[4026532500]\n'), HOST);
    expect(good.ifaces.facts).toEqual(good.ifaces.want);
    expect(good.netNs.fact).not.toBe(good.netNs.other);
    const shared = ownNet(ran(`    lo: 0 0\n  eth0: 12 3\nnetns=net:[${HOST.net}]\n`), HOST);
    expect(shared.ifaces.facts).toEqual(['lo', 'eth0']);
    expect(shared.netNs.fact).toBe(shared.netNs.other);
  });

  it('--user: root inside is 65534 outside, and so is the owner of a file made inside', () => {
    const good = mappedRoot({ file: 'owned-1', owner: 65534, run: ran('uid=0\nuid_map=         0      65534          1\n') }, 65534);
    for (const c of [good.uid, good.owner]) expect(c.fact).toEqual(c.want);
    expect(good.uidMap.facts).toEqual(good.uidMap.want);
    const noUserns = mappedRoot({ file: 'owned-1', owner: -1, run: ran('uid=65534\nuid_map=         0          0 4294967295\n') }, 65534);
    expect(noUserns.uid.fact).not.toBe(noUserns.uid.want);
    expect(noUserns.uidMap.facts).not.toEqual(noUserns.uidMap.want);
    expect(noUserns.owner.fact).not.toBe(noUserns.owner.want);
  });

  it('control: the real hostname kept, no mount naming the rootfs', () => {
    const ok = hostUntouched({ hostname: 'box', leaked: [] }, 'box');
    expect(ok.hostname.fact).toBe(ok.hostname.want);
    expect(ok.mounts.facts).toEqual(ok.mounts.want);
    const leaked = hostUntouched({ hostname: 'kl-new-a', leaked: ['proc /tmp/rootfs/proc proc rw 0 0'] }, 'box');
    expect(leaked.hostname.fact).not.toBe(leaked.hostname.want);
    expect(leaked.mounts.facts).not.toEqual(leaked.mounts.want);
  });
});
