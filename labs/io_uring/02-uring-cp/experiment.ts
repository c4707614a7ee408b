/**
 * io_uring Lab 2's experiment: the student's uring_cp and uring_cp_pipelined
 * built against liburing, each copy run as the tests need it — under the
 * io_uring tracepoints, from a cold page cache or not (the area's
 * ../copy-experiment.ts, shared with Lab 3), and timed (`timedCopy`). No
 * assertions: the spec compares the files (copy-check.ts) and judge.ts decides the rest.
 */
import type { RunResult } from '../../../helpers/harness/exec.js';
import { BIG_SIZE, runCopy, type CopyProgram } from '../copy-check.js';
import { build, prepareCopies as prepare, type CopySetup } from '../copy-experiment.js';

export { build, traceCopy, type CopySetup, type TracedCopy } from '../copy-experiment.js';

/** The scratch directory and the source files of the matrix. */
export const prepareCopies = () => prepare('uring-cp');

/** One timed copy of the 64 MiB file (page cache warm) to `<dir>/speed-<name>.out`. */
export async function timedCopy(s: CopySetup, name: CopyProgram): Promise<{ src: string; dst: string; result: RunResult }> {
  const src = s.files.get(BIG_SIZE)!;
  const dst = `${s.dir}/speed-${name}.out`;
  return { src, dst, result: await runCopy(await build(name), src, dst) };
}
