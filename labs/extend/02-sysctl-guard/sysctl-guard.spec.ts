/**
 * Lab 2 — sysctl 参数防篡改: a BPF_PROG_TYPE_CGROUP_SYSCTL program refuses
 * writes to one sysctl for the processes of one cgroup.
 *
 * Nothing of the host is touched: the guarded sysctl is net.ipv4.ip_forward
 * of a network namespace the lab makes (net.* sysctls are per namespace),
 * the cgroup is a kl-<run> child of the unified (cgroup2) hierarchy, and the
 * host's own values are read at the start and asserted unchanged at the end.
 *
 * The lab's anatomy: experiment.ts attaches the student's guard and collects
 * what the kernel said in each case, judge.ts turns it into facts and
 * messages, this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { attachDetach, compiled, counting, detaching, hostSysctls, lettingThrough, outsideWrite, prepareGuard, refusal, type GuardSetup } from './experiment.js';
import * as judge from './judge.js';
import { COUNTER_MAP, GUARDED, OTHER, RANDOM_OTHERS } from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

const CORRECTNESS = ['in the guarded cgroup a write to'];

describe('Lab 2 — a sysctl guard with cgroup-BPF (sysctl 参数防篡改)', () => {
  requires(...labRequires(import.meta.url));
  let setup: GuardSetup;

  beforeAll(async () => {
    if (await unmet(labRequires(import.meta.url))) return;
    setup = await prepareGuard();
  });

  it('compiles sysctl_guard.c into a BPF object with a "cgroup/sysctl" section', async () => {
    const v = judge.section(await compiled(setup));
    holds(v);
  });

  it('attaches to the lab\'s cgroup2 cgroup: bpftool cgroup show lists it (type sysctl) while it is on, and nothing after detaching', async () => {
    const v = judge.attach(await attachDetach(setup));
    holds(v.during);
    holds(v.after);
  });

  it(`in the guarded cgroup a write to ${GUARDED} fails with EPERM and the value is unchanged`, async () => {
    const v = judge.refused(await refusal(setup));
    holds(v);
  });

  it(`in the guarded cgroup reading ${GUARDED} works and writing other sysctls succeeds (${OTHER}, names that share a prefix, the length or a word with it, and ${RANDOM_OTHERS} picked at random)`, async (ctx) => {
    afterCorrectness(ctx, CORRECTNESS, 'what the guard lets through');
    const v = judge.letThrough(await lettingThrough(setup));
    holds(v);
  });

  it(`a process outside the cgroup, in the same network namespace, can write ${GUARDED}`, async (ctx) => {
    afterCorrectness(ctx, CORRECTNESS, 'what the guard lets through');
    const v = judge.outside(await outsideWrite(setup));
    holds(v);
  });

  it(`the counter map ${COUNTER_MAP} (read with bpftool) counts exactly the refused writes, not reads or allowed writes`, async (ctx) => {
    const e = await counting(setup);
    recordMetric(ctx, { name: 'denied writes counted by the guard', value: e.count, unit: 'writes', group: 'sysctl guard' });
    // Two CPUs refuse writes at once: a plain array or hash map needs an atomic add, or increments are lost.
    // (A per-CPU map needs none.) The kernel's copy of the program says which it does: every instruction that may
    // write into this map's value, found by following the map's address (map[id:N]) through the lookup, the
    // registers and the stack — an atomic add elsewhere (another map) does not count; a plain store made while
    // bpf_spin_lock is held on the same value (struct { struct bpf_spin_lock lock; __u64 count; }) is safe too.
    const v = judge.counter(e);
    if (v.atomic) holds(v.atomic);
    holds(v.count);
  });

  it('detaching the program restores writes from inside the cgroup', async () => {
    const v = judge.detached(await detaching(setup));
    holds(v);
  });

  it('leaves the host\'s own sysctls unchanged', (ctx) => {
    afterCorrectness(ctx, CORRECTNESS, 'what the guard lets through');
    const v = judge.hostUnchanged(setup.hostBefore, hostSysctls(Object.keys(setup.hostBefore)));
    holds(v);
  });
});
