/**
 * The sandbox around every program the harness starts: wrong programs
 * (tests/fixtures/harness/) are contained, named, and leave nothing behind.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../helpers/harness/compile.js';
import { CommandError, CompileError, TimeoutError } from '../../helpers/harness/errors.js';
import { findExecutable, forgetHungPrograms, parseCrashFrame, run, startBackground } from '../../helpers/harness/exec.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { reapRunReport } from '../../helpers/harness/reaper.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { makeSandbox, sandboxBackend, sandboxEnabled } from '../../helpers/harness/sandbox.js';
import { parseCgroupMounts, cgroupV1Controllers } from '../../helpers/harness/capabilities.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'harness');
const build = (name: string) => buildProgram({ src: join(FIX, `${name}.c`) }).then((b) => b.path);

/** Live (non-zombie) processes running `exe`. */
function running(exe: string): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => {
    try { return readlinkSync(`/proc/${n}/exe`) === exe ? [Number(n)] : []; } catch { return []; }
  });
}

const sandboxGone = (name: string | undefined) => Boolean(name) && !['memory', 'pids', 'freezer', ''].some((c) => existsSync(join('/sys/fs/cgroup', c, name!)));

/** This host's /proc/self/mountinfo cgroup lines (recorded). */
const MOUNTINFO_V1 = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
/** Ubuntu 20.04 style merged hierarchies, with an escaped space. */
const MOUNTINFO_MERGED = `30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /my\\040cg/memory rw - cgroup cgroup rw,memory
`;

describe('cgroup mounts from mountinfo', () => {
  it('finds each v1 controller and the cgroup2 mount, ignoring name= hierarchies', () => {
    const mounts = parseCgroupMounts(MOUNTINFO_V1);
    expect(mounts.filter((m) => m.version === 2).map((m) => m.mountPoint)).toEqual(['/sys/fs/cgroup/unified']);
    const v1 = cgroupV1Controllers(MOUNTINFO_V1);
    expect(Object.fromEntries(v1)).toEqual({
      cpu: '/sys/fs/cgroup/cpu', cpuacct: '/sys/fs/cgroup/cpuacct', memory: '/sys/fs/cgroup/memory',
      freezer: '/sys/fs/cgroup/freezer', pids: '/sys/fs/cgroup/pids',
    });
  });

  it('reads merged hierarchies and octal escapes', () => {
    const v1 = cgroupV1Controllers(MOUNTINFO_MERGED);
    expect(v1.get('cpu')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(v1.get('cpuacct')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(v1.get('memory')).toBe('/my cg/memory');
  });
});

describe('crash site', () => {
  it('takes the first frame with a source line from a gdb backtrace', () => {
    const bt = 'Program received signal SIGSEGV, Segmentation fault.\n0x00007ffff7e4a in __strlen_avx2 () from /lib/x86_64-linux-gnu/libc.so.6\n#0  0x00007ffff7e4a in __strlen_avx2 () from /lib/x86_64-linux-gnu/libc.so.6\n#1  0x0000555555555151 in count (s=0x0) at /w/c/lab.c:7\n#2  main () at /w/c/lab.c:12\n';
    expect(parseCrashFrame(bt)).toBe('at /w/c/lab.c:7 in count()');
    expect(parseCrashFrame('#0  0x0000 in ?? ()\n')).toBeUndefined();
  });
});

describe('sandbox on a fake v2 tree', () => {
  it('writes memory.max, memory.swap.max and pids.max, and names the limit hit with its figure', async () => {
    const base = await makeTempDir('unit-v2');
    writeFileSync(join(base, 'cgroup.subtree_control'), 'memory pids\n');
    const sb = makeSandbox({ memoryMiB: 64, pids: 32 }, { base, version: 2, pdeathsig: false });
    const dir = join(base, sb.name);
    const { readFileSync } = await import('node:fs');
    expect(sb.dirs).toEqual([dir]);
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(join(dir, 'memory.swap.max'), 'utf8')).toBe('0');
    expect(readFileSync(join(dir, 'pids.max'), 'utf8')).toBe('32');
    expect(sb.limitHit()).toBeUndefined();
    writeFileSync(join(dir, 'pids.events'), 'max 7\n');
    expect(sb.limitHit()).toBe('pids: 32 reached (7 forks refused)');
    writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n');
    writeFileSync(join(dir, 'memory.peak'), String(64 * 1024 * 1024 - 4096));
    expect(sb.limitHit()).toMatch(/^memory: killed at 64 MiB \(limit 64 MiB; 1 process killed by the OOM killer\)$/);
    const w = sb.wrap('/bin/true', ['x']);
    expect(w.file).toBe('/bin/sh');
    expect(w.args.slice(2)).toEqual(['kl-sandbox', join(dir, 'cgroup.procs'), '--', '/bin/true', 'x']);
  });

  it('on a fake v1 tree uses the memory, pids and freezer hierarchies', async () => {
    const base = await makeTempDir('unit-v1');
    for (const [c, f] of [['memory', 'memory.limit_in_bytes'], ['pids', 'pids.max'], ['freezer', 'freezer.state']] as const) {
      mkdirSync(join(base, c));
      writeFileSync(join(base, c, f), '0\n');
    }
    expect(sandboxBackend({ base, version: 1, mountinfo: '' })).toMatchObject({ version: 1, memory: join(base, 'memory'), pids: join(base, 'pids'), freezer: join(base, 'freezer') });
    const sb = makeSandbox({ memoryMiB: 10, pids: 5 }, { base, version: 1, mountinfo: '' });
    expect(sb.dirs).toEqual(['memory', 'pids', 'freezer'].map((c) => join(base, c, sb.name)));
  });
});

describe.runIf(sandboxEnabled())('wrong programs in the sandbox (this host)', () => {
  it('a fork loop is stopped by the pids limit, named, and leaves no process', async () => {
    const exe = await build('fork_bomb');
    const t0 = Date.now();
    const e = (await run(exe, [], { limits: { pids: 64 }, timeoutMs: 30_000 }).catch((x: unknown) => x)) as CommandError & { code: string };
    expect(e).toBeInstanceOf(CommandError);
    expect(e.code).toBe('E_LIMIT');
    expect(e.message).toMatch(/sandbox limit \(pids: 64 reached/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(running(exe)).toEqual([]);
  });

  it('a fork loop whose children call setsid() is stopped the same way, nothing survives', async () => {
    const exe = await build('fork_bomb');
    const e = (await run(exe, ['--setsid'], { limits: { pids: 64 }, timeoutMs: 30_000 }).catch((x: unknown) => x)) as Error;
    expect(e.message).toMatch(/pids: 64 reached/);
    expect(running(exe)).toEqual([]);
  });

  it('a runaway allocation is killed at the memory limit, and the failure says so with the figure', async () => {
    const exe = await build('mem_hog');
    const e = (await run(exe, [], { limits: { memoryMiB: 64 }, timeoutMs: 30_000 }).catch((x: unknown) => x)) as CommandError;
    expect(e).toBeInstanceOf(CommandError);
    expect(e.message).toMatch(/memory: killed at \d+ MiB \(limit 64 MiB/);
    const r = await run(exe, [], { limits: { memoryMiB: 64 }, reject: false });
    expect(r.reason).toBe('limit');
    expect(sandboxGone(r.sandbox)).toBe(true);
  });

  it("a daemon that setsid()s and double-forks is killed when the program's run ends", async () => {
    const exe = await build('setsid_daemon');
    const r = await run(exe);
    const daemon = Number(r.stdout.match(/daemon (\d+)/)?.[1]);
    expect(daemon).toBeGreaterThan(0);
    expect(r.reason).toBe('exited');
    expect(running(exe)).toEqual([]);
    expect(sandboxGone(r.sandbox)).toBe(true);
  });

  it('a crash names the signal', async () => {
    const exe = await build('segv');
    const e = (await run(exe).catch((x: unknown) => x)) as Error;
    expect(e.message).toMatch(/killed by SIGSEGV \(segmentation fault: an invalid memory access\)/);
    if (findExecutable('gdb')) expect(e.message).toMatch(/\) at \S*segv\.c:10 in main\(\): /);
  });

  it('a hung program fails its test at its bound; later runs of it fail at once with "not run: … hung in"', async () => {
    forgetHungPrograms();
    const exe = await build('hang');
    const e = await run(exe, [], { timeoutMs: 500, killGraceMs: 100 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TimeoutError);
    const t0 = Date.now();
    await expect(run(exe, [], { timeoutMs: 20_000 })).rejects.toThrow(/not run: hang hung in '.*later runs of it fail at once/);
    expect(Date.now() - t0).toBeLessThan(200);
    forgetHungPrograms();
  });

  it('a timeout whose program exited with its output complete blames the descendants holding the pipe', async () => {
    const e = (await run('sh', ['-c', '(setsid sleep 1000 &); echo answer'], { timeoutMs: 1_000 }).catch((x: unknown) => x)) as TimeoutError;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.message).toMatch(/program itself had exited after \d+ ms with its output complete: descendants it left running kept stdout\/stderr open/);
    expect(e.stdout).toBe('answer\n');
    expect((await run('pgrep', ['-fx', 'sleep 1000'], { reject: false })).stdout).toBe('');
  });

  it('an aborted background tool is stopped within its killGraceMs, even when it ignores SIGTERM', async () => {
    const ac = new AbortController();
    const bg = startBackground('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'], { signal: ac.signal, killGraceMs: 300, autoStop: false });
    await bg.waitFor(/ready/, 'ready');
    const t0 = Date.now();
    ac.abort();
    const r = await bg.exited;
    expect(r.reason).toBe('aborted');
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('a child dies with the harness process that started it (parent-death signal)', async () => {
    const script = join(REPO_ROOT, 'tests', 'fixtures', 'harness', 'start-and-hang.mts');
    // A run of its own: the killed harness never releases its sandbox cgroup, so this test reaps that run itself
    // (under this run's id it would be reported as this run's leak at the end).
    const childRun = randomBytes(3).toString('hex');
    const node = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LABS_RUN_ID: childRun } });
    const pid = await new Promise<number>((resolve) => node.stdout!.on('data', (d: Buffer) => { const m = d.toString().match(/pid (\d+)/); if (m) resolve(Number(m[1])); }));
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    node.kill('SIGKILL');
    const t0 = Date.now();
    while (existsSync(`/proc/${pid}`) && Date.now() - t0 < 3_000) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(`/proc/${pid}`), `pid ${pid} survived its parent`).toBe(false);
    const reaped = reapRunReport(childRun);
    expect(reaped.failed, 'the killed harness\'s sandbox cgroup could not be released').toEqual([]);
  });

  it('compile diagnostics are shown once per build: the second failure points at the first', async () => {
    const src = join(FIX, 'compile_error.c');
    const first = (await buildProgram({ src }).catch((x: unknown) => x)) as CompileError;
    expect(first).toBeInstanceOf(CompileError);
    expect(first.message).toMatch(/undeclared_answer/);
    const second = (await buildProgram({ src }).catch((x: unknown) => x)) as CompileError;
    expect(second).toBeInstanceOf(CompileError);
    expect(second.message).toMatch(/diagnostics are shown there, once per build/);
    expect(second.message.split('\n').length).toBeLessThan(5);
  });
});
