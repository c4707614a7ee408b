/**
 * Teeth of the cloud labs: each wrong program of tests/fixtures/cloud/<lab>/,
 * put in place of the student's file, makes the test meant to catch it fail
 * with the kernel's evidence in the message.
 */
import { existsSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ran, runSpecWith, summarize } from './lab-workspace.js';

const FIX = join(import.meta.dirname, '../fixtures/cloud');
const root = process.getuid?.() === 0;
const LONG = { timeout: 10 * 60_000 };

async function expectCaught(spec: string, replace: Record<string, string>, test: string, message: RegExp, signal: AbortSignal) {
  const r = await runSpecWith(spec, replace, { only: test, signal });
  const failed = r.tests.filter((t) => t.status === 'failed');
  expect(failed.length, summarize(r)).toBeGreaterThan(0);
  expect(failed.map((t) => t.failureMessages.join('\n')).join('\n'), summarize(r)).toMatch(message);
}

describe.skipIf(!root)('cloud Lab 3.1 (container) against programs of our own', () => {
  const spec = 'labs/cloud/01-container/container.spec.ts';
  const dir = join(FIX, '01-container');
  const file = 'cloud/01-container/container.sh';

  it('a chroot whose shell answers ps, readlink and $$ with canned text passes the inside checks but fails the kernel\'s view from the host', LONG, async ({ signal }) => {
    const inside = await runSpecWith(spec, { [file]: join(dir, 'wrong-canned-shell.sh') }, { only: 'inside, ps lists', signal });
    expect(inside.tests.filter((t) => t.status === 'passed').map((t) => t.fullName), summarize(inside)).toHaveLength(1); // what the container prints is fooled
    await expectCaught(spec, { [file]: join(dir, 'wrong-canned-shell.sh') }, 'seen from the host', /must be in a PID namespace of its own \(NSpid/, signal);
  });

  it('a chroot without namespaces fails', LONG, async ({ signal }) => {
    await expectCaught(spec, { [file]: join(dir, 'wrong-chroot-only.sh') }, 'seen from the host', /NSpid/, signal);
  });

  it('unshare without --fork fails: the shell is not PID 1 of the new namespace', LONG, async ({ signal }) => {
    await expectCaught(spec, { [file]: join(dir, 'wrong-no-fork.sh') }, 'seen from the host', /(NSpid|innermostPid)/, signal);
  });
});

describe.skipIf(!root)('cloud Lab 3.2 (cgroup) against programs of our own', () => {
  const spec = 'labs/cloud/02-cgroup/cgroup.spec.ts';
  const dir = join(FIX, '02-cgroup');

  it('a cgexec.sh that sets its own limits fails: the limits read back from the cgroup the workload ran in are not the seed\'s', LONG, async ({ signal }) => {
    await expectCaught(spec, { 'cloud/02-cgroup/cgexec.sh': join(dir, 'wrong-cgexec-changes-limit.sh') }, 'killed by the OOM killer', /the limits in force while it ran must be the seed's/, signal);
  });

  it('a mem_hog that only mallocs, reports the amount and SIGKILLs itself fails on the kernel\'s counts (oom_kill, peak usage)', LONG, async ({ signal }) => {
    const replace = { 'cloud/02-cgroup/mem_hog.c': join(dir, 'wrong-mem_hog-hardcoded.c') };
    await expectCaught(spec, replace, 'killed by the OOM killer', /oom_kill counter/, signal);
    await expectCaught(spec, replace, 'is charged 50 MiB', /peak usage must show the 50 MiB touched/, signal);
  });

  it('a cgexec.sh that joins one directory too few fails: the workload was not in the lab\'s cgroup', LONG, async ({ signal }) => {
    await expectCaught(spec, { 'cloud/02-cgroup/cgexec.sh': join(dir, 'wrong-cgexec-off-by-one.sh') }, 'is charged 50 MiB', /must put the command into the lab's cgroup/, signal);
  });
});

describe.skipIf(!root)('the host guard against a student script that changes the host', () => {
  const spec = 'labs/cloud/02-cgroup/cgroup.spec.ts';
  // The fixture's own directory (a fixed name it makes), removed here whatever happens.
  const made = ['/sys/fs/cgroup/memory/student-scratch-guard', '/sys/fs/cgroup/student-scratch-guard'];

  it('a cgexec.sh that does its job but also makes a cgroup of its own at the top of the host\'s hierarchy passes its tests and fails the lab, naming the directory and the command that removes it', LONG, async ({ signal }) => {
    try {
      const r = await runSpecWith(spec, { 'cloud/02-cgroup/cgexec.sh': join(FIX, '02-cgroup', 'wrong-cgexec-host-cgroup.sh') }, { only: 'is charged', signal });
      expect(ran(r).map((t) => t.status), summarize(r)).toEqual(['passed']);
      expect(r.fileMessage, summarize(r)).toMatch(/changed the host[^]*cgroup \/sys\/fs\/cgroup\/(memory\/)?student-scratch-guard was made outside the lab's kl-… groups\n\s+undo: rmdir \/sys\/fs\/cgroup\/(memory\/)?student-scratch-guard/);
    } finally {
      for (const d of made) if (existsSync(d)) rmdirSync(d);
    }
  });
});

describe.skipIf(!root)('cloud Lab 3.3 (KVM) against programs of our own', () => {
  const spec = 'labs/cloud/03-kvm/kvm.spec.ts';
  const dir = join(FIX, '03-kvm');

  it('a kvm_io that decodes the text from the image instead of running the guest fails: kvm_pio saw no byte of it', LONG, async ({ signal }) => {
    await expectCaught(spec, { 'cloud/03-kvm/kvm_io.c': join(dir, 'wrong-kvm_io-decodes-image.c') }, 'hands the guest', /kvm:kvm_pio events of pid \d+ \(0;/, signal);
  });

  it('a kvm_hlt that prints the expected line without running a guest fails on kvm_userspace_exit', LONG, async ({ signal }) => {
    await expectCaught(spec, { 'cloud/03-kvm/kvm_hlt.c': join(dir, 'wrong-kvm_hlt-hardcoded.c') }, 'KVM_RUN returns with exit_reason KVM_EXIT_HLT', /kvm:kvm_userspace_exit events of pid/, signal);
  });

  it('a kvm_io that runs the guest but prints the text decoded from the image at fixed offsets (never reading the OUT data) fails: the layout and the key change per image', LONG, async ({ signal }) => {
    await expectCaught(spec, { 'cloud/03-kvm/kvm_io.c': join(dir, 'wrong-kvm_io-decodes-fixed-layout.c') }, 'hands the guest', /its output must carry the bytes the guest wrote/, signal);
  });

  it('a kvm_io whose device drops the first byte fails: its output does not carry the bytes kvm_pio saw', LONG, async ({ signal }) => {
    await expectCaught(spec, { 'cloud/03-kvm/kvm_io.c': join(dir, 'wrong-kvm_io-off-by-one.c') }, 'hands the guest', /its output must carry the bytes the guest wrote/, signal);
  });
});
