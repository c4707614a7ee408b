/**
 * Where a lab program crashed: a program killed by SIGSEGV (SIGBUS, SIGFPE,
 * SIGILL, SIGABRT) is run once more under `gdb -batch`, and the first frame
 * with a source line goes into the CommandError ("at segv.c:10 in main()").
 */
import { isAbsolute } from 'node:path';
import { SYSTEM_DIRS, findExecutable } from './programs.js';
import type { RunOptions, RunResult } from './launch.js';

/** The signals of a crash worth a gdb re-run. */
export const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGABRT']);

/** The first frame with a source line in a gdb backtrace: "at segv.c:10 in main()". */
export function parseCrashFrame(bt: string): string | undefined {
  const m = bt.match(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\) at (\S+):(\d+)\s*$/m);
  return m ? `at ${m[2]}:${m[3]} in ${m[1]}()` : undefined;
}

/** How the re-run is started (exec.ts passes its run(): this module does not import it back). */
export type Runner = (file: string, args: readonly string[], options: RunOptions) => Promise<RunResult>;

/**
 * Where a lab program (built with -g by compile.ts) crashed: run it once more
 * under `gdb -batch` (same arguments, cwd, input; sandboxed; 15 s at most) and
 * take the first frame that has a source line. Undefined when gdb is missing,
 * the crash does not repeat, or the program is not a lab program.
 */
export async function crashSite(run: Runner, file: string, args: readonly string[], options: RunOptions): Promise<string | undefined> {
  if (!isAbsolute(file) || SYSTEM_DIRS.test(file) || !findExecutable('gdb')) return undefined;
  try {
    const r = await run('gdb', ['-batch', '-nx', '-ex', 'run', '-ex', 'bt', '--args', file, ...args],
      { cwd: options.cwd, env: options.env, input: options.input ?? '', timeoutMs: 15_000, reject: false, failFast: false, limits: options.limits });
    return parseCrashFrame(r.stdout);
  } catch {
    return undefined;
  }
}
