/**
 * Starting a program, the part run() and startBackground() share: the
 * options and result types, the start itself (own process group, sandbox
 * cgroup of the run, recorded for the reaper, the fork-loop watchdog), and
 * the one place a RunResult is built from how the program ended.
 */
import { appendFileSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { activeContainment, containArgv } from './contain.js';
import { CommandError, formatCommand, type CommandFacts } from './errors.js';
import { watchForkLoop } from './fork-watchdog.js';
import { refuseHungProgram } from './hung.js';
import { KILL_GRACE_MS, terminateGroup } from './process-group.js';
import { findExecutable } from './programs.js';
import { recordProcessGroup } from './run-state.js';
import { makeSandbox, sandboxEnabled, type Sandbox, type SandboxLimits } from './sandbox.js';

export interface RunOptions {
  /** Kill the process group after this many ms. Default 30 000. */
  readonly timeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL. Default 2 000. */
  readonly killGraceMs?: number;
  /** Throw on a non-zero exit. Default true. */
  readonly reject?: boolean;
  readonly cwd?: string;
  /** Extra environment, merged over process.env. */
  readonly env?: Readonly<Record<string, string>>;
  /** Text written to stdin (stdin is otherwise ignored). */
  readonly input?: string;
  /** Kill the process group when this aborts (pass the test's `ctx.signal`: a test timeout then kills it too). */
  readonly signal?: AbortSignal;
  /** Raise (or lower) the sandbox's memory and pids limits for this command; `false` runs it outside any sandbox. */
  readonly limits?: SandboxLimits | false;
  /** After this command hangs, fail later runs of the same program at once. Default true. */
  readonly failFast?: boolean;
  /** What is kept of its stdout, and of its stderr, in characters: past it the program is stopped as by a limit. Default OUTPUT_CAP. */
  readonly maxOutput?: number;
}

/**
 * What run() and startBackground() keep of a program's stdout and of its stderr (32 Mi characters each). A program
 * that prints past it is stopped, and the run reports the limit: an endless print loop would otherwise fill the
 * test worker's memory and crash the test runner itself before its checks and report (tests/attacks-open/README.md).
 */
export const OUTPUT_CAP = 32 * 1024 * 1024;

export const RUN_DEFAULTS = {
  timeoutMs: 30_000,
  killGraceMs: KILL_GRACE_MS,
  reject: true,
} as const;

/** Why a process ended. */
export type EndReason = 'exited' | 'signaled' | 'timed-out' | 'aborted' | 'limit';

export interface RunResult extends CommandFacts {
  readonly pid: number;
  readonly exitCode: number;
  readonly signal?: string;
  readonly timedOut: boolean;
  /** Why it ended: its own exit, a signal, the time bound, an abort, or a sandbox limit. */
  readonly reason: EndReason;
  /** The sandbox limit it hit, with the figure ("pids: 512 reached"). */
  readonly limit?: string;
  /** The program itself had exited (this many ms after the start) but descendants kept its output open. */
  readonly leaderExitedMs?: number;
  /** The sandbox cgroup it ran in (kl-<run>-sb…), removed by now; undefined without a sandbox. */
  readonly sandbox?: string;
}

let sandboxWarned = false;

export interface Launched {
  readonly child: ResultPromise;
  readonly pid: number;
  readonly command: string;
  readonly started: number;
  readonly sandbox?: Sandbox;
  /** When the program itself exited (before its output closed), ms after the start. */
  leaderExitedMs?: number;
  /** leaderExitedMs as it was when the time bound fired (undefined: the program itself was still running). */
  leaderAtTimeout?: number;
  /** A limit the watchdog enforced (the fork-loop case: pids.max refused forks for a second on end). */
  watchdogLimit?: string;
  /** The most kept of each output stream (options.maxOutput or OUTPUT_CAP). */
  readonly outputCap: number;
  /** The output limit it hit ("output: more than 32 MiB on stdout; …"): its group was then stopped. */
  outputLimit?: string;
  stopWatch(): void;
}

/** Start `file` in its own process group (and sandbox): throws when it cannot start or hung earlier. */
export function launch(file: string, args: readonly string[], options: RunOptions): Launched {
  const command = formatCommand(file, args);
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  if (!findExecutable(file, env, options.cwd)) {
    throw new CommandError({ command, cwd: options.cwd ?? process.cwd(), stdout: '', stderr: `${file}: no such executable (ENOENT)`, durationMs: 0 },
      { headline: `Command could not start: ${command}` });
  }
  if (options.failFast ?? true) refuseHungProgram(file, args, command);
  let sandbox: Sandbox | undefined;
  if (options.limits !== false && sandboxEnabled()) {
    try {
      sandbox = makeSandbox(options.limits || {});
    } catch (e) {
      if (!sandboxWarned) console.warn(`[kernel-labs] no sandbox cgroup (${(e as Error).message}): programs run with process-group cleanup only`);
      sandboxWarned = true;
    }
  }
  const containment = activeContainment();
  const contained = containment && containArgv(file, args, containment, options.cwd);
  if (contained && process.env.LABS_CONTAIN_LOG) appendFileSync(process.env.LABS_CONTAIN_LOG, `${containment.from}\t${command}\n`);
  const inner = contained || { file, args: [...args] };
  const argv = sandbox ? sandbox.wrap(inner.file, inner.args) : inner;
  const started = Date.now();
  const outputCap = options.maxOutput ?? OUTPUT_CAP;
  const child = execa(argv.file, argv.args, {
    cwd: options.cwd,
    env,
    extendEnv: false,
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : undefined,
    detached: true, // own process group, so a timeout can kill the whole tree
    cleanup: true,
    reject: false,
    stripFinalNewline: false,
    encoding: 'utf8',
    // a backstop: the cap is enforced below, before execa's own (which stops reading but leaves the program running)
    maxBuffer: outputCap + 4 * 1024 * 1024,
  });
  const pid = child.pid ?? -1;
  if (pid > 0) recordProcessGroup(pid, command);
  const launched: Launched = { child, pid, command, started, sandbox, outputCap, stopWatch: () => {} };
  // Past the cap on either stream the whole group is stopped (a program that ignores SIGPIPE would print on until its bound).
  for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
    let seen = 0;
    const count = (d: Buffer | string) => {
      seen += d.length;
      if (seen <= outputCap || launched.outputLimit) return;
      launched.outputLimit = outputLimitText(name, outputCap);
      stream?.off('data', count);
      void terminateGroup(pid, KILL_GRACE_MS, sandbox);
    };
    stream?.on('data', count);
  }
  child.once('exit', () => { launched.leaderExitedMs = Date.now() - started; });
  if (sandbox && sandbox.limits.pids > 0) {
    launched.stopWatch = watchForkLoop(sandbox, pid, (limit) => { launched.watchdogLimit = limit; });
  }
  return launched;
}

/** "output: more than 32 MiB on stdout; …": the limit a program that printed past the cap hit. */
function outputLimitText(stream: string, cap: number): string {
  const size = cap >= 1024 * 1024 ? `${Math.round(cap / (1024 * 1024))} MiB` : `${cap} characters`;
  return `output: more than ${size} on ${stream}; the lab keeps no more of a program's output (a print loop that does not end?)`;
}

/** The output limit, when the launch's own count or (the backstop) execa's maxBuffer saw the cap passed. */
function outputLimit(l: Launched, result: Ending['result']): string | undefined {
  if (l.outputLimit) return l.outputLimit;
  if (!result.isMaxBuffer) return undefined;
  return outputLimitText(/\b(stdout|stderr)\b/.exec(result.message ?? '')?.[1] ?? 'stdout or stderr', l.outputCap);
}

export interface Ending {
  readonly result: Awaited<ResultPromise>;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly aborted: boolean;
}

/** The one place a RunResult is built: exit facts, why it ended, the limit hit (then releases the sandbox). */
export function finish(l: Launched, cwd: string | undefined, e: Ending): RunResult {
  l.stopWatch();
  const output = outputLimit(l, e.result);
  const limit = l.watchdogLimit ?? output ?? l.sandbox?.limitHit();
  l.sandbox?.destroy(); // kills whatever the program left running, setsid()ed or not
  const signal = e.result.signal ?? undefined;
  const exitCode = typeof e.result.exitCode === 'number' ? e.result.exitCode : -1;
  // An output limit counts however the program ended (one that ignores EPIPE may exit 0 with its output cut).
  const reason: EndReason = e.timedOut ? 'timed-out' : e.aborted ? 'aborted' : output || (limit && (signal === 'SIGKILL' || exitCode !== 0)) ? 'limit' : signal ? 'signaled' : 'exited';
  return {
    command: l.command,
    cwd: cwd ?? process.cwd(),
    pid: l.pid,
    exitCode,
    signal,
    stdout: e.stdout.length > l.outputCap ? e.stdout.slice(0, l.outputCap) : e.stdout,
    stderr: e.stderr.length > l.outputCap ? e.stderr.slice(0, l.outputCap) : e.stderr,
    durationMs: Date.now() - l.started,
    timedOut: e.timedOut,
    reason,
    limit: reason === 'limit' ? limit : undefined,
    leaderExitedMs: e.timedOut ? l.leaderAtTimeout : undefined,
    sandbox: l.sandbox?.name,
  };
}
