/**
 * Lab 6.3's view of a PSI trigger as the kernel keeps it (struct psi_trigger in kernel/sched/psi.c), read
 * from outside the program that holds it: psi-triggers.bpf.c is a BPF iterator over every process's open
 * files; pinned in bpffs, each read of the pin runs it once and prints, per open memory pressure file, the
 * trigger on it (state some/full, threshold, window, the pending-event flag, the time of the last firing).
 *
 * Sampled every 200 ms while psiwatch runs, the last-firing time says when the kernel fired the trigger
 * (a firing is at most once per window: 2 s here, so no firing is missed between samples), and the
 * event flag says whether psiwatch consumed the event (a poll on the file clears it at once).
 * The pure parts (parseTriggerLines, firingsOf, matchEvents, unreadEvents) have unit tests in
 * tests/lab-units/extend/03-cgroup-psi/cgroup-psi-trigger-state.test.ts.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildBpfObject } from '../../../helpers/harness/compile.js';
import { destroyBpffsPin } from '../../../helpers/harness/destroy.js';
import { run } from '../../../helpers/harness/exec.js';
import { defer } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { monotonicSeconds } from './psi.js';

/** One trigger as the kernel keeps it. Times in ns, threshold and window in µs (as written to the file). */
export interface KernelTrigger {
  /** The trigger's kernel address: one trigger, whichever sample it was read in. */
  readonly addr: string;
  readonly state: 'some' | 'full' | 'other';
  readonly thresholdUs: number;
  readonly windowUs: number;
  /** 1 while an event waits for a poll to consume it. */
  readonly event: number;
  /** sched_clock() ns of the last firing, 0 before the first. */
  readonly lastEventNs: bigint;
}

export interface HeldFile {
  readonly pid: number;
  readonly fd: number;
  /** What /proc/<pid>/fd/<fd> points at, when the sample was taken. */
  readonly target: string;
  readonly trigger?: KernelTrigger;
}

/** One reading of the iterator: the pressure files the watched processes had open. */
export interface TriggerSample { readonly t: number; readonly held: readonly HeldFile[] }

/** The iterator's lines, pure (targets left empty). */
export function parseTriggerLines(text: string): HeldFile[] {
  const out: HeldFile[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) continue;
    const base = { pid: Number(f[0]), fd: Number(f[1]), target: '' };
    if (f[3] !== 'trigger' || f.length < 11) { out.push(base); continue; }
    out.push({
      ...base,
      trigger: {
        addr: f[4]!, state: f[5] === 'some' || f[5] === 'full' ? f[5] : 'other',
        thresholdUs: Number(BigInt(f[6]!) / 1000n), windowUs: Number(BigInt(f[7]!) / 1000n),
        event: Number(f[8]), lastEventNs: BigInt(f[9]!),
      },
    });
  }
  return out;
}

/** Build the iterator, pin it under /sys/fs/bpf/kl-…; removed when the suite ends. Returns the pin. */
export async function pinTriggerIterator(): Promise<string> {
  const obj = (await buildBpfObject({ src: join(import.meta.dirname, 'psi-triggers.bpf.c'), vmlinux: true })).path;
  const pin = join('/sys/fs/bpf', uniqueName('psit'));
  await run('bpftool', ['iter', 'pin', obj, pin], { timeoutMs: 30_000 });
  defer(`bpffs pin ${pin}`, () => {
    const d = destroyBpffsPin(pin);
    if (!d.gone) throw new Error(`bpffs pin ${pin} not removed: ${d.reason}`);
  }, `rm ${pin}`);
  return pin;
}

/** Read the pin every `intervalMs`, keeping what the processes `pids()` returns had open on pressure files. */
export function sampleTriggers(pin: string, pids: () => number[], intervalMs = 200): { stop(): TriggerSample[] } {
  const samples: TriggerSample[] = [];
  const take = () => {
    let text = '';
    try { text = readFileSync(pin, 'utf8'); } catch { return; }
    const wanted = new Set(pids());
    const held = parseTriggerLines(text).filter((h) => wanted.has(h.pid)).map((h) => {
      let target = '';
      try { target = readlinkSync(`/proc/${h.pid}/fd/${h.fd}`); } catch { /* closed meanwhile */ }
      return { ...h, target };
    });
    samples.push({ t: monotonicSeconds(), held });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return { stop() { clearInterval(timer); take(); return samples; } };
}

/** The distinct triggers held on `file` over the samples (by kernel address), as first seen. */
export function triggersHeld(samples: readonly TriggerSample[], file: string): (KernelTrigger & { pid: number; fd: number })[] {
  const seen = new Map<string, KernelTrigger & { pid: number; fd: number }>();
  for (const s of samples) {
    for (const h of s.held) if (h.trigger && h.target === file && !seen.has(h.trigger.addr)) seen.set(h.trigger.addr, { ...h.trigger, pid: h.pid, fd: h.fd });
  }
  return [...seen.values()];
}

/** A firing of a trigger: between the sample before (`after`) and the sample that first showed it (`by`). */
export interface Firing { readonly addr: string; readonly after: number; readonly by: number; readonly lastEventNs: bigint }

/** Every firing of the triggers `addrs` the samples saw (pure). A sample gap longer than a window could hide one: `gaps` lists them. */
export function firingsOf(samples: readonly TriggerSample[], addrs: ReadonlySet<string>, start: number): { firings: Firing[]; gaps: [number, number][] } {
  const firings: Firing[] = [];
  const last = new Map<string, { t: number; ns: bigint }>();
  const gaps: [number, number][] = [];
  let prevT = start;
  for (const s of samples) {
    if (s.t - prevT > 1.5) gaps.push([prevT, s.t]);
    for (const h of s.held) {
      const tr = h.trigger;
      if (!tr || !addrs.has(tr.addr)) continue;
      const before = last.get(tr.addr);
      const changed = before ? tr.lastEventNs !== before.ns : tr.lastEventNs !== 0n;
      if (changed) firings.push({ addr: tr.addr, after: before?.t ?? start, by: s.t, lastEventNs: tr.lastEventNs });
      last.set(tr.addr, { t: s.t, ns: tr.lastEventNs });
    }
    prevT = s.t;
  }
  return { firings: firings.sort((a, b) => a.by - b.by), gaps };
}

/**
 * Pair each firing with the event line printed for it (pure): an event printed in [after − 0.05 s, by + slack]
 * of a firing, in order. Firings no event answered, and events no firing explains, are returned; a firing in
 * the last `endSlack` s before `end` (the trigger's last sample) and an event after it, or inside a sample gap,
 * are not held against the program.
 */
export function matchEvents(firings: readonly Firing[], events: readonly number[], end: number, gaps: readonly [number, number][] = [], slack = 1.0, endSlack = 0.5):
  { matched: { firing: Firing; event: number }[]; missed: Firing[]; unexplained: number[] } {
  // Triggers of the same parameters fire together: one event answers firings within 0.3 s of each other.
  const merged: Firing[] = [];
  for (const f of firings) {
    const prev = merged[merged.length - 1];
    if (prev && f.by - prev.by < 0.3) continue;
    merged.push(f);
  }
  const left = [...events].sort((a, b) => a - b);
  const matched: { firing: Firing; event: number }[] = [];
  const missed: Firing[] = [];
  for (const f of merged) {
    const i = left.findIndex((e) => e >= f.after - 0.05 && e <= f.by + slack);
    if (i >= 0) matched.push({ firing: f, event: left.splice(i, 1)[0]! });
    else if (f.by < end - endSlack) missed.push(f);
  }
  const inGap = (e: number) => gaps.some(([a, b]) => e >= a && e <= b + slack);
  return { matched, missed, unexplained: left.filter((e) => e < end && !inGap(e)) };
}

/** Samples in which a trigger's event stayed set (unconsumed) for more than `maxS` s after it was first seen set (pure). */
export function unreadEvents(samples: readonly TriggerSample[], addrs: ReadonlySet<string>, maxS = 1.0): { addr: string; since: number; still: number }[] {
  const setSince = new Map<string, number>();
  const out = new Map<string, { addr: string; since: number; still: number }>();
  for (const s of samples) {
    for (const h of s.held) {
      const tr = h.trigger;
      if (!tr || !addrs.has(tr.addr)) continue;
      if (tr.event !== 1) { setSince.delete(tr.addr); continue; }
      const since = setSince.get(tr.addr) ?? s.t;
      setSince.set(tr.addr, since);
      if (s.t - since > maxS) out.set(`${tr.addr}:${since}`, { addr: tr.addr, since, still: s.t });
    }
  }
  return [...out.values()];
}
