/**
 * Running programs: a thin wrapper over execa. Every child gets its own
 * process group; on timeout the whole group is killed (SIGTERM, then SIGKILL
 * after a grace period) and a TimeoutError names the command. Non-zero exits
 * throw a CommandError carrying the command, exit code or signal, cwd and the
 * tail of stderr/stdout, unless `reject: false`.
 */
import { execa, type ResultPromise } from 'execa';
import { CommandError, TimeoutError, WaitTimeoutError, formatCommand, type CommandFacts } from './errors.js';
import { recordProcessGroup } from './run-state.js';
import { defer } from './resources.js';

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
}

export const RUN_DEFAULTS = {
  timeoutMs: 30_000,
  killGraceMs: 2_000,
  reject: true,
} as const;

export interface RunResult extends CommandFacts {
  readonly pid: number;
  readonly exitCode: number;
  readonly signal?: string;
  readonly timedOut: boolean;
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

/** SIGTERM the group, SIGKILL what is left after `graceMs`. */
export async function terminateGroup(pgid: number, graceMs: number = RUN_DEFAULTS.killGraceMs): Promise<void> {
  if (!killGroup(pgid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pgid)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  killGroup(pgid, 'SIGKILL');
}

function spawn(file: string, args: readonly string[], options: RunOptions): ResultPromise {
  return execa(file, [...args], {
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
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
}

/** Run a program to completion. */
export async function run(file: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? RUN_DEFAULTS.timeoutMs;
  const reject = options.reject ?? RUN_DEFAULTS.reject;
  const command = formatCommand(file, args);
  const started = Date.now();
  const child = spawn(file, args, options);
  const pid = child.pid ?? -1;
  if (pid > 0) recordProcessGroup(pid, command);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void terminateGroup(pid, options.killGraceMs ?? RUN_DEFAULTS.killGraceMs);
  }, timeoutMs);
  const onAbort = () => void terminateGroup(pid, options.killGraceMs ?? RUN_DEFAULTS.killGraceMs);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const result = await child;
  clearTimeout(timer);
  options.signal?.removeEventListener('abort', onAbort);
  // Reap anything the program left running in its group.
  if (pid > 0 && groupAlive(pid)) await terminateGroup(pid, 200);
  const facts: RunResult = {
    command,
    cwd: options.cwd ?? process.cwd(),
    pid,
    exitCode: typeof result.exitCode === 'number' ? result.exitCode : -1,
    signal: result.signal ?? undefined,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    durationMs: Date.now() - started,
    timedOut,
  };
  if (result.failed && result.exitCode === undefined && !result.signal && !timedOut) {
    // Could not start at all (ENOENT, EACCES): say which program.
    throw new CommandError({ ...facts, stderr: `${facts.stderr}${result.message}` }, { cause: result.cause, headline: `Command could not start: ${command}` });
  }
  if (timedOut) throw new TimeoutError(facts, timeoutMs, result);
  if (reject && (facts.exitCode !== 0 || facts.signal)) throw new CommandError(facts, { cause: result });
  return facts;
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
  const command = formatCommand(file, args);
  const started = Date.now();
  const child = spawn(file, args, options);
  const pid = child.pid ?? -1;
  if (pid > 0) recordProcessGroup(pid, command);
  let all = '';
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((l) => l());
  child.stdout?.on('data', (d: Buffer) => { const s = d.toString(); out += s; all += s; notify(); });
  child.stderr?.on('data', (d: Buffer) => { const s = d.toString(); err += s; all += s; notify(); });
  let done = false;
  const timeoutMs = options.timeoutMs ?? 10 * 60_000;
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; void terminateGroup(pid); }, timeoutMs);
  const exited: Promise<RunResult> = child.then((result) => {
    clearTimeout(timer);
    done = true;
    notify();
    return {
      command,
      cwd: options.cwd ?? process.cwd(),
      pid,
      exitCode: typeof result.exitCode === 'number' ? result.exitCode : -1,
      signal: result.signal ?? undefined,
      stdout: out,
      stderr: err,
      durationMs: Date.now() - started,
      timedOut,
    };
  });
  let stopping: Promise<RunResult> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!stopping) {
      stopping = (async () => {
        if (!done) {
          killGroup(pid, signal);
          const grace = setTimeout(() => killGroup(pid, 'SIGKILL'), RUN_DEFAULTS.killGraceMs);
          const res = await exited;
          clearTimeout(grace);
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
    waitFor(pattern, what, waitMs = 30_000) {
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
  if (options.autoStop ?? true) defer(`process ${command}`, async () => { await stop(); });
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
  { timeoutMs = 10_000, intervalMs = 50 }: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<T> {
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
