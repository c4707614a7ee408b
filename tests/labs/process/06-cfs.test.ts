/**
 * Teeth of Process Lab 6: wrong programs a clever student might write fail the
 * spec on the test that names their mistake; a correct program in another
 * style passes every test. Runs the lab spec (root only) in a nested vitest.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/harness/paths.js';
import { runSpecWith } from '../run-lab-spec.js';

const SPEC = 'labs/process/06-cfs/cfs.spec.ts';
const SOURCE = 'process/06-cfs/cfs_pair.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/process/06-cfs', name);
const asRoot = process.getuid?.() === 0;

const WRONG = [
  { file: 'wrong-not-pinned.c', fails: /^both hogs are pinned to the one CPU/, says: /expected both on CPU \d only/ },
  { file: 'wrong-nice-off-by-one.c', fails: /^both hogs are pinned to the one CPU/, says: /expected both on CPU \d only, nice 0 and \d/ },
  // Its ratio is not judged once the weight is wrong: the measurement counts only after the correctness test.
  { file: 'wrong-nice-off-by-one.c', fails: /^CPU time splits in the ratio of the weights/, says: /not run: the CPU split between the hogs .* must first pass "both hogs are pinned/ },
  // Only the weight test: the sleeper's faked share (about 2-3 : 1) is close to the ideal ratio for some of the random
  // nice values (1024/526 = 1.95 at nice 3), so the ratio test catches it on some runs only (CI saw it pass at ±10 %);
  // and not the vruntime test: a sleeper's vruntime is placed near the queue's average on each wakeup (place_entity).
  { file: 'wrong-sleeps-instead-of-nice.c', fails: /^both hogs are pinned to the one CPU/, says: /weights 1024 and \d+/ },
  // A helper playing the clever student wrote these; all five passed the spec of 2026-12-04 (CPU 1 and 4.8 s were fixed).
  { file: 'clever-hardcpu.c', fails: /^both hogs are pinned to the one CPU/, says: /expected both on CPU \d only|a second, short run, cfs_pair \d/ },
  { file: 'clever-hardsecs.c', fails: /^both hogs are pinned to the one CPU/, says: /cfs_pair \d \d [\d.]+,? ran \d+ ms/ },
  { file: 'clever-taskset.c', fails: /^both hogs are pinned to the one CPU/, says: /the hogs are cfs_pair's forked children/ },
  { file: 'clever-batch.c', fails: /^both hogs are pinned to the one CPU/, says: /at SCHED_OTHER \(0\)/ },
  // Round 2 (after the spec above): the scheduler must do the splitting.
  { file: 'clever-cooperative-table.c', fails: /^both hogs are pinned to the one CPU/, says: /voluntary_ctxt_switches of the hogs grew by/ },
  { file: 'clever-group-shares.c', fails: /^both hogs are pinned to the one CPU/, says: /not in \S+\/cgroup\.procs/ },
  { file: 'clever-spinning-parent.c', fails: /^both hogs are pinned to the one CPU/, says: /the parent cfs_pair used \d+ ms of CPU/ },
] as const;

const runs = new Map<string, ReturnType<typeof runSpecWith>>();
const runOnce = (file: string) => { if (!runs.has(file)) runs.set(file, runSpecWith(SPEC, { [SOURCE]: fixture(file) })); return runs.get(file)!; };

describe.skipIf(!asRoot)('Process Lab 6 fixtures', () => {
  it.each(WRONG)('$file fails "$fails" with the /proc/<pid>/sched evidence', { timeout: 180_000 }, async ({ file, fails, says }) => {
    const out = await runOnce(file);
    const failed = [...out.status].filter(([, s]) => s === 'failed').map(([t]) => t);
    const title = failed.find((t) => fails.test(t));
    expect(title, `failed tests: ${failed.join(' | ') || 'none'}\n${out.fileMessage}`).toBeDefined();
    expect(out.failure.get(title!)).toMatch(says);
  });

  it('a correct program in another style (affinity inherited from the parent, nice(2), a coarse clock check) passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-inherited-affinity.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(4);
  });
});
