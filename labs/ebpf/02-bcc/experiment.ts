/**
 * Lab 1.2's experiment: the student's BCC programs (hello_bcc.py: a message
 * through bpf_trace_printk per clone; hello_bcc_ringbuf.py: {pid, comm} through
 * a BPF ring buffer) each start once (BCC's clang compile takes a while); once
 * a program says READY the kernel is asked what it attached (bpftool perf show
 * by its pid, and each program's type), then shells that each call clone(2)
 * once (`sh -c 'true & wait'`, some under a 15-character name) run, and the
 * program's output is collected. It returns that evidence; no verdicts here:
 * judge.ts and the spec decide.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run, startBackground, waitUntil, type Background } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { hooksClone, perfAttachments, progInfo, type PerfAttachment } from '../../../helpers/kernel/bpftool.js';

/** BCC lives in the system Python (python3-bpfcc), not in a pyenv/venv python3 on PATH. */
const PYTHON = '/usr/bin/python3';
const READY_TIMEOUT_MS = 120_000;
export const SHELLS = 5;
/** A command name of the full TASK_COMM_LEN - 1 = 15 characters: a truncated or made-up comm cannot match it. */
export const FORKER_COMM = 'kl-clone-forker';

/** A BCC program once it said READY: how it attached, as it says and as the kernel lists it. */
export interface Started {
  readonly script: string;
  readonly bg: Background;
  /** From its READY line: kprobe, or tracepoint where the kernel has no kprobes. */
  readonly mode: string;
  readonly points: string;
  readonly startSeconds: number;
  /** bpftool perf show for its pid: everything, and what hooks clone or clone3. */
  readonly attachments: readonly PerfAttachment[];
  readonly cloneHooks: readonly PerfAttachment[];
  /** The types of the programs on those hooks (bpftool prog show). */
  readonly programTypes: readonly string[];
}

/** What a started program attached, without its process. */
export type Attached = Omit<Started, 'bg'>;

/** Start a BCC script, wait for "READY mode=… attached=…", and ask the kernel what its process attached. */
async function startBcc(script: string): Promise<Started> {
  const started = Date.now();
  const bg = startBackground(PYTHON, [labSource(script), '--duration', '120'], { timeoutMs: 5 * 60_000 });
  const m = await bg.waitFor(/^READY mode=(\S+) attached=(\S*)/, `${script} to compile and attach (READY line)`, READY_TIMEOUT_MS);
  const startSeconds = (Date.now() - started) / 1000;
  const [, mode = '?', points = ''] = m;
  const attachments = await perfAttachments(bg.pid);
  const cloneHooks = attachments.filter(hooksClone);
  const programTypes = [...new Set(await Promise.all([...new Set(cloneHooks.map((a) => a.prog_id))].map(async (id) => (await progInfo(id)).type)))];
  return { script, bg, mode, points, startSeconds, attachments, cloneHooks, programTypes };
}

/** A shell that forks once (a background `true`) and waits: its PID calls clone(2). `shell` may be a link to sh with another name (its comm). */
async function forkingShell(shell = 'sh'): Promise<number> {
  const r = await run(shell, ['-c', 'true & wait'], { timeoutMs: 10_000 });
  return r.pid;
}

/** /bin/sh under a 15-character name: the kernel sets the task's comm from the name exec'd. */
async function renamedShell(): Promise<string> {
  const dir = await makeTempDir('bcc');
  const link = join(dir, FORKER_COMM);
  symlinkSync('/bin/sh', link);
  return link;
}

export interface HelloRun extends Attached {
  /** The shells that forked while it ran. */
  readonly pids: readonly number[];
  /** Its HELLO lines (from trace_pipe: every process's bpf_trace_printk, earlier runs' unread lines too). */
  readonly lines: readonly string[];
  readonly stderr: string;
}

/** The lines that came from one of the shells this run spawned. */
export const fromShells = (lines: readonly string[], pids: readonly number[]) =>
  lines.filter((x) => x.endsWith('msg=Hello, clone!') && pids.some((p) => x.startsWith(`HELLO pid=${p} `)));

export async function runHello(): Promise<HelloRun> {
  const { bg, ...started } = await startBcc('ebpf/02-bcc/hello_bcc.py');
  const pids: number[] = [];
  const hellos = () => bg.stdout().split('\n').filter((l) => l.startsWith('HELLO '));
  // trace_pipe is one global, consuming stream: another reader on the machine may take some lines, so keep creating processes for a while.
  try {
    await waitUntil('"Hello, clone!" from one of our shells in trace_pipe', async () => { pids.push(await forkingShell()); return hellos(); },
      (l) => fromShells(l, pids).length > 0, { timeoutMs: 5_000, intervalMs: 100 });
  } catch { /* judged with the evidence */ }
  await bg.stop('SIGINT');
  return { ...started, pids, lines: hellos(), stderr: bg.stderr() };
}

export interface RingbufRun extends Attached {
  /** The shells spawned, each with the comm the kernel gave it (sh and the 15-character name, alternately). */
  readonly shells: readonly { readonly pid: number; readonly comm: string }[];
  /** The events it printed. */
  readonly events: readonly { readonly pid: number; readonly comm: string }[];
  readonly stderr: string;
}

export async function runRingbuf(): Promise<RingbufRun> {
  const { bg, ...started } = await startBcc('ebpf/02-bcc/hello_bcc_ringbuf.py');
  const link = await renamedShell();
  const shells: { pid: number; comm: string }[] = [];
  for (let i = 0; i < SHELLS; i++) {
    const named = i % 2 === 1;
    shells.push({ pid: await forkingShell(named ? link : 'sh'), comm: named ? FORKER_COMM : 'sh' });
  }
  const events = () => bg.stdout().split('\n').flatMap((l) => {
    const m = l.match(/^EVENT pid=(\d+) comm=(.*)$/);
    return m ? [{ pid: Number(m[1]), comm: m[2]! }] : [];
  });
  try {
    await waitUntil('every spawned shell in the ring buffer', events, (es) => shells.every((s) => es.some((e) => e.pid === s.pid)), { timeoutMs: 5_000 });
  } catch { /* judged with the evidence */ }
  await bg.stop('SIGINT');
  return { ...started, shells, events: events(), stderr: bg.stderr() };
}
