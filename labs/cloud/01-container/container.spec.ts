/**
 * Lab 1 — 手动造轮: a container with unshare and chroot.
 * The student's container.sh starts the rootfs's /bin/sh as PID 1 of new PID
 * and mount namespaces with its own /proc. Every run happens inside an outer
 * UTS namespace the lab made and named, standing in for "the host": the
 * seed's flags share it (so `hostname new-name` renames it), --uts does not.
 * The real host's hostname is never touched and is checked at the end.
 *
 * The lab's anatomy: experiment.ts builds the rootfs and runs container.sh
 * (the evidence: what the container printed, what the kernel shows from
 * outside), judge.ts turns it into facts and messages, this file says what
 * must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { adapted, labRequires, requires, skipOrFail } from '../../../helpers/harness/requires.js';
import { hostAfter, hostnameRun, hostView, insideRun, netRun, NOBODY, prepareContainer, probeUserns, usersRun, type ContainerSetup } from './experiment.js';
import * as judge from './judge.js';

let setup: ContainerSetup;

describe('Lab 1 — a container by hand with unshare and chroot (手动造轮)', () => {
  requires(...labRequires(import.meta.url));

  beforeAll(async () => {
    setup = await prepareContainer();
  });

  it('inside, ps lists only the shell and ps itself, and the shell is PID 1', async (ctx) => {
    if (setup.rootfs.kind === 'alpine') await adapted(ctx, `using ${setup.rootfs.detail}`);
    const j = judge.inside(await insideRun(setup), setup.host);
    expect(j.ps.facts, j.ps.message).toEqual(j.ps.want);
    expect(j.shellPid.fact, j.shellPid.message).toEqual(j.shellPid.want);
    expect(j.self.fact, j.self.message).toEqual(j.self.want);
    expect(j.pidNs.fact, j.pidNs.message).not.toBe(j.pidNs.other);
  });

  it("seen from the host, the container's shell has the rootfs as its root, is PID 1 of a new PID namespace (NSpid) and has its own mount namespace (namespace inodes)", async () => {
    const j = judge.fromHost(await hostView(setup), setup.host);
    expect(j.found.fact, j.found.message).toBeDefined();
    expect(j.levels.fact, j.levels.message).toBeGreaterThanOrEqual(j.levels.atLeast);
    expect(j.namespaces.facts, j.namespaces.message).toEqual(j.namespaces.want);
  });

  it("with the seed's flags (no UTS namespace), hostname new-name inside renames the host — here the lab's stand-in", async () => {
    const j = judge.sharedUts(await hostnameRun(setup, []), setup.realHostname);
    expect(j.inner.fact, j.inner.message).toEqual(j.inner.want);
    expect(j.uts.fact, j.uts.message).toEqual(j.uts.want);
    expect(j.outer.fact, j.outer.message).toEqual(j.outer.want);
    expect(j.realHost.fact, j.realHost.message).toEqual(j.realHost.want);
  });

  it('with --uts, the new hostname lives only inside the container', async () => {
    const j = judge.ownUts(await hostnameRun(setup, ['--uts']));
    expect(j.inner.fact, j.inner.message).toEqual(j.inner.want);
    expect(j.uts.fact, j.uts.message).not.toBe(j.uts.other);
    expect(j.outer.fact, j.outer.message).toEqual(j.outer.want);
  });

  it('思考 network: with --net the container sees only lo', async () => {
    const j = judge.ownNet(await netRun(setup), setup.host);
    expect(j.ifaces.facts, j.ifaces.message).toEqual(j.ifaces.want);
    expect(j.netNs.fact, j.netNs.message).not.toBe(j.netNs.other);
  });

  it('思考 users: with --user, uid 0 inside is the unprivileged uid 65534 outside', async (ctx) => {
    const probe = await probeUserns();
    if (!probe.ok) skipOrFail(ctx, judge.usernsDisabled(probe.stderr));
    const j = judge.mappedRoot(await usersRun(setup), NOBODY);
    expect(j.uid.fact, j.uid.message).toEqual(j.uid.want);
    expect(j.uidMap.facts, j.uidMap.message).toEqual(j.uidMap.want);
    expect(j.owner.fact, j.owner.message).toEqual(j.owner.want);
  });

  it("control: leaves the real host's hostname and mounts as they were", () => {
    const j = judge.hostUntouched(hostAfter(setup), setup.realHostname);
    expect(j.hostname.fact, j.hostname.message).toEqual(j.hostname.want);
    expect(j.mounts.facts, j.mounts.message).toEqual(j.mounts.want);
  });
});
