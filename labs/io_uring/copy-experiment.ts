/**
 * The io_uring copy labs' shared experiment (Labs 2.2 and 2.3): the lab's source
 * files (0, 1, block−1, block, block+1 bytes … and 64 MiB of random bytes,
 * copy-check.ts makeSources), a copy program built against liburing, and a
 * copy of the 64 MiB file under the io_uring tracepoints (`traceCopy`: the rings
 * the program created, its requests by opcode, how many were in flight, the
 * bytes its READ and WRITE requests completed, the io_uring_link events,
 * optionally its io_uring_enter calls). No assertions: a wrong copy is evidence
 * (its run and its destination); the spec compares the files (copy-check.ts)
 * and each lab's judge.ts decides the rest.
 */
import { buildProgram } from '../../helpers/harness/compile.js';
import type { RunResult } from '../../helpers/harness/exec.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { traceIoUringRequests, type RequestTrace } from '../../helpers/kernel/io-uring-trace.js';
import { BIG_SIZE, copyProgramSource, dropPageCache, makeSources, type CopyProgram } from './copy-check.js';

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

/** A copy program, built against liburing (from LAB_SRC or the reference tree). */
export const build = (name: CopyProgram) => buildProgram({ src: copyProgramSource(name), ldlibs: ['-luring'] }).then((b) => b.path);

/** The scratch directory (`tag`: the lab's name in it) and the source files of the matrix. */
export async function prepareCopies(tag: string): Promise<CopySetup> {
  const dir = await makeTempDir(tag);
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
