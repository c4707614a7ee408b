/**
 * Counting the system calls a program makes, with `strace -c -f` (every
 * thread and child it starts): parsing strace's summary table, and running a
 * program under it. Kernel threads the program asks for (an io_uring SQPOLL
 * thread, io-wq workers) are not traced: their work costs the program no
 * system calls, which is the point the io_uring labs measure.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../harness/errors.js';
import { run, type RunResult } from '../harness/exec.js';
import { RESOURCE_PREFIX, runId } from '../harness/run-state.js';

export interface SyscallRow {
  readonly name: string;
  readonly calls: number;
  readonly errors: number;
  readonly seconds: number;
}

export interface SyscallSummary {
  readonly rows: readonly SyscallRow[];
  /** Sum of calls over the rows (strace's "total" line when present). */
  readonly total: number;
  /** Calls of one system call (0 when absent). */
  calls(name: string): number;
}

// "% time     seconds  usecs/call     calls    errors syscall"; errors may be blank.
const ROW = /^\s*(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)\s*$/;

/** Parse the table `strace -c` writes (several tables, e.g. per personality, are summed). */
export function parseStraceSummary(text: string): SyscallSummary {
  const byName = new Map<string, SyscallRow>();
  let totalLine: number | undefined;
  let sawHeader = false;
  for (const line of text.split('\n')) {
    if (/%\s*time\s+seconds\s+usecs\/call\s+calls/.test(line)) { sawHeader = true; continue; }
    const m = line.match(ROW);
    if (!m) continue;
    const [, , seconds, , calls, errors, name] = m;
    if (name === 'total') { totalLine = (totalLine ?? 0) + Number(calls); continue; }
    const prev = byName.get(name!);
    byName.set(name!, {
      name: name!,
      calls: (prev?.calls ?? 0) + Number(calls),
      errors: (prev?.errors ?? 0) + Number(errors ?? 0),
      seconds: (prev?.seconds ?? 0) + Number(seconds),
    });
  }
  if (!sawHeader) throw new LabError(`not a strace -c summary:\n${text.slice(0, 1000)}`, { code: 'E_COMMAND' });
  const rows = [...byName.values()].sort((a, b) => b.calls - a.calls);
  const sum = rows.reduce((s, r) => s + r.calls, 0);
  return { rows, total: totalLine ?? sum, calls: (name) => byName.get(name)?.calls ?? 0 };
}

export interface CountOptions {
  /** Count only these system calls (strace -e trace=…); default all. */
  readonly only?: readonly string[];
  /**
   * Stop the program only at the counted calls (strace --seccomp-bpf), which
   * makes tracing nearly free for the others. Needs `only`. Default true when `only` is given.
   */
  readonly seccompBpf?: boolean;
  readonly timeoutMs?: number;
  /** Throw when the program exits non-zero. Default true. */
  readonly reject?: boolean;
}

export interface CountResult {
  readonly summary: SyscallSummary;
  /** The traced program's exit (strace exits with the program's code). */
  readonly result: RunResult;
  readonly command: string;
}

/** strace's arguments that count the system calls of `file args…` into `output`. */
export function straceCountArgs(file: string, args: readonly string[], output: string, opts: CountOptions = {}): string[] {
  const only = opts.only?.length ? ['-e', `trace=${opts.only.join(',')}`] : [];
  const seccomp = only.length && (opts.seccompBpf ?? true) ? ['--seccomp-bpf'] : [];
  return ['-f', '-c', '-o', output, ...only, ...seccomp, '--', file, ...args];
}

/** Run `file args…` under `strace -c -f` and return its per-call counts. */
export async function countSyscalls(file: string, args: readonly string[], opts: CountOptions = {}): Promise<CountResult> {
  const dir = await mkdtemp(join(tmpdir(), `${RESOURCE_PREFIX}${runId()}-strace-`));
  try {
    const output = join(dir, 'summary');
    const result = await run('strace', straceCountArgs(file, args, output, opts), { timeoutMs: opts.timeoutMs ?? 120_000, reject: false });
    if ((opts.reject ?? true) && (result.exitCode !== 0 || result.signal)) {
      throw new LabError(`Command failed with exit code ${result.exitCode}${result.signal ? ` (${result.signal})` : ''} under strace: ${result.command}\n${result.stderr.slice(-3000)}`, { code: 'E_COMMAND' });
    }
    const summary = parseStraceSummary(await readFile(output, 'utf8'));
    return { summary, result, command: result.command };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
