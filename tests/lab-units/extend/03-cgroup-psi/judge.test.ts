/** Extend Lab 3's verdicts (labs/extend/03-cgroup-psi/judge.ts) on made-up evidence: cgwhere's answer against the kernel's view, psiwatch's runs. */
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../../../helpers/harness/exec.js';
import type { DirView, Placement, PressureRun, RunKind } from '../../../../labs/extend/03-cgroup-psi/experiment.js';
import {
  controllersAgree, controlQuiet, directoriesHold, eventsPerFiring, lineFor, pathTokens, squeezedEvents, stall, tokens, triggerAsAsked, triggerHeld,
  unreachableQuiet, v1Named, v2Named,
} from '../../../../labs/extend/03-cgroup-psi/judge.js';
import { parseTriggerLines, type TriggerSample } from '../../../../labs/extend/03-cgroup-psi/trigger-state.js';

const result = (stdout: string, exitCode = 0): RunResult => ({ command: 'cgwhere 4242', stdout, stderr: '', exitCode, pid: 1, timedOut: false, reason: 'exited' } as RunResult);

// The process in v1 memory (id 5), cpu,cpuacct (id 3) and cgroup2; cgwhere ran with the v1 hierarchies moved to /tmp/kl-psi/m…
const MEM = '/kl-1-w1/xab:cd';
const CPU = '/kl-1-w2/xef:01';
const V2 = '/kl-1-w3/x12:34';
const kernelView = `5:memory:${MEM}\n3:cpu,cpuacct:${CPU}\n0::${V2}\n`;
const procCgroups = '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t10\t1\ncpuacct\t3\t10\t1\nmemory\t5\t12\t1\npids\t2\t40\t1\n';
const nsMountinfo = [
  '30 25 0:26 / /tmp/kl-psi/mmem rw,nosuid - cgroup cgroup rw,memory',
  '31 25 0:27 / /tmp/kl-psi/mcpu rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
  '32 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw',
].join('\n');
const moved = [
  { host: '/sys/fs/cgroup/memory', ns: '/tmp/kl-psi/mmem', what: 'v1 memory' },
  { host: '/sys/fs/cgroup/cpu,cpuacct', ns: '/tmp/kl-psi/mcpu', what: 'v1 cpu' },
];
const GOOD = `5 memory ${MEM} /tmp/kl-psi/mmem${MEM}\n3 cpu,cpuacct ${CPU} /tmp/kl-psi/mcpu${CPU}\n0 - ${V2} /sys/fs/cgroup/unified${V2}\n`;
/** The host's view of every directory a correct cgwhere prints. */
const dirsOf = (stdout: string, views: Record<string, DirView>) => new Map(pathTokens(stdout).map((d) => [d, views[d] ?? { isDir: false }]));
const GOOD_VIEWS: Record<string, DirView> = {
  [`/tmp/kl-psi/mmem${MEM}`]: { there: moved[0], real: `/tmp/kl-psi/mmem${MEM}`, host: `/sys/fs/cgroup/memory${MEM}`, isDir: true, procs: [4242] },
  [`/tmp/kl-psi/mcpu${CPU}`]: { there: moved[1], real: `/tmp/kl-psi/mcpu${CPU}`, host: `/sys/fs/cgroup/cpu,cpuacct${CPU}`, isDir: true, procs: [4242] },
  [`/sys/fs/cgroup/unified${V2}`]: { real: `/sys/fs/cgroup/unified${V2}`, host: `/sys/fs/cgroup/unified${V2}`, isDir: true, procs: [4242] },
};
function placement(stdout: string, views: Record<string, DirView> = GOOD_VIEWS, extra: Partial<Placement> = {}): Placement {
  return {
    target: 4242, kernelView, procCgroups, answer: result(stdout), nsMountinfo, moved, dirs: dirsOf(stdout, views),
    placed: [
      { path: MEM, dir: `/sys/fs/cgroup/memory${MEM}`, what: 'v1 memory' }, { path: CPU, dir: `/sys/fs/cgroup/cpu,cpuacct${CPU}`, what: 'v1 cpu' },
      { path: V2, dir: `/sys/fs/cgroup/unified${V2}`, what: 'cgroup2 (mounted)' },
    ],
    ...extra,
  };
}

describe('Extend Lab 3 judge: cgwhere', () => {
  it('tokens keep a path whole; a line names a hierarchy by id, controllers and path', () => {
    expect(tokens('3: cpu,cpuacct')).toEqual(['3', 'cpu', 'cpuacct']);
    expect(pathTokens(`path=${CPU}, dir /sys/fs/cgroup/cpu,cpuacct${CPU}.`)).toEqual([CPU, `/sys/fs/cgroup/cpu,cpuacct${CPU}`]);
    expect(lineFor(GOOD, { id: 3, controllers: ['cpu', 'cpuacct'], path: CPU, raw: `3:cpu,cpuacct:${CPU}` })).toMatch(/^3 cpu,cpuacct/);
    // The path cut at its ':' (split on the last colon) names no hierarchy.
    expect(lineFor(`3 cpu,cpuacct /kl-1-w2/xef\n`, { id: 3, controllers: ['cpu', 'cpuacct'], path: CPU, raw: '' })).toBeUndefined();
  });

  it('a correct answer passes every cgwhere verdict', () => {
    const p = placement(GOOD);
    const v1 = v1Named(p);
    expect([v1.v1, v1.facts]).toEqual([true, v1.want]);
    const v2 = v2Named(p);
    expect([v2.kernelPath, v2.line]).toEqual([v2.labPath, `0 - ${V2} /sys/fs/cgroup/unified${V2}`]);
    expect(controllersAgree(p).fact).toEqual([]);
    expect(directoriesHold(p).fact).toEqual([]);
  });

  it('a missing line, a hierarchy without its controllers, a directory at the usual place of a moved mount fail, with the evidence', () => {
    const noMem = placement(GOOD.split('\n').slice(1).join('\n'));
    expect(v1Named(noMem).facts).toEqual({ missing: [`5:memory:${MEM}`], notNamed: [`v1 memory ${MEM}`] });
    expect(v1Named(noMem).message).toMatch(/moved in cgwhere's mount namespace: v1 memory \/sys\/fs\/cgroup\/memory -> \/tmp\/kl-psi\/mmem/);
    expect(controllersAgree(noMem).fact).toEqual([`5:memory:${MEM}: no line`]);
    const cpuOnly = placement(GOOD.replace('3 cpu,cpuacct', '3 cpu,cpuacct,pids'));
    expect(controllersAgree(cpuOnly).fact).toEqual(['hierarchy 3: named cpu,cpuacct,pids, /proc/cgroups binds cpu,cpuacct']);
    // The host's usual mount point, unmounted in cgwhere's namespace.
    const usual = GOOD.replace(`/tmp/kl-psi/mmem${MEM}`, `/sys/fs/cgroup/memory${MEM}`);
    const p = placement(usual, { ...GOOD_VIEWS, [`/sys/fs/cgroup/memory${MEM}`]: { real: `/sys/fs/cgroup/memory${MEM}`, host: `/sys/fs/cgroup/memory${MEM}`, isDir: true, procs: [4242] } });
    const d = directoriesHold(p);
    expect(d.fact).toHaveLength(1);
    expect(d.fact[0]).toMatch(/^5:memory:.*named \/sys\/fs\/cgroup\/memory.*; expected \/tmp\/kl-psi\/mmem.* \(this hierarchy was moved in cgwhere's mount namespace/);
    // The right directory, but the pid is not in its cgroup.procs.
    const empty = placement(GOOD, { ...GOOD_VIEWS, [`/sys/fs/cgroup/unified${V2}`]: { ...GOOD_VIEWS[`/sys/fs/cgroup/unified${V2}`]!, procs: [] } });
    expect(directoriesHold(empty).fact).toEqual([`0::${V2}: named /sys/fs/cgroup/unified${V2}; expected /sys/fs/cgroup/unified${V2}`]);
    expect(v2Named(placement('0 /elsewhere\n')).line).toBeUndefined();
  });

  it('a v2-only host has no v1 line to ask for', () => {
    expect(v1Named(placement(`0 - ${V2}\n`, GOOD_VIEWS, { kernelView: `0::${V2}\n` })).v1).toBe(false);
  });
});

const F = '/sys/fs/cgroup/unified/kl-p/leaf/memory.pressure';
const trig = (addr: string, state: string, stallUs: number, windowUs: number, ev: number, last: number) =>
  `4242 3 cgroup trigger ${addr} ${state} ${stallUs * 1000} ${windowUs * 1000} ${ev} ${last} 0`;
const samples = (lines: [number, string][]): TriggerSample[] => lines.map(([t, l]) => ({ t, held: parseTriggerLines(l).map((h) => ({ ...h, target: F })) }));
function pressureRun(extra: Partial<PressureRun> = {}): PressureRun {
  return {
    how: 'v2 cgroup', hostVersion: 2, file: F, observed: F.replace('/leaf', ''), before: { some: { avg10: 0, avg60: 0, avg300: 0, total: 1000 } },
    after: { some: { avg10: 2, avg60: 1, avg300: 0, total: 501000 } }, samples: [], workload: result('', 0), watcher: result('', 0),
    triggers: [{ pid: 4242, fd: 3, writable: true, trigger: true, answer: 'trigger' }], openFilesSeen: '', otherPressure: [], stallUs: 50_000, windowUs: 2_000_000,
    events: [], start: 100, end: 109, triggerSamples: [], cpuMs: 0, cpuOverS: 6, watchSeconds: 9, ...extra,
  };
}
/** A trigger that never fires, sampled every 0.2 s from 100.2 to 108 s (no gap that could hide a firing). */
const every = (last: (t: number) => number, ev: (t: number) => number = () => 0) => samples(Array.from({ length: 40 }, (_, i) => { const t = +(100.2 + i * 0.2).toFixed(1); return [t, trig('a1', 'some', 50_000, 2_000_000, ev(t), last(t))] as [number, string]; }));
const quiet = (r: Partial<PressureRun> = {}) => pressureRun({ triggerSamples: every(() => 0), ...r });

describe('Extend Lab 3 judge: psiwatch', () => {
  it('the controls: the stall a run saw, the kernel\'s answer on the descriptors', () => {
    expect(stall(pressureRun())).toMatchObject({ exitCode: 0, grewUs: 500_000 });
    expect(stall(pressureRun()).message).toMatch(/some total 1000 -> 501000 µs \(full - -> -\)/);
    expect(triggerHeld(pressureRun()).fact).toBe(1);
    expect(triggerHeld(pressureRun({ triggers: [{ pid: 1, fd: 3, writable: false, trigger: false, answer: 'no trigger' }] })).fact).toBe(0);
  });

  it('the trigger as asked in each run: a fixed window or "full" shows', () => {
    const runs = (w: number, state = 'some'): Record<RunKind, PressureRun> => ({
      squeezed: quiet(), control: quiet(),
      unreachable: quiet({ stallUs: 1_500_000, windowUs: 4_000_000, triggerSamples: samples([[100.2, trig('b1', state, 1_500_000, w, 0, 0)]]) }),
    });
    const ok = triggerAsAsked(runs(4_000_000));
    expect(ok.facts).toEqual(ok.want);
    const fixed = triggerAsAsked(runs(2_000_000));
    expect(fixed.facts.unreachable).toEqual(['some 1500000 2000000']);
    expect(fixed.message).toMatch(/unreachable: psiwatch .* 1500000 4000000 9; its triggers on that file: pid 4242 fd 3: "some 1500000 2000000"/);
    expect(triggerAsAsked(runs(4_000_000, 'full')).facts.unreachable).toEqual(['full 1500000 4000000']);
  });

  it('one event per firing: a missed firing, an event without one, a busy loop, an unread event', () => {
    const fired = every((t) => (t >= 102.2 ? 7 : 0));
    const all = (squeezed: PressureRun) => ({ squeezed, control: quiet(), unreachable: quiet({ stallUs: 1_500_000, windowUs: 4_000_000, triggerSamples: [] }) });
    const ok = eventsPerFiring(all(quiet({ triggerSamples: fired, events: [102.1] })));
    expect([ok.fact, ok.squeezedFirings]).toEqual([[], 1]);
    expect(eventsPerFiring(all(quiet({ triggerSamples: fired }))).fact).toEqual(['squeezed: the kernel fired psiwatch\'s trigger between 2.00 and 2.20 s and psiwatch printed no event for it within 1 s']);
    expect(eventsPerFiring(all(quiet({ events: [104] }))).fact).toEqual(['squeezed: psiwatch printed an event at 4.00 s when its trigger had not fired']);
    // Fired at 102.2 s, its event printed, but left pending (nobody polled) until 104 s.
    const pending = eventsPerFiring(all(quiet({ triggerSamples: every((t) => (t >= 102.2 ? 7 : 0), (t) => (t >= 102.2 && t < 104 ? 1 : 0)), events: [102.1] }))).fact;
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatch(/^squeezed: the kernel's event of psiwatch's trigger waited unread from 2\.20 s to /);
    expect(eventsPerFiring(all(quiet({ cpuMs: 3000 }))).fact[0]).toMatch(/^squeezed: psiwatch used 3000 ms of CPU time .* first 6\.0 s/);
  });

  it('squeezed events follow real stall; the quiet runs hold a trigger and print nothing', () => {
    const grown = [{ t: 100, some: 0, full: 0 }, { t: 101, some: 10_000, full: 0 }, { t: 102, some: 60_000, full: 0 }];
    const ok = squeezedEvents(pressureRun({ events: [102.1], samples: grown }));
    expect([ok.events.fact, ok.unstalled.fact, ok.otherPressure.fact]).toEqual([1, [], []]);
    const early = squeezedEvents(pressureRun({ events: [100.2], samples: [{ t: 100, some: 0, full: 0 }, { t: 100.5, some: 0, full: 0 }] }));
    expect(early.unstalled.fact).toEqual([{ at: 0.2, grewUs: 0 }]);
    expect(squeezedEvents(pressureRun()).events.fact).toBe(0);
    expect(unreachableQuiet(pressureRun()).facts).toEqual(unreachableQuiet(pressureRun()).want);
    expect(unreachableQuiet(pressureRun({ events: [103.456], otherPressure: ['pid 1 fd 4 -> /proc/pressure/memory'] })).facts)
      .toEqual({ triggerHeld: true, events: [3.46], otherPressureFiles: ['pid 1 fd 4 -> /proc/pressure/memory'] });
    expect(controlQuiet(pressureRun({ triggers: [] })).facts).toEqual({ triggerHeld: false, events: [] });
  });
});
