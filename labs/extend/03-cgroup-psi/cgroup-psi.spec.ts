/**
 * Lab 3 — cgroup 实现之整体架构 and PSI: where a process sits in the cgroup
 * hierarchies, and the memory pressure a squeezed cgroup shows.
 *
 * Part 1: the lab puts a process it started into cgroups with random kl-
 * names, a different one in each hierarchy it may touch (v1: cpu, cpuacct,
 * memory; the unified cgroup2 tree on every host), nested one level. The
 * student's cgwhere <pid> must name, per hierarchy, its id, controllers,
 * path and the cgroup's directory; the spec judges the content against the
 * kernel's /proc/<pid>/cgroup, /proc/cgroups, the mounts and cgroup.procs.
 *
 * Part 2: a workload re-reads a file twice the size of a memory limit
 * (psi.ts pressureCgroup: memory.high on v2; on a v1 host the
 * v1 memory limit, and the stall read from the same tasks' kl- child of the
 * controller-less cgroup2 tree) while the student's psiwatch holds a PSI
 * trigger on that memory.pressure. The kernel's totals prove the squeeze
 * (and its absence in an unlimited control run); the kernel answers whether
 * psiwatch's descriptor holds a trigger; the events it reports are checked
 * against the totals sampled meanwhile.
 *
 * The lab's anatomy: experiment.ts places the process, runs the programs and
 * collects the evidence (`Placement`, `PressureRun`), judge.ts turns it into
 * facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { CapabilityId } from '../../../helpers/harness/capabilities.js';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import {
  FILE_MIB, LIMIT_BYTES, placeAndAsk, preparePsi, pressureRuns, UNREACHABLE_US, UNREACHABLE_WINDOW_US,
  type Placement, type PressureRun, type PsiSetup, type RunKind,
} from './experiment.js';
import * as judge from './judge.js';
import { CONTROL_MAX_US, SQUEEZED_MIN_US } from './judge.js';

/** What the lab needs; the BPF toolchain reads psiwatch's trigger from the kernel (psi-triggers.bpf.c). */
const NEEDS: CapabilityId[] = labRequires(import.meta.url);

describe('Lab 3 — cgroup hierarchies and pressure stall information (cgroup 架构; PSI)', () => {
  requires(...NEEDS);

  let setup: PsiSetup;

  beforeAll(async () => {
    if (await unmet(NEEDS)) return;
    setup = await preparePsi();
  });

  describe('cgwhere: the cgroups of a process, per hierarchy', () => {
    let p: Placement;

    beforeAll(async () => {
      if (await unmet(NEEDS)) return;
      p = await placeAndAsk(setup);
    });

    it('names, for each v1 hierarchy the process is in, its hierarchy id, its controllers and its path (the random kl- cgroups the lab made)', async (ctx) => {
      const v = judge.v1Named(p);
      if (!v.v1) return void (await adapted(ctx, 'cgroup v2 only: no v1 hierarchies to name'));
      await adapted(ctx, 'cgroup v1 controllers: one line per v1 hierarchy, the process placed in cpu, cpuacct and memory');
      expect(v.facts, v.message).toEqual(v.want);
    });

    it('names the one cgroup2 path (hierarchy 0) the lab put the process in', () => {
      const v = judge.v2Named(p);
      expect(v.kernelPath, v.pathMessage).toBe(v.labPath);
      expect(v.line, v.lineMessage).toBeDefined();
    });

    it('agrees with /proc/cgroups: each v1 hierarchy id it names has exactly the controllers the kernel bound to that id', () => {
      const v = judge.controllersAgree(p);
      expect(v.fact, v.message).toEqual([]);
    });

    it('names for each hierarchy the directory that holds the process: on that hierarchy\'s mount, with the pid in its cgroup.procs', () => {
      const v = judge.directoriesHold(p);
      expect(v.fact, v.message).toEqual([]);
    });
  });

  describe('psiwatch: a PSI trigger on the memory.pressure of a squeezed cgroup', () => {
    let runs: Record<RunKind, PressureRun>;

    beforeAll(async () => {
      if (await unmet(NEEDS)) return;
      runs = await pressureRuns(setup);
    }, 240_000);

    it(`control: squeezed under a ${LIMIT_BYTES >> 20} MiB limit, re-reading a ${FILE_MIB} MiB file stalls the cgroup on memory (some total grows by ≥ ${SQUEEZED_MIN_US / 1000} ms)`, async (ctx) => {
      const r = runs.squeezed;
      if (r.hostVersion === 1) await adapted(ctx, 'cgroup v1 memory controller: the limit is memory.limit_in_bytes; PSI from a kl- child of the controller-less cgroup2 hierarchy');
      recordMetric(ctx, { name: 'memory stall (some) while squeezed', value: judge.grew(r) / 1000, unit: 'ms', group: 'PSI' });
      recordMetric(ctx, { name: 'memory stall (full) while squeezed', value: judge.grewFull(r) / 1000, unit: 'ms', group: 'PSI' });
      const v = judge.stall(r);
      expect(v.exitCode, v.message).toBe(0);
      expect(v.grewUs, v.message).toBeGreaterThanOrEqual(SQUEEZED_MIN_US);
    });

    it(`control: without the limit the same workload's some total stays near zero (< ${CONTROL_MAX_US / 1000} ms)`, (ctx) => {
      const r = runs.control;
      recordMetric(ctx, { name: 'memory stall (some) unlimited', value: judge.grew(r) / 1000, unit: 'ms', group: 'PSI' });
      const v = judge.stall(r);
      expect(v.exitCode, v.message).toBe(0);
      expect(v.grewUs, v.message).toBeLessThan(CONTROL_MAX_US);
    });

    it('psiwatch holds a PSI trigger on the cgroup\'s memory.pressure while it runs (the kernel refuses a second one on its descriptor: EBUSY)', () => {
      const v = judge.triggerHeld(runs.squeezed);
      expect(v.fact, v.message).toBeGreaterThanOrEqual(1);
    });

    it('psiwatch\'s trigger is the one it was asked for: the kernel holds "some <stall> <window>" with the arguments as given, in each of the three runs', () => {
      const v = judge.triggerAsAsked(runs);
      expect(v.facts, v.message).toEqual(v.want);
    });

    it('psiwatch prints one event per firing of its trigger, as it fires, and leaves no event unread (the trigger\'s last firing and pending event, read from the kernel every 200 ms)', (ctx) => {
      afterCorrectness(ctx, ['psiwatch\'s trigger is the one it was asked for'], 'events against the firings of the trigger psiwatch holds');
      const v = judge.eventsPerFiring(runs);
      recordMetric(ctx, { name: 'trigger firings while squeezed (kernel)', value: v.squeezedFirings, unit: 'firings', group: 'PSI' });
      expect(v.fact, v.message).toEqual([]);
    });

    it('psiwatch reports stall events while the workload is squeezed, each when the kernel\'s some total had grown by the threshold it was given (30–70 ms, random) within about a window', (ctx) => {
      const r = runs.squeezed;
      recordMetric(ctx, { name: 'trigger events while squeezed', value: r.events.length, unit: 'events', group: 'PSI' });
      const v = judge.squeezedEvents(r);
      expect(v.events.fact, v.events.message).toBeGreaterThanOrEqual(1);
      expect(v.unstalled.fact, v.unstalled.message).toEqual([]);
      expect(v.otherPressure.fact, v.otherPressure.message).toEqual([]);
    });

    it(`psiwatch asked for a stall the squeeze never reaches (${UNREACHABLE_US / 1000} ms within ${UNREACHABLE_WINDOW_US / 1e6} s), holding its trigger, reports no event under the same squeeze`, (ctx) => {
      const r = runs.unreachable;
      recordMetric(ctx, { name: 'trigger events, unreachable threshold', value: r.events.length, unit: 'events', group: 'PSI' });
      const v = judge.unreachableQuiet(r);
      expect(v.facts, v.message).toEqual(v.want);
    });

    it('psiwatch, holding its trigger on the unlimited cgroup\'s memory.pressure, reports no event while the same workload runs without the limit', (ctx) => {
      const r = runs.control;
      recordMetric(ctx, { name: 'trigger events unlimited', value: r.events.length, unit: 'events', group: 'PSI' });
      const v = judge.controlQuiet(r);
      expect(v.facts, v.message).toEqual(v.want);
    });
  });
});
