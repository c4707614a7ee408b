/**
 * The reaper releases what a killed run left and nothing else: resources of
 * a run whose owner process is gone, never those of a live run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const state = mkdtempSync(join(tmpdir(), 'reaper-state-'));
process.env.LABS_STATE_DIR = state;
const { reapStaleRuns, findLeftovers } = await import('../../helpers/harness/reaper.js');
const { processStartTime, uniqueName, startRun } = await import('../../helpers/harness/run-state.js');
const { programUid } = await import('../../helpers/harness/contain.js');
const { keysLeft } = await import('../../helpers/harness/keyrings.js');

/** add_key(2) as `uid`: a key in its user keyring, as a contained program of that uid can (root, x86_64/arm64, perl). */
function addKeyAs(uid: number): boolean {
  const nr = ({ x64: 248, arm64: 217 } as Partial<Record<string, number>>)[process.arch];
  if (process.getuid?.() !== 0 || !nr) return false;
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'perl', '-e',
    `my ($t, $d, $p) = ("user", "kl-reaper-test", "left"); syscall(${nr}, $t, $d, $p, 4, -4) > 0 or die "add_key: $!\\n"`], { encoding: 'utf8' });
  return r.status === 0;
}

const DEAD = 'dead00';
const LIVE = 'a1ve00';

function fakeRun(id: string, ownerPid: number, start: string): void {
  mkdirSync(join(state, id), { recursive: true });
  writeFileSync(join(state, id, 'owner'), `${ownerPid} ${start}\n`);
}

describe('reaper', () => {
  const deadDir = join(tmpdir(), `kl-${DEAD}-tmp-x`);
  const liveDir = join(tmpdir(), `kl-${LIVE}-tmp-x`);
  let sleeper: ReturnType<typeof spawn>;

  beforeAll(() => {
    mkdirSync(deadDir, { recursive: true });
    mkdirSync(liveDir, { recursive: true });
    fakeRun(DEAD, 999_999_999, '1'); // no such process: the run is dead
    fakeRun(LIVE, process.pid, processStartTime(process.pid)!);
    // A process group the dead run "started" and left running.
    sleeper = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    writeFileSync(join(state, DEAD, 'pgids'), `${sleeper.pid} ${processStartTime(sleeper.pid!)} sleep 60\n`);
    keys = addKeyAs(programUid(DEAD)) ? ['keys'] : [];
  });
  let keys: string[] = [];

  afterAll(() => {
    try { process.kill(-sleeper.pid!, 'SIGKILL'); } catch { /* reaped */ }
  });

  it("finds a dead run's temp dir, recorded process group and the keys its program's uid linked", () => {
    const found = findLeftovers((r) => r === DEAD);
    expect(found.map((l) => l.kind).sort()).toEqual([...keys, 'process-group', 'tempdir']);
  });

  it("leaves the keys of a dead run's program uid alone while a live run has the same uid (256 run ids share one)", () => {
    const twin = `${(Number.parseInt(DEAD, 16) ^ 0x10_0000).toString(16).padStart(6, '0')}`;
    expect(programUid(twin), 'a run id with the dead run\'s low 16 bits').toBe(programUid(DEAD));
    fakeRun(twin, process.pid, processStartTime(process.pid)!);
    try {
      expect(findLeftovers((r) => r === DEAD).map((l) => l.kind).sort()).toEqual(['process-group', 'tempdir']);
    } finally { rmSync(join(state, twin), { recursive: true, force: true }); }
  });

  it('releases the dead run and leaves the live run alone', async () => {
    const exited = new Promise((r) => sleeper.once('exit', r));
    // Scoped to the fake runs: the real host may hold live resources of other runs.
    const reaped = reapStaleRuns('cafe00', (r) => r === DEAD || r === LIVE);
    expect(reaped.map((l) => `${l.run} ${l.kind}`).sort()).toEqual([...keys.map((k) => `${DEAD} ${k}`), `${DEAD} process-group`, `${DEAD} tempdir`]);
    expect(keysLeft(programUid(DEAD)), 'the key its contained program added is unlinked').toBe(0);
    expect(existsSync(deadDir)).toBe(false);
    expect(existsSync(join(state, DEAD))).toBe(false);
    expect(existsSync(liveDir)).toBe(true);
    expect(await exited).toBeDefined();
  });

  it('leaves a fresh resource of a run it has no state for (another state dir\'s run) until it is old; clean (grace 0) takes it', () => {
    const stranger = 'f00f00';
    const dir = mkdtempSync(join(tmpdir(), `kl-${stranger}-tmp-`));
    try {
      expect(reapStaleRuns('cafe02', (r) => r === stranger).map((l) => l.name)).toEqual([]);
      expect(existsSync(dir)).toBe(true);
      expect(reapStaleRuns('cafe02', (r) => r === stranger, { orphanGraceMs: 0 }).map((l) => l.name)).toEqual([dir]);
      expect(existsSync(dir)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never kills a recorded pid whose start time differs (pid reuse)', () => {
    fakeRun('0de4d0', 999_999_999, '1');
    writeFileSync(join(state, '0de4d0', 'pgids'), `${process.pid} 12345 node\n`);
    expect(findLeftovers((r) => r === '0de4d0')).toEqual([]);
  });

  it('gives names with the run prefix and refuses interface names over 15 characters', () => {
    const run = startRun();
    expect(uniqueName('v', 15)).toMatch(new RegExp(`^kl-${run}-v`));
    expect(uniqueName('v', 15).length).toBeLessThanOrEqual(15);
    expect(() => uniqueName('veth-too-long', 15)).toThrow(/limit is 15/);
  });

  afterAll(async () => {
    const { rmSync } = await import('node:fs');
    rmSync(liveDir, { recursive: true, force: true });
  });
});

// The private state dir, once every describe of this file is done (the watchdog test below writes into it too).
afterAll(() => rmSync(state, { recursive: true, force: true }));

describe('reaper: what it cannot release, it reports by name and reason', () => {
  it('a busy mount (a process has its cwd inside) is reported with its holder, not dropped', async () => {
    const { reap } = await import('../../helpers/harness/reaper.js');
    const { spawnSync } = await import('node:child_process');
    const mnt = join(tmpdir(), 'kl-b05700-mnt-x');
    mkdirSync(mnt, { recursive: true });
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'kl-test', mnt]).status).toBe(0);
    const holder = spawn('sleep', ['60'], { cwd: mnt, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const failed = reap([{ kind: 'mount', name: mnt, run: 'b05700' }]);
      expect(failed).toHaveLength(1);
      expect(failed[0]!.reason).toMatch(new RegExp(`umount ${mnt}: .*busy.*held by pids .*\\b${holder.pid}\\b`, 'i'));
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('a cgroup whose member stays listed after SIGKILL (a fake cgroup listing a zombie) is reported with the member', async () => {
    const { reap } = await import('../../helpers/harness/reaper.js');
    const { destroyCgroup } = await import('../../helpers/harness/destroy.js');
    // A zombie: our child that exited and was not waited for yet (SIGKILL cannot remove it).
    const zombie = spawn('sh', ['-c', 'exit 0'], { stdio: 'ignore' });
    const zpid = zombie.pid!;
    const fake = mkdtempSync(join(tmpdir(), 'kl-c9000d-cg-'));
    writeFileSync(join(fake, 'cgroup.procs'), `${zpid}\n`);
    const d = destroyCgroup([fake], 300);
    expect(d.gone).toBe(false);
    expect(d.reason).toMatch(new RegExp(`members still listed: ${zpid}`));
    const failed = reap([{ kind: 'cgroup', name: fake, run: 'c9000d' }]);
    expect(failed.map((f) => f.name)).toEqual([fake]);
    expect(failed[0]!.reason).toMatch(/ENOTEMPTY/);
    rmSync(fake, { recursive: true, force: true });
  });
});

describe('LABS_KEEP=1', () => {
  it('a kept run is not reaped by its teardown, lists each object with its removal command, and the next run reaps it', async () => {
    // endRun (the global teardown), not setup(): setup reaps every stale run on the host, and this test's
    // private state dir would make the live runs of other suites on this machine look stale.
    const { endRun, keptMessage } = await import('../../helpers/harness/global-setup.js');
    const { runDir } = await import('../../helpers/harness/run-state.js');
    const { rmSync, readFileSync } = await import('node:fs');
    process.env.LABS_KEEP = '1';
    const logs: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => { logs.push(a.join(' ')); };
    try {
      const run = startRun();
      const kept = mkdtempSync(join(tmpdir(), `kl-${run}-keep-`));
      endRun(run);
      expect(existsSync(kept)).toBe(true);
      expect(process.exitCode ?? 0).toBe(0);
      const text = logs.join('\n');
      expect(text).toContain(`[LABS_KEEP] run ${run} kept`);
      expect(text).toContain(`tempdir ${kept}\n    remove: rm -rf ${kept}`);
      expect(readFileSync(join(runDir(run), 'kept'), 'utf8')).toContain(kept);
      expect(keptMessage(run, [])).toMatch(/kept nothing/);
      // The owner is gone (simulated): the next ordinary run reaps what was kept.
      writeFileSync(join(runDir(run), 'owner'), '999999999 1\n');
      const report = reapStaleRuns('cafe01', (r) => r === run);
      expect(report.map((l) => l.name)).toContain(kept);
      expect(existsSync(kept)).toBe(false);
      rmSync(kept, { recursive: true, force: true });
    } finally {
      console.log = log;
      delete process.env.LABS_KEEP;
    }
  });
});

describe('watchdog', () => {
  it('reaps a run within a second of its owner being killed with -9 (no teardown, no new run)', async () => {
    const { REPO_ROOT } = await import('../../helpers/harness/paths.js');
    const run = 'd09d09';
    const owner = spawn('sleep', ['60'], { stdio: 'ignore' });
    fakeRun(run, owner.pid!, processStartTime(owner.pid!)!);
    const left = mkdtempSync(join(tmpdir(), `kl-${run}-wd-`));
    const dog = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'helpers', 'harness', 'watchdog.ts'), run, String(owner.pid)],
      { cwd: REPO_ROOT, stdio: 'ignore', env: { ...process.env, LABS_STATE_DIR: state } });
    await new Promise((r) => setTimeout(r, 1_500)); // tsx start-up
    expect(existsSync(left)).toBe(true);
    owner.kill('SIGKILL');
    const t0 = Date.now();
    await new Promise((r) => dog.once('exit', r));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(existsSync(left)).toBe(false);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(join(state, run, 'watchdog.log'), 'utf8')).toContain(`tempdir ${left}`);
  });
});
