/**
 * Long-running programs (bpftrace, a BCC script, a server, QEMU) that a test
 * drives while they run: their output as it comes, waitFor() a line, stop()
 * (SIGTERM, SIGKILL after the grace), stopped with the test unless told not.
 */
import { CommandError, WaitTimeoutError } from './errors.js';
import { recordHang } from './hung.js';
import { finish, launch, RUN_DEFAULTS, type RunOptions, type RunResult } from './launch.js';
import { killGroup, terminateGroup } from './process-group.js';
import { defer } from './resources.js';
import { scaledTimeout } from './timeouts.js';

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
    if (timedOut) recordHang(file, args, facts, options.failFast);
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
        let from = 0; // lines before it were checked already (the last, unfinished line is checked again)
        const check = () => {
          for (const line of all.slice(from).split('\n')) {
            const m = line.match(pattern);
            if (m) { cleanup(); resolveWait(m); return; }
          }
          from = all.lastIndexOf('\n') + 1;
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
