/**
 * Containment of a lab's program (#29, helpers/harness/contain.ts): each
 * route a graded program used to read outside its workspace, change the
 * course or leave its sandbox, tried by a program under a lab's `contain`,
 * fails; the same program outside containment gets through (the test has
 * teeth); the harness's own tools in the command keep their capabilities.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { containArgv, hiddenDirs, keptDirs, parseContainment, programIndex, setContainment, type Containment } from '../../helpers/harness/contain.js';
import { run } from '../../helpers/harness/exec.js';
import { REPO_ROOT, STATE_DIR } from '../../helpers/harness/paths.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { sandboxEnabled } from '../../helpers/harness/sandbox.js';

const NONE: Containment = { capabilities: [], devices: [], from: 'test' };
const root = process.getuid?.() === 0;

/** A student "program": a shell script in a temp dir (an executable outside the system's directories). */
async function program(body: string): Promise<string> {
  const dir = await makeTempDir('contain');
  const p = join(dir, 'prog.sh');
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** Run `body` as a contained program (or not): exit code and output. */
async function attempt(body: string, c: Containment | null = NONE) {
  setContainment(c ?? undefined);
  try {
    const r = await run(await program(body), [], { reject: false, timeoutMs: 15_000 });
    return { code: r.exitCode, out: r.stdout + r.stderr };
  } finally { setContainment(undefined); }
}

afterEach(() => setContainment(undefined));

describe('lab.json "contain"', () => {
  it('is checked: capability names of capabilities(7), devices kvm and tun', () => {
    expect(parseContainment({}, 'x')).toBeUndefined();
    expect(parseContainment({ contain: { capabilities: ['bpf', 'perfmon'], devices: ['kvm'] } }, 'x')).toMatchObject({ capabilities: ['bpf', 'perfmon'], devices: ['kvm'] });
    expect(() => parseContainment({ contain: { capabilities: ['CAP_BPF'] } }, 'lab.json')).toThrow(/lab.json: "contain" "capabilities" must list/);
    expect(() => parseContainment({ contain: { devices: ['sda'] } }, 'lab.json')).toThrow(/"devices" may list kvm, tun/);
  });

  it("finds the student's program in a command line: the first executable outside the system's directories", async () => {
    const p = await program('true');
    expect(programIndex(['strace', '-f', '-o', '/tmp/nonexistent', '/usr/bin/setarch', 'x86_64', p, '/etc/passwd'])).toBe(6);
    expect(programIndex(['ip', 'link'])).toBe(-1);
    expect(containArgv('ip', ['link'], NONE)).toBeUndefined();
    const argv = containArgv('/usr/bin/strace', ['-f', p], NONE)!;
    const cmd = argv.args.slice(argv.args.lastIndexOf('--') + 1);
    expect(cmd[0]).toBe('/usr/bin/strace');
    expect(cmd.slice(2, 6).join(' ')).toMatch(/setpriv --inh-caps=-all --bounding-set=-all --no-new-privs$/);
    expect(cmd.at(-1)).toBe(p);
    expect(() => containArgv('sh', ['-c', 'exec "$0" < "$1"', p, '/tmp/fifo'], NONE), 'setpriv would become $0 of the script').toThrow(/cannot drop the capabilities of a program passed to `sh -c`/);
  });

  it('hides /root, /home, the run state and the directory of the repository, keeps the repository', () => {
    const hidden = hiddenDirs('/home/ann/kernel-labs', STATE_DIR);
    expect(hidden).toContain('/home');
    expect(hidden).not.toContain('/home/ann'); // under /home already
    expect(hiddenDirs('/tmp/ci-clone', STATE_DIR)).not.toContain('/tmp');
    expect(keptDirs()).toContain(REPO_ROOT);
  });
});

describe.runIf(root && sandboxEnabled())('a contained program (uid 0, no capabilities, own mount namespace)', () => {
  it('cannot read /root, /etc/shadow, other checkouts or the run state', async () => {
    const secret = join('/root', `.kl-contain-secret-${process.pid}`);
    writeFileSync(secret, 'the secret\n', { mode: 0o600 });
    try {
      const body = `cat ${secret}; ls /root | grep -c kl-contain-secret; wc -c < /etc/shadow; ls ${STATE_DIR} | wc -l`;
      const free = await attempt(body, null);
      expect(free.out, 'uncontained, the same program reads it all (the test has teeth)').toContain('the secret');
      const c = await attempt(body);
      expect(c.out).not.toContain('the secret');
      expect(c.out.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number), c.out).toEqual([0, 0, 0]);
    } finally { rmSync(secret, { force: true }); }
  });

  it('reads the course but cannot change it: the specs, helpers and reports are read-only', async () => {
    const spec = join(REPO_ROOT, 'labs/00-environment/environment.spec.ts');
    const before = readFileSync(spec);
    const c = await attempt(`head -c 10 ${spec} >/dev/null && echo read-ok; echo x >> ${spec} || echo refused; mkdir ${REPO_ROOT}/reports/kl-x || echo refused`);
    expect(c.out).toContain('read-ok');
    expect(c.out.match(/refused/g)?.length, c.out).toBe(2);
    expect(c.out).toMatch(/Read-only file system/);
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
    const c = await attempt('grep -E "^(CapEff|CapBnd|NoNewPrivs|Uid)" /proc/self/status', { capabilities: ['net_admin'], devices: [], from: 'test' });
    expect(c.out).toMatch(/Uid:\s+0\s/);
    expect(c.out).toMatch(/CapEff:\s+0000000000001000/);
    expect(c.out).toMatch(/CapBnd:\s+0000000000001000/);
    expect(c.out).toMatch(/NoNewPrivs:\s+1/);
  });

  it("leaves the harness's tools in the command their capabilities (unshare --pid around the program)", async () => {
    const p = await program('echo pid=$$');
    setContainment(NONE);
    const r = await run('unshare', ['--pid', '--fork', p], { timeoutMs: 15_000 });
    expect(r.stdout.trim()).toBe('pid=1');
  });

  it('writes its temp dirs under /tmp, and the mounts it was given vanish with it', async () => {
    const dir = await makeTempDir('contain-out');
    mkdirSync(join(dir, 'sub'));
    const c = await attempt(`echo out > ${dir}/sub/file && echo wrote`);
    expect(c.out).toContain('wrote');
    expect(readFileSync(join(dir, 'sub/file'), 'utf8')).toBe('out\n');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/kl-hidden/);
  });
});
