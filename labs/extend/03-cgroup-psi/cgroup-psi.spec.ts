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
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cgroupV1Controllers, parseCgroupMounts, probeCgroups } from '../../../helpers/harness/capabilities.js';
import { parseCgroupProcs } from '../../../helpers/harness/cgroup-files.js';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { destroyCgroup } from '../../../helpers/harness/destroy.js';
import { run, startBackground, waitUntil, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import type { CapabilityId } from '../../../helpers/harness/capabilities.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { cgroup2Root } from '../../../helpers/kernel/cgroup-bpf.js';
import { parseProcCgroupEntries, type ProcCgroupEntry } from '../../../helpers/kernel/cgroup-limits.js';
import { descendants, listProcesses, readStat } from '../../../helpers/kernel/procfs.js';
import {
  describeOpenFiles, growthAround, monotonicSeconds, openFiles, pressureCgroup, readPressure, samplePressure, triggersOn,
  type Pressure, type PressureSample,
} from './psi.js';
import { firingsOf, matchEvents, pinTriggerIterator, sampleTriggers, triggersHeld, unreadEvents, type TriggerSample } from './trigger-state.js';

/** What the lab needs; the BPF toolchain reads psiwatch's trigger from the kernel (psi-triggers.bpf.c). */
const NEEDS: CapabilityId[] = labRequires(import.meta.url);

const CGROUP_BASE = '/sys/fs/cgroup';
/** v1 hierarchies the lab may move a process into (pids and freezer hold it for the sandbox). */
const V1_PLACED = ['cpu', 'cpuacct', 'memory'];

/** The squeeze: a 32 MiB limit and a 256 MiB file read again and again. */
const LIMIT_BYTES = 32 * 1024 * 1024;
const FILE_MIB = 256;
const WORKLOAD_SECONDS = 5;
/**
 * The trigger: "some <stall> 2000000" — 30–70 ms of stall (random per run) within 2 s. A 2 s window needs no
 * CAP_SYS_RESOURCE. A third run asks for a stall the squeeze never reaches (1.5 s within 4 s; measured: at most
 * ~0.3 s per 2 s here): a watcher that ignores its arguments, or counts on its own, reports events there, and the
 * kernel's copy of its trigger (psi-triggers.bpf.c) shows any other numbers than those given.
 */
const STALL_US = (3 + randomInt(0, 5)) * 10_000;
const WINDOW_US = 2_000_000;
const UNREACHABLE_US = 1_500_000;
/** The third run's window: 4 s (a multiple of 2 s needs no CAP_SYS_RESOURCE either), so a watcher that writes "2000000" whatever it is given shows. */
const UNREACHABLE_WINDOW_US = 4_000_000;
/** psiwatch runs past the workload by more than a window, so a late event is still seen. */
const WATCH_SECONDS = WORKLOAD_SECONDS + 4;
/** Measured here: 440–550 ms of stall in 4–5 s squeezed, 0 without the limit. */
const SQUEEZED_MIN_US = 100_000;
const CONTROL_MAX_US = 20_000;
/** A watcher blocks in poll(2): a share of one CPU above this, over its run, is a loop that never waits (the reference: ~0). */
const WAIT_CPU_SHARE = 0.2;

const show = (r: RunResult) => `${r.command} exited ${r.signal ?? r.exitCode} (${r.reason})\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim().split('\n').slice(-6).join('\n')}`;

/** Tokens of an output line: split on blanks and the usual separators, never on "/". */
const tokens = (line: string) => line.split(/[\s,:=;|()[\]{}"'<>]+/).filter(Boolean);
/** Directory candidates: split on blanks and "=" only (a merged v1 mount is /sys/fs/cgroup/cpu,cpuacct). */
const pathTokens = (line: string) => line.split(/[\s=;|()[\]{}"'<>]+/).filter((t) => t.startsWith('/')).map((t) => t.replace(/[,:.]+$/, ''));

/** The output line that names this hierarchy: its id, every controller and its path, each as a token. */
function lineFor(output: string, e: ProcCgroupEntry): string | undefined {
  return output.split('\n').find((line) => {
    const t = tokens(line);
    const ctl = e.controllers.every((c) => t.includes(c) || (c.startsWith('name=') && t.includes(c.slice(5))));
    // The path as one word: the lab's cgroup names hold a ':' (a path may), which tokens() splits.
    return t.includes(String(e.id)) && ctl && (t.includes(e.path) || pathTokens(line).includes(e.path));
  });
}

describe('Lab 3 — cgroup hierarchies and pressure stall information (cgroup 架构; PSI)', () => {
  requires(...NEEDS);

  let cgwhere = '';
  let psiwatch = '';
  let tmp = '';
  let bigFile = '';

  beforeAll(async () => {
    if (await unmet(NEEDS)) return;
    cgwhere = (await buildProgram({ src: labSource('extend/03-cgroup-psi/cgwhere.c') })).path;
    psiwatch = (await buildProgram({ src: labSource('extend/03-cgroup-psi/psiwatch.c') })).path;
    tmp = await makeTempDir('psi');
  });

  describe('cgwhere: the cgroups of a process, per hierarchy', () => {
    let target = 0;
    let kernelView = '';
    let answer: RunResult;
    /** The leaf cgroup the lab made in each hierarchy: its path inside the hierarchy and its directory. */
    const placed: { path: string; dir: string; what: string }[] = [];
    /** The v1 hierarchies the lab moved in cgwhere's mount namespace: host mount point → where cgwhere sees it. */
    const moved: { host: string; ns: string; what: string }[] = [];
    /** /proc/self/mountinfo in cgwhere's mount namespace, read just before it started. */
    let nsMountinfo = '';

    beforeAll(async () => {
      if (await unmet(NEEDS)) return;
      const sleeper = startBackground('sleep', ['120'], { timeoutMs: 180_000 });
      target = sleeper.pid;
      // The sandbox's shell joins its cgroups, then execs sleep: place the process only after that.
      await waitUntil('the sleeper to exec sleep', () => { try { return readFileSync(`/proc/${target}/comm`, 'utf8').trim(); } catch { return ''; } }, (c) => c === 'sleep');
      // Where to make cgroups: the v1 hierarchies we may touch, and the unified tree.
      const roots: { dir: string; what: string }[] = [];
      const v1 = cgroupV1Controllers();
      for (const c of V1_PLACED) {
        const dir = v1.get(c);
        if (dir && !roots.some((r) => r.dir === dir)) roots.push({ dir, what: `v1 ${c}` });
      }
      const u = await cgroup2Root();
      roots.push({ dir: u.path, what: `cgroup2 (${u.how})` });
      for (const r of roots) {
        const top = join(r.dir, uniqueName('w'));
        mkdirSync(top);
        defer(`cgroup ${top}`, () => {
          const d = destroyCgroup([top]);
          if (!d.gone) throw new Error(`cgroup ${top} not removed: ${d.reason}`);
        }, `rmdir ${top}/* ${top}   (after killing the pids in their cgroup.procs)`);
        // A ':' in the name: /proc/<pid>/cgroup then has a path with a ':' in it ("<id>:<controllers>:<path>" splits at the first two only).
        const leaf = join(top, `x${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`);
        mkdirSync(leaf);
        writeFileSync(join(leaf, 'cgroup.procs'), String(target));
        placed.push({ path: leaf.slice(r.dir.length), dir: leaf, what: r.what });
      }
      kernelView = readFileSync(`/proc/${target}/cgroup`, 'utf8');
      // cgwhere runs in a mount namespace of its own where the v1 hierarchies the process was placed in are mounted at random
      // directories (bind, then the usual mount point unmounted; cpu last, after cpuacct and cpuset): where a hierarchy is
      // mounted comes from the mount table (mount options), not from a host's usual layout or mount order.
      for (const r of [...roots].reverse().filter((x) => x.what.startsWith('v1'))) {
        const ns = join(tmp, `m${randomBytes(3).toString('hex')}`);
        mkdirSync(ns);
        moved.push({ host: r.dir, ns, what: r.what });
      }
      const nsInfo = join(tmp, `mountinfo-${randomBytes(3).toString('hex')}`);
      const moves = moved.map((m) => `mount --bind '${m.host}' '${m.ns}' && umount -l '${m.host}' && `).join('');
      answer = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${moves}cat /proc/self/mountinfo > '${nsInfo}' && exec "$0" "$@"`, cgwhere, String(target)],
        { timeoutMs: 10_000, reject: false });
      try { nsMountinfo = readFileSync(nsInfo, 'utf8'); } catch { throw new Error(`no mount namespace for cgwhere: ${show(answer)}`); }
      const after = readFileSync(`/proc/${target}/cgroup`, 'utf8');
      if (after !== kernelView) throw new Error(`the process moved while cgwhere ran:\n${kernelView}\nthen\n${after}`);
    });

    const evidence = () => `cgwhere ${target}: ${show(answer)}\n/proc/${target}/cgroup (the kernel):\n${kernelView.trim()}\n` +
      `the lab's cgroups: ${placed.map((p) => `${p.what}: ${p.path}`).join('; ')}\n` +
      `moved in cgwhere's mount namespace: ${moved.map((m) => `${m.what} ${m.host} -> ${m.ns}`).join('; ') || 'none'}`;

    it('names, for each v1 hierarchy the process is in, its hierarchy id, its controllers and its path (the random kl- cgroups the lab made)', async (ctx) => {
      const v1 = parseProcCgroupEntries(kernelView).filter((e) => e.id !== 0);
      if (!v1.length) return void (await adapted(ctx, 'cgroup v2 only: no v1 hierarchies to name'));
      await adapted(ctx, 'cgroup v1 controllers: one line per v1 hierarchy, the process placed in cpu, cpuacct and memory');
      const missing = v1.filter((e) => !lineFor(answer.stdout, e)).map((e) => e.raw);
      const ours = placed.filter((p) => p.what.startsWith('v1')).filter((p) => !tokens(answer.stdout).includes(p.path) && !pathTokens(answer.stdout).includes(p.path));
      expect({ missing, notNamed: ours.map((p) => `${p.what} ${p.path}`) },
        `every /proc/<pid>/cgroup line must have an output line with its id, controllers and path as words.\n${evidence()}`)
        .toEqual({ missing: [], notNamed: [] });
    });

    it('names the one cgroup2 path (hierarchy 0) the lab put the process in', () => {
      const v2 = parseProcCgroupEntries(kernelView).find((e) => e.id === 0 && e.controllers.length === 0);
      const ours = placed.find((p) => p.what.startsWith('cgroup2'));
      expect(v2?.path, `the kernel's 0:: line must be the lab's cgroup2 cgroup.\n${evidence()}`).toBe(ours?.path);
      expect(lineFor(answer.stdout, v2!), `an output line must name hierarchy 0 with the path ${v2?.path}.\n${evidence()}`).toBeDefined();
    });

    it('agrees with /proc/cgroups: each v1 hierarchy id it names has exactly the controllers the kernel bound to that id', () => {
      const table = readFileSync('/proc/cgroups', 'utf8').split('\n').filter((l) => /^\w/.test(l) && !l.startsWith('#')).map((l) => l.split(/\s+/));
      const bound = (id: number) => table.filter((f) => Number(f[1]) === id && f[3] === '1').map((f) => f[0]!).sort();
      const wrong: string[] = [];
      for (const e of parseProcCgroupEntries(kernelView).filter((x) => x.id !== 0 && !x.controllers.some((c) => c.startsWith('name=')))) {
        const line = lineFor(answer.stdout, e);
        if (!line) { wrong.push(`${e.raw}: no line`); continue; }
        const named = tokens(line).filter((t) => table.some((f) => f[0] === t)).sort();
        if (JSON.stringify(named) !== JSON.stringify(bound(e.id))) wrong.push(`hierarchy ${e.id}: named ${named.join(',')}, /proc/cgroups binds ${bound(e.id).join(',')}`);
      }
      expect(wrong, `/proc/cgroups:\n${readFileSync('/proc/cgroups', 'utf8').trim()}\n${evidence()}`).toEqual([]);
    });

    it('names for each hierarchy the directory that holds the process: on that hierarchy\'s mount, with the pid in its cgroup.procs', () => {
      // The mounts as cgwhere saw them, in its own mount namespace (the lab moved the v1 hierarchies it placed the process in).
      const mounts = parseCgroupMounts(nsMountinfo).filter((m) => m.root === '/');
      const movedTo = (d: string) => moved.find((x) => d === x.ns || d.startsWith(`${x.ns}/`));
      const movedFrom = (d: string) => moved.find((x) => d === x.host || d.startsWith(`${x.host}/`));
      const ofHierarchy = (e: ProcCgroupEntry) => mounts.filter((m) => (e.id === 0 ? m.version === 2
        : m.version === 1 && (e.controllers[0]?.startsWith('name=') ? m.name === e.controllers[0].slice(5)
          : [...m.controllers].sort().join(',') === [...e.controllers].sort().join(','))));
      const problems: string[] = [];
      for (const e of parseProcCgroupEntries(kernelView)) {
        const ms = ofHierarchy(e);
        if (!ms.length) continue; // not mounted in this mount namespace: no directory to name
        const line = lineFor(answer.stdout, e);
        if (!line) { problems.push(`${e.raw}: no line`); continue; }
        const dirs = pathTokens(line).filter((t) => t !== e.path);
        const ok = dirs.some((d) => {
          // A directory under a moved mount is judged as cgwhere saw it, and read through the host's mount of the same hierarchy.
          const there = movedTo(resolve(d));
          let real = '';
          try { real = there ? resolve(d) : realpathSync(d); } catch { return false; }
          if (!there && movedFrom(real)) return false; // not mounted there in cgwhere's namespace
          const host = there ? there.host + real.slice(there.ns.length) : real;
          try { if (!statSync(host).isDirectory()) return false; } catch { return false; }
          const onMount = ms.some((m) => real === resolve(m.mountPoint, `.${e.path}`));
          if (!onMount) return false;
          const listed = parseCgroupProcs(readFileSync(join(host, 'cgroup.procs'), 'utf8')).includes(target);
          return onMount && listed;
        });
        const how = ms.map((m) => movedTo(m.mountPoint)).filter(Boolean).map((x) => ` (this hierarchy was moved in cgwhere's mount namespace: ${x!.host} is at ${x!.ns} there, ` +
          'as its /proc/self/mountinfo says: find the mount by its file system type and options, not by its usual place or its order)');
        if (!ok) problems.push(`${e.raw}: named ${dirs.join(' ') || 'no directory'}; expected ${ms.map((m) => resolve(m.mountPoint, `.${e.path}`)).join(' or ')}${how.join('')}`);
      }
      expect(problems, evidence()).toEqual([]);
    });
  });

  describe('psiwatch: a PSI trigger on the memory.pressure of a squeezed cgroup', () => {
    interface PressureRun {
      readonly how: string;
      readonly file: string;
      readonly observed: string;
      readonly before: Pressure;
      readonly after: Pressure;
      readonly samples: PressureSample[];
      readonly workload: RunResult;
      readonly watcher: RunResult;
      /** What the kernel said about each descriptor psiwatch (or a child) had open on the file, while the workload ran. */
      readonly triggers: { pid: number; fd: number; writable: boolean; trigger: boolean; answer: string }[];
      readonly openFilesSeen: string;
      /** Pressure files other than the cgroup's that psiwatch held while the workload ran. */
      readonly otherPressure: string[];
      /** The stall threshold psiwatch was given (µs). */
      readonly stallUs: number;
      /** The window psiwatch was given (µs). */
      readonly windowUs: number;
      /** CLOCK_MONOTONIC times of the events psiwatch printed. */
      readonly events: number[];
      readonly start: number;
      readonly end: number;
      /** The iterator's readings of psiwatch's pressure files (struct psi_trigger), every 200 ms while it ran. */
      readonly triggerSamples: TriggerSample[];
      /** psiwatch's CPU time (utime + stime of /proc/<pid>/stat, ms) when the workload ended, and how long it had run by then (s). */
      readonly cpuMs: number;
      readonly cpuOverS: number;
    }
    const runs: Partial<Record<'squeezed' | 'control' | 'unreachable', PressureRun>> = {};
    let triggerPin = '';

    /** The workload: join every cgroup directory, then re-read the file until the time is up. */
    const WORKLOAD = 'f=$1; s=$2; shift 2; for d in "$@"; do echo $$ > "$d/cgroup.procs" || exit 1; done; ' +
      'end=$(($(date +%s) + s)); while [ "$(date +%s)" -lt "$end" ]; do cat "$f" > /dev/null; done';

    async function pressureRun(kind: 'squeezed' | 'control' | 'unreachable'): Promise<PressureRun> {
      // Tags that do not say which run is which (a watcher must not read its answer from the cgroup's name).
      const cg = await pressureCgroup(`p${randomBytes(2).toString('hex')}`, kind === 'control' ? undefined : LIMIT_BYTES);
      const stallUs = kind === 'unreachable' ? UNREACHABLE_US : STALL_US;
      const windowUs = kind === 'unreachable' ? UNREACHABLE_WINDOW_US : WINDOW_US;
      // A cold start: the file's pages out of the page cache.
      await run('dd', [`if=${bigFile}`, 'iflag=nocache', 'count=0', 'status=none'], { timeoutMs: 20_000 });
      const before = readPressure(cg.pressureFile);
      const start = monotonicSeconds();
      const watcher = startBackground(psiwatch, [cg.pressureFile, String(stallUs), String(windowUs), String(WATCH_SECONDS)], { timeoutMs: 60_000 });
      const family = () => [watcher.pid, ...descendants(listProcesses(), watcher.pid).map((p) => p.pid)];
      const triggerSampler = sampleTriggers(triggerPin, family, 200);
      // Wait (bounded) until psiwatch has the file open, then a little for its write.
      for (let i = 0; i < 40 && !family().some((p) => openFiles(p).some((f) => f.target === cg.pressureFile)); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      // Sample the parent's file: reading the watched file itself would fold its averages and starve the trigger.
      const sampler = samplePressure(cg.observeFile, 100);
      const workloadP = run('sh', ['-c', WORKLOAD, 'workload', bigFile, String(WORKLOAD_SECONDS), ...cg.dirs], { timeoutMs: 60_000, reject: false });
      await new Promise((r) => setTimeout(r, 1000));
      const triggers = (await Promise.all(family().map(async (pid) => (await triggersOn(pid, cg.pressureFile)).map((t) => ({ pid, ...t }))))).flat();
      // Other pressure files held meanwhile (the system-wide /proc/pressure/*, another cgroup's): events must come from this one.
      const otherPressure = family().flatMap((pid) => openFiles(pid).filter((f) => /(^\/proc\/pressure\/|\.pressure$)/.test(f.target) && f.target !== cg.pressureFile).map((f) => `pid ${pid} fd ${f.fd} -> ${f.target}`));
      const openFilesSeen = family().map((p) => `pid ${p}:\n${describeOpenFiles(p)}`).join('\n');
      const workload = await workloadP;
      // psiwatch still runs (WATCH_SECONDS outlasts the workload): its CPU time so far.
      const st = readStat(watcher.pid);
      const cpuMs = st ? (st.utime + st.stime) * 10 : NaN;
      const cpuOverS = monotonicSeconds() - start;
      const w = await watcher.exited;
      const triggerSamples = triggerSampler.stop();
      const samples = sampler.stop();
      const end = monotonicSeconds();
      const after = readPressure(cg.pressureFile);
      const events = w.stdout.split('\n').flatMap((l) => (l.match(/\d+\.\d+/g) ?? []).map(Number).filter((t) => t >= start - 1 && t <= end + 1).slice(0, 1));
      return { how: cg.how, file: cg.pressureFile, observed: cg.observeFile, before, after, samples, workload, watcher: w, triggers, openFilesSeen, otherPressure, stallUs, windowUs, events, start, end, triggerSamples, cpuMs, cpuOverS };
    }

    beforeAll(async () => {
      if (await unmet(NEEDS)) return;
      bigFile = join(tmp, 'big');
      triggerPin = await pinTriggerIterator();
      await run('dd', ['if=/dev/urandom', `of=${bigFile}`, 'bs=1M', `count=${FILE_MIB}`, 'conv=fsync', 'status=none'], { timeoutMs: 120_000 });
      runs.squeezed = await pressureRun('squeezed');
      runs.control = await pressureRun('control');
      runs.unreachable = await pressureRun('unreachable');
    }, 240_000);

    const grew = (r: PressureRun) => r.after.some.total - r.before.some.total;
    const describeRun = (r: PressureRun) => `${r.how}\n${r.file}: some total ${r.before.some.total} -> ${r.after.some.total} µs ` +
      `(full ${r.before.full?.total ?? '-'} -> ${r.after.full?.total ?? '-'})\nworkload: ${show(r.workload)}\npsiwatch: ${show(r.watcher)}`;

    it(`control: squeezed under a ${LIMIT_BYTES >> 20} MiB limit, re-reading a ${FILE_MIB} MiB file stalls the cgroup on memory (some total grows by ≥ ${SQUEEZED_MIN_US / 1000} ms)`, async (ctx) => {
      const r = runs.squeezed!;
      if (probeCgroups(CGROUP_BASE).version === 1) await adapted(ctx, 'cgroup v1 memory controller: the limit is memory.limit_in_bytes; PSI from a kl- child of the controller-less cgroup2 hierarchy');
      recordMetric(ctx, { name: 'memory stall (some) while squeezed', value: grew(r) / 1000, unit: 'ms', group: 'PSI' });
      recordMetric(ctx, { name: 'memory stall (full) while squeezed', value: ((r.after.full?.total ?? 0) - (r.before.full?.total ?? 0)) / 1000, unit: 'ms', group: 'PSI' });
      expect(r.workload.exitCode, describeRun(r)).toBe(0);
      expect(grew(r), describeRun(r)).toBeGreaterThanOrEqual(SQUEEZED_MIN_US);
    });

    it(`control: without the limit the same workload's some total stays near zero (< ${CONTROL_MAX_US / 1000} ms)`, (ctx) => {
      const r = runs.control!;
      recordMetric(ctx, { name: 'memory stall (some) unlimited', value: grew(r) / 1000, unit: 'ms', group: 'PSI' });
      expect(r.workload.exitCode, describeRun(r)).toBe(0);
      expect(grew(r), describeRun(r)).toBeLessThan(CONTROL_MAX_US);
    });

    it('psiwatch holds a PSI trigger on the cgroup\'s memory.pressure while it runs (the kernel refuses a second one on its descriptor: EBUSY)', () => {
      const r = runs.squeezed!;
      expect(r.triggers.filter((t) => t.trigger).length,
        `descriptors of psiwatch on ${r.file} and the kernel's answer: ${JSON.stringify(r.triggers)}\nopen files of psiwatch while the workload ran:\n${r.openFilesSeen}\n${describeRun(r)}`)
        .toBeGreaterThanOrEqual(1);
    });

    /** The triggers psiwatch held on the run's file, as the kernel keeps them, and how it names them. */
    const held = (r: PressureRun) => triggersHeld(r.triggerSamples, r.file);
    const asked = (r: PressureRun) => `some ${r.stallUs} ${r.windowUs}`;
    const described = (r: PressureRun) => held(r).map((t) => `pid ${t.pid} fd ${t.fd}: "${t.state} ${t.thresholdUs} ${t.windowUs}"`).join('; ') || 'none seen';
    const RUN_KINDS = ['squeezed', 'control', 'unreachable'] as const;

    it('psiwatch\'s trigger is the one it was asked for: the kernel holds "some <stall> <window>" with the arguments as given, in each of the three runs', () => {
      const got: Record<string, string[]> = {};
      const want: Record<string, string[]> = {};
      for (const k of RUN_KINDS) {
        const r = runs[k]!;
        got[k] = [...new Set(held(r).map((t) => `${t.state} ${t.thresholdUs} ${t.windowUs}`))];
        want[k] = [asked(r)];
      }
      const evidence = RUN_KINDS.map((k) => `${k}: psiwatch ${runs[k]!.file} ${runs[k]!.stallUs} ${runs[k]!.windowUs} ${WATCH_SECONDS}; its triggers on that file: ${described(runs[k]!)}`).join('\n');
      expect(got, 'every trigger psiwatch holds on the file, as the kernel keeps it (struct psi_trigger: state, threshold µs, window µs; read by the lab\'s ' +
        'BPF iterator over psiwatch\'s open files every 200 ms), must be "some <stall> <window>" with the arguments it was given: "some" counts the time ' +
        `at least one task stalled ("full": all of them at once), and a trigger with other numbers (or a second one) fires at other times.\n${evidence}`).toEqual(want);
    });

    it('psiwatch prints one event per firing of its trigger, as it fires, and leaves no event unread (the trigger\'s last firing and pending event, read from the kernel every 200 ms)', (ctx) => {
      afterCorrectness(ctx, ['psiwatch\'s trigger is the one it was asked for'], 'events against the firings of the trigger psiwatch holds');
      const problems: string[] = [];
      const lines: string[] = [];
      for (const k of RUN_KINDS) {
        const r = runs[k]!;
        const mine = held(r).filter((t) => `${t.state} ${t.thresholdUs} ${t.windowUs}` === asked(r));
        const addrs = new Set(mine.map((t) => t.addr));
        const seen = r.triggerSamples.filter((s) => s.held.some((h) => h.trigger && addrs.has(h.trigger.addr)));
        const end = seen.length ? seen[seen.length - 1]!.t : r.start;
        const { firings, gaps } = firingsOf(r.triggerSamples, addrs, r.start);
        const m = matchEvents(firings, r.events, end, gaps);
        const unread = unreadEvents(r.triggerSamples, addrs);
        const rel = (t: number) => (t - r.start).toFixed(2);
        if (k === 'squeezed') recordMetric(ctx, { name: 'trigger firings while squeezed (kernel)', value: firings.length, unit: 'firings', group: 'PSI' });
        lines.push(`${k}: firings (s after psiwatch started, between the samples that show it) ${firings.map((f) => `${rel(f.after)}–${rel(f.by)}`).join(', ') || 'none'}; ` +
          `events printed at ${r.events.map(rel).join(', ') || 'none'}`);
        for (const f of m.missed) problems.push(`${k}: the kernel fired psiwatch's trigger between ${rel(f.after)} and ${rel(f.by)} s and psiwatch printed no event for it within 1 s`);
        for (const e of m.unexplained) problems.push(`${k}: psiwatch printed an event at ${rel(e)} s when its trigger had not fired`);
        if (r.cpuMs > r.cpuOverS * 1000 * WAIT_CPU_SHARE) problems.push(`${k}: psiwatch used ${r.cpuMs} ms of CPU time (utime + stime, /proc/<pid>/stat) in its first ` +
          `${r.cpuOverS.toFixed(1)} s: it asks again and again instead of sleeping until the kernel has an event (poll(2) with the time left as its timeout)`);
        for (const u of unread) problems.push(`${k}: the kernel's event of psiwatch's trigger waited unread from ${rel(u.since)} s to ${rel(u.still)} s (nobody polled the descriptor that holds it)`);
      }
      expect(problems, 'psiwatch must wait on the descriptor that holds its trigger (poll(2) POLLPRI, or epoll) for every event until the time is up, and print each ' +
        `as it comes: one line per firing, none without one.\n${problems.join('\n')}\n${lines.join('\n')}`).toEqual([]);
    });

    it('psiwatch reports stall events while the workload is squeezed, each when the kernel\'s some total had grown by the threshold it was given (30–70 ms, random) within about a window', (ctx) => {
      const r = runs.squeezed!;
      recordMetric(ctx, { name: 'trigger events while squeezed', value: r.events.length, unit: 'events', group: 'PSI' });
      const slack = WINDOW_US / 1e6 + 2.5;
      const check = r.events.map((t) => ({ at: +(t - r.start).toFixed(2), grewUs: growthAround(r.samples, t - slack, t + 0.5) }));
      const evidence = `events (s after psiwatch started) and the growth of some total in [t − ${slack} s, t + 0.5 s]: ${JSON.stringify(check)}\n` +
        `samples of ${r.observed} (s, some µs): ${r.samples.map((s) => `${(s.t - r.start).toFixed(1)}:${s.some}`).join(' ')}\n${describeRun(r)}`;
      expect(r.events.length, `psiwatch (threshold ${r.stallUs} µs) must print one line per event with its CLOCK_MONOTONIC time (seconds, with a decimal point).\n${evidence}`).toBeGreaterThanOrEqual(1);
      expect(check.filter((c) => c.grewUs < r.stallUs * 0.8), `each event must follow real stall of the threshold it was given (${r.stallUs} µs).\n${evidence}`).toEqual([]);
      expect(r.otherPressure, `psiwatch held other pressure files while it watched ${r.file}: its events must come from the trigger on that file`).toEqual([]);
    });

    it(`psiwatch asked for a stall the squeeze never reaches (${UNREACHABLE_US / 1000} ms within ${UNREACHABLE_WINDOW_US / 1e6} s), holding its trigger, reports no event under the same squeeze`, (ctx) => {
      const r = runs.unreachable!;
      recordMetric(ctx, { name: 'trigger events, unreachable threshold', value: r.events.length, unit: 'events', group: 'PSI' });
      const evidence = `descriptors of psiwatch on ${r.file} and the kernel's answer: ${JSON.stringify(r.triggers)}\n` +
        `samples of ${r.observed} (s, some µs): ${r.samples.map((x) => `${(x.t - r.start).toFixed(1)}:${x.some}`).join(' ')}\n${describeRun(r)}`;
      expect({ triggerHeld: r.triggers.some((t) => t.trigger), events: r.events.map((t) => +(t - r.start).toFixed(2)), otherPressureFiles: r.otherPressure },
        `the kernel fires a trigger only when its threshold is crossed: pass <stall> and <window> to it as given.\n${evidence}`)
        .toEqual({ triggerHeld: true, events: [], otherPressureFiles: [] });
    });

    it('psiwatch, holding its trigger on the unlimited cgroup\'s memory.pressure, reports no event while the same workload runs without the limit', (ctx) => {
      const r = runs.control!;
      recordMetric(ctx, { name: 'trigger events unlimited', value: r.events.length, unit: 'events', group: 'PSI' });
      const evidence = `descriptors of psiwatch on ${r.file} and the kernel's answer: ${JSON.stringify(r.triggers)}\n${describeRun(r)}`;
      expect({ triggerHeld: r.triggers.some((t) => t.trigger), events: r.events.map((t) => +(t - r.start).toFixed(2)) },
        `a quiet watcher proves something only with a trigger open; events are s after psiwatch started.\n${evidence}`)
        .toEqual({ triggerHeld: true, events: [] });
    });
  });
});
