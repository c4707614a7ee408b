/**
 * Lab 6.2's experiment: build the student's guard (sysctl_guard.c), make the
 * lab's network namespace (net.* sysctls are per namespace: the guarded
 * net.ipv4.ip_forward is the namespace's, never the host's) and a kl-<run>
 * child of the unified (cgroup2) hierarchy, and drive each case: attach the
 * program to the cgroup (the harness loader; detached when the test ends),
 * write and read sysctls from inside and outside the cgroup (sysctl, and a
 * shell whose name is new each run), read the counter map and the program's
 * instructions with bpftool. Collects what the kernel said into plain
 * evidence, asserts nothing: judge.ts and the spec decide.
 */
import { randomInt } from 'node:crypto';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildBpfObject } from '../../../helpers/harness/compile.js';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { parseCounterDump, progMapByName, progXlated, type DumpEntry } from '../../../helpers/kernel/bpftool.js';
import { attachToCgroup, cgroupAttachments, makeCgroup2Child, runInCgroup } from '../../../helpers/kernel/cgroup-bpf.js';
import { createNetns, type Netns } from '../../../helpers/kernel/netns.js';
import {
  COUNTER_MAP, GUARDED, OTHER, OTHERS, RANDOM_OTHERS, flip, integerSysctls, otherValue, procPath, sharedMap,
  type Attached, type Compiled, type Counted, type Detached, type LetThrough, type OtherWrite, type Outside, type Place,
  type Refusal, type Round, type ShellWrite,
} from './judge.js';

/**
 * The other writer of the guarded sysctl: a shell whose name (its comm, what bpf_get_current_comm() sees) is new
 * each run, writing a value new each run (the kernel takes any integer for ip_forward): a guard that knows the
 * writers or the values the spec uses refuses neither.
 */
const SHELL_NAME = `kl${Array.from({ length: 6 }, () => String.fromCharCode(97 + randomInt(0, 26))).join('')}`;
const shellValue = () => String((randomInt(0, 2) ? 1 : -1) * randomInt(3, 1_000_000_000));

/** The lab's namespace and cgroup, the built object, the shell, and the host's own values at the start. */
export interface GuardSetup {
  readonly ns: Netns;
  readonly cg: { readonly path: string; readonly how: string };
  readonly object: string;
  readonly shell: string;
  readonly hostBefore: Readonly<Record<string, string>>;
}

/** The host's own values of the guarded sysctl and OTHER. */
export const hostSysctls = (keys: readonly string[] = [GUARDED, OTHER]): Record<string, string> =>
  Object.fromEntries(keys.map((k) => [k, readFileSync(procPath(k), 'utf8').trim()]));

export async function prepareGuard(): Promise<GuardSetup> {
  const hostBefore = hostSysctls();
  const ns = await createNetns({ tag: 'sg' });
  const cg = await makeCgroup2Child('sg');
  const object = (await buildBpfObject({ src: labSource('extend/02-sysctl-guard/sysctl_guard.c') })).path;
  const shell = join(await makeTempDir('sg'), SHELL_NAME);
  symlinkSync('/bin/sh', shell);
  return { ns, cg, object, shell, hostBefore };
}

const place = (s: GuardSetup): Place => ({ cgroup: s.cg.path, how: s.cg.how, netns: s.ns.name });
/** The namespace's value of `key`, read by a process outside the guarded cgroup. */
const nsValue = async (s: GuardSetup, key: string) => (await s.ns.exec('cat', [procPath(key)], { timeoutMs: 10_000 })).stdout.trim();
/** `sysctl` run inside the lab namespace, as a member of the guarded cgroup. */
const inCgroup = (s: GuardSetup, args: string[]): Promise<RunResult> => runInCgroup(s.cg.path, 'ip', ['netns', 'exec', s.ns.name, 'sysctl', ...args], { reject: false });
/** `sysctl` run inside the lab namespace from outside the cgroup. */
const fromOutside = (s: GuardSetup, args: string[]): Promise<RunResult> => s.ns.exec('sysctl', args, { reject: false, timeoutMs: 10_000 });
/** `echo <value> > /proc/sys/…` by the shell called SHELL_NAME, inside the lab namespace and the guarded cgroup. */
const shellWrite = async (s: GuardSetup, value: string): Promise<ShellWrite> => {
  const r = await runInCgroup(s.cg.path, 'ip', ['netns', 'exec', s.ns.name, s.shell, '-c', `echo ${value} > ${procPath(GUARDED)}`], { reject: false });
  return { shellName: SHELL_NAME, value, r };
};
/**
 * Sysctls of the lab namespace that hold one integer and that root may read and write, but the guarded one and
 * OTHERS: RANDOM_OTHERS of them, picked at random.
 */
const randomOthers = async (s: GuardSetup): Promise<string[]> => {
  const list = await s.ns.exec('sh', ['-c', 'for f in $(find /proc/sys/net/ipv4 /proc/sys/net/ipv6 /proc/sys/net/core -type f -perm -u=rw); do echo "$f $(cat $f)"; done 2>/dev/null'],
    { timeoutMs: 20_000, reject: false });
  const found = integerSysctls(list.stdout);
  return Array.from({ length: Math.min(RANDOM_OTHERS, found.length) }, () => found.splice(randomInt(0, found.length), 1)[0]!);
};

/** readelf -S of the built object. */
export async function compiled(s: GuardSetup): Promise<Compiled> {
  return { object: s.object, sections: (await run('readelf', ['-S', '-W', s.object])).stdout };
}

/** Attach, list the cgroup's programs, detach, list them again. */
export async function attachDetach(s: GuardSetup): Promise<Attached> {
  const prog = await attachToCgroup(s.object, s.cg.path);
  const during = await cgroupAttachments(s.cg.path);
  await prog.detach();
  const after = await cgroupAttachments(s.cg.path);
  return { place: place(s), progId: prog.progId, during, after };
}

/** With the guard on: write the guarded sysctl another value, then its own value, then a random one by the shell. */
export async function refusal(s: GuardSetup): Promise<Refusal> {
  await attachToCgroup(s.object, s.cg.path);
  const before = await nsValue(s, GUARDED);
  const write = await inCgroup(s, ['-w', `${GUARDED}=${flip(before)}`]);
  const after = await nsValue(s, GUARDED);
  // Writing the value it already has is a write too: the guard refuses writes, not changes.
  const same = await inCgroup(s, ['-w', `${GUARDED}=${before}`]);
  // Any value, any writer: a random integer (the kernel takes any), written by a shell with a random name.
  const shell = await shellWrite(s, shellValue());
  const afterShell = await nsValue(s, GUARDED);
  return { place: place(s), before, write, after, same, shell, afterShell };
}

/** With the guard on: read the guarded sysctl, write OTHERS (another value) and RANDOM_OTHERS picked at random (their own value). */
export async function lettingThrough(s: GuardSetup): Promise<LetThrough> {
  await attachToCgroup(s.object, s.cg.path);
  const value = await nsValue(s, GUARDED);
  const read = await inCgroup(s, ['-n', GUARDED]);
  const writes: OtherWrite[] = [];
  for (const key of OTHERS) {
    const wrote = otherValue(key, await nsValue(s, key));
    const r = await inCgroup(s, ['-w', `${key}=${wrote}`]);
    writes.push({ key, wrote, r, value: await nsValue(s, key), random: false });
  }
  // Names the guard cannot know in advance: written with their current value (still a write the guard sees).
  for (const key of await randomOthers(s)) {
    const wrote = await nsValue(s, key);
    const r = await inCgroup(s, ['-w', `${key}=${wrote}`]);
    writes.push({ key, wrote, r, value: await nsValue(s, key), random: true });
  }
  return { place: place(s), value, read, writes };
}

/** With the guard on: a process of the namespace outside the cgroup writes the guarded sysctl. */
export async function outsideWrite(s: GuardSetup): Promise<Outside> {
  await attachToCgroup(s.object, s.cg.path);
  const before = await nsValue(s, GUARDED);
  const write = await fromOutside(s, ['-w', `${GUARDED}=${flip(before)}`]);
  return { place: place(s), before, write, after: await nsValue(s, GUARDED) };
}

/**
 * With the guard on: 2 to 4 rounds of a refused write (another value, the value it has, or the shell's, in a
 * random order), a read and an allowed write, then one write from outside; then the counter (bpftool map dump)
 * and, for a map every CPU shares, the program's instructions (bpftool prog dump xlated).
 */
export async function counting(s: GuardSetup): Promise<Counted> {
  const prog = await attachToCgroup(s.object, s.cg.path);
  const map = await progMapByName(prog.progId, COUNTER_MAP);
  const denied = 2 + randomInt(0, 3);
  const rounds: Round[] = [];
  // Refused writes of every kind the guard refuses: another value, the value it has, and any value written by a shell.
  const kinds = (['other value', 'same value', 'shell'] as const).slice().sort(() => Math.random() - 0.5);
  for (let i = 0; i < denied; i++) {
    const now = await nsValue(s, GUARDED);
    const kind = kinds[i % kinds.length]!;
    const write = kind === 'shell' ? await shellWrite(s, shellValue()) : await inCgroup(s, ['-w', `${GUARDED}=${kind === 'same value' ? now : flip(now)}`]);
    const read = await inCgroup(s, ['-n', GUARDED]);
    const other = await inCgroup(s, ['-w', `${OTHER}=${64 + i}`]);
    rounds.push({ kind, write, read, other });
  }
  await fromOutside(s, ['-w', `${GUARDED}=${flip(await nsValue(s, GUARDED))}`]);
  const dump = (await run('bpftool', ['-j', 'map', 'dump', 'id', String(map.id)], { timeoutMs: 15_000 })).stdout;
  const count = parseCounterDump(JSON.parse(dump) as DumpEntry[]).get(0) ?? 0;
  const xlated = sharedMap(map.type) ? await progXlated(prog.progId) : undefined;
  return { progId: prog.progId, map: { id: map.id, type: map.type }, rounds, count, dump, xlated };
}

/** Attach, write the guarded sysctl (refused), detach, write it again. */
export async function detaching(s: GuardSetup): Promise<Detached> {
  const prog = await attachToCgroup(s.object, s.cg.path);
  const before = await nsValue(s, GUARDED);
  const refused = await inCgroup(s, ['-w', `${GUARDED}=${flip(before)}`]);
  await prog.detach();
  const write = await inCgroup(s, ['-w', `${GUARDED}=${flip(before)}`]);
  return { before, refused, write, after: await nsValue(s, GUARDED) };
}
