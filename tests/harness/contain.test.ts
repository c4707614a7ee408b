/**
 * Containment of a lab's program (#29, helpers/harness/contain.ts): each
 * route a graded program used to read outside its workspace, change the
 * course or leave its sandbox, tried by a program under a lab's `contain`,
 * fails; the same program outside containment gets through (the test has
 * teeth); the harness's own tools in the command keep their capabilities.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { activeContainment, containArgv, hiddenDirs, holdsCapability, holderArgs, holderEnv, UNSHARE, isStudentSource, keptDirs, markStudentProgram, parseContainment, programIndex, programUid, setLabSources, showMount, studentInputCopy, type Active, type Containment } from '../../helpers/harness/contain.js';
import { startContainment, stopContainment } from '../../helpers/harness/contain-holder.js';
import { keysLeft } from '../../helpers/harness/keyrings.js';
import { readMountinfo } from '../../helpers/harness/mountinfo.js';
import { run } from '../../helpers/harness/exec.js';
import { REPO_ROOT, sourceRoot, STATE_DIR } from '../../helpers/harness/paths.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { sandboxEnabled } from '../../helpers/harness/sandbox.js';

const NONE: Containment = { capabilities: [], devices: [], network: 'private', from: 'test' };
const root = process.getuid?.() === 0;

/** A student "program": a shell script in a temp dir, recorded as a build of the student's sources. */
async function program(body: string, mark = true): Promise<string> {
  const dir = await makeTempDir('contain');
  const p = join(dir, 'prog.sh');
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  if (mark) markStudentProgram(p);
  return p;
}

/** Run `body` as a contained program (or not): exit code and output. */
async function attempt(body: string, c: Containment | null = NONE) {
  await startContainment(c ?? undefined);
  try {
    const r = await run(await program(body), [], { reject: false, timeoutMs: 15_000 });
    return { code: r.exitCode, out: r.stdout + r.stderr };
  } finally { await stopContainment(); }
}

afterEach(() => stopContainment());
const HELD: Active = { ...NONE, holder: 4242 };

describe('lab.json "contain"', () => {
  it('is checked: capability names of capabilities(7), devices kvm and tun', () => {
    expect(parseContainment({}, 'x')).toBeUndefined();
    expect(parseContainment({ contain: { capabilities: ['bpf', 'perfmon'], devices: ['kvm'] } }, 'x')).toMatchObject({ capabilities: ['bpf', 'perfmon'], devices: ['kvm'] });
    expect(() => parseContainment({ contain: { capabilities: ['CAP_BPF'] } }, 'lab.json')).toThrow(/lab.json: "contain" "capabilities" must list/);
    expect(() => parseContainment({ contain: { devices: ['sda'] } }, 'lab.json')).toThrow(/"devices" may list kvm, tun/);
    expect(parseContainment({ contain: {} }, 'x')?.network).toBe('private');
    expect(parseContainment({ contain: { network: 'lab' } }, 'x')?.network).toBe('lab');
    expect(() => parseContainment({ contain: { network: 'host' } }, 'lab.json')).toThrow(/"network" is "private" \(the default\) or "lab"/);
    expect(() => parseContainment({ contain: { capabilites: [] } }, 'lab.json')).toThrow(/not "capabilites"/);
  });

  it("finds the student's program in a command line: a build of the student's sources, not the harness's own programs", async () => {
    const p = await program('true');
    expect(programIndex(['strace', '-f', '-o', '/tmp/nonexistent', '/usr/bin/setarch', 'x86_64', p, '/etc/passwd'])).toBe(6);
    expect(programIndex(['ip', 'link'])).toBe(-1);
    const workload = await program('true', false);
    expect(programIndex(['strace', '-c', '-f', workload]), "a workload of the harness is not the student's").toBe(-1);
    setLabSources(['process/05-strace/mytrace.c']);
    try {
      expect(isStudentSource(join(sourceRoot(), 'process/05-strace/mytrace.c')), "the lab's source").toBe(true);
      expect(isStudentSource(join(sourceRoot(), 'process/05-strace/workload.c')), 'the harness workload beside it').toBe(false);
    } finally { setLabSources([]); }
    expect(containArgv('ip', ['link'], HELD)).toBeUndefined();
    const argv = containArgv('/usr/bin/strace', ['-f', p], HELD, '/work')!;
    expect(argv.file).toBe('/usr/bin/strace');
    expect(argv.args.join(' ')).toMatch(/^-f \S*nsenter --mount=\/proc\/4242\/ns\/mnt --ipc=\/proc\/4242\/ns\/ipc --net=\/proc\/4242\/ns\/net \S*env -C \/work \S*setpriv --reuid=(\d+) --regid=\1 --clear-groups --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs \S+prog\.sh$/);
    const direct = containArgv(p, ['a'], HELD, '/work')!;
    expect(direct.file).toMatch(/nsenter$/);
    expect(direct.args.slice(-2)).toEqual([p, 'a']);
    const inLabNetns = containArgv('ip', ['netns', 'exec', 'kl-x', p], { ...HELD, network: 'lab' }, '/work')!;
    expect(inLabNetns.args.join(' '), 'a lab that runs its program in its own netns keeps it there').not.toMatch(/--net=/);
    // handed to sh -c as $0: entered where the script execs it, $0 and $1 unchanged
    const sh = containArgv('sh', ['-c', 'echo hi; exec "$0" < "$1"', p, '/tmp/fifo'], HELD)!;
    expect(sh.args[1]).toMatch(/^echo hi; exec '\S*nsenter' '--mount=\/proc\/4242\/ns\/mnt' '--ipc=\/proc\/4242\/ns\/ipc' '--net=\/proc\/4242\/ns\/net' '\S*env' '-C' "\$PWD" '\S*setpriv' .*'--no-new-privs' "\$0" < "\$1"$/);
    expect(sh.args.slice(2)).toEqual([p, '/tmp/fifo']);
    expect(() => containArgv('sh', ['-c', '"$0" &', p], HELD), 'a script that does not exec $0').toThrow(/unless the script runs it as `exec "\$0"`/);
  });

  it('contains a tool the lab names in "interpreters" where it is handed a student source (2.1: fio and the job file), not with its own job', () => {
    expect(parseContainment({ contain: { interpreters: ['fio'] } }, 'x')?.interpreters).toEqual(['fio']);
    expect(() => parseContainment({ contain: { interpreters: ['/usr/bin/fio'] } }, 'lab.json')).toThrow(/"interpreters" must list the names of tools/);
    setLabSources(['io_uring/01-fio/randread.fio']);
    try {
      const job = join(sourceRoot(), 'io_uring/01-fio/randread.fio');
      const fio = ['fio', '--filename=/tmp/f', '--output=/tmp/o.json', job];
      expect(programIndex(fio), 'not named: the job file is not a program').toBe(-1);
      expect(programIndex(fio, ['fio'])).toBe(0);
      expect(programIndex(['strace', '-c', '-f', '-o', '/tmp/s', 'fio', job], ['fio']), 'under the harness\'s strace').toBe(5);
      expect(programIndex(['fio', '--name=control', '--filename=/tmp/f'], ['fio']), "the harness's own job").toBe(-1);
      expect(() => containArgv('fio', fio.slice(1), HELD), 'a lab that does not name fio').toThrow(/name the tool that runs it in "interpreters"/);
      const c = containArgv('fio', fio.slice(1), { ...HELD, interpreters: ['fio'] }, '/work')!;
      expect(c.file).toMatch(/nsenter$/);
      expect(c.args.slice(-4)).toEqual(fio);
      expect(containArgv('fio', ['--name=control', '--filename=/tmp/f'], { ...HELD, interpreters: ['fio'] })).toBeUndefined();
    } finally { setLabSources([]); }
  });

  it('keeps uid 0 ("user": "root") only for bpftrace, and never with --unsafe', () => {
    expect(parseContainment({ contain: { interpreters: ['bpftrace'], user: 'root' } }, 'x')?.user).toBe('root');
    expect(parseContainment({ contain: {} }, 'x')?.user).toBe('program');
    expect(() => parseContainment({ contain: { user: 'root' } }, 'lab.json')).toThrow(/"user": "root" is only for interpreters/);
    expect(() => parseContainment({ contain: { interpreters: ['fio'], user: 'root' } }, 'lab.json')).toThrow(/"user": "root" is only for interpreters/);
    expect(() => parseContainment({ contain: { user: 'nobody' } }, 'lab.json')).toThrow(/"user" is "program" \(the default\) or "root"/);
    setLabSources(['ebpf/01-bpftrace/opensnoop.bt']);
    try {
      const bt = join(sourceRoot(), 'ebpf/01-bpftrace/opensnoop.bt');
      const a: Active = { ...HELD, interpreters: ['bpftrace'], user: 'root' };
      const c = containArgv('bpftrace', ['-B', 'line', bt], a, '/work')!;
      expect(c.args).toContain('--reuid=0');
      expect(c.args.find((w) => w.startsWith('--bounding-set='))).toMatch(/^--bounding-set=-all(,\+\w+)*$/);
      expect(c.args).toContain('--no-new-privs');
      expect(containArgv('bpftrace', ['-B', 'line', bt], { ...a, user: 'program' }, '/work')!.args).toContain(`--reuid=${programUid()}`);
      expect(() => containArgv('bpftrace', ['--unsafe', bt], a)).toThrow(/may not be given --unsafe/);
      expect(() => containArgv('bpftrace', [bt, '--unsafe'], a), 'after the script too').toThrow(/may not be given --unsafe/);
      const noSysResource = 'CapPrm:\t000001fffeffffff\n'; // this host's root: every capability but CAP_SYS_RESOURCE (24)
      expect(holdsCapability('sys_resource', noSysResource)).toBe(false);
      expect(holdsCapability('bpf', noSysResource)).toBe(true);
      expect(holdsCapability('checkpoint_restore', 'CapPrm:\t000000ffffffffff\n')).toBe(false);
    } finally { setLabSources([]); }
  });

  it('hides /root, /home, the run state and the directory of the repository, keeps the repository', () => {
    const hidden = hiddenDirs('/home/ann/kernel-labs', STATE_DIR);
    expect(hidden).toContain('/home');
    expect(hidden).not.toContain('/home/ann'); // under /home already
    expect(hiddenDirs('/tmp/ci-clone', STATE_DIR)).not.toContain('/tmp');
    expect(keptDirs()).toContain(REPO_ROOT);
  });
});

describe.runIf(root && sandboxEnabled())("a contained program (the run's own unprivileged uid, no capabilities, own mount namespace)", () => {
  it("cannot read /root, /etc/shadow, other checkouts or the run state, nor reach the host's daemons under /run", async () => {
    const secret = join('/root', `.kl-contain-secret-${process.pid}`);
    writeFileSync(secret, 'the secret\n', { mode: 0o600 });
    try {
      const body = `cat ${secret}; ls /root | grep -c kl-contain-secret; wc -c < /etc/shadow; ls ${STATE_DIR} | wc -l; ls /run | grep -vcE "^(mount|kl-tmp)$"`; // /run/mount: util-linux keeps its utab there; kl-tmp: root's (below)
      const free = await attempt(body, null);
      expect(free.out, 'uncontained, the same program reads it all (the test has teeth)').toContain('the secret');
      const c = await attempt(body);
      expect(c.out).not.toContain('the secret');
      expect(c.out.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number), c.out).toEqual([0, 0, 0, 0]);
    } finally { rmSync(secret, { force: true }); }
  });

  it('reads the course but cannot change it: the specs, helpers and reports are read-only', async () => {
    const spec = join(REPO_ROOT, 'labs/00-environment/environment.spec.ts');
    const before = readFileSync(spec);
    const c = await attempt(`head -c 10 ${spec} >/dev/null && echo read-ok; echo x >> ${spec} || echo refused; mkdir ${REPO_ROOT}/reports/kl-x || echo refused`);
    expect(c.out).toContain('read-ok');
    expect(c.out.match(/refused/g)?.length, c.out).toBe(2);
    expect(c.out).toMatch(/Read-only file system|Permission denied/); // not root's files, and on a read-only mount
    expect(readFileSync(spec)).toEqual(before);
    expect(existsSync(join(REPO_ROOT, 'reports/kl-x'))).toBe(false);
  });

  it('cannot leave its sandbox cgroup, change a sysctl, write /etc or open a disk', async () => {
    const procs = ['/sys/fs/cgroup/cgroup.procs', '/sys/fs/cgroup/memory/cgroup.procs', '/sys/fs/cgroup/pids/cgroup.procs'].filter(existsSync);
    const disk = ['/dev/vda', '/dev/sda', '/dev/nvme0n1'].find(existsSync);
    const body = [
      ...procs.map((p) => `(echo $$ > ${p}) 2>/dev/null && echo ESCAPED ${p}`),
      '(echo 1 > /proc/sys/kernel/kptr_restrict) 2>/dev/null && echo ESCAPED sysctl',
      '(echo x > /etc/kl-contain-test) 2>/dev/null && echo ESCAPED etc',
      disk ? `(exec 5>>${disk}) 2>/dev/null && echo ESCAPED disk` : 'true',
      'umount -l /root 2>/dev/null && echo ESCAPED umount',
      'cat /proc/1/root/etc/hostname >/dev/null 2>&1 && echo ESCAPED proc1root',
      'echo done',
    ].join('\n');
    const c = await attempt(body);
    expect(c.out).toContain('done');
    expect(c.out.match(/ESCAPED.*/g) ?? [], c.out).toEqual([]);
    expect(existsSync('/etc/kl-contain-test')).toBe(false);
    expect(readFileSync('/proc/self/status', 'utf8')).toMatch(/CapEff:\s+0*[1-9a-f]/); // this process lost nothing
  });

  it('keeps only the capabilities its lab names, and no_new_privs', async () => {
    const c = await attempt('grep -E "^(CapEff|CapBnd|NoNewPrivs|Uid)" /proc/self/status', { capabilities: ['net_admin'], devices: [], network: 'private', from: 'test' });
    expect(c.out).toMatch(new RegExp(`Uid:\\s+${programUid()}\\s`));
    expect(programUid()).toBeGreaterThanOrEqual(0x7f00_0000);
    expect(programUid()).toBeLessThan(0x7f01_0000);
    expect(c.out).toMatch(/CapEff:\s+0000000000001000/);
    expect(c.out).toMatch(/CapBnd:\s+0000000000001000/);
    expect(c.out).toMatch(/NoNewPrivs:\s+1/);
  });

  it("leaves the harness's tools in the command their capabilities (unshare --pid around the program, a shell that execs it as $0)", async () => {
    await startContainment(NONE);
    const p = await program('echo pid=$$ arg=$1; grep ^CapEff /proc/self/status');
    const r = await run('unshare', ['--pid', '--fork', p], { timeoutMs: 15_000 });
    expect(r.stdout).toMatch(/^pid=1 arg=\n/);
    const sh = await run('sh', ['-c', 'grep ^CapEff /proc/self/status; exec "$0" "$1"', p, 'one'], { timeoutMs: 15_000 });
    expect(sh.stdout).toMatch(/^CapEff:\s+0*[1-9a-f]\S*\npid=\d+ arg=one\nCapEff:\s+0+\n$/);
  });

  it("has a /tmp of its own: not what others leave in the host's, and what it leaves there is gone with the lab; the lab's temp dirs are at their paths; it and /dev/shm are bounded", async () => {
    const other = join(tmpdir(), `klc-other-${process.pid}`);
    const left = join(tmpdir(), `klc-left-${process.pid}`);
    writeFileSync(other, 'another user\'s file\n', { mode: 0o644 });
    try {
      const body = (dir: string) => [
        `cat ${other}`, 'ls /run/kl-tmp >/dev/null 2>&1 && echo ESCAPED host tmp', `echo left > ${left}`,
        `echo out > ${dir}/made && echo wrote`, `ls -A ${tmpdir()} | sed "s/^/entry /"`,
        'df -Pk /tmp /dev/shm | awk \'NR > 1 { print "size " $6 " " $2 }\'',
      ].join('\n');
      const free = await attempt(body(await makeTempDir('contain-ctl')), null);
      expect(free.out, 'uncontained, the same program reads it (the test has teeth)').toContain('another user');
      rmSync(left, { force: true });
      await startContainment(NONE);
      try {
        const dir = await makeTempDir('contain-tmp'); // made after the namespace: bound in
        const prog = await program(body(dir));
        const r = await run(prog, [], { reject: false, timeoutMs: 15_000 });
        const out = r.stdout + r.stderr;
        expect(out).not.toContain('another user');
        expect(out).not.toContain('ESCAPED');
        expect(out, 'writes the temp dir made for it').toContain('wrote');
        expect(readFileSync(join(dir, 'made'), 'utf8')).toBe('out\n');
        // its temp dir ($TMPDIR or /tmp): the two temp dirs of this test (its program's and `dir`), the file it left, and
        // the course where it lies there (a clone in /tmp: kept dirs are mounted back at their paths); nothing of the host's
        const tmp = realpathSync(tmpdir());
        const kept = keptDirs().filter((d) => dirname(d) === tmp).map((d) => basename(d));
        const entries = [...out.matchAll(/^entry (.+)$/gm)].map((m) => m[1]!).filter((e) => !kept.includes(e)).sort();
        expect(entries, out).toEqual([basename(dir), basename(dirname(prog)), basename(left)].sort());
        expect([...out.matchAll(/^size (\S+) (\d+)$/gm)].map((m) => `${m[1]} ${m[2]}`), 'bounded tmpfs (256 MiB): the namespace\'s /tmp and /dev/shm').toEqual(['/tmp 262144', '/dev/shm 262144']);
      } finally { await stopContainment(); }
      expect(existsSync(left), `${left}: what the program left in its /tmp is not on the host`).toBe(false);
    } finally { rmSync(other, { force: true }); rmSync(left, { force: true }); }
  });

  it.runIf(['x64', 'arm64'].includes(process.arch))("leaves no key behind in its uid's keyrings, which the kernel keeps past its namespace", async () => {
    const nr = process.arch === 'x64' ? 248 : 217; // add_key(2)
    await startContainment(NONE);
    try {
      const p = await program(`perl -e 'my ($t, $d, $p) = ("user", "kl-left", "x"); print syscall(${nr}, $t, $d, $p, 1, -4) > 0 ? "added\\n" : "add_key: $!\\n"'`);
      const r = await run(p, [], { reject: false, timeoutMs: 15_000 });
      expect(r.stdout + r.stderr).toContain('added');
      expect(keysLeft(programUid()), 'while the lab runs, its key is there (the test has teeth)').toBe(1);
    } finally { await stopContainment(); }
    expect(keysLeft(programUid()), 'unlinked when the lab ends').toBe(0);
  });

  it("runs a tool named in \"interpreters\" on the student's file contained, from a copy it can read (a 0700 workspace); a link is refused", async () => {
    const ws = mkdtempSync(join(tmpdir(), 'kl-contain-ws-')); // 0700, as a teeth workspace
    const saved = process.env.LAB_SRC;
    process.env.LAB_SRC = ws;
    setLabSources(['x/job.sh', 'x/link.sh']);
    try {
      mkdirSync(join(ws, 'x'));
      const escaped = join(REPO_ROOT, `kl-input-escaped-${process.pid}`);
      writeFileSync(join(ws, 'x/job.sh'), `id -u\ntouch ${escaped} 2>/dev/null || echo refused\n`, { mode: 0o600 });
      symlinkSync('/etc/shadow', join(ws, 'x/link.sh'));
      await startContainment({ ...NONE, interpreters: ['sh'] });
      const dir = await makeTempDir('contain-input');
      const job = await studentInputCopy(join(ws, 'x/job.sh'), dir);
      expect(job.startsWith(dir), job).toBe(true);
      const r = await run('sh', [job], { reject: false, timeoutMs: 15_000 });
      expect(r.stdout, r.stderr).toBe(`${programUid()}\nrefused\n`);
      expect(existsSync(escaped)).toBe(false);
      await expect(studentInputCopy(join(ws, 'x/link.sh'), dir)).rejects.toThrow(/leads elsewhere \(\/etc\/shadow\)/);
    } finally {
      await stopContainment();
      if (saved === undefined) delete process.env.LAB_SRC; else process.env.LAB_SRC = saved;
      setLabSources([]);
      rmSync(ws, { recursive: true, force: true });
    }
  });

  it.runIf(existsSync('/usr/bin/bpftrace') || existsSync('/usr/sbin/bpftrace'))("runs a student's bpftrace script as uid 0 with only the lab's capabilities, in the lab's namespace: /root is out of its reach, system() is refused", async () => {
    const secret = join('/root', `.kl-contain-bt-${process.pid}`);
    writeFileSync(secret, 'the bt secret\n', { mode: 0o600 });
    const ws = mkdtempSync(join(tmpdir(), 'kl-contain-ws-'));
    const saved = process.env.LAB_SRC;
    process.env.LAB_SRC = ws;
    setLabSources(['x/read.bt', 'x/unsafe.bt']);
    const c: Containment = { ...NONE, capabilities: ['bpf', 'perfmon'], interpreters: ['bpftrace'], user: 'root' };
    try {
      mkdirSync(join(ws, 'x'));
      writeFileSync(join(ws, 'x/read.bt'), `BEGIN { cat("${secret}"); printf("done\\n"); exit(); }\n`);
      writeFileSync(join(ws, 'x/unsafe.bt'), `BEGIN { system("touch ${secret}-2"); exit(); }\n`);
      const free = await run('bpftrace', [join(ws, 'x/read.bt')], { reject: false, timeoutMs: 60_000 });
      expect(free.stdout, 'uncontained, bpftrace reads it (the test has teeth)').toContain('the bt secret');
      await startContainment(c);
      const dir = await makeTempDir('contain-bt');
      const r = await run('bpftrace', [await studentInputCopy(join(ws, 'x/read.bt'), dir)], { reject: false, timeoutMs: 60_000 });
      expect(r.stdout, r.stderr).toContain('done');
      expect(r.stdout + r.stderr).not.toContain('the bt secret');
      const u = await run('bpftrace', [await studentInputCopy(join(ws, 'x/unsafe.bt'), dir)], { reject: false, timeoutMs: 60_000 });
      expect(u.exitCode).not.toBe(0);
      expect(u.stderr).toMatch(/unsafe/);
      expect(existsSync(`${secret}-2`)).toBe(false);
    } finally {
      await stopContainment();
      if (saved === undefined) delete process.env.LAB_SRC; else process.env.LAB_SRC = saved;
      setLabSources([]);
      rmSync(ws, { recursive: true, force: true });
      rmSync(secret, { force: true });
      rmSync(`${secret}-2`, { force: true });
    }
  });

  it("writes the temp dirs made for it, but not the harness's files in them, and the mounts it was given vanish with it", async () => {
    await startContainment(NONE);
    try {
      const dir = await makeTempDir('contain-out');
      writeFileSync(join(dir, 'input'), 'the harness\n');
      const p = await program([
        `echo out > ${dir}/file && echo wrote`,
        `cat ${dir}/input`,
        `(echo x >> ${dir}/input) 2>/dev/null && echo ESCAPED write`,
        `mv ${dir}/input ${dir}/moved 2>/dev/null && echo ESCAPED rename`,
        `rm -f ${dir}/input 2>/dev/null; [ -e ${dir}/input ] || echo ESCAPED remove`,
      ].join('\n'));
      const r = await run(p, [], { reject: false, timeoutMs: 15_000 });
      expect(r.stdout + r.stderr).toContain('wrote');
      expect(r.stdout).toContain('the harness');
      expect(r.stdout.match(/ESCAPED.*/g) ?? [], r.stdout + r.stderr).toEqual([]);
      expect(readFileSync(join(dir, 'file'), 'utf8')).toBe('out\n');
      expect(readFileSync(join(dir, 'input'), 'utf8')).toBe('the harness\n');
    } finally { await stopContainment(); }
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/kl-hidden/);
  });

  it('sees a mount the harness made after its namespace at the same path once shown (showMount: 8.3\'s loop image), cannot unmount or remount it, and loses it at the release', async () => {
    expect(await showMount('/nonexistent'), 'uncontained: nothing to show').toBeTypeOf('function');
    await startContainment(NONE);
    const dir = await makeTempDir('contain-mnt');
    const mnt = join(dir, 'm');
    mkdirSync(mnt);
    try {
      await expect(showMount(mnt), 'not a mount point').rejects.toThrow(/nothing is mounted there on the host/);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'kl-show-test', mnt], { timeoutMs: 15_000 });
      writeFileSync(join(mnt, 'host'), 'made on the host\n');
      const body = [
        `cat ${mnt}/host 2>/dev/null || echo unseen`,
        `echo prog > ${mnt}/made && echo wrote`,
        `exec 3<${mnt}/host && readlink /proc/$$/fd/3 | sed 's/^/link /'`,
        `umount -l ${mnt} 2>/dev/null && echo ESCAPED umount`,
        `mount -o remount,bind,ro ${mnt} 2>/dev/null && echo ESCAPED remount`,
      ].join('\n');
      const shared = readMountinfo().filter((m) => dir.startsWith(m.mountPoint === '/' ? '/' : `${m.mountPoint}/`))
        .sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0]?.optionalFields.some((f) => f.startsWith('shared:'));
      const before = await run(await program(body), [], { reject: false, timeoutMs: 15_000 });
      if (!shared) expect(before.stdout, 'a mount made after the namespace does not reach it where the host\'s mount is private (the test has teeth)').toMatch(/^unseen$/m);
      const unshow = await showMount(mnt);
      const inNs = () => readMountinfo(activeContainment()!.holder).find((m) => m.mountPoint === mnt);
      expect(inNs()?.options, 'at its path in the namespace, nosuid and nodev').toMatch(/^rw,nosuid,nodev\b/);
      const r = await run(await program(body), [], { reject: false, timeoutMs: 15_000 });
      const out = r.stdout + r.stderr;
      expect(out).toContain('made on the host');
      expect(out, 'writes into it, as its own uid').toContain('wrote');
      expect(readFileSync(join(mnt, 'made'), 'utf8'), 'the host sees what it wrote: one file system').toBe('prog\n');
      expect(out, 'its descriptors read the same path from both sides').toContain(`link ${mnt}/host`);
      expect(out.match(/ESCAPED.*/g) ?? [], out).toEqual([]);
      await unshow();
      expect(inNs(), 'the namespace\'s copy is unmounted at the release').toBeUndefined();
      await unshow(); // idempotent
    } finally {
      await stopContainment();
      await run('umount', [mnt], { reject: false, timeoutMs: 15_000 });
    }
  });

  it('makes its namespace where the host has a mount under /proc/sys (binfmt_misc, which systemd mounts), with or without a proc of its own', async () => {
    const args = [...holderArgs(NONE).slice(0, -2), 'true'];
    for (const hidepid of ['1', '0']) {
      const r = await run('unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c',
        'mount -t binfmt_misc kl-binfmt /proc/sys/fs/binfmt_misc || exit 99; exec "$@"', 'sh', UNSHARE!, ...args],
      { reject: false, env: { ...holderEnv(), KL_HIDEPID: hidepid }, timeoutMs: 15_000 });
      expect(r.exitCode, `KL_HIDEPID=${hidepid}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('kl-contain-ready');
    }
  });

  it.runIf(existsSync('/dev/mqueue'))("makes its POSIX message queues in its own IPC namespace, also through /dev/mqueue (systemd mounts the host's there)", async () => {
    const name = `kl-contain-mq-${process.pid}`;
    try {
      const c = await attempt(`: > /dev/mqueue/${name} && echo made; grep -c . /dev/mqueue/${name} >/dev/null && echo seen`);
      expect(c.out).toContain('made');
      expect(existsSync(`/dev/mqueue/${name}`), "the queue is not the host's").toBe(false);
    } finally { rmSync(`/dev/mqueue/${name}`, { force: true }); }
  });

  it("sees neither the host's network (a root server on 127.0.0.1), its processes' command lines, nor its IPC objects; what it makes there vanishes with the lab", async () => {
    const server = createServer((sock) => { sock.end('SECRET\n'); });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as AddressInfo).port;
    const hostShm = (await run('ipcmk', ['-M', '4096'], { timeoutMs: 5_000 })).stdout.match(/(\d+)\s*$/)?.[1];
    const made: string[] = [];
    try {
      const body = [
        `timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}; cat <&3' 2>/dev/null | grep -q SECRET && echo ESCAPED network`,
        `tr '\\0' ' ' < /proc/${process.pid}/cmdline 2>/dev/null | grep -q . && echo ESCAPED cmdline`,
        `ipcs -m 2>/dev/null | awk '{print $2}' | grep -qx '${hostShm}' && echo ESCAPED ipc`,
        `[ "$(readlink /proc/self/ns/net)" = "${readlinkSync('/proc/self/ns/net')}" ] && echo ESCAPED netns`,
        'ipcmk -M 8192 | sed "s/^/MADE /"',
        'ls /proc | grep -c "^[0-9]" | sed "s/^/PIDS /"',
        'echo done',
      ].join('\n');
      const free = await attempt(body, null);
      made.push(...(free.out.match(/MADE .*?(\d+)\s*$/m)?.slice(1) ?? []));
      expect(free.out, 'uncontained, the same program gets through (the test has teeth)').toMatch(/ESCAPED network[^]*ESCAPED cmdline[^]*ESCAPED ipc/);
      const c = await attempt(body);
      expect(c.out).toContain('done');
      expect(c.out.match(/ESCAPED.*/g) ?? [], c.out).toEqual([]);
      expect(Number(c.out.match(/PIDS (\d+)/)?.[1]), `it sees only its own processes in /proc: ${c.out}`).toBeLessThan(10);
      const inside = c.out.match(/MADE .*?(\d+)\s*$/m)?.[1];
      expect(inside, c.out).toBeDefined();
      const hostIds = (await run('ipcs', ['-m'], { timeoutMs: 5_000 })).stdout.split('\n').map((l) => l.split(/\s+/)[1]);
      expect(hostIds, 'the segment it made is not the host\'s').not.toContain(inside);
    } finally {
      server.close();
      for (const id of [hostShm, ...made]) if (id) await run('ipcrm', ['-m', id], { reject: false, timeoutMs: 5_000 });
    }
  });

  it("cannot signal the run's processes, read their environment, or write root's files and directories under /tmp", async () => {
    const rootDir = join('/tmp', `kl-contain-root-${process.pid}`);
    mkdirSync(rootDir, { recursive: true });
    writeFileSync(join(rootDir, 'file'), 'root\n');
    try {
      const body = [
        `kill -0 ${process.pid} 2>/dev/null && echo ESCAPED kill`,
        `cat /proc/${process.pid}/environ >/dev/null 2>&1 && echo ESCAPED environ`,
        `(echo 1000 > /proc/${process.pid}/oom_score_adj) 2>/dev/null && echo ESCAPED oom`,
        `(echo x >> ${rootDir}/file) 2>/dev/null && echo ESCAPED file`,
        `touch ${rootDir}/new 2>/dev/null && echo ESCAPED dir`,
        'echo done',
      ].join('\n');
      const free = await attempt(body, null);
      expect(free.out, 'uncontained, the same program gets through (the test has teeth)').toMatch(/ESCAPED kill/);
      writeFileSync(join(rootDir, 'file'), 'root\n');
      const c = await attempt(body);
      expect(c.out).toContain('done');
      expect(c.out.match(/ESCAPED.*/g) ?? [], c.out).toEqual([]);
      expect(readFileSync(join(rootDir, 'file'), 'utf8')).toBe('root\n');
    } finally { rmSync(rootDir, { recursive: true, force: true }); }
  });
});
