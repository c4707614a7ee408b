/**
 * io_uring Lab 2's experiment: the lab's source files (0, 1, block−1, block,
 * block+1 bytes … and 64 MiB of random bytes, copy-check.ts makeSources), the
 * student's uring_cp and uring_cp_pipelined built against liburing, and each
 * copy run as the tests need it: under the io_uring tracepoints (`traceCopy`:
 * the rings the program created, its requests, how many were in flight, the
 * bytes its READ and WRITE requests completed, optionally its io_uring_enter
 * calls), from a cold page cache or not, and timed (`timedCopy`). No
 * assertions: a wrong copy is evidence (its run and its destination); the
 * spec compares the files (copy-check.ts) and judge.ts decides the rest.
 */
import { buildProgram } from '../../../helpers/harness/compile.js';
import type { RunResult } from '../../../helpers/harness/exec.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { traceIoUringRequests, type RequestTrace } from '../../../helpers/kernel/io-uring-trace.js';
import { BIG_SIZE, copyProgramSource, dropPageCache, runCopy, makeSources, type CopyProgram } from '../copy-check.js';

/** The lab's scratch directory and its source files (size → path). */
export interface CopySetup {
  readonly dir: string;
  readonly files: ReadonlyMap<number, string>;
}

/** One traced copy of the 64 MiB file: where it went, and what the io_uring tracepoints saw. */
export interface TracedCopy {
  readonly src: string;
  readonly dst: string;
  readonly trace: RequestTrace & { readonly result: RunResult };
}

/** The student's copy program, built against liburing (from LAB_SRC or the reference tree). */
export const build = (name: CopyProgram) => buildProgram({ src: copyProgramSource(name), ldlibs: ['-luring'] }).then((b) => b.path);

/** The scratch directory and the source files of the matrix. */
export async function prepareCopies(): Promise<CopySetup> {
  const dir = await makeTempDir('uring-cp');
  return { dir, files: await makeSources(dir) };
}

/**
 * Copy the 64 MiB file with `name` to `<dir>/<out>` under the io_uring tracepoints (and sys_enter_io_uring_enter
 * when `enters`); with `cold`, the source's page cache is dropped first, so that reads take time a pipeline can overlap.
 */
export async function traceCopy(s: CopySetup, name: CopyProgram, out: string, opts: { enters?: boolean; cold?: boolean } = {}): Promise<TracedCopy> {
  const src = s.files.get(BIG_SIZE)!;
  const dst = `${s.dir}/${out}`;
  if (opts.cold) await dropPageCache(src);
  const trace = await traceIoUringRequests(await build(name), [src, dst], opts.enters ? { enters: true } : undefined);
  return { src, dst, trace };
}

/** One timed copy of the 64 MiB file (page cache warm) to `<dir>/speed-<name>.out`. */
export async function timedCopy(s: CopySetup, name: CopyProgram): Promise<{ src: string; dst: string; result: RunResult }> {
  const src = s.files.get(BIG_SIZE)!;
  const dst = `${s.dir}/speed-${name}.out`;
  return { src, dst, result: await runCopy(await build(name), src, dst) };
}
