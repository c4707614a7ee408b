/**
 * Cloud Lab 1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts) to the facts each test asserts, each with the message that
 * shows the evidence (the container's command, exit, stdout and stderr; the
 * processes seen from the host). Unit-tested on made-up evidence in
 * tests/lab-units/cloud/01-container/judge.test.ts.
 */
import type { RunResult } from '../../../helpers/harness/exec.js';
import type { ContainerProcess, ContainerRun, ContainerSetup, HostnameRun, HostView, UsersRun } from './experiment.js';

/** The inode in `pid:[4026532179]`, NaN when absent. */
export const inode = (s?: string) => Number(s?.match(/\[(\d+)\]/)?.[1] ?? NaN);

export function show(r: RunResult): string {
  return `${r.command} (stdin: the container's commands) exited ${r.signal ?? r.exitCode}\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim()}`;
}

type Host = ContainerSetup['host'];

/** `ps -o pid,comm` rows in a container's stdout. */
export function psRows(stdout: string): { pid: number; comm: string }[] {
  return stdout.split('\n').map((l) => l.match(/^\s*(\d+)\s+(\S+)\s*$/)).filter(Boolean).map((m) => ({ pid: Number(m![1]), comm: m![2]! }));
}

/** Inside: ps lists exactly sh and ps, sh is PID 1 ($$ too), and PID 1's pid namespace is not the host's (`other`: a value the fact must not be). */
export function inside(r: ContainerRun, host: Pick<Host, 'pid'>) {
  const rows = psRows(r.stdout);
  const procs = rows.map((p) => `${p.pid} ${p.comm}`).join(', ');
  return {
    ps: { facts: rows.map((p) => p.comm).sort(), want: ['ps', 'sh'], message: `ps inside the container must list exactly sh and ps (saw: ${procs || 'nothing'}):\n${show(r)}` },
    shellPid: { fact: rows.find((p) => p.comm === 'sh')?.pid, want: 1, message: `the container's shell must be PID 1 (saw: ${procs}):\n${show(r)}` },
    self: { fact: r.kv.self, want: '1', message: `$$ in the container's shell:\n${show(r)}` },
    pidNs: { fact: inode(r.kv.pidns), other: host.pid, message: `PID 1's pid namespace inside (${r.kv.pidns}) must differ from the host's (pid:[${host.pid}]):\n${show(r)}` },
  };
}

/**
 * Seen from the host: a process named sh has the rootfs as its root (`found`), its NSpid has a second level
 * (`levels` ≥ `atLeast`), and it is PID 1 of a pid namespace and in a mount namespace that are not the host's.
 */
export function fromHost(v: HostView, host: Pick<Host, 'pid' | 'mnt'>) {
  const evidence = `processes whose /proc/<pid>/root is ${v.root}:\n${v.procs.map((p) => `  pid ${p.pid} ${p.comm}: NSpid ${p.nspid.join(' ')}, pid:[${p.pidNs}] mnt:[${p.mntNs}]`).join('\n') || '  none'}\n` +
    `the host's: pid:[${host.pid}] mnt:[${host.mnt}]\n${show(v.run)}`;
  const shell: ContainerProcess | undefined = v.procs.find((p) => p.comm === 'sh');
  return {
    found: { fact: shell, message: `the container's shell must run with the rootfs as its root (chroot). ${evidence}` },
    levels: { fact: shell?.nspid.length ?? 0, atLeast: 2, message: `the shell must be in a PID namespace of its own (NSpid in /proc/<pid>/status has a second level). ${evidence}` },
    namespaces: {
      facts: { innermostPid: shell?.nspid.at(-1), newPidNs: shell?.pidNs !== host.pid, newMntNs: shell?.mntNs !== host.mnt },
      want: { innermostPid: 1, newPidNs: true, newMntNs: true },
      message: evidence,
    },
  };
}

/** The seed's flags share the outer UTS namespace: the name set inside is the outer one's afterwards; the real host keeps its own. */
export function sharedUts(h: HostnameRun, realHostname: string) {
  const r = h.run;
  return {
    inner: { fact: r.kv.inner_hostname, want: h.name, message: `inside, hostname must print the new name:\n${show(r)}` },
    uts: { fact: inode(r.kv.inner_uts), want: r.outerUts, message: `without --uts the container shares the outer UTS namespace:\n${show(r)}` },
    outer: { fact: r.outerAfter, want: h.name, message: `after the container exits the outer name is the one set inside (${r.outerName} before):\n${show(r)}` },
    realHost: { fact: h.realHostnameAfter, want: realHostname, message: 'the real host kept its name (the change stayed in the lab\'s outer UTS namespace)' },
  };
}

/** --uts: the name set inside stays inside (`other`: the outer namespace the fact must not be). */
export function ownUts(h: HostnameRun) {
  const r = h.run;
  return {
    inner: { fact: r.kv.inner_hostname, want: h.name, message: `inside, hostname must print the new name:\n${show(r)}` },
    uts: { fact: inode(r.kv.inner_uts), other: r.outerUts, message: `with --uts the container has its own UTS namespace (outer uts:[${r.outerUts}]):\n${show(r)}` },
    outer: { fact: r.outerAfter, want: r.outerName, message: `outside, the name must still be ${r.outerName}:\n${show(r)}` },
  };
}

/** Interface names in /proc/net/dev text. */
export function netDevInterfaces(text: string): string[] {
  return text.split('\n').map((l) => l.match(/^\s*([\w.@-]+):\s+\d/)?.[1]).filter((x): x is string => Boolean(x));
}

/** --net: only lo, in a net namespace that is not the host's. */
export function ownNet(r: ContainerRun, host: Pick<Host, 'net'>) {
  return {
    ifaces: { facts: netDevInterfaces(r.stdout), want: ['lo'], message: `/proc/net/dev inside the container:\n${show(r)}` },
    netNs: { fact: inode(r.kv.netns), other: host.net, message: `the container's net namespace (${r.kv.netns}) must differ from the host's (net:[${host.net}])` },
  };
}

/** Why the user-namespace test cannot run here. */
export function usernsDisabled(stderr: string): string {
  return `unprivileged user namespaces are disabled here (${stderr.trim()}). Fix: sudo sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`;
}

/** --user --map-root-user as `nobody`: root inside, mapped to `nobody` (uid_map), and a file made inside is `nobody`'s on the host. */
export function mappedRoot(u: UsersRun, nobody: number) {
  const r = u.run;
  return {
    uid: { fact: r.kv.uid, want: '0', message: `id -u inside the container:\n${show(r)}` },
    uidMap: { facts: r.kv.uid_map?.trim().split(/\s+/), want: ['0', String(nobody), '1'], message: `/proc/self/uid_map inside (inside-uid outside-uid count):\n${show(r)}` },
    owner: { fact: u.owner, want: nobody, message: `a file "root" created inside (/scratch/${u.file}) is owned on the host by:\n${show(r)}` },
  };
}

/** The real host afterwards: the same hostname, and no mount naming the rootfs. */
export function hostUntouched(after: { readonly hostname: string; readonly leaked: readonly string[] }, realHostname: string) {
  return {
    hostname: { fact: after.hostname, want: realHostname, message: undefined },
    mounts: { facts: after.leaked, want: [] as string[], message: 'the container\'s /proc must have been mounted in its own mount namespace only' },
  };
}
