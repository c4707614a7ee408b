/**
 * Running programs: a thin wrapper over execa. Every child gets its own
 * process group and runs in a sandbox cgroup of the run (sandbox.ts: memory
 * and pids limits, killed as a whole so setsid() and double forks die too,
 * SIGKILL when the harness dies). On timeout the group gets SIGTERM, then
 * SIGKILL with the whole sandbox after a grace period, and a TimeoutError
 * names the command. Non-zero exits throw a CommandError carrying the command,
 * the reason it ended (exit code, signal, limit hit), cwd and the tail of
 * stderr/stdout, unless `reject: false`. A program that hung in one test is
 * not run again by the other tests of the spec file: they fail at once with
 * "not run: <program> hung in '<test>'".
 */
import { accessSync, constants, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { expect } from 'vitest';
import { CommandError, LabError, TimeoutError, WaitTimeoutError, formatCommand, type CommandFacts } from './errors.js';
import { recordProcessGroup } from './run-state.js';
import { defer } from './resources.js';
import { makeSandbox, sandboxEnabled, type Sandbox, type SandboxLimits } from './sandbox.js';

export type { SandboxLimits } from './sandbox.js';

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
}

export const RUN_DEFAULTS = {
  timeoutMs: 30_000,
  killGraceMs: 2_000,
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

/** Send a signal to a whole process group; returns false if it is gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the group, SIGKILL what is left after `graceMs` (and everything in `sandbox`). */
export async function terminateGroup(pgid: number, graceMs: number = RUN_DEFAULTS.killGraceMs, sandbox?: Sandbox): Promise<void> {
  if (killGroup(pgid, 'SIGTERM')) {
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      if (!groupAlive(pgid)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    killGroup(pgid, 'SIGKILL');
  }
  sandbox?.kill();
}

/** Is `file` an executable this process could start (PATH search as execvp does)? */
export function findExecutable(file: string, env: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): string | undefined {
  const ok = (p: string) => { try { accessSync(p, constants.X_OK); return statSync(p).isFile(); } catch { return false; } };
  if (file.includes('/')) { const p = resolve(cwd, file); return ok(p) ? p : undefined; }
  for (const dir of (env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir || '.', file);
    if (ok(p)) return p;
  }
  return undefined;
}

const SYSTEM_DIRS = /^\/(usr|bin|sbin|lib|lib64|etc|sys|proc|dev|run|opt)\//;

/** The lab programs on a command line (absolute paths to files outside the system dirs), for fail-fast. */
export function programKey(file: string, args: readonly string[]): string | undefined {
  const progs = [file, ...args].filter((a) => isAbsolute(a) && !SYSTEM_DIRS.test(a) && (() => { try { return statSync(a).isFile(); } catch { return false; } })());
  return progs.length ? progs.join(' ') : undefined;
}

const hung = new Map<string, { test: string; ms: number }>();

function currentTest(): string {
  try { return expect.getState().currentTestName ?? '(outside a test)'; } catch { return '(outside a test)'; }
}

/** Forget the programs recorded as hung (tests of the harness). */
export function forgetHungPrograms(): void { hung.clear(); }

let sandboxWarned = false;

interface Launched {
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
  stopWatch(): void;
}

function launch(file: string, args: readonly string[], options: RunOptions): Launched {
  const command = formatCommand(file, args);
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  if (!findExecutable(file, env, options.cwd)) {
    throw new CommandError({ command, cwd: options.cwd ?? process.cwd(), stdout: '', stderr: `${file}: no such executable (ENOENT)`, durationMs: 0 },
      { headline: `Command could not start: ${command}` });
  }
  if (options.failFast ?? true) {
    const key = programKey(file, args);
    const h = key && hung.get(key);
    if (h) {
      throw new LabError(`not run: ${basename(key!.split(' ').pop()!)} hung in '${h.test}' (killed after ${h.ms} ms); fix that first.\nCommand: ${command}`, { code: 'E_TIMEOUT' });
    }
  }
  let sandbox: Sandbox | undefined;
  if (options.limits !== false && sandboxEnabled()) {
    try {
      sandbox = makeSandbox(options.limits || {});
    } catch (e) {
      if (!sandboxWarned) console.warn(`[kernel-labs] no sandbox cgroup (${(e as Error).message}): programs run with process-group cleanup only`);
      sandboxWarned = true;
    }
  }
  const argv = sandbox ? sandbox.wrap(file, args) : { file, args: [...args] };
  const started = Date.now();
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
    maxBuffer: 256 * 1024 * 1024,
  });
  const pid = child.pid ?? -1;
  if (pid > 0) recordProcessGroup(pid, command);
  const launched: Launched = { child, pid, command, started, sandbox, stopWatch: () => {} };
  child.once('exit', () => { launched.leaderExitedMs = Date.now() - started; });
  if (sandbox && sandbox.limits.pids > 0) {
    // A fork loop under pids.max would spin until the time bound: stop it once forks are refused for a second on end.
    let last = 0;
    let strikes = 0;
    const watch = setInterval(() => {
      const hits = sandbox!.usage().pidsMaxHits;
      strikes = hits > last ? strikes + 1 : 0;
      last = hits;
      if (strikes >= 2) {
        launched.watchdogLimit = sandbox!.limitHit();
        clearInterval(watch);
        killGroup(pid, 'SIGKILL');
        sandbox!.kill();
      }
    }, 500);
    watch.unref();
    launched.stopWatch = () => clearInterval(watch);
  }
  return launched;
}

interface Ending {
  readonly result: Awaited<ResultPromise>;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly aborted: boolean;
}

/** The one place a RunResult is built: exit facts, why it ended, the limit hit (then releases the sandbox). */
function finish(l: Launched, cwd: string | undefined, e: Ending): RunResult {
  l.stopWatch();
  const limit = l.watchdogLimit ?? l.sandbox?.limitHit();
  l.sandbox?.destroy(); // kills whatever the program left running, setsid()ed or not
  const signal = e.result.signal ?? undefined;
  const exitCode = typeof e.result.exitCode === 'number' ? e.result.exitCode : -1;
  const reason: EndReason = e.timedOut ? 'timed-out' : e.aborted ? 'aborted' : limit && (signal === 'SIGKILL' || exitCode !== 0) ? 'limit' : signal ? 'signaled' : 'exited';
  return {
    command: l.command,
    cwd: cwd ?? process.cwd(),
    pid: l.pid,
    exitCode,
    signal,
    stdout: e.stdout,
    stderr: e.stderr,
    durationMs: Date.now() - l.started,
    timedOut: e.timedOut,
    reason,
    limit: reason === 'limit' ? limit : undefined,
    leaderExitedMs: e.timedOut ? l.leaderAtTimeout : undefined,
    sandbox: l.sandbox?.name,
  };
}

function recordHang(l: Launched, file: string, args: readonly string[], facts: RunResult, options: RunOptions): void {
  if (!(options.failFast ?? true) || facts.leaderExitedMs !== undefined) return;
  const key = programKey(file, args);
  if (key) hung.set(key, { test: currentTest(), ms: facts.durationMs });
}

/** Run a program to completion. */
/**
 * LABS_TIMEOUT_SCALE=<k> (k > 1) stretches every bound of this module: the
 * guest pass (npm run test:guest) sets it, since programs under QEMU's TCG run
 * several times slower. Bounds stay bounds; only their length changes.
 */
export function scaledTimeout(ms: number): number {
  const k = Number(process.env.LABS_TIMEOUT_SCALE);
  return Number.isFinite(k) && k > 1 ? Math.round(ms * k) : ms;
}

export async function run(file: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = scaledTimeout(options.timeoutMs ?? RUN_DEFAULTS.timeoutMs);
  const grace = options.killGraceMs ?? RUN_DEFAULTS.killGraceMs;
  const reject = options.reject ?? RUN_DEFAULTS.reject;
  const l = launch(file, args, options);
  let timedOut = false;
  let aborted = false;
  const timer = setTimeout(() => {
    timedOut = true;
    l.leaderAtTimeout = l.leaderExitedMs;
    void terminateGroup(l.pid, grace, l.sandbox);
  }, timeoutMs);
  const onAbort = () => { aborted = true; void terminateGroup(l.pid, grace, l.sandbox); };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const result = await l.child;
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', onAbort);
  // Reap anything the program left running in its group (the sandbox, when there is one, catches the rest).
  if (l.pid > 0 && groupAlive(l.pid)) await terminateGroup(l.pid, 200);
  const facts = finish(l, options.cwd, { result, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), timedOut, aborted });
  if (result.failed && result.exitCode === undefined && !result.signal && !timedOut && !aborted) {
    // Could not start at all (EACCES…): say which program.
    throw new CommandError({ ...facts, stderr: `${facts.stderr}${result.message}` }, { cause: result.cause, headline: `Command could not start: ${l.command}` });
  }
  if (timedOut) {
    recordHang(l, file, args, facts, options);
    throw new TimeoutError(facts, timeoutMs, result);
  }
  if (facts.reason === 'limit') {
    if (reject) throw new CommandError(facts, { cause: result, code: 'E_LIMIT' });
    return facts;
  }
  if (reject && (facts.exitCode !== 0 || facts.signal)) {
    const where = facts.signal && CRASH_SIGNALS.has(facts.signal) ? await crashSite(file, args, options) : undefined;
    throw new CommandError(where ? { ...facts, crashSite: where } : facts, { cause: result });
  }
  return facts;
}

const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGABRT']);

/** The first frame with a source line in a gdb backtrace: "at segv.c:10 in main()". */
export function parseCrashFrame(bt: string): string | undefined {
  const m = bt.match(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\) at (\S+):(\d+)\s*$/m);
  return m ? `at ${m[2]}:${m[3]} in ${m[1]}()` : undefined;
}

/**
 * Where a lab program (built with -g by compile.ts) crashed: run it once more
 * under `gdb -batch` (same arguments, cwd, input; sandboxed; 15 s at most) and
 * take the first frame that has a source line. Undefined when gdb is missing,
 * the crash does not repeat, or the program is not a lab program.
 */
async function crashSite(file: string, args: readonly string[], options: RunOptions): Promise<string | undefined> {
  if (!isAbsolute(file) || SYSTEM_DIRS.test(file) || !findExecutable('gdb')) return undefined;
  try {
    const r = await run('gdb', ['-batch', '-nx', '-ex', 'run', '-ex', 'bt', '--args', file, ...args],
      { cwd: options.cwd, env: options.env, input: options.input ?? '', timeoutMs: 15_000, reject: false, failFast: false, limits: options.limits });
    return parseCrashFrame(r.stdout);
  } catch {
    return undefined;
  }
}

/** A program running in the background while the test drives it. */
export interface Background extends AsyncDisposable {
  readonly pid: number;
  readonly command: string;
  /** stdout and stderr as seen so far, interleaved in arrival order. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolve when a line of the output matches; reject (with the output so far) on timeout or exit. */
  waitFor(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit facts once the process has ended. */
  readonly exited: Promise<RunResult>;
  /** SIGTERM (or `signal`) the group, SIGKILL after the grace, wait for the exit. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<RunResult>;
}

export interface BackgroundOptions extends Omit<RunOptions, 'reject' | 'input'> {
  /** Register the stop with the running test (or suite). Default true. */
  readonly autoStop?: boolean;
}

/** Start a long-running program (bpftrace, a BCC script, a server). */
export function startBackground(file: string, args: readonly string[] = [], options: BackgroundOptions = {}): Background {
  const l = launch(file, args, options);
  const { child, pid, command } = l;
  const grace = options.killGraceMs ?? RUN_DEFAULTS.killGraceMs;
  let all = '';
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((f) => f());
  child.stdout?.on('data', (d: Buffer) => { const s = d.toString(); out += s; all += s; notify(); });
  child.stderr?.on('data', (d: Buffer) => { const s = d.toString(); err += s; all += s; notify(); });
  let done = false;
  const timeoutMs = scaledTimeout(options.timeoutMs ?? 10 * 60_000);
  let timedOut = false;
  let aborted = false;
  const timer = setTimeout(() => { timedOut = true; l.leaderAtTimeout = l.leaderExitedMs; void terminateGroup(pid, grace, l.sandbox); }, timeoutMs);
  const onAbort = () => { aborted = true; void stop(); };
  const exited: Promise<RunResult> = child.then((result) => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    done = true;
    const facts = finish(l, options.cwd, { result, stdout: out, stderr: err, timedOut, aborted });
    if (timedOut) recordHang(l, file, args, facts, options);
    notify();
    return facts;
  });
  let stopping: Promise<RunResult> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!stopping) {
      stopping = (async () => {
        if (!done) {
          killGroup(pid, signal);
          const kill = setTimeout(() => { killGroup(pid, 'SIGKILL'); l.sandbox?.kill(); }, grace);
          const res = await exited;
          clearTimeout(kill);
          killGroup(pid, 'SIGKILL'); // anything the leader left behind in its group
          return res;
        }
        return exited;
      })();
    }
    return stopping;
  };
  const handle: Background = {
    pid,
    command,
    output: () => all,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop,
    waitFor(pattern, what, waitMsGiven = 30_000) {
      const waitMs = scaledTimeout(waitMsGiven);
      return new Promise((resolveWait, rejectWait) => {
        const check = () => {
          for (const line of all.split('\n')) {
            const m = line.match(pattern);
            if (m) { cleanup(); resolveWait(m); return; }
          }
          if (done) {
            cleanup();
            void exited.then((r) => rejectWait(new CommandError(r, {
              headline: `${command} exited (${r.signal ?? `code ${r.exitCode}`}) before ${what}`,
            })));
          }
        };
        const t = setTimeout(() => { cleanup(); rejectWait(new WaitTimeoutError(`${what} (from ${command})`, waitMs, all)); }, waitMs);
        const cleanup = () => { clearTimeout(t); listeners.delete(check); };
        listeners.add(check);
        check();
      });
    },
    async [Symbol.asyncDispose]() { await stop(); },
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  if (options.autoStop ?? true) defer(`process ${command}`, async () => { await stop(); }, `kill -KILL -- -${pid}`);
  return handle;
}

/**
 * Poll `probe` until `accept` holds, or throw a WaitTimeoutError that shows the
 * last value seen. No fixed sleeps in specs: wait on a condition.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T> | T,
  accept: (value: T) => boolean,
  { timeoutMs: givenMs = 10_000, intervalMs = 50 }: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = scaledTimeout(givenMs);
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      if (accept(last)) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastError && last === undefined ? String(lastError) : typeof last === 'string' ? last : JSON.stringify(last);
      throw new WaitTimeoutError(what, timeoutMs, seen ?? '(nothing)');
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
