/**
 * The reaper releases what a killed run left and nothing else: resources of
 * a run whose owner process is gone, never those of a live run.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const state = mkdtempSync(join(tmpdir(), 'reaper-state-'));
process.env.LABS_STATE_DIR = state;
const { reapStaleRuns, findLeftovers } = await import('../helpers/reaper.js');
const { processStartTime, uniqueName, startRun } = await import('../helpers/run-state.js');

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
  });

  afterAll(() => {
    try { process.kill(-sleeper.pid!, 'SIGKILL'); } catch { /* reaped */ }
  });

  it("finds a dead run's temp dir and recorded process group", () => {
    const found = findLeftovers((r) => r === DEAD);
    expect(found.map((l) => l.kind).sort()).toEqual(['process-group', 'tempdir']);
  });

  it('releases the dead run and leaves the live run alone', async () => {
    const exited = new Promise((r) => sleeper.once('exit', r));
    // Scoped to the fake runs: the real host may hold live resources of other runs.
    const reaped = reapStaleRuns('cafe00', (r) => r === DEAD || r === LIVE);
    expect(reaped.map((l) => `${l.run} ${l.kind}`).sort()).toEqual([`${DEAD} process-group`, `${DEAD} tempdir`]);
    expect(existsSync(deadDir)).toBe(false);
    expect(existsSync(join(state, DEAD))).toBe(false);
    expect(existsSync(liveDir)).toBe(true);
    expect(await exited).toBeDefined();
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
    rmSync(state, { recursive: true, force: true });
  });
});
