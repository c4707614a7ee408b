/**
 * Extend Lab 3's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Placement` and `PressureRun`) to the facts each test asserts,
 * with the message that shows the kernel's evidence. Unit-tested on made-up
 * evidence in tests/lab-units/extend/03-cgroup-psi/judge.test.ts.
 */
import { resolve } from 'node:path';
import { parseCgroupMounts } from '../../../helpers/harness/cgroup-mounts.js';
import { parseProcCgroupEntries, type ProcCgroupEntry } from '../../../helpers/kernel/cgroup-limits.js';
import type { RunResult } from '../../../helpers/harness/exec.js';
import type { Placement, PressureRun, RunKind } from './experiment.js';
import { growthAround } from './psi.js';
import { firingsOf, matchEvents, triggersHeld, unreadEvents } from './trigger-state.js';

/** Measured here: 440–550 ms of stall in 4–5 s squeezed, 0 without the limit. */
export const SQUEEZED_MIN_US = 100_000;
export const CONTROL_MAX_US = 20_000;
/** A watcher blocks in poll(2): a share of one CPU above this, over its run, is a loop that never waits (the reference: ~0). */
const WAIT_CPU_SHARE = 0.2;

export const show = (r: RunResult) => `${r.command} exited ${r.signal ?? r.exitCode} (${r.reason})\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim().split('\n').slice(-6).join('\n')}`;

/** Tokens of an output line: split on blanks and the usual separators, never on "/". */
export const tokens = (line: string) => line.split(/[\s,:=;|()[\]{}"'<>]+/).filter(Boolean);

/** Directory candidates: split on blanks and "=" only (a merged v1 mount is /sys/fs/cgroup/cpu,cpuacct). */
export const pathTokens = (line: string) => line.split(/[\s=;|()[\]{}"'<>]+/).filter((t) => t.startsWith('/')).map((t) => t.replace(/[,:.]+$/, ''));

/** The output line that names this hierarchy: its id, every controller and its path, each as a token. */
export function lineFor(output: string, e: ProcCgroupEntry): string | undefined {
  return output.split('\n').find((line) => {
    const t = tokens(line);
    const ctl = e.controllers.every((c) => t.includes(c) || (c.startsWith('name=') && t.includes(c.slice(5))));
    // The path as one word: the lab's cgroup names hold a ':' (a path may), which tokens() splits.
    return t.includes(String(e.id)) && ctl && (t.includes(e.path) || pathTokens(line).includes(e.path));
  });
}

/** cgwhere's answer, the kernel's view and what the lab did: every cgwhere test's evidence. */
export function placementEvidence(p: Placement): string {
  return `cgwhere ${p.target}: ${show(p.answer)}\n/proc/${p.target}/cgroup (the kernel):\n${p.kernelView.trim()}\n` +
    `the lab's cgroups: ${p.placed.map((x) => `${x.what}: ${x.path}`).join('; ')}\n` +
    `moved in cgwhere's mount namespace: ${p.moved.map((m) => `${m.what} ${m.host} -> ${m.ns}`).join('; ') || 'none'}`;
}

/** Every v1 line of /proc/<pid>/cgroup has an output line with its id, controllers and path; the lab's v1 cgroups are named. `v1`: the process is in v1 hierarchies at all. */
export function v1Named(p: Placement) {
  const v1 = parseProcCgroupEntries(p.kernelView).filter((e) => e.id !== 0);
  const missing = v1.filter((e) => !lineFor(p.answer.stdout, e)).map((e) => e.raw);
  const ours = p.placed.filter((x) => x.what.startsWith('v1')).filter((x) => !tokens(p.answer.stdout).includes(x.path) && !pathTokens(p.answer.stdout).includes(x.path));
  return {
    v1: v1.length > 0,
    facts: { missing, notNamed: ours.map((x) => `${x.what} ${x.path}`) },
    want: { missing: [], notNamed: [] },
    message: `every /proc/<pid>/cgroup line must have an output line with its id, controllers and path as words.\n${placementEvidence(p)}`,
  };
}

/** The kernel's 0:: line is the lab's cgroup2 cgroup, and an output line names it. */
export function v2Named(p: Placement) {
  const v2 = parseProcCgroupEntries(p.kernelView).find((e) => e.id === 0 && e.controllers.length === 0);
  const ours = p.placed.find((x) => x.what.startsWith('cgroup2'));
  return {
    kernelPath: v2?.path,
    labPath: ours?.path,
    pathMessage: `the kernel's 0:: line must be the lab's cgroup2 cgroup.\n${placementEvidence(p)}`,
    line: v2 ? lineFor(p.answer.stdout, v2) : undefined,
    lineMessage: `an output line must name hierarchy 0 with the path ${v2?.path}.\n${placementEvidence(p)}`,
  };
}

/** Each v1 hierarchy cgwhere names has exactly the controllers /proc/cgroups binds to its id (named hierarchies aside). */
export function controllersAgree(p: Placement) {
  const table = p.procCgroups.split('\n').filter((l) => /^\w/.test(l) && !l.startsWith('#')).map((l) => l.split(/\s+/));
  const bound = (id: number) => table.filter((f) => Number(f[1]) === id && f[3] === '1').map((f) => f[0]!).sort();
  const wrong: string[] = [];
  for (const e of parseProcCgroupEntries(p.kernelView).filter((x) => x.id !== 0 && !x.controllers.some((c) => c.startsWith('name=')))) {
    const line = lineFor(p.answer.stdout, e);
    if (!line) { wrong.push(`${e.raw}: no line`); continue; }
    const named = tokens(line).filter((t) => table.some((f) => f[0] === t)).sort();
    if (JSON.stringify(named) !== JSON.stringify(bound(e.id))) wrong.push(`hierarchy ${e.id}: named ${named.join(',')}, /proc/cgroups binds ${bound(e.id).join(',')}`);
  }
  return { fact: wrong, message: `/proc/cgroups:\n${p.procCgroups.trim()}\n${placementEvidence(p)}` };
}

/** For each hierarchy mounted in cgwhere's namespace, a directory it names is on that mount, at the process's path, with the pid in its cgroup.procs. */
export function directoriesHold(p: Placement) {
  // The mounts as cgwhere saw them, in its own mount namespace (the lab moved the v1 hierarchies it placed the process in).
  const mounts = parseCgroupMounts(p.nsMountinfo).filter((m) => m.root === '/');
  const movedTo = (d: string) => p.moved.find((x) => d === x.ns || d.startsWith(`${x.ns}/`));
  const movedFrom = (d: string) => p.moved.find((x) => d === x.host || d.startsWith(`${x.host}/`));
  const ofHierarchy = (e: ProcCgroupEntry) => mounts.filter((m) => (e.id === 0 ? m.version === 2
    : m.version === 1 && (e.controllers[0]?.startsWith('name=') ? m.name === e.controllers[0].slice(5)
      : [...m.controllers].sort().join(',') === [...e.controllers].sort().join(','))));
  const problems: string[] = [];
  for (const e of parseProcCgroupEntries(p.kernelView)) {
    const ms = ofHierarchy(e);
    if (!ms.length) continue; // not mounted in this mount namespace: no directory to name
    const line = lineFor(p.answer.stdout, e);
    if (!line) { problems.push(`${e.raw}: no line`); continue; }
    const dirs = pathTokens(line).filter((t) => t !== e.path);
    const ok = dirs.some((d) => {
      // A directory under a moved mount is judged as cgwhere saw it, and read through the host's mount of the same hierarchy.
      const v = p.dirs.get(d);
      if (!v || v.real === undefined) return false;
      if (!v.there && movedFrom(v.real)) return false; // not mounted there in cgwhere's namespace
      if (!v.isDir) return false;
      const onMount = ms.some((m) => v.real === resolve(m.mountPoint, `.${e.path}`));
      return onMount && (v.procs ?? []).includes(p.target);
    });
    const how = ms.map((m) => movedTo(m.mountPoint)).filter(Boolean).map((x) => ` (this hierarchy was moved in cgwhere's mount namespace: ${x!.host} is at ${x!.ns} there, ` +
      'as its /proc/self/mountinfo says: find the mount by its file system type and options, not by its usual place or its order)');
    if (!ok) problems.push(`${e.raw}: named ${dirs.join(' ') || 'no directory'}; expected ${ms.map((m) => resolve(m.mountPoint, `.${e.path}`)).join(' or ')}${how.join('')}`);
  }
  return { fact: problems, message: placementEvidence(p) };
}

/** How much the watched file's some total grew over the run (µs). */
export const grew = (r: PressureRun) => r.after.some.total - r.before.some.total;
export const grewFull = (r: PressureRun) => (r.after.full?.total ?? 0) - (r.before.full?.total ?? 0);
export const describeRun = (r: PressureRun) => `${r.how}\n${r.file}: some total ${r.before.some.total} -> ${r.after.some.total} µs ` +
  `(full ${r.before.full?.total ?? '-'} -> ${r.after.full?.total ?? '-'})\nworkload: ${show(r.workload)}\npsiwatch: ${show(r.watcher)}`;

/** A control run: the workload ran (exit 0) and the stall grew by ≥ SQUEEZED_MIN_US (squeezed) or < CONTROL_MAX_US (control). */
export function stall(r: PressureRun) {
  return { exitCode: r.workload.exitCode, grewUs: grew(r), message: describeRun(r) };
}

/** The kernel says psiwatch's descriptors on the file hold a trigger (≥ 1). */
export function triggerHeld(r: PressureRun) {
  return {
    fact: r.triggers.filter((t) => t.trigger).length,
    message: `descriptors of psiwatch on ${r.file} and the kernel's answer: ${JSON.stringify(r.triggers)}\nopen files of psiwatch while the workload ran:\n${r.openFilesSeen}\n${describeRun(r)}`,
  };
}

/** The triggers psiwatch held on the run's file, as the kernel keeps them, and how it names them. */
const held = (r: PressureRun) => triggersHeld(r.triggerSamples, r.file);
const asked = (r: PressureRun) => `some ${r.stallUs} ${r.windowUs}`;
const described = (r: PressureRun) => held(r).map((t) => `pid ${t.pid} fd ${t.fd}: "${t.state} ${t.thresholdUs} ${t.windowUs}"`).join('; ') || 'none seen';
export const RUN_KINDS = ['squeezed', 'control', 'unreachable'] as const;

/** In each run, every trigger psiwatch held on the file is "some <stall> <window>" as given. */
export function triggerAsAsked(runs: Record<RunKind, PressureRun>) {
  const got: Record<string, string[]> = {};
  const want: Record<string, string[]> = {};
  for (const k of RUN_KINDS) {
    const r = runs[k];
    got[k] = [...new Set(held(r).map((t) => `${t.state} ${t.thresholdUs} ${t.windowUs}`))];
    want[k] = [asked(r)];
  }
  const evidence = RUN_KINDS.map((k) => `${k}: psiwatch ${runs[k].file} ${runs[k].stallUs} ${runs[k].windowUs} ${runs[k].watchSeconds}; its triggers on that file: ${described(runs[k])}`).join('\n');
  return {
    facts: got,
    want,
    message: 'every trigger psiwatch holds on the file, as the kernel keeps it (struct psi_trigger: state, threshold µs, window µs; read by the lab\'s ' +
      'BPF iterator over psiwatch\'s open files every 200 ms), must be "some <stall> <window>" with the arguments it was given: "some" counts the time ' +
      `at least one task stalled ("full": all of them at once), and a trigger with other numbers (or a second one) fires at other times.\n${evidence}`,
  };
}

/** In each run, one event per firing of the trigger it was asked for, none without one, none left unread, and no busy loop. `squeezedFirings`: the kernel's firings in the squeezed run. */
export function eventsPerFiring(runs: Record<RunKind, PressureRun>) {
  const problems: string[] = [];
  const lines: string[] = [];
  let squeezedFirings = 0;
  for (const k of RUN_KINDS) {
    const r = runs[k];
    const mine = held(r).filter((t) => `${t.state} ${t.thresholdUs} ${t.windowUs}` === asked(r));
    const addrs = new Set(mine.map((t) => t.addr));
    const seen = r.triggerSamples.filter((s) => s.held.some((h) => h.trigger && addrs.has(h.trigger.addr)));
    const end = seen.length ? seen[seen.length - 1]!.t : r.start;
    const { firings, gaps } = firingsOf(r.triggerSamples, addrs, r.start);
    const m = matchEvents(firings, r.events, end, gaps);
    const unread = unreadEvents(r.triggerSamples, addrs);
    const rel = (t: number) => (t - r.start).toFixed(2);
    if (k === 'squeezed') squeezedFirings = firings.length;
    lines.push(`${k}: firings (s after psiwatch started, between the samples that show it) ${firings.map((f) => `${rel(f.after)}–${rel(f.by)}`).join(', ') || 'none'}; ` +
      `events printed at ${r.events.map(rel).join(', ') || 'none'}`);
    for (const f of m.missed) problems.push(`${k}: the kernel fired psiwatch's trigger between ${rel(f.after)} and ${rel(f.by)} s and psiwatch printed no event for it within 1 s`);
    for (const e of m.unexplained) problems.push(`${k}: psiwatch printed an event at ${rel(e)} s when its trigger had not fired`);
    if (r.cpuMs > r.cpuOverS * 1000 * WAIT_CPU_SHARE) problems.push(`${k}: psiwatch used ${r.cpuMs} ms of CPU time (utime + stime, /proc/<pid>/stat) in its first ` +
      `${r.cpuOverS.toFixed(1)} s: it asks again and again instead of sleeping until the kernel has an event (poll(2) with the time left as its timeout)`);
    for (const u of unread) problems.push(`${k}: the kernel's event of psiwatch's trigger waited unread from ${rel(u.since)} s to ${rel(u.still)} s (nobody polled the descriptor that holds it)`);
  }
  return {
    squeezedFirings,
    fact: problems,
    message: 'psiwatch must wait on the descriptor that holds its trigger (poll(2) POLLPRI, or epoll) for every event until the time is up, and print each ' +
      `as it comes: one line per firing, none without one.\n${problems.join('\n')}\n${lines.join('\n')}`,
  };
}

/** Squeezed: ≥ 1 event, each after real stall of its threshold (growth of some total ≥ 80 % of it within about a window), from the watched file only. */
export function squeezedEvents(r: PressureRun) {
  const slack = r.windowUs / 1e6 + 2.5;
  const check = r.events.map((t) => ({ at: +(t - r.start).toFixed(2), grewUs: growthAround(r.samples, t - slack, t + 0.5) }));
  const evidence = `events (s after psiwatch started) and the growth of some total in [t − ${slack} s, t + 0.5 s]: ${JSON.stringify(check)}\n` +
    `samples of ${r.observed} (s, some µs): ${r.samples.map((s) => `${(s.t - r.start).toFixed(1)}:${s.some}`).join(' ')}\n${describeRun(r)}`;
  return {
    events: { fact: r.events.length, message: `psiwatch (threshold ${r.stallUs} µs) must print one line per event with its CLOCK_MONOTONIC time (seconds, with a decimal point).\n${evidence}` },
    unstalled: { fact: check.filter((c) => c.grewUs < r.stallUs * 0.8), message: `each event must follow real stall of the threshold it was given (${r.stallUs} µs).\n${evidence}` },
    otherPressure: { fact: r.otherPressure, message: `psiwatch held other pressure files while it watched ${r.file}: its events must come from the trigger on that file` },
  };
}

/** The unreachable threshold: a trigger held, no event, no other pressure file. */
export function unreachableQuiet(r: PressureRun) {
  const evidence = `descriptors of psiwatch on ${r.file} and the kernel's answer: ${JSON.stringify(r.triggers)}\n` +
    `samples of ${r.observed} (s, some µs): ${r.samples.map((x) => `${(x.t - r.start).toFixed(1)}:${x.some}`).join(' ')}\n${describeRun(r)}`;
  return {
    facts: { triggerHeld: r.triggers.some((t) => t.trigger), events: r.events.map((t) => +(t - r.start).toFixed(2)), otherPressureFiles: r.otherPressure },
    want: { triggerHeld: true, events: [], otherPressureFiles: [] },
    message: `the kernel fires a trigger only when its threshold is crossed: pass <stall> and <window> to it as given.\n${evidence}`,
  };
}

/** Without the limit: a trigger held, no event. */
export function controlQuiet(r: PressureRun) {
  const evidence = `descriptors of psiwatch on ${r.file} and the kernel's answer: ${JSON.stringify(r.triggers)}\n${describeRun(r)}`;
  return {
    facts: { triggerHeld: r.triggers.some((t) => t.trigger), events: r.events.map((t) => +(t - r.start).toFixed(2)) },
    want: { triggerHeld: true, events: [] },
    message: `a quiet watcher proves something only with a trigger open; events are s after psiwatch started.\n${evidence}`,
  };
}
