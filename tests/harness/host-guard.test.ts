import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostChangeMessage, hostChanges, parseCgroupBpf, parseIpLinks, readRootIpc, snapshotHost } from '../../helpers/harness/host-guard.js';

const links = (xdpId?: number, extra = '') => JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, qdisc: 'noqueue', address: '00:00:00:00:00:00' },
  { ifindex: 2, ifname: 'eth0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, qdisc: 'fq_codel', address: '06:00:ac:10:00:02',
    ...(xdpId ? { xdp: { mode: 1, prog: { id: xdpId, tag: 'a04f5eef06a7f555', jited: 1 } } } : {}) },
  ...(extra ? [{ ifindex: 9, ifname: extra, flags: ['BROADCAST', 'NOARP'], mtu: 1500, qdisc: 'noop', address: '2a:1b:3c:4d:5e:6f' }] : []),
]);

let dir = '';
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = ''; });

/** A fake /proc/sys and a fake cgroup v1 memory mount in a temp dir. */
function fakeHost() {
  dir = mkdtempSync(join(tmpdir(), 'host-guard-test-'));
  const sys = join(dir, 'sys');
  mkdirSync(join(sys, 'net/ipv4'), { recursive: true });
  mkdirSync(join(sys, 'kernel'), { recursive: true });
  writeFileSync(join(sys, 'net/ipv4/ip_forward'), '0\n', { mode: 0o644 });
  writeFileSync(join(sys, 'kernel/ns_last_pid'), '100\n', { mode: 0o644 });
  mkdirSync(join(sys, 'kernel/sched_domain/cpu0/domain0'), { recursive: true });
  writeFileSync(join(sys, 'kernel/sched_domain/cpu0/domain0/max_newidle_lb_cost'), '6559448\n', { mode: 0o644 });
  writeFileSync(join(sys, 'kernel/sched_domain/cpu0/domain0/busy_factor'), '16\n', { mode: 0o644 });
  writeFileSync(join(sys, 'kernel/osrelease'), '6.18\n', { mode: 0o444 });
  const cg = join(dir, 'memory');
  mkdirSync(join(cg, 'system.slice'), { recursive: true });
  mkdirSync(join(cg, 'kl-abc123-cg1'), { recursive: true });
  writeFileSync(join(cg, 'system.slice', 'memory.limit_in_bytes'), '9223372036854771712\n');
  const unified = join(dir, 'unified');
  const bpffs = join(dir, 'bpf');
  mkdirSync(unified);
  mkdirSync(bpffs);
  const mountinfo = `30 25 0:26 / ${cg} rw,nosuid - cgroup cgroup rw,memory\n41 31 0:38 / ${unified} rw,relatime - cgroup2 cgroup2 rw\n50 23 0:40 / ${bpffs} rw,relatime - bpf bpf rw,mode=700\n`;
  let attached = '';
  let extraMounts = '';
  const etc = join(dir, 'etc');
  mkdirSync(join(etc, 'cron.d'), { recursive: true });
  writeFileSync(join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(etc, 'cron.d', 'e2scrub_all'), '30 3 * * 0 root true\n');
  const net = {
    addrs: [{ ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] }, { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.2', prefixlen: 24 }] }] as unknown[],
    routes: [{ dst: 'default', gateway: '192.0.2.1', dev: 'eth0' }, { type: 'local', dst: '127.0.0.1', dev: 'lo', table: 'local' }] as unknown[],
    nft: '',
  };
  const snap = (ipLinkJson = links(), host = 'lab-host') => snapshotHost({
    sysctlRoot: sys, mountinfo: mountinfo + extraMounts, ipLinkJson, hostname: host, cgroupBpfJson: () => attached,
    ipAddrJson: JSON.stringify(net.addrs), ipRouteJson: `${JSON.stringify(net.routes)}\n[]`, nftRuleset: net.nft, etcRoot: etc,
    runIsLive: (id) => id === 'abc123',
  });
  return { sys, cg, unified, bpffs, etc, net, snap, attach: (json: string) => { attached = json; }, mount: (line: string) => { extraMounts += `${line}\n`; } };
}

describe('host guard', () => {
  it('finds no change when nothing changed but the kernel\'s own counters (ns_last_pid, a 5.10 scheduler domain\'s balancing cost), a lab\'s kl-… cgroups and interfaces', () => {
    const h = fakeHost();
    const before = h.snap();
    writeFileSync(join(h.sys, 'kernel/ns_last_pid'), '4711\n');
    writeFileSync(join(h.sys, 'kernel/sched_domain/cpu0/domain0/max_newidle_lb_cost'), '6039917\n');
    mkdirSync(join(h.cg, 'kl-abc123-cg2'));
    expect(hostChanges(before, h.snap(links(undefined, 'kl-abc-v0')))).toEqual([]);
  });

  it('names a host sysctl a lab wrote, with the command that puts it back; read-only files are not compared', () => {
    const h = fakeHost();
    const before = h.snap();
    expect(before.sysctls.has('kernel/osrelease')).toBe(false);
    writeFileSync(join(h.sys, 'net/ipv4/ip_forward'), '1\n');
    writeFileSync(join(h.sys, 'kernel/sched_domain/cpu0/domain0/busy_factor'), '32\n');
    const changes = hostChanges(before, h.snap());
    expect(changes).toEqual([
      { what: 'sysctl kernel.sched_domain.cpu0.domain0.busy_factor 16 -> 32', undo: 'sysctl -w kernel.sched_domain.cpu0.domain0.busy_factor=16' },
      { what: 'sysctl net.ipv4.ip_forward 0 -> 1', undo: 'sysctl -w net.ipv4.ip_forward=0' },
    ]);
    expect(hostChangeMessage('Lab x', changes)).toMatch(/^Lab x changed the host.*\n  sysctl kernel\.sched_domain\.cpu0\.domain0\.busy_factor 16 -> 32\n    undo: sysctl -w .*\n  sysctl net\.ipv4\.ip_forward 0 -> 1\n    undo: sysctl -w/);
  });

  it('names a cgroup made at the top of a host hierarchy outside kl-…, and a host cgroup\'s changed limit', () => {
    const h = fakeHost();
    const before = h.snap();
    mkdirSync(join(h.cg, 'student-scratch'));
    writeFileSync(join(h.cg, 'system.slice', 'memory.limit_in_bytes'), '67108864\n');
    const what = hostChanges(before, h.snap()).map((c) => c.what);
    expect(what).toEqual([
      `cgroup ${join(h.cg, 'student-scratch')} was made outside the lab's kl-… groups`,
      `${join(h.cg, 'system.slice', 'memory.limit_in_bytes')} "9223372036854771712" -> "67108864" (a host cgroup, not the lab's)`,
    ]);
  });

  it('names an XDP program attached to a host interface, an interface that appeared, and the hostname', () => {
    const h = fakeHost();
    const before = h.snap();
    const changes = hostChanges(before, h.snap(links(77, 'veth0'), 'student-box'));
    expect(changes.map((c) => c.what)).toEqual([
      'hostname lab-host -> student-box',
      'interface eth0: XDP program none -> 77',
      'interface veth0 appeared in the host\'s network namespace (both ends of a lab\'s veth belong in lab namespaces)',
    ]);
    expect(changes[1]!.undo).toBe('ip link set dev eth0 xdp off');
  });

  it('names a BPF program attached to the host\'s cgroup2 root and a pin left in the host\'s bpffs (a kl-… pin is the lab\'s)', () => {
    const h = fakeHost();
    const before = h.snap();
    h.attach('[{"id":31,"attach_type":"cgroup_sysctl","attach_flags":"","name":"guard"}]');
    mkdirSync(join(h.bpffs, 'my_link'));
    mkdirSync(join(h.bpffs, 'kl-abc123-pin1'));
    const changes = hostChanges(before, h.snap());
    expect(changes.map((c) => c.what)).toEqual([
      `BPF program cgroup_sysctl guard id 31 attached to the host's cgroup ${h.unified} (it acts on every process of the machine; attach to a kl-… cgroup of the lab)`,
      `${join(h.bpffs, 'my_link')} was pinned in the host's bpffs (a pin keeps its program, map or link alive after the lab)`,
    ]);
    expect(changes[0]!.undo).toBe(`bpftool cgroup detach ${h.unified} cgroup_sysctl id 31`);
    expect(parseCgroupBpf('')).toEqual([]);
  });

  it('names a mount left in the host\'s mount namespace (a netns bind-mounted to keep it alive, an overlay), not the lab\'s or a service\'s', () => {
    const h = fakeHost();
    const before = h.snap();
    h.mount('90 23 0:4 net:[4026532500] /root/keep-ns rw shared:5 - nsfs nsfs rw');
    h.mount('91 23 0:50 / /tmp/kl-abc123-ovl-x/merged rw - overlay overlay rw,lowerdir=a');
    h.mount('92 23 7:3 / /snap/core22/1380 ro - squashfs /dev/loop3 ro');
    const changes = hostChanges(before, h.snap());
    expect(changes.map((c) => c.what)).toEqual(['nsfs mounted at /root/keep-ns in the host\'s mount namespace (a lab mounts in a mount namespace of its own, or under its kl-<run>-… temp dir)']);
    expect(changes[0]!.undo).toBe('umount /root/keep-ns');
  });

  it('a mount is the lab\'s only under a kl-<run>-… name of a live run: /kl- elsewhere in the path, or a run that is over, is the host\'s', () => {
    const h = fakeHost();
    const before = h.snap();
    h.mount('93 23 0:51 / /etc/kl-cache rw - tmpfs tmpfs rw');
    h.mount('94 23 0:52 / /var/lib/kl-x/y rw - tmpfs tmpfs rw');
    h.mount('95 23 0:53 / /tmp/kl-dead99-ovl/merged rw - tmpfs tmpfs rw');
    h.mount('96 23 0:54 / /sys/fs/cgroup/kl-abc123-cg2 rw - cgroup2 cgroup2 rw');
    expect(hostChanges(before, h.snap()).map((c) => c.what.split(' in the host')[0])).toEqual([
      'tmpfs mounted at /etc/kl-cache', 'tmpfs mounted at /var/lib/kl-x/y', 'tmpfs mounted at /tmp/kl-dead99-ovl/merged',
    ]);
  });

  it('reads the interfaces of `ip -j -d link show` (mtu, up, qdisc, XDP program id)', () => {
    const m = parseIpLinks(links(12));
    expect(m.get('eth0')).toEqual({ mtu: 1500, up: true, address: '06:00:ac:10:00:02', master: '', qdisc: 'fq_codel', xdp: 12 });
    expect(m.get('lo')?.xdp).toBe(0);
  });

  it('reads this host: writable sysctls, the interfaces, the cgroup mounts (and finds no change between two reads)', () => {
    const a = snapshotHost();
    const b = snapshotHost();
    expect(a.sysctls.size).toBeGreaterThan(100);
    expect(a.sysctls.has('kernel/ns_last_pid')).toBe(false);
    expect(a.links?.has('lo')).toBe(true);
    expect(a.cgroupDirs.size).toBeGreaterThan(0);
    expect(hostChanges(a, b)).toEqual([]);
  });

  it('names an address or a route added to the host\'s network namespace, an nftables table, and a changed or new system file in /etc (#29)', () => {
    const h = fakeHost();
    const before = h.snap();
    h.net.addrs.push({ ifname: 'lo', addr_info: [{ family: 'inet', local: '10.9.9.9', prefixlen: 32 }] });
    h.net.addrs.push({ ifname: 'kl-abc-v0', addr_info: [{ family: 'inet', local: '10.200.0.1', prefixlen: 24 }] });
    h.net.routes.push({ dst: '203.0.113.0/24', gateway: '192.0.2.1', dev: 'eth0' }, { dst: '10.200.0.0/24', dev: 'kl-abc-v0' });
    h.net.nft = 'table inet student {\n\tchain input {\n\t}\n}\n';
    writeFileSync(join(h.etc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\nbackdoor:x:0:0::/:/bin/sh\n');
    writeFileSync(join(h.etc, 'cron.d', 'survivor'), '* * * * * root /tmp/x\n');
    const changes = hostChanges(before, h.snap());
    expect(changes.map((c) => c.what)).toEqual([
      'address 10.9.9.9/32 added to lo of the host\'s network namespace',
      'route added in the host\'s network namespace: table main unicast 203.0.113.0/24 via 192.0.2.1 dev eth0',
      'the host\'s nftables ruleset changed (table inet student added): compare `nft list ruleset`',
      '/etc/passwd was changed',
      '/etc/cron.d/survivor was created',
    ]);
    expect(changes.map((c) => c.undo).slice(0, 3)).toEqual([
      'ip addr del 10.9.9.9/32 dev lo', 'ip route del 203.0.113.0/24 table main via 192.0.2.1 dev eth0', 'nft delete table inet student',
    ]);
  });

  it('names a System V IPC object or POSIX message queue root left in the host\'s IPC namespace, with its ipcrm; another user\'s is not compared (#29)', () => {
    dir = mkdtempSync(join(tmpdir(), 'host-guard-ipc-'));
    const sysv = join(dir, 'sysvipc');
    const mq = join(dir, 'mqueue');
    mkdirSync(sysv);
    mkdirSync(mq);
    const shmHeader = '       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n';
    const shm = (rows: string[]) => writeFileSync(join(sysv, 'shm'), shmHeader + rows.join('\n') + (rows.length ? '\n' : ''));
    const desktop = '         0         32       1600               524288  2201  2201      2  1000  1000  1000  1000 1733500000          0 1733500000                  4096                     0';
    writeFileSync(join(sysv, 'sem'), '       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n');
    writeFileSync(join(sysv, 'msg'), '       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n');
    shm([desktop]);
    const before = readRootIpc(sysv, mq)!;
    expect([...before]).toEqual([]);
    const rootShm = '1234567890         33        600                 4096  4711     0      0     0     0     0     0          0          0 1733500001                     0                     0';
    shm([desktop, rootShm, desktop.replace(' 32 ', ' 34 ')]);
    writeFileSync(join(sysv, 'msg'), '       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n' +
      '         0          2        600            0          0     0     0     0     0     0     0          0          0 1733500002\n');
    writeFileSync(join(mq, 'kl-left'), '');
    const after = readRootIpc(sysv, mq)!;
    const snap = (ipc: Set<string>) => ({ hostname: 'h', sysctls: new Map(), cgroupDirs: new Map(), cgroupKnobs: new Map(), cgroupBpf: new Map(), bpffsPins: new Map(), mounts: new Set<string>(), etc: new Map(), ipc });
    const changes = hostChanges(snap(before), snap(after));
    expect(changes.map((c) => c.what)).toEqual([
      'System V shared memory segment 33 (key 1234567890) left by root in the host\'s IPC namespace (it outlives every process until removed)',
      'System V message queue 2 (key 0) left by root in the host\'s IPC namespace (it outlives every process until removed)',
      'POSIX message queue /kl-left left in the host\'s IPC namespace (it outlives every process until removed)',
    ]);
    expect(changes.map((c) => c.undo)).toEqual(['ipcrm -m 33', 'ipcrm -q 2', 'rm /dev/mqueue/kl-left']);
    expect(readRootIpc(join(dir, 'none'), join(dir, 'none')), 'nothing to read: not compared').toBeUndefined();
  });
});
