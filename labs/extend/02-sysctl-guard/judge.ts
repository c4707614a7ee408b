/**
 * Lab 6.2's verdicts: pure functions from the experiment's evidence
 * (experiment.ts) to the facts each test asserts, the facts they must equal
 * and the message that shows the evidence. Unit-tested on made-up evidence in
 * tests/lab-units/extend/02-sysctl-guard/judge.test.ts.
 */
import { counterWrites } from '../../../helpers/kernel/bpf-map-writes.js';
import type { CgroupAttachment } from '../../../helpers/kernel/cgroup-bpf.js';
import type { Verdict } from '../../../helpers/harness/verdict.js';

export const GUARDED = 'net.ipv4.ip_forward';
/**
 * Other sysctls of the lab's namespace that the guard must let through: an unrelated one, two that start with the
 * guarded name, one whose full name ("net/ipv4/ip_dynaddr") has the guarded one's length, one that contains "forward".
 * A guard that compares a prefix, a length or a substring refuses one of them.
 */
export const OTHERS = ['net.ipv4.ip_default_ttl', 'net.ipv4.ip_forward_use_pmtu', 'net.ipv4.ip_forward_update_priority', 'net.ipv4.ip_dynaddr', 'net.ipv4.conf.lo.forwarding'] as const;
export const OTHER = OTHERS[0];
/** A value the kernel accepts for each of OTHERS, different from `now`. */
export const otherValue = (key: string, now: string) => (key === 'net.ipv4.ip_default_ttl' ? String(now === '64' ? 65 : 64) : now === '0' ? '1' : '0');
/** How many sysctls of the namespace, picked at random each run, the guard must also let through (an allow-list of the names above fails them). */
export const RANDOM_OTHERS = 3;
export const COUNTER_MAP = 'denied_writes';
export const procPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;
export const flip = (v: string) => (v === '0' ? '1' : '0');

/** What the judge needs of a finished command (a RunResult is one). */
export interface Ran { readonly exitCode: number; readonly stdout: string; readonly stderr: string }
/** The facts a test asserts, the facts they must equal, and the message that shows the evidence. */
export type { Verdict };

export const show = (r: Ran) => `exit ${r.exitCode}: ${(r.stderr + r.stdout).trim()}`;
const eperm = (r: Ran) => /Operation not permitted/.test(r.stderr);

/** `echo <value> > /proc/sys/…` by the shell called `shellName`, and what it said. */
export interface ShellWrite { readonly shellName: string; readonly value: string; readonly r: Ran }
export const shellSaid = (s: ShellWrite) =>
  `${s.shellName} -c 'echo ${s.value} > ${procPath(GUARDED)}' (a shell called ${s.shellName}, a value new each run): ${show(s.r)}`;

/** The cgroup and namespace the guard runs in, for messages. */
export interface Place { readonly cgroup: string; readonly how: string; readonly netns: string }

// --- compiles -----------------------------------------------------------------------------------------------

export interface Compiled { readonly object: string; /** readelf -S -W of the object */ readonly sections: string }

/** The "cgroup/sysctl" section, or (to show what there is instead) the names of the object's sections. */
export function section(e: Compiled): Verdict<{ section: string }> {
  const found = /\scgroup\/sysctl\s/.test(e.sections);
  const names = [...e.sections.matchAll(/^\s*\[\s*\d+\]\s+(\S+)/gm)].map((m) => m[1]!).filter((n) => n !== 'NULL');
  return { got: { section: found ? 'cgroup/sysctl' : `none; the sections: ${names.join(' ')}` }, want: { section: 'cgroup/sysctl' }, message: `readelf -S ${e.object}` };
}

// --- attaches -----------------------------------------------------------------------------------------------

export interface Attached {
  readonly place: Place;
  readonly progId: number;
  /** bpftool cgroup show while the program is on, and after detaching it. */
  readonly during: { readonly attachments: readonly CgroupAttachment[]; readonly raw: string };
  readonly after: { readonly attachments: readonly CgroupAttachment[]; readonly raw: string };
}

export function attach(e: Attached): { during: Verdict<{ id: number; sysctl: boolean }[]>; after: Verdict<readonly CgroupAttachment[]> } {
  return {
    during: {
      got: e.during.attachments.map((a) => ({ id: a.id, sysctl: /sysctl/.test(a.attachType) })),
      want: [{ id: e.progId, sysctl: true }],
      message: `bpftool cgroup show ${e.place.cgroup} (${e.place.how}):\n${e.during.raw}`,
    },
    after: { got: e.after.attachments, want: [], message: `bpftool cgroup show ${e.place.cgroup} after detaching:\n${e.after.raw}` },
  };
}

// --- refuses ------------------------------------------------------------------------------------------------

export interface Refusal {
  readonly place: Place;
  /** The guarded value before; sysctl -w of the other value; the value then. */
  readonly before: string;
  readonly write: Ran;
  readonly after: string;
  /** sysctl -w of the value it has. */
  readonly same: Ran;
  /** A shell with a random name writing a random value; the value then. */
  readonly shell: ShellWrite;
  readonly afterShell: string;
}

export function refused(e: Refusal): Verdict<Record<string, unknown>> {
  return {
    got: {
      failed: e.write.exitCode !== 0, eperm: eperm(e.write), value: e.after, sameValueRefused: e.same.exitCode !== 0 && eperm(e.same),
      shellWriteRefused: e.shell.r.exitCode !== 0, valueAfterShell: e.afterShell,
    },
    want: { failed: true, eperm: true, value: e.before, sameValueRefused: true, shellWriteRefused: true, valueAfterShell: e.before },
    message: `sysctl -w ${GUARDED}=${flip(e.before)} in cgroup ${e.place.cgroup}, netns ${e.place.netns}: ${show(e.write)}\n${procPath(GUARDED)}: ${e.before} -> ${e.after}\n` +
      `sysctl -w ${GUARDED}=${e.before} (its current value): ${show(e.same)}\n${shellSaid(e.shell)}; value then ${e.afterShell}\n` +
      'the guard must refuse every write to it from the cgroup, whoever writes and whatever the value',
  };
}

// --- lets through -------------------------------------------------------------------------------------------

/** One write of another sysctl from the cgroup: the value written, the command, the value then. */
export interface OtherWrite { readonly key: string; readonly wrote: string; readonly r: Ran; readonly value: string; /** picked at random, written with its current value */ readonly random: boolean }

export interface LetThrough {
  readonly place: Place;
  /** The guarded value (read from outside the cgroup) and sysctl -n of it from the cgroup. */
  readonly value: string;
  readonly read: Ran;
  /** OTHERS, then the ones picked at random. */
  readonly writes: readonly OtherWrite[];
}

export function letThrough(e: LetThrough): Verdict<Record<string, unknown>> {
  const facts: Record<string, unknown> = { readExit: e.read.exitCode, read: e.read.stdout.trim() };
  const want: Record<string, unknown> = { readExit: 0, read: e.value };
  const log = [`sysctl -n ${GUARDED}: ${show(e.read)}`];
  for (const w of e.writes) {
    facts[w.key] = { exit: w.r.exitCode, value: w.value };
    want[w.key] = { exit: 0, value: w.wrote };
    log.push(w.random ? `sysctl -w ${w.key}=${w.wrote} (its current value; picked at random): ${show(w.r)}` : `sysctl -w ${w.key}=${w.wrote}: ${show(w.r)}`);
  }
  return {
    got: facts, want,
    message: `in cgroup ${e.place.cgroup}, netns ${e.place.netns}: the guard must refuse ${GUARDED} alone, compared by its full name ` +
      `(bpf_sysctl_get_name), whatever the other names are:\n${log.join('\n')}`,
  };
}

/**
 * The names `sh` printed as "/proc/sys/<path> <value>" that hold one integer, as sysctl keys, without the guarded
 * one and OTHERS (the pool the random ones are picked from).
 */
export function integerSysctls(listing: string): string[] {
  return listing.split('\n').map((l) => l.match(/^\/proc\/sys\/(net\/[^\s.]+) -?\d+$/)?.[1]).filter((f): f is string => !!f)
    .map((f) => f.replace(/\//g, '.')).filter((k) => k !== GUARDED && !(OTHERS as readonly string[]).includes(k));
}

// --- outside the cgroup -------------------------------------------------------------------------------------

export interface Outside { readonly place: Place; readonly before: string; readonly write: Ran; readonly after: string }

export function outside(e: Outside): Verdict<{ exit: number; value: string }> {
  return {
    got: { exit: e.write.exitCode, value: e.after }, want: { exit: 0, value: flip(e.before) },
    message: `sysctl -w ${GUARDED}=${flip(e.before)} outside ${e.place.cgroup}: ${show(e.write)}\n${procPath(GUARDED)}: ${e.before} -> ${e.after}`,
  };
}

// --- the counter --------------------------------------------------------------------------------------------

/** A per-CPU map needs no atomic add; an array or hash that every CPU updates does. */
export const sharedMap = (type: string) => !/percpu/.test(type);

/** One round: a refused write of the guarded sysctl (by sysctl or by the shell), a read of it, a write of OTHER. */
export interface Round {
  readonly kind: 'other value' | 'same value' | 'shell';
  /** sysctl -w's result, or the shell's write. */
  readonly write: Ran | ShellWrite;
  readonly read: Ran;
  readonly other: Ran;
}

export interface Counted {
  readonly progId: number;
  readonly map: { readonly id: number; readonly type: string };
  readonly rounds: readonly Round[];
  /** Key 0's count in bpftool map dump (the sum over CPUs of a per-CPU map), and the dump's text. */
  readonly count: number;
  readonly dump: string;
  /** bpftool prog dump xlated of the program, read when the map is shared. */
  readonly xlated?: string;
}

const isShell = (w: Ran | ShellWrite): w is ShellWrite => 'shellName' in w;

/**
 * The counter: its value after the rounds (`count`), and for a shared map how the program writes into its value
 * (`atomic`: each write an atomic add or a store under bpf_spin_lock; undefined for a per-CPU map).
 */
export function counter(e: Counted): { atomic?: Verdict<{ atomicAdds: boolean; otherWrites: readonly string[] }>; count: Verdict<number> } {
  const denied = e.rounds.length;
  const log = e.rounds.flatMap((r) => [
    `write ${GUARDED} (${r.kind}): ${isShell(r.write) ? shellSaid(r.write) : show(r.write)}`,
    `read ${GUARDED}: ${show(r.read)}`,
    `write ${OTHER}: ${show(r.other)}`,
  ]);
  const shared = sharedMap(e.map.type);
  let atomic: Verdict<{ atomicAdds: boolean; otherWrites: readonly string[] }> | undefined;
  if (shared) {
    const xlated = e.xlated ?? '';
    const { atomic: adds, racy, described } = counterWrites(xlated, e.map.id);
    const found = `writes into ${COUNTER_MAP}'s value (followed from map[id:${e.map.id}] through the lookup, registers and stack):\n${described}`;
    atomic = {
      got: { atomicAdds: adds.length > 0, otherWrites: racy }, want: { atomicAdds: true, otherWrites: [] },
      message: `${COUNTER_MAP} (map id ${e.map.id}) is a ${e.map.type} map that every CPU updates at once: each write into its value must be an atomic add ` +
        `("lock *(u64 *)(rX +0) += rY" or atomic64_fetch_add in bpftool prog dump xlated id ${e.progId}), or a store made while ` +
        'bpf_spin_lock is held on that same value (between "call bpf_spin_lock" and "call bpf_spin_unlock" on every path). ' +
        'A load, an add and a plain store is a read-modify-write: two CPUs refusing at once both store the same count + 1, and one refusal is lost; ' +
        `an atomic add on another map does not make this one safe.\n${found}\nThe program's instructions:\n` +
        `${xlated.split('\n').filter((l) => !/^\s*;/.test(l)).slice(0, 120).join('\n')}`,
    };
  }
  return {
    atomic,
    count: {
      got: e.count, want: denied,
      message: `bpftool map dump id ${e.map.id} (${COUNTER_MAP} of prog ${e.progId}, a ${e.map.type} map${shared ? '' : ': the sum over CPUs'}): ${e.dump.replace(/\s+/g, ' ').slice(0, 400)}\n` +
        `after ${denied} refused writes, ${denied} reads and ${denied} allowed writes in the cgroup, 1 write outside:\n${log.join('\n')}`,
    },
  };
}

// --- detaching ----------------------------------------------------------------------------------------------

export interface Detached { readonly before: string; readonly refused: Ran; readonly write: Ran; readonly after: string }

export function detached(e: Detached): Verdict<{ refusedWhileAttached: boolean; exitAfterDetach: number; value: string }> {
  return {
    got: { refusedWhileAttached: e.refused.exitCode !== 0, exitAfterDetach: e.write.exitCode, value: e.after },
    want: { refusedWhileAttached: true, exitAfterDetach: 0, value: flip(e.before) },
    message: `attached: ${show(e.refused)}\ndetached: ${show(e.write)}\n${procPath(GUARDED)}: ${e.before} -> ${e.after}`,
  };
}

// --- the host -----------------------------------------------------------------------------------------------

export function hostUnchanged(before: Readonly<Record<string, string>>, now: Readonly<Record<string, string>>): Verdict<Readonly<Record<string, string>>> {
  return { got: now, want: before, message: `host ${Object.keys(before).join(', ')} before the lab: ${JSON.stringify(before)}` };
}
