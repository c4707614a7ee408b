/**
 * Lab 2 — sysctl 参数防篡改: a BPF_PROG_TYPE_CGROUP_SYSCTL program refuses
 * writes to one sysctl for the processes of one cgroup.
 *
 * Nothing of the host is touched: the guarded sysctl is net.ipv4.ip_forward
 * of a network namespace the lab makes (net.* sysctls are per namespace),
 * the cgroup is a kl-<run> child of the unified (cgroup2) hierarchy, and the
 * host's own values are read at the start and asserted unchanged at the end.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildBpfObject } from '../../../helpers/harness/compile.js';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { progMapByName, progXlated, readCounters } from '../../../helpers/kernel/bpftool.js';
import { attachToCgroup, cgroupAttachments, makeCgroup2Child, runInCgroup } from '../../../helpers/kernel/cgroup-bpf.js';
import { createNetns, type Netns } from '../../../helpers/kernel/netns.js';
import { writesToMap } from './map-writes.js';

const GUARDED = 'net.ipv4.ip_forward';
/**
 * Other sysctls of the lab's namespace that the guard must let through: an unrelated one, two that start with the
 * guarded name, one whose full name ("net/ipv4/ip_dynaddr") has the guarded one's length, one that contains "forward".
 * A guard that compares a prefix, a length or a substring refuses one of them.
 */
const OTHERS = ['net.ipv4.ip_default_ttl', 'net.ipv4.ip_forward_use_pmtu', 'net.ipv4.ip_forward_update_priority', 'net.ipv4.ip_dynaddr', 'net.ipv4.conf.lo.forwarding'] as const;
const OTHER = OTHERS[0];
/** A value the kernel accepts for each of OTHERS, different from `now`. */
const otherValue = (key: string, now: string) => (key === 'net.ipv4.ip_default_ttl' ? String(now === '64' ? 65 : 64) : now === '0' ? '1' : '0');
/** How many sysctls of the namespace, picked at random each run, the guard must also let through (an allow-list of the names above fails them). */
const RANDOM_OTHERS = 3;
const COUNTER_MAP = 'denied_writes';
const procPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

describe('Lab 2 — a sysctl guard with cgroup-BPF (sysctl 参数防篡改)', () => {
  requires(...labRequires(import.meta.url));

  let ns: Netns;
  let cg: { path: string; how: string };
  let object: string;
  const hostBefore: Record<string, string> = {};

  beforeAll(async () => {
    if (await unmet(['root', 'clang-bpf', 'libbpf', 'bpftool', 'iproute2'])) return;
    for (const key of [GUARDED, OTHER]) hostBefore[key] = readFileSync(procPath(key), 'utf8').trim();
    ns = await createNetns({ tag: 'sg' });
    cg = await makeCgroup2Child('sg');
    object = (await buildBpfObject({ src: labSource('extend/02-sysctl-guard/sysctl_guard.c') })).path;
  });

  /** The namespace's value of `key`, read by a process outside the guarded cgroup. */
  const nsValue = async (key: string) => (await ns.exec('cat', [procPath(key)], { timeoutMs: 10_000 })).stdout.trim();
  /**
   * Sysctls of the lab namespace that hold one integer and that root may read and write, but the guarded one and
   * OTHERS: the spec writes RANDOM_OTHERS of them, picked at random, with their current value (a write that changes nothing).
   */
  const randomOthers = async (): Promise<string[]> => {
    const list = await ns.exec('sh', ['-c', 'for f in $(find /proc/sys/net/ipv4 /proc/sys/net/ipv6 /proc/sys/net/core -type f -perm -u=rw); do echo "$f $(cat $f)"; done 2>/dev/null'],
      { timeoutMs: 20_000, reject: false });
    const found = list.stdout.split('\n').map((l) => l.match(/^\/proc\/sys\/(net\/[^\s.]+) -?\d+$/)?.[1]).filter((f): f is string => !!f)
      .map((f) => f.replace(/\//g, '.')).filter((k) => k !== GUARDED && !(OTHERS as readonly string[]).includes(k));
    return Array.from({ length: Math.min(RANDOM_OTHERS, found.length) }, () => found.splice(randomInt(0, found.length), 1)[0]!);
  };
  /** `sysctl` run inside the lab namespace, as a member of the guarded cgroup. */
  const inCgroup = (args: string[]): Promise<RunResult> => runInCgroup(cg.path, 'ip', ['netns', 'exec', ns.name, 'sysctl', ...args], { reject: false });
  /** `sysctl` run inside the lab namespace from outside the cgroup. */
  const outside = (args: string[]): Promise<RunResult> => ns.exec('sysctl', args, { reject: false, timeoutMs: 10_000 });
  const show = (r: RunResult) => `exit ${r.exitCode}: ${(r.stderr + r.stdout).trim()}`;
  const flip = (v: string) => (v === '0' ? '1' : '0');

  it('compiles sysctl_guard.c into a BPF object with a "cgroup/sysctl" section', async () => {
    const sections = (await run('readelf', ['-S', '-W', object])).stdout;
    expect(sections, `readelf -S ${object}`).toMatch(/\scgroup\/sysctl\s/);
  });

  it('attaches to the lab\'s cgroup2 cgroup: bpftool cgroup show lists it (type sysctl) while it is on, and nothing after detaching', async () => {
    const prog = await attachToCgroup(object, cg.path);
    const during = await cgroupAttachments(cg.path);
    expect(during.attachments.map((a) => ({ id: a.id, sysctl: /sysctl/.test(a.attachType) })),
      `bpftool cgroup show ${cg.path} (${cg.how}):\n${during.raw}`).toEqual([{ id: prog.progId, sysctl: true }]);
    await prog.detach();
    const after = await cgroupAttachments(cg.path);
    expect(after.attachments, `bpftool cgroup show ${cg.path} after detaching:\n${after.raw}`).toEqual([]);
  });

  it(`in the guarded cgroup a write to ${GUARDED} fails with EPERM and the value is unchanged`, async () => {
    await attachToCgroup(object, cg.path);
    const before = await nsValue(GUARDED);
    const r = await inCgroup(['-w', `${GUARDED}=${flip(before)}`]);
    const after = await nsValue(GUARDED);
    // Writing the value it already has is a write too: the guard refuses writes, not changes.
    const same = await inCgroup(['-w', `${GUARDED}=${before}`]);
    // Any value, any writer: "2" (the kernel takes any non-zero as on), written by a shell rather than sysctl(8).
    const shell = await runInCgroup(cg.path, 'ip', ['netns', 'exec', ns.name, 'sh', '-c', `echo 2 > ${procPath(GUARDED)}`], { reject: false });
    const afterShell = await nsValue(GUARDED);
    expect({ failed: r.exitCode !== 0, eperm: /Operation not permitted/.test(r.stderr), value: after, sameValueRefused: same.exitCode !== 0 && /Operation not permitted/.test(same.stderr),
      shellWriteRefused: shell.exitCode !== 0, valueAfterShell: afterShell },
      `sysctl -w ${GUARDED}=${flip(before)} in cgroup ${cg.path}, netns ${ns.name}: ${show(r)}\n${procPath(GUARDED)}: ${before} -> ${after}\n` +
      `sysctl -w ${GUARDED}=${before} (its current value): ${show(same)}\nsh -c 'echo 2 > ${procPath(GUARDED)}': ${show(shell)}; value then ${afterShell}`)
      .toEqual({ failed: true, eperm: true, value: before, sameValueRefused: true, shellWriteRefused: true, valueAfterShell: before });
  });

  it(`in the guarded cgroup reading ${GUARDED} works and writing other sysctls succeeds (${OTHER}, names that share a prefix, the length or a word with it, and ${RANDOM_OTHERS} picked at random)`, async (ctx) => {
    afterCorrectness(ctx, ['in the guarded cgroup a write to'], 'what the guard lets through');
    await attachToCgroup(object, cg.path);
    const value = await nsValue(GUARDED);
    const read = await inCgroup(['-n', GUARDED]);
    const got: Record<string, unknown> = { readExit: read.exitCode, read: read.stdout.trim() };
    const want: Record<string, unknown> = { readExit: 0, read: value };
    const log = [`sysctl -n ${GUARDED}: ${show(read)}`];
    for (const key of OTHERS) {
      const next = otherValue(key, await nsValue(key));
      const w = await inCgroup(['-w', `${key}=${next}`]);
      got[key] = { exit: w.exitCode, value: await nsValue(key) };
      want[key] = { exit: 0, value: next };
      log.push(`sysctl -w ${key}=${next}: ${show(w)}`);
    }
    // Names the guard cannot know in advance: written with their current value (still a write the guard sees).
    for (const key of await randomOthers()) {
      const now = await nsValue(key);
      const w = await inCgroup(['-w', `${key}=${now}`]);
      got[key] = { exit: w.exitCode, value: await nsValue(key) };
      want[key] = { exit: 0, value: now };
      log.push(`sysctl -w ${key}=${now} (its current value; picked at random): ${show(w)}`);
    }
    expect(got, `in cgroup ${cg.path}, netns ${ns.name}: the guard must refuse ${GUARDED} alone, compared by its full name ` +
      `(bpf_sysctl_get_name), whatever the other names are:\n${log.join('\n')}`).toEqual(want);
  });

  it(`a process outside the cgroup, in the same network namespace, can write ${GUARDED}`, async (ctx) => {
    afterCorrectness(ctx, ['in the guarded cgroup a write to'], 'what the guard lets through');
    await attachToCgroup(object, cg.path);
    const before = await nsValue(GUARDED);
    const r = await outside(['-w', `${GUARDED}=${flip(before)}`]);
    const after = await nsValue(GUARDED);
    expect({ exit: r.exitCode, value: after }, `sysctl -w ${GUARDED}=${flip(before)} outside ${cg.path}: ${show(r)}\n${procPath(GUARDED)}: ${before} -> ${after}`)
      .toEqual({ exit: 0, value: flip(before) });
  });

  it(`the counter map ${COUNTER_MAP} (read with bpftool) counts exactly the refused writes, not reads or allowed writes`, async (ctx) => {
    const prog = await attachToCgroup(object, cg.path);
    const map = await progMapByName(prog.progId, COUNTER_MAP);
    const denied = 2 + randomInt(0, 3);
    const log: string[] = [];
    // Refused writes of every kind the guard refuses: another value, the value it has, and "2" written by a shell.
    const kinds = ['other value', 'same value', 'shell'].sort(() => Math.random() - 0.5);
    for (let i = 0; i < denied; i++) {
      const now = await nsValue(GUARDED);
      const kind = kinds[i % kinds.length]!;
      const r = kind === 'shell'
        ? await runInCgroup(cg.path, 'ip', ['netns', 'exec', ns.name, 'sh', '-c', `echo 2 > ${procPath(GUARDED)}`], { reject: false })
        : await inCgroup(['-w', `${GUARDED}=${kind === 'same value' ? now : flip(now)}`]);
      log.push(`write ${GUARDED} (${kind}): ${show(r)}`);
      const read = await inCgroup(['-n', GUARDED]);
      log.push(`read ${GUARDED}: ${show(read)}`);
      const other = await inCgroup(['-w', `${OTHER}=${64 + i}`]);
      log.push(`write ${OTHER}: ${show(other)}`);
    }
    await outside(['-w', `${GUARDED}=${flip(await nsValue(GUARDED))}`]);
    const counters = await readCounters(map.id);
    const counted = counters.get(0) ?? 0;
    recordMetric(ctx, { name: 'denied writes counted by the guard', value: counted, unit: 'writes', group: 'sysctl guard' });
    // Two CPUs refuse writes at once: a plain array or hash map needs an atomic add, or increments are lost.
    // (A per-CPU map needs none.) The kernel's copy of the program says which it does: every instruction that may
    // write into this map's value, found by following the map's address (map[id:N]) through the lookup, the
    // registers and the stack — an atomic add elsewhere (another map) does not count.
    const shared = !/percpu/.test(map.type);
    if (shared) {
      const xlated = await progXlated(prog.progId);
      const writes = writesToMap(xlated, map.id);
      const atomic = writes.filter((w) => w.kind === 'atomic-add').map((w) => w.line);
      const racy = writes.filter((w) => w.kind !== 'atomic-add').map((w) => `${w.line}${w.kind === 'helper' ? '  (a helper writes the value: a copy, not an add)' : '  (a plain store)'}`);
      const found = `writes into ${COUNTER_MAP}'s value (followed from map[id:${map.id}] through the lookup, registers and stack):\n` +
        `  atomic adds: ${atomic.length ? atomic.join('; ') : 'none'}\n  other writes: ${racy.length ? racy.join('; ') : 'none'}`;
      expect({ atomicAdds: atomic.length > 0, otherWrites: racy },
        `${COUNTER_MAP} (map id ${map.id}) is a ${map.type} map that every CPU updates at once: each write into its value must be an atomic add ` +
        `("lock *(u64 *)(rX +0) += rY" or atomic64_fetch_add in bpftool prog dump xlated id ${prog.progId}). ` +
        'A load, an add and a plain store is a read-modify-write: two CPUs refusing at once both store the same count + 1, and one refusal is lost; ' +
        `an atomic add on another map does not make this one safe.\n${found}\nThe program's instructions:\n` +
        `${xlated.split('\n').filter((l) => !/^\s*;/.test(l)).slice(0, 120).join('\n')}`)
        .toEqual({ atomicAdds: true, otherWrites: [] });
    }
    expect(counted, `bpftool map dump id ${map.id} (${COUNTER_MAP} of prog ${prog.progId}): ${JSON.stringify(Object.fromEntries(counters))}\n` +
      `after ${denied} refused writes, ${denied} reads and ${denied} allowed writes in the cgroup, 1 write outside:\n${log.join('\n')}`).toBe(denied);
  });

  it('detaching the program restores writes from inside the cgroup', async () => {
    const prog = await attachToCgroup(object, cg.path);
    const before = await nsValue(GUARDED);
    const refused = await inCgroup(['-w', `${GUARDED}=${flip(before)}`]);
    await prog.detach();
    const r = await inCgroup(['-w', `${GUARDED}=${flip(before)}`]);
    const after = await nsValue(GUARDED);
    expect({ refusedWhileAttached: refused.exitCode !== 0, exitAfterDetach: r.exitCode, value: after },
      `attached: ${show(refused)}\ndetached: ${show(r)}\n${procPath(GUARDED)}: ${before} -> ${after}`)
      .toEqual({ refusedWhileAttached: true, exitAfterDetach: 0, value: flip(before) });
  });

  it('leaves the host\'s own sysctls unchanged', (ctx) => {
    afterCorrectness(ctx, ['in the guarded cgroup a write to'], 'what the guard lets through');
    const now = Object.fromEntries(Object.keys(hostBefore).map((k) => [k, readFileSync(procPath(k), 'utf8').trim()]));
    expect(now, `host ${Object.keys(hostBefore).join(', ')} before the lab: ${JSON.stringify(hostBefore)}`).toEqual(hostBefore);
  });
});
