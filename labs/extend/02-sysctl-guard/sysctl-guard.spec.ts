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
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { buildBpfObject } from '../../../helpers/harness/compile.js';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { parseCounterDump, progMapByName, progXlated, type DumpEntry } from '../../../helpers/kernel/bpftool.js';
import { attachToCgroup, cgroupAttachments, makeCgroup2Child, runInCgroup } from '../../../helpers/kernel/cgroup-bpf.js';
import { createNetns, type Netns } from '../../../helpers/kernel/netns.js';
import { counterWrites } from '../../../helpers/kernel/bpf-map-writes.js';

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
/**
 * The other writer of the guarded sysctl: a shell whose name (its comm, what bpf_get_current_comm() sees) is new
 * each run, writing a value new each run (the kernel takes any integer for ip_forward): a guard that knows the
 * writers or the values the spec uses refuses neither.
 */
const SHELL_NAME = `kl${Array.from({ length: 6 }, () => String.fromCharCode(97 + randomInt(0, 26))).join('')}`;
const shellValue = () => String((randomInt(0, 2) ? 1 : -1) * randomInt(3, 1_000_000_000));
const procPath = (key: string) => `/proc/sys/${key.replace(/\./g, '/')}`;

/**
 * Key 0's count in `bpftool -j map dump` of an array or hash (one value) or of a per-CPU map (one value per CPU:
 * the count is their sum), and the dump's text for messages.
 */
async function readCount(mapId: number): Promise<{ count: number; raw: string }> {
  const raw = (await run('bpftool', ['-j', 'map', 'dump', 'id', String(mapId)], { timeoutMs: 15_000 })).stdout;
  return { count: parseCounterDump(JSON.parse(raw) as DumpEntry[]).get(0) ?? 0, raw };
}

describe('Lab 2 — a sysctl guard with cgroup-BPF (sysctl 参数防篡改)', () => {
  requires(...labRequires(import.meta.url));

  let ns: Netns;
  let cg: { path: string; how: string };
  let object: string;
  let shell: string;
  const hostBefore: Record<string, string> = {};

  beforeAll(async () => {
    if (await unmet(['root', 'clang-bpf', 'libbpf', 'bpftool', 'iproute2'])) return;
    for (const key of [GUARDED, OTHER]) hostBefore[key] = readFileSync(procPath(key), 'utf8').trim();
    ns = await createNetns({ tag: 'sg' });
    cg = await makeCgroup2Child('sg');
    object = (await buildBpfObject({ src: labSource('extend/02-sysctl-guard/sysctl_guard.c') })).path;
    shell = join(await makeTempDir('sg'), SHELL_NAME);
    symlinkSync('/bin/sh', shell);
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
  /** `echo <value> > /proc/sys/…` by the shell called SHELL_NAME, inside the lab namespace and the guarded cgroup. */
  const shellWrite = async (value: string): Promise<{ r: RunResult; said: string }> => {
    const r = await runInCgroup(cg.path, 'ip', ['netns', 'exec', ns.name, shell, '-c', `echo ${value} > ${procPath(GUARDED)}`], { reject: false });
    return { r, said: `${SHELL_NAME} -c 'echo ${value} > ${procPath(GUARDED)}' (a shell called ${SHELL_NAME}, a value new each run): ${show(r)}` };
  };
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
    // Any value, any writer: a random integer (the kernel takes any), written by a shell with a random name.
    const sh = await shellWrite(shellValue());
    const afterShell = await nsValue(GUARDED);
    expect({ failed: r.exitCode !== 0, eperm: /Operation not permitted/.test(r.stderr), value: after, sameValueRefused: same.exitCode !== 0 && /Operation not permitted/.test(same.stderr),
      shellWriteRefused: sh.r.exitCode !== 0, valueAfterShell: afterShell },
      `sysctl -w ${GUARDED}=${flip(before)} in cgroup ${cg.path}, netns ${ns.name}: ${show(r)}\n${procPath(GUARDED)}: ${before} -> ${after}\n` +
      `sysctl -w ${GUARDED}=${before} (its current value): ${show(same)}\n${sh.said}; value then ${afterShell}\n` +
      'the guard must refuse every write to it from the cgroup, whoever writes and whatever the value')
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
    // Refused writes of every kind the guard refuses: another value, the value it has, and any value written by a shell.
    const kinds = ['other value', 'same value', 'shell'].sort(() => Math.random() - 0.5);
    for (let i = 0; i < denied; i++) {
      const now = await nsValue(GUARDED);
      const kind = kinds[i % kinds.length]!;
      if (kind === 'shell') log.push(`write ${GUARDED} (${kind}): ${(await shellWrite(shellValue())).said}`);
      else log.push(`write ${GUARDED} (${kind}): ${show(await inCgroup(['-w', `${GUARDED}=${kind === 'same value' ? now : flip(now)}`]))}`);
      const read = await inCgroup(['-n', GUARDED]);
      log.push(`read ${GUARDED}: ${show(read)}`);
      const other = await inCgroup(['-w', `${OTHER}=${64 + i}`]);
      log.push(`write ${OTHER}: ${show(other)}`);
    }
    await outside(['-w', `${GUARDED}=${flip(await nsValue(GUARDED))}`]);
    const { count: counted, raw: dump } = await readCount(map.id);
    recordMetric(ctx, { name: 'denied writes counted by the guard', value: counted, unit: 'writes', group: 'sysctl guard' });
    // Two CPUs refuse writes at once: a plain array or hash map needs an atomic add, or increments are lost.
    // (A per-CPU map needs none.) The kernel's copy of the program says which it does: every instruction that may
    // write into this map's value, found by following the map's address (map[id:N]) through the lookup, the
    // registers and the stack — an atomic add elsewhere (another map) does not count; a plain store made while
    // bpf_spin_lock is held on the same value (struct { struct bpf_spin_lock lock; __u64 count; }) is safe too.
    const shared = !/percpu/.test(map.type);
    if (shared) {
      const xlated = await progXlated(prog.progId);
      const { atomic, racy, described } = counterWrites(xlated, map.id);
      const found = `writes into ${COUNTER_MAP}'s value (followed from map[id:${map.id}] through the lookup, registers and stack):\n${described}`;
      expect({ atomicAdds: atomic.length > 0, otherWrites: racy },
        `${COUNTER_MAP} (map id ${map.id}) is a ${map.type} map that every CPU updates at once: each write into its value must be an atomic add ` +
        `("lock *(u64 *)(rX +0) += rY" or atomic64_fetch_add in bpftool prog dump xlated id ${prog.progId}), or a store made while ` +
        'bpf_spin_lock is held on that same value (between "call bpf_spin_lock" and "call bpf_spin_unlock" on every path). ' +
        'A load, an add and a plain store is a read-modify-write: two CPUs refusing at once both store the same count + 1, and one refusal is lost; ' +
        `an atomic add on another map does not make this one safe.\n${found}\nThe program's instructions:\n` +
        `${xlated.split('\n').filter((l) => !/^\s*;/.test(l)).slice(0, 120).join('\n')}`)
        .toEqual({ atomicAdds: true, otherWrites: [] });
    }
    expect(counted, `bpftool map dump id ${map.id} (${COUNTER_MAP} of prog ${prog.progId}, a ${map.type} map${shared ? '' : ': the sum over CPUs'}): ${dump.replace(/\s+/g, ' ').slice(0, 400)}\n` +
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
