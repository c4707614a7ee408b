/**
 * Lab 6.2's verdicts (labs/extend/02-sysctl-guard/judge.ts) on made-up evidence; the counter's atomic check on
 * recorded `bpftool prog dump xlated` of the reference and of a plain read-modify-write.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  attach, counter, detached, hostUnchanged, integerSysctls, letThrough, outside, refused, section, sharedMap,
  type Counted, type LetThrough, type Ran, type Refusal, type Round,
} from '../../../../labs/extend/02-sysctl-guard/judge.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../../fixtures/extend/02-sysctl-guard/xlated', `${name}.txt`), 'utf8');
const place = { cgroup: '/sys/fs/cgroup/kl-1-sg', how: 'the host\'s cgroup2 mount', netns: 'kl-1-sg' };
const ok = (stdout = ''): Ran => ({ exitCode: 0, stdout, stderr: '' });
const eperm = (what = 'net.ipv4.ip_forward'): Ran => ({ exitCode: 255, stdout: '', stderr: `sysctl: permission denied on key "${what}"\nsysctl: setting key "${what}": Operation not permitted` });
const shell = (r: Ran, value = '-12345') => ({ shellName: 'klabcdef', value, r });

describe('Lab 6.2 judge', () => {
  it('the object: a cgroup/sysctl section in readelf -S, not a look-alike name', () => {
    const sections = (name: string) => `  [ 3] ${name}     PROGBITS        0000000000000000 000040 000120 00  AX  0   0  8\n  [ 4] .rel${name} REL 0 0 0\n`;
    expect(section({ object: '/o.bpf.o', sections: sections('cgroup/sysctl') })).toEqual({ got: { section: 'cgroup/sysctl' }, want: { section: 'cgroup/sysctl' }, message: 'readelf -S /o.bpf.o' });
    expect(section({ object: '/o.bpf.o', sections: sections('cgroup/sysctlx') }).got).toEqual({ section: 'none; the sections: cgroup/sysctlx .relcgroup/sysctlx' });
    expect(section({ object: '/o.bpf.o', sections: `  [ 0]                   NULL            0 0 0\n${sections('cgroup/skb')}` }).got).toEqual({ section: 'none; the sections: cgroup/skb .relcgroup/skb' });
  });

  it('attached: this program alone, of type sysctl, while on; nothing after detaching', () => {
    const a = (id: number, attachType: string) => ({ id, attachType, attachFlags: 'multi', name: 'guard' });
    const good = attach({ place, progId: 7, during: { attachments: [a(7, 'cgroup_sysctl')], raw: 'R1' }, after: { attachments: [], raw: '' } });
    expect([good.during.got, good.after.got]).toEqual([good.during.want, good.after.want]);
    expect(good.during.message).toBe(`bpftool cgroup show ${place.cgroup} (${place.how}):\nR1`);
    const bad = attach({ place, progId: 7, during: { attachments: [a(8, 'cgroup_sysctl'), a(7, 'egress')], raw: 'R2' }, after: { attachments: [a(7, 'egress')], raw: 'R3' } });
    expect(bad.during.got).toEqual([{ id: 8, sysctl: true }, { id: 7, sysctl: false }]);
    expect(bad.after.got).not.toEqual(bad.after.want);
    expect(bad.after.message).toMatch(/after detaching:\nR3$/);
  });

  const refusal = (x: Partial<Refusal> = {}): Refusal => ({
    place, before: '0', write: eperm(), after: '0', same: eperm(), shell: shell({ exitCode: 1, stdout: '', stderr: 'sh: 1: cannot create: Operation not permitted' }), afterShell: '0', ...x,
  });

  it('refused: every write from the cgroup, the same value and the shell\'s too, with EPERM, the value kept', () => {
    const v = refused(refusal());
    expect(v.got).toEqual(v.want);
    // Refuses only changes: the same value goes through.
    expect(refused(refusal({ same: ok() })).got).toMatchObject({ sameValueRefused: false });
    // Refused with another error than EPERM: not the guard's refusal.
    expect(refused(refusal({ same: { exitCode: 255, stdout: '', stderr: 'sysctl: setting key "net.ipv4.ip_forward": Invalid argument' } })).got).toMatchObject({ sameValueRefused: false });
    // Refused, but not with EPERM (a guard that returns another error, or a sysctl that failed for another reason).
    expect(refused(refusal({ write: { exitCode: 255, stdout: '', stderr: 'Invalid argument' } })).got).toMatchObject({ failed: true, eperm: false });
    // A writer the guard knows not: the shell's value lands.
    const sh = refused(refusal({ shell: shell(ok()), afterShell: '-12345' }));
    expect(sh.got).toMatchObject({ shellWriteRefused: false, valueAfterShell: '-12345' });
    expect(sh.want).toMatchObject({ valueAfterShell: '0' });
    expect(sh.message).toMatch(/klabcdef -c 'echo -12345 > \/proc\/sys\/net\/ipv4\/ip_forward' \(a shell called klabcdef, a value new each run\): exit 0: ; value then -12345\n/);
    expect(refused(refusal({ before: '1' })).message).toMatch(/^sysctl -w net\.ipv4\.ip_forward=0 in cgroup \/sys\/fs\/cgroup\/kl-1-sg, netns kl-1-sg: exit 255: [\s\S]*?Operation not permitted\n\/proc\/sys\/net\/ipv4\/ip_forward: 1 -> 0\n/);
  });

  const through = (x: Partial<LetThrough> = {}): LetThrough => ({
    place, value: '0', read: ok('0\n'),
    writes: [
      { key: 'net.ipv4.ip_default_ttl', wrote: '65', r: ok('net.ipv4.ip_default_ttl = 65'), value: '65', random: false },
      { key: 'net.core.somaxconn', wrote: '4096', r: ok(), value: '4096', random: true },
    ],
    ...x,
  });

  it('let through: the read of the guarded sysctl, and every other write (the random ones marked in the log)', () => {
    const v = letThrough(through());
    expect(v.got).toEqual(v.want);
    expect(Object.keys(v.got)).toEqual(['readExit', 'read', 'net.ipv4.ip_default_ttl', 'net.core.somaxconn']);
    expect(v.message).toMatch(/sysctl -w net\.ipv4\.ip_default_ttl=65: exit 0: net\.ipv4\.ip_default_ttl = 65\nsysctl -w net\.core\.somaxconn=4096 \(its current value; picked at random\): exit 0: $/);
    // A read refused, a prefix refused (value kept): both seen.
    const bad = letThrough(through({ read: eperm(), writes: [{ key: 'net.ipv4.ip_forward_use_pmtu', wrote: '1', r: eperm('net.ipv4.ip_forward_use_pmtu'), value: '0', random: false }] }));
    expect(bad.got).toEqual({ readExit: 255, read: '', 'net.ipv4.ip_forward_use_pmtu': { exit: 255, value: '0' } });
    expect(bad.want).toEqual({ readExit: 0, read: '0', 'net.ipv4.ip_forward_use_pmtu': { exit: 0, value: '1' } });
  });

  it('the random pool: integer sysctls of net/, without the guarded one, OTHERS, or names with a dot in them', () => {
    const listing = ['/proc/sys/net/core/somaxconn 4096', '/proc/sys/net/ipv4/ip_forward 0', '/proc/sys/net/ipv4/ip_dynaddr 0', '/proc/sys/net/ipv4/tcp_rmem 4096 131072 6291456',
      '/proc/sys/net/ipv4/conf/eth0.1/forwarding 0', '/proc/sys/net/ipv6/conf/lo/hop_limit -1', '/proc/sys/net/core/default_qdisc pfifo_fast', ''].join('\n');
    expect(integerSysctls(listing)).toEqual(['net.core.somaxconn', 'net.ipv6.conf.lo.hop_limit']);
  });

  it('outside the cgroup: the write lands', () => {
    const v = outside({ place, before: '1', write: ok('net.ipv4.ip_forward = 0'), after: '0' });
    expect(v.got).toEqual(v.want);
    const no = outside({ place, before: '1', write: eperm(), after: '1' });
    expect([no.got, no.want]).toEqual([{ exit: 255, value: '1' }, { exit: 0, value: '0' }]);
    expect(no.message).toMatch(/^sysctl -w net\.ipv4\.ip_forward=0 outside \/sys\/fs\/cgroup\/kl-1-sg: exit 255: [\s\S]*\n\/proc\/sys\/net\/ipv4\/ip_forward: 1 -> 1$/);
  });

  const rounds = (n: number): Round[] => Array.from({ length: n }, (_, i) => ({
    kind: (['other value', 'same value', 'shell'] as const)[i % 3]!,
    write: i % 3 === 2 ? shell({ exitCode: 1, stdout: '', stderr: 'Operation not permitted' }) : eperm(), read: ok('0'), other: ok(),
  }));
  const counted = (x: Partial<Counted> = {}): Counted => ({
    progId: 9, map: { id: 1615, type: 'array' }, rounds: rounds(3), count: 3, dump: '[{"key":["0x00"],"value":["0x03"]}]', xlated: fixture('sysctl_guard'), ...x,
  });

  it('the counter: exactly the refused writes; on a shared map every write into the value an atomic add', () => {
    const v = counter(counted());
    expect(v.count.got).toBe(v.count.want);
    expect(v.atomic!.got).toEqual(v.atomic!.want);
    expect(v.count.message).toMatch(/^bpftool map dump id 1615 \(denied_writes of prog 9, a array map\): \[\{"key":\["0x00"\],"value":\["0x03"\]\}\]\nafter 3 refused writes, 3 reads and 3 allowed writes in the cgroup, 1 write outside:\n/);
    expect(v.count.message).toMatch(/write net\.ipv4\.ip_forward \(shell\): klabcdef -c 'echo -12345 > .*exit 1: Operation not permitted\nread net\.ipv4\.ip_forward: exit 0: 0\nwrite net\.ipv4\.ip_default_ttl: exit 0: $/);
    // Reads counted too: more than the refusals.
    const every = counter(counted({ count: 6 }));
    expect([every.count.got, every.count.want]).toEqual([6, 3]);
    // A plain read-modify-write on a shared array.
    const racy = counter(counted({ map: { id: 1616, type: 'array' }, xlated: fixture('clever_nonatomic') }));
    expect(racy.atomic!.got.otherWrites.length).toBeGreaterThan(0);
    expect(racy.atomic!.got).not.toEqual(racy.atomic!.want);
    expect(racy.atomic!.message).toMatch(/plain store/);
    // A per-CPU map needs no atomic add: no such check, and the count is the sum over CPUs.
    const percpu = counter(counted({ map: { id: 5, type: 'percpu_array' }, xlated: undefined }));
    expect(percpu.atomic).toBeUndefined();
    expect(percpu.count.message).toMatch(/a percpu_array map: the sum over CPUs\)/);
    expect([sharedMap('hash'), sharedMap('percpu_hash'), sharedMap('array')]).toEqual([true, false, true]);
  });

  it('detached: refused while on, let through after', () => {
    const v = detached({ before: '0', refused: eperm(), write: ok(), after: '1' });
    expect(v.got).toEqual(v.want);
    expect(v.message).toMatch(/^attached: exit 255: [\s\S]*\ndetached: exit 0: \n\/proc\/sys\/net\/ipv4\/ip_forward: 0 -> 1$/);
    const never = detached({ before: '0', refused: ok(), write: ok(), after: '1' });
    expect(never.got).toMatchObject({ refusedWhileAttached: false });
  });

  it('the host: its values the same as before the lab', () => {
    const before = { 'net.ipv4.ip_forward': '0', 'net.ipv4.ip_default_ttl': '64' };
    expect(hostUnchanged(before, { ...before }).got).toEqual(before);
    const changed = hostUnchanged(before, { ...before, 'net.ipv4.ip_forward': '1' });
    expect(changed.got).not.toEqual(changed.want);
    expect(changed.message).toBe('host net.ipv4.ip_forward, net.ipv4.ip_default_ttl before the lab: {"net.ipv4.ip_forward":"0","net.ipv4.ip_default_ttl":"64"}');
  });
});
