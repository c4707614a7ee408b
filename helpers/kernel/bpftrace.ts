/**
 * Running a bpftrace script the way bpftrace's own runtime tests do: start
 * it, wait until it prints "Attaching N probes..." — and, when the script has
 * a BEGIN probe, for the line it prints (BEGIN runs after every probe is
 * attached; "Attaching" is printed before) — only then start the workload,
 * and collect the output lines. A
 * script bpftrace rejects (syntax, unknown probe) fails with bpftrace's own
 * message. The process is stopped when the test ends.
 */
import { run, startBackground, waitUntil, waitUntilStill, type Background } from '../harness/exec.js';
import { CommandError } from '../harness/errors.js';
import { activeContainment, isStudentSource, studentInputCopy } from '../harness/contain.js';
import { makeTempDir } from '../harness/resources.js';

/** How long a bpftrace start (parse, codegen, load, attach) may take on a busy 2-core machine. */
export const ATTACH_TIMEOUT_MS = 60_000;

/** Pages per CPU for bpftrace's perf ring buffer (2 MiB on x86). */
export const PERF_RB_PAGES = 512;

/** bpftrace's report that the perf buffer overflowed ("Lost 123 events"). */
export function lostEvents(output: string): number {
  return [...output.matchAll(/Lost (\d+) events/g)].reduce((n, m) => n + Number(m[1]), 0);
}

const ATTACHING = /^Attaching (\d+) probes?\.\.\./;

/** The probe count from bpftrace's "Attaching N probes..." line, or undefined. */
export function parseAttaching(output: string): number | undefined {
  for (const line of output.split('\n')) {
    const m = line.match(ATTACHING);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** bpftrace's harmless warning on kernels that account BPF memory to the cgroup (RLIMIT_MEMLOCK not needed). */
const NOISE = /couldn't set RLIMIT_MEMLOCK/;

/** Output lines after the "Attaching" line, without bpftrace's own noise. */
export function eventLines(output: string): string[] {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => ATTACHING.test(l));
  return lines.slice(start + 1).filter((l) => l.trim() !== '' && !NOISE.test(l));
}

export interface BpftraceSession {
  readonly process: Background;
  /** Probes bpftrace attached. */
  readonly probes: number;
  /** Event lines printed so far. */
  lines(): string[];
  /** Wait until some line satisfies `accept`; returns the lines seen (the last ones on timeout, without throwing). */
  settle(accept: (lines: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
  /** Wait until the output stops growing (`quietMs` without a new line), at most `timeoutMs`; returns the lines, never throws. */
  quiet(quietMs: number, timeoutMs: number): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Start `bpftrace -B line <script>` (line-buffered output, so each event
 * reaches us at once) and wait for its probes to attach.
 */
export interface BpftraceOptions {
  /** Extra bpftrace arguments before the script. */
  readonly args?: readonly string[];
  /**
   * A line the script's BEGIN probe prints. bpftrace prints "Attaching N
   * probes..." *before* it attaches them and runs BEGIN *after*, so a BEGIN
   * line is the exact moment every probe is live.
   */
  readonly ready?: RegExp;
  /** Positional parameters after the script ($1, $2… in bpftrace). */
  readonly scriptArgs?: readonly string[];
}

export async function startBpftrace(script: string, options: BpftraceOptions = {}): Promise<BpftraceSession> {
  const extraArgs = options.args ?? [];
  // The student's script in a contained lab (lab.json "interpreters": ["bpftrace"]): bpftrace reads a copy the
  // lab's namespace shows, and runs there (helpers/harness/contain.ts); its messages name the student's file.
  const file = activeContainment() && isStudentSource(script) ? await studentInputCopy(script, await makeTempDir('bt-script')) : script;
  const named = (text: string) => (file === script ? text : text.split(file).join(script));
  // A larger perf ring buffer per CPU (default 64 pages): a machine busy with builds opens thousands of files a second, and a full buffer loses events.
  const bg = startBackground('bpftrace', ['-B', 'line', ...extraArgs, file, ...(options.scriptArgs ?? [])], { timeoutMs: 5 * 60_000, env: { BPFTRACE_PERF_RB_PAGES: String(PERF_RB_PAGES) } });
  try {
    await bg.waitFor(ATTACHING, 'bpftrace to attach its probes ("Attaching N probes...")', ATTACH_TIMEOUT_MS);
    if (options.ready) await bg.waitFor(options.ready, `the script's BEGIN line (${options.ready.source})`, ATTACH_TIMEOUT_MS);
  } catch (e) {
    await bg.stop();
    if (e instanceof CommandError) {
      // bpftrace rejected the script: its message (file:line: ERROR …) is in stderr.
      throw new CommandError({ ...e, stderr: named(bg.stderr()) }, { headline: `bpftrace rejected ${script}:\n${named(bg.stderr()).split('\n').filter((l) => !NOISE.test(l)).join('\n').trim()}`, cause: e });
    }
    throw e;
  }
  const lines = () => eventLines(bg.output());
  return {
    process: bg,
    probes: parseAttaching(bg.output()) ?? 0,
    lines,
    async settle(accept, timeoutMs = 10_000) {
      try {
        return await waitUntil('bpftrace output', lines, accept, { timeoutMs, intervalMs: 50 });
      } catch {
        return lines();
      }
    },
    async quiet(quietMs, timeoutMs) {
      await waitUntilStill('the tracer\'s output to settle', () => lines().length, quietMs, { timeoutMs });
      return lines();
    },
    async stop() { await bg.stop('SIGINT'); },
  };
}

/** `bpftrace -l <pattern>`: the probes of one kind this host offers (an empty list when the kind is unavailable). */
export async function listProbes(pattern: string): Promise<string[]> {
  const r = await run('bpftrace', ['-l', pattern], { reject: false, timeoutMs: 60_000 });
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.includes(':') && !/^(ERROR|WARNING)/.test(l));
}
