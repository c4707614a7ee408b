/**
 * Points only for what the program did right: a test that measures the
 * student's program (a throughput, a CPU cost, a latency), or one that a
 * program doing nothing would pass (nothing refused, nothing printed for the
 * wrong port), runs only once the lab's correctness tests passed earlier in
 * the same run. Otherwise it fails at once with "not run: the program must
 * first …", earning nothing; if a prerequisite was skipped (the host lacks
 * something), it is skipped with the same reason.
 *
 * The prerequisites are earlier tests of the same spec file, named by the
 * start of their titles; vitest runs a file's tests in order, so their
 * results are known here.
 */
import type { RunnerTestCase, TestContext } from 'vitest';
import { LabError } from './errors.js';
import { skipOrFail } from './requires.js';

type Task = TestContext['task'];

function testsOfFile(task: Task): Task[] {
  const out: Task[] = [];
  const walk = (t: { tasks?: unknown[]; type: string }) => {
    for (const c of (t.tasks ?? []) as Task[]) {
      if (c.type === 'test') out.push(c);
      else walk(c as unknown as { tasks?: unknown[]; type: string });
    }
  };
  walk(task.file as unknown as { tasks?: unknown[]; type: string });
  return out;
}

/** The states of the earlier tests whose titles start with one of `prefixes` (pure over the task tree). */
export function prerequisiteStates(task: Task, prefixes: readonly string[]): { title: string; state: string }[] {
  const tests = testsOfFile(task);
  const mine = tests.indexOf(task);
  return prefixes.map((prefix) => {
    const dep = tests.slice(0, mine < 0 ? tests.length : mine).find((t) => t.name.startsWith(prefix)) as RunnerTestCase | undefined;
    if (!dep) throw new Error(`gate: no earlier test in ${task.file.name} starts with "${prefix}"`);
    return { title: dep.name, state: dep.result?.state ?? (dep.mode === 'skip' ? 'skip' : 'not run') };
  });
}

/**
 * Run the rest of this test only if every earlier test named by `prefixes`
 * passed; `what` says what this test measures or checks ("the throughput").
 */
export function afterCorrectness(ctx: TestContext, prefixes: readonly string[], what: string): void {
  const states = prerequisiteStates(ctx.task, prefixes);
  const skipped = states.find((s) => s.state === 'skip');
  if (skipped) skipOrFail(ctx, `${what} needs "${skipped.title}", which was skipped on this host`);
  const failed = states.filter((s) => s.state !== 'pass');
  if (failed.length) {
    throw new LabError(`not run: ${what} counts only for a program that passed the lab's correctness tests; it must first pass ` +
      `${failed.map((s) => `"${s.title}" (${s.state === 'fail' ? 'failed' : s.state})`).join(' and ')}`, { code: 'E_NOT_RUN' });
  }
}
