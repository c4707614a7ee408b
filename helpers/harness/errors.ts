/**
 * The few error classes the suite throws. Each has a stable `code`, carries
 * the command (or file) it is about, and keeps the original error as `cause`.
 * Messages follow execa's shape: `Command failed with exit code 2: clang …`
 * followed by the tail of stderr, then stdout.
 */

export type LabErrorCode =
  | 'E_COMMAND' // a command exited non-zero or by a signal
  | 'E_TIMEOUT' // a command ran past its time limit; its process group was killed
  | 'E_COMPILE' // gcc/clang rejected a source
  | 'E_WAIT' // a condition was not reached in time
  | 'E_SOURCE' // a lab source is missing
  | 'E_CAPABILITY' // the host lacks something (LABS_STRICT turns skips into this)
  | 'E_RESOURCE' // a kernel resource could not be made or released
  | 'E_LIMIT' // a sandbox limit (memory, pids) killed or stopped a command
  | 'E_NOT_RUN'; // a test that counts only after the lab's correctness tests passed, and they did not

export interface LabErrorOptions {
  readonly code: LabErrorCode;
  readonly cause?: unknown;
}

/** The sandbox's wrapper in front of a command line (helpers/harness/sandbox.ts): not the student's business. */
const SANDBOX_WRAPPER = /\S*setpriv --pdeathsig KILL \S+ -c '.*?' kl-sandbox (?:\S+ )*?-- /;

/**
 * An execa error as a cause: execa's one-line summary without the sandbox
 * wrapper. The full error object (two dozen enumerable fields, the command
 * three times) stays reachable as `execaError` but is not what a failure
 * prints under "Caused by".
 */
function compactCause(cause: unknown): unknown {
  if (!(cause instanceof Error) || typeof (cause as { shortMessage?: unknown }).shortMessage !== 'string') return cause;
  const short = new Error((cause as unknown as { shortMessage: string }).shortMessage.replace(SANDBOX_WRAPPER, ''));
  short.name = cause.name;
  Object.defineProperty(short, 'execaError', { value: cause, enumerable: false });
  short.stack = `${short.name}: ${short.message}`;
  return short;
}

export class LabError extends Error {
  readonly code: LabErrorCode;
  constructor(message: string, options: LabErrorOptions) {
    super(message, { cause: compactCause(options.cause) });
    this.name = 'LabError';
    this.code = options.code;
  }
}

/** The last `maxLines` lines of a text, and at most its last `maxChars` characters (one line can be megabytes long). */
export function tail(text: string, maxLines = 25, maxChars = 8192): string {
  const all = text.trimEnd();
  const start = Math.max(0, all.length - maxChars);
  const lines = all.slice(start).split('\n');
  const shown = lines.slice(-maxLines).join('\n');
  if (shown.length === all.length) return shown;
  const earlier = start === 0 ? `${lines.length - maxLines} earlier lines` : `${all.length - shown.length} earlier characters`;
  return `… (${earlier})\n${shown}`;
}

/** Quote a command line for display the way a shell user would type it. */
export function formatCommand(file: string, args: readonly string[]): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [file, ...args].map(quote).join(' ');
}

export interface CommandFacts {
  readonly command: string;
  readonly cwd: string;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** The sandbox limit that ended it, with the figure. */
  readonly limit?: string;
  /** The program itself exited this many ms after the start, but descendants kept its output open. */
  readonly leaderExitedMs?: number;
  /** Where a crashed lab program was (gdb's first frame with a source line). */
  readonly crashSite?: string;
}

const SIGNALS: Record<string, string> = {
  SIGSEGV: 'segmentation fault: an invalid memory access',
  SIGBUS: 'bus error: a bad access to mapped memory (a truncated file?)',
  SIGABRT: 'abort: abort() or a failed assert()',
  SIGFPE: 'arithmetic exception: division by zero?',
  SIGILL: 'illegal instruction',
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGPIPE: 'wrote to a pipe nobody reads',
  SIGSYS: 'bad system call (seccomp?)',
};

/** "SIGSEGV (segmentation fault: an invalid memory access)". */
export function describeSignal(signal: string): string {
  return SIGNALS[signal] ? `${signal} (${SIGNALS[signal]})` : signal;
}

function outputSection(facts: CommandFacts): string {
  const parts: string[] = [];
  if (facts.stderr.trim()) parts.push(`--- stderr (tail) ---\n${tail(facts.stderr)}`);
  if (facts.stdout.trim()) parts.push(`--- stdout (tail) ---\n${tail(facts.stdout)}`);
  return parts.length ? `\n${parts.join('\n')}` : '';
}

export class CommandError extends LabError implements CommandFacts {
  readonly command: string;
  readonly cwd: string;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  constructor(facts: CommandFacts, options: { cause?: unknown; code?: LabErrorCode; headline?: string } = {}) {
    // the output cap is the harness's (launch.ts OUTPUT_CAP), not the sandbox cgroup's
    const how = facts.limit ? `was stopped by ${facts.limit.startsWith('output:') ? 'the run\'s output cap' : 'a sandbox limit'} (${facts.limit})`
      : facts.signal ? `was killed by ${describeSignal(facts.signal)}${facts.crashSite ? ` ${facts.crashSite}` : ''}` : `failed with exit code ${facts.exitCode}`;
    const headline = options.headline ?? `Command ${how}: ${facts.command}`;
    super(`${headline}\n(cwd ${facts.cwd})${outputSection(facts)}`, { code: options.code ?? 'E_COMMAND', cause: options.cause });
    this.name = 'CommandError';
    Object.assign(this, facts);
    this.command = facts.command;
    this.cwd = facts.cwd;
    this.stdout = facts.stdout;
    this.stderr = facts.stderr;
    this.durationMs = facts.durationMs;
  }
}

export class TimeoutError extends CommandError {
  readonly timeoutMs: number;
  constructor(facts: CommandFacts, timeoutMs: number, cause?: unknown) {
    super(facts, {
      code: 'E_TIMEOUT',
      cause,
      headline: facts.leaderExitedMs !== undefined
        ? `Command timed out after ${timeoutMs} ms, but the program itself had exited after ${facts.leaderExitedMs} ms with its output complete: descendants it left running kept stdout/stderr open (they were killed): ${facts.command}`
        : `Command timed out after ${timeoutMs} ms; its process group was killed: ${facts.command}`,
    });
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

export interface CompileFacts {
  readonly command: string;
  readonly file: string;
  readonly line?: number;
  readonly diagnostics: string;
}

export class CompileError extends LabError implements CompileFacts {
  declare readonly command: string;
  declare readonly file: string;
  declare readonly line?: number;
  declare readonly diagnostics: string;
  constructor(facts: CompileFacts, cause?: unknown, shownIn?: string) {
    const where = facts.line ? `${facts.file}:${facts.line}` : facts.file;
    const body = shownIn === undefined ? tail(facts.diagnostics, 40)
      : `(the same source failed to compile in '${shownIn}'; its diagnostics are shown there, once per build)\n${facts.diagnostics.split('\n').find((l) => /error:/.test(l)) ?? ''}`;
    super(`Compile failed at ${where}: ${facts.command}\n${body}`, { code: 'E_COMPILE', cause });
    this.name = 'CompileError';
    // Not enumerable: a failure prints the message (which holds the diagnostics) once, not again as "Serialized Error".
    for (const [k, v] of Object.entries({ command: facts.command, file: facts.file, line: facts.line, diagnostics: facts.diagnostics })) {
      Object.defineProperty(this, k, { value: v, enumerable: false });
    }
  }
}

/** A waited-for condition did not hold in time; the message shows the last value seen. */
export class WaitTimeoutError extends LabError {
  readonly lastSeen: string;
  constructor(what: string, timeoutMs: number, lastSeen: string) {
    super(`Timed out after ${timeoutMs} ms waiting for ${what}.\nLast seen:\n${tail(lastSeen)}`, { code: 'E_WAIT' });
    this.name = 'WaitTimeoutError';
    this.lastSeen = lastSeen;
  }
}
