/**
 * How a lab fails on the student programs that break it worst: each fails in
 * bounded time, names what went wrong once, and leaves nothing behind (the
 * nested run's teardown would report a LEAK). The figures are the sandbox
 * table of the README's "Safety" section.
 */
import { existsSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { need } from '../../helpers/harness/requires.js';
import { runSpecNested } from '../labs/nested-run.js';

const FIX = join(import.meta.dirname, '../fixtures/harness/lab-failures');
const root = process.getuid?.() === 0;
const LONG = { timeout: 5 * 60_000 };
const messages = (r: Awaited<ReturnType<typeof runSpecNested>>) => r.tests.flatMap((t) => t.failureMessages).join('\n');

describe.skipIf(!root)('a lab on the worst student programs', () => {
  it('an XDP program the verifier rejects fails its test in seconds with the verifier\'s log, shown once', LONG, async ({ signal }) => {
    const t0 = Date.now();
    const r = await runSpecNested('labs/ebpf/03-xdp/xdp.spec.ts', { replace: { 'ebpf/03-xdp/xdp_dropper.c': join(FIX, 'xdp_dropper-verifier-reject.c') }, only: 'ping gets through', signal });
    const text = messages(r);
    expect(r.tests.find((t) => t.status === 'failed')?.title, text || r.fileMessage).toMatch(/^ping gets through/);
    // The headline names the verifier's complaint; the log itself comes once.
    expect(text).toMatch(/the BPF verifier rejected \S+xdp_dropper\.c \(the object \S+\): invalid access to packet[^]*note: packet data is read before a bounds check/);
    expect(text.split('verifier log:').length - 1, 'the verifier log once').toBe(1);
    expect(text.split('-- BEGIN PROG LOAD LOG --').length - 1, 'libbpf\'s raw log not repeated (e.g. in the cause)').toBeLessThanOrEqual(1);
    expect(r.run.stderr).not.toMatch(/LEAK/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('a container script that hangs fails the first test at its bound and the others at once, naming the hang, leaving nothing', LONG, async ({ signal }) => {
    const t0 = Date.now();
    const r = await runSpecNested('labs/cloud/01-container/container.spec.ts', { replace: { 'cloud/01-container/container.sh': join(FIX, 'container-hangs.sh') }, signal });
    const failed = r.tests.filter((t) => t.status === 'failed');
    expect(failed.length, r.fileMessage).toBeGreaterThanOrEqual(2);
    expect(failed[0]!.failureMessages.join('\n')).toMatch(/timed out after 20000 ms; its process group was killed/);
    for (const t of failed.slice(1)) expect(t.failureMessages.join('\n')).toMatch(/not run: container\.sh hung in '.*' \(killed after \d+ ms\); fix that first/);
    expect(r.run.stderr).not.toMatch(/LEAK/);
    expect(Date.now() - t0, 'one bound, not one per test').toBeLessThan(90_000);
  });

  it('a VMM whose guest never exits (jmp $, no alarm) fails at the harness bound, naming the hang; its vCPU dies with its cgroup', LONG, async (ctx) => {
    await need(ctx, 'kvm'); // without /dev/kvm the lab skips and no guest runs (a failure under LABS_STRICT=1)
    const { signal } = ctx;
    const t0 = Date.now();
    const r = await runSpecNested('labs/cloud/03-kvm/kvm.spec.ts', { replace: { 'cloud/03-kvm/kvm_hlt.c': join(FIX, 'kvm_hlt-guest-spins.c') }, only: 'KVM_EXIT_HLT once', signal });
    expect(messages(r), r.fileMessage).toMatch(/timed out after 30000 ms; its process group was killed: \S*kvm_hlt/);
    expect(r.run.stderr).not.toMatch(/LEAK/);
    expect(Date.now() - t0).toBeLessThan(120_000);
  });
  it('a cgexec.sh that does its job but also makes a cgroup of its own at the top of the host\'s hierarchy passes its tests and fails the lab, naming the directory and the command that removes it', LONG, async ({ signal }) => {
    // The fixture's own directory (a fixed name it makes), removed here whatever happens.
    const made = ['/sys/fs/cgroup/memory/student-scratch-guard', '/sys/fs/cgroup/student-scratch-guard'];
    try {
      const r = await runSpecNested('labs/cloud/02-cgroup/cgroup.spec.ts', { replace: { 'cloud/02-cgroup/cgexec.sh': join(FIX, 'cgexec-host-cgroup.sh') }, only: 'is charged', signal });
      const ran = r.tests.filter((t) => t.status !== 'skipped' && t.status !== 'pending');
      expect(ran.map((t) => t.status), messages(r) || r.fileMessage).toEqual(['passed']);
      expect(r.fileMessage).toMatch(/changed the host[^]*cgroup \/sys\/fs\/cgroup\/(memory\/)?student-scratch-guard was made outside the lab's kl-… groups\n\s+undo: rmdir \/sys\/fs\/cgroup\/(memory\/)?student-scratch-guard/);
    } finally {
      for (const d of made) if (existsSync(d)) rmdirSync(d);
    }
  });
});
