/**
 * #29: a process a lab started that escaped the run's process tree is found by
 * the run id it inherited, and killed; the run's own live processes are not.
 */
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { carriesRun, killRunSurvivors, runSurvivors } from '../../helpers/course/survivors.js';
import { readStat } from '../../helpers/harness/proc-stat.js';

/** Running (a killed process may stay a zombie until its new parent reaps it). */
const alive = (pid: number) => { const s = readStat(pid); return s !== undefined && s.state !== 'Z'; };

describe('survivors of a run (helpers/course/survivors.ts)', () => {
  it('reads the run id from an environment block', () => {
    expect(carriesRun('A=1\0LABS_RUN_ID=abc123\0B=2\0', 'abc123')).toBe(true);
    expect(carriesRun('LABS_RUN_ID=abc1234\0', 'abc123')).toBe(false);
    expect(carriesRun('X_LABS_RUN_ID=abc123\0', 'abc123')).toBe(false);
  });

  it('finds and kills a double-forked process that carries the run id, and leaves a live child of the run alone', async () => {
    const id = `t${process.pid.toString(16).slice(-5).padStart(5, '0')}`;
    const env = { ...process.env, LABS_RUN_ID: id };
    // A child of this process: part of the live run.
    const child = spawn('sleep', ['30'], { env, stdio: 'ignore' });
    // A double fork: the grandchild's parent exits, it is reparented out of this process's tree.
    const r = spawnSync('sh', ['-c', 'sleep 30 </dev/null >/dev/null 2>&1 & echo $!'], { env, encoding: 'utf8' });
    const orphan = Number(r.stdout.trim());
    try {
      expect(alive(orphan)).toBe(true);
      const found = runSurvivors(id, { main: process.pid });
      expect(found.map((s) => s.pid)).toEqual([orphan]);
      expect(found[0]!.cmdline).toBe('sleep 30');
      expect(runSurvivors(id, { main: process.pid, keep: [orphan] })).toEqual([]);
      expect(killRunSurvivors(id, { main: process.pid }).map((s) => s.pid)).toEqual([orphan]);
      await new Promise((res) => setTimeout(res, 100));
      expect(alive(orphan)).toBe(false);
      expect(alive(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
      try { process.kill(orphan, 'SIGKILL'); } catch { /* gone */ }
    }
  });
});
