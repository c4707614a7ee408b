/**
 * Lab 8.4's experiment: one system call, picked at random, counted in one
 * process by three tracers — the student's ftrace, perf and bpftrace recipes —
 * and by the kernel itself (a private tracefs instance recording the syscall's
 * entry tracepoint for that pid only).
 *
 * Each trial starts the tracee (c/paths/04-tracers/tracee.c) and a decoy
 * tracee making the same call beside it, and gives them their counts N and M
 * through a FIFO each *before* the recipe starts (no system call the recipe
 * could trace carries them); both then wait in open(2) of a second FIFO. The
 * recipe is started with the tracee's pid; only when the kernel shows its
 * tracer attached (a perf event fd in the recipe's processes; a BPF program on
 * a tracepoint; a tracer in the instance) are the tracees released: the
 * recipe traces a process it did not start, with a count it cannot know.
 * A traced tracee makes its calls in two or three bursts with pauses of a few
 * seconds between them (in each tool's first trial; in one burst in its second), then stays alive a fraction of a second after its last
 * call (`Shape`): the recipe must end by itself when the tracee exits — after
 * it, and soon after (the kernel's sched_process_exit of both, in a private
 * instance) — and print the count; one that ends once the calls stop coming
 * ends either inside a pause or long after the exit.
 * No expect here: the evidence (`Trial`) says what happened, judge.ts judges.
 */
import { appendFileSync, closeSync, constants, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, startBackground, type Background, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { readStat } from '../../../helpers/harness/proc-stat.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { destroyTraceInstance } from '../../../helpers/harness/destroy.js';
import { perfAttachments, type PerfAttachment } from '../../../helpers/kernel/bpftool.js';
import { runInGuest } from '../../../helpers/kernel/guest.js';
import { makeTraceInstance, parseTraceLine, TRACEFS } from '../../../helpers/kernel/tracefs.js';

/** The system calls the spec picks from: each has a syscalls:sys_enter_ tracepoint and a traceable __x64_sys_ entry function (Debian's 6.1 and later). */
export const SYSCALLS = ['umask', 'getpgid', 'getsid', 'getpriority', 'sched_getscheduler', 'getrusage', 'times', 'getitimer', 'dup'] as const;
export type Tool = 'none' | 'perf' | 'bpftrace' | 'ftrace';

/** The recipe may take this long to show its tracer attached before the tracee is released anyway (and judged). */
export const ATTACH_BOUND_MS = 12_000;
/** After the tracee exits, the harness waits this long for the recipe to end by itself (then stops it, and judges). */
export const END_BOUND_MS = 10_000;
/**
 * How soon after the tracee's exit the recipe must have ended (the kernel's sched_process_exit of each), by place.
 * Measured with the references: perf stat -p looks at its target once a second, so perf's recipes end 0.3–1.1 s
 * after it, bpftrace's 0.3 s; ftrace's reads the instance's trace once the tracee is gone, which takes 1.3–1.6 s for
 * 5,000–20,000 lines in a TCG guest.
 */
export const END_AFTER_EXIT_MS = { host: 1_800, guest: 4_500 } as const;
/**
 * A traced tracee's shape: its calls in bursts with pauses between them (PAUSE_MS, by place), and it lives on
 * LINGER_MS after its last call. A pause is longer than the linger by more than END_AFTER_EXIT_MS: whatever fixed
 * quiet time a recipe waits for before it ends, it ends inside a pause (a count short of N, and before the tracee's
 * exit) or more than END_AFTER_EXIT_MS after the exit.
 */
export const PAUSE_MS = { host: [2_600, 3_000], guest: [5_400, 6_000] } as const;
export const LINGER_MS = [200, 600] as const;

/** The calls' shape given to a traced tracee (with its count, through its FIFO). */
export interface Shape { readonly lingerMs: number; readonly pausesMs: readonly number[] }

/**
 * A random shape for a trial on the host or in the guest: one or two pauses (none with `paused` false: one burst),
 * and a linger (each drawn in its range). Each tool's first trial is paused: a recipe that ends once the calls stop
 * coming fails it whatever it does in the others (the last test judges every trial's end), so a second paused trial
 * would only cost its pauses' seconds.
 */
export const randomShape = (where: 'host' | 'guest', paused = true): Shape => ({
  lingerMs: between(LINGER_MS[0], LINGER_MS[1]),
  pausesMs: paused ? Array.from({ length: between(1, 2) }, () => between(PAUSE_MS[where][0], PAUSE_MS[where][1])) : [],
});

/** The FIFO's line: N, then the shape (linger first) where there is one. */
export const countLine = (n: number, shape?: Shape) => (shape ? [n, shape.lingerMs, ...shape.pausesMs].join(' ') : String(n));
/**
 * perf and bpftrace enable their events after opening them all: the time given for that once the kernel shows them.
 * perf's fds appear before its counters are enabled; on a slow machine (a TCG guest) that gap grows with its
 * start-up, so perf gets as long again as it took to open them (at least this, at most ENABLE_GRACE_MAX_MS).
 */
const ENABLE_GRACE_MS = 300;
const ENABLE_GRACE_MAX_MS = 3_000;

export const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
export const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

export interface Proc {
  readonly pid: number;
  readonly ppid: number;
  /** basename of /proc/<pid>/exe */
  readonly exe: string;
  /** /proc/<pid>/exe in full, and the executable's identity (device:inode): which file it runs, whatever its name. */
  readonly path: string;
  readonly exeId: string;
  /** fds that are perf events (anon_inode:[perf_event]). */
  readonly perfFds: number;
}

export interface FtraceState {
  readonly currentTracer: string;
  readonly tracingOn: string;
  readonly filter: readonly string[];
  readonly pids: readonly string[];
}

export interface Attach {
  /** The kernel showed the recipe's tracer before the tracee was released. */
  readonly attached: boolean;
  readonly waitedMs: number;
  /** The recipe's processes at the release. */
  readonly procs: readonly Proc[];
  /** BPF programs those processes attached through perf events (bpftool perf show). */
  readonly bpf: readonly PerfAttachment[];
  /** The handed-over instance at the release (ftrace). */
  readonly ftrace?: FtraceState;
  /** perf: the perf(1) this machine runs when `perf` is typed (its path and device:inode, from a perf the harness started). */
  readonly installedPerf?: { readonly path: string; readonly id: string };
  /** perf: what each perf event fd the recipe's processes held at the release had counted once the tracee exited (read by perf-counters.c through pidfd_getfd copies). */
  readonly counters?: readonly Counter[];
}

/** One perf event fd of a recipe's process, read after the tracee exited: its value (the first word read(2) gives), or why not. */
export interface Counter { readonly pid: number; readonly fd: number; readonly value?: number; readonly error?: string }

/** perf-counters.c's lines "fd <pid>:<fd> <u64>..." or "fd <pid>:<fd> error <text>" (pure). */
export function parseCounters(text: string): Counter[] {
  const out: Counter[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^fd (\d+):(\d+) (.*)$/);
    if (!m) continue;
    const rest = m[3]!.trim();
    if (rest.startsWith('error')) out.push({ pid: Number(m[1]), fd: Number(m[2]), error: rest.replace(/^error /, '') });
    else out.push({ pid: Number(m[1]), fd: Number(m[2]), value: Number(rest.split(/\s+/)[0]) });
  }
  return out;
}

/** The perf event fds of a process. */
function perfFdsOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try { if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]') out.push(Number(fd)); } catch { /* closed */ }
    }
  } catch { /* gone */ }
  return out;
}

export interface Tracee {
  readonly pid: number;
  readonly exit: string;
  /** Loop time the tracee measured (clock_gettime around its N calls). */
  readonly ns?: number;
}

export interface Trial {
  readonly tool: Tool;
  readonly where: 'host' | 'guest';
  readonly syscall: string;
  readonly n: number;
  readonly m: number;
  readonly tracee: Tracee;
  readonly decoy: Tracee;
  /** sys_enter_<syscall> events the kernel recorded for each (undefined: not read); `lost` when a buffer overflowed. */
  readonly kernel: { readonly tracee?: number; readonly decoy?: number; readonly lost: boolean };
  readonly attach?: Attach;
  readonly recipe?: {
    /** It ended by itself within END_BOUND_MS of the tracee's exit (else the harness stopped it). */
    readonly ended: boolean;
    readonly exit: string;
    readonly stdout: string;
    readonly stderr: string;
    /**
     * When it ended, against the tracee's exit, in the kernel's record (sched_process_exit of each, one clock): ms
     * after it (negative: before it). Undefined where the record lacks one of them (`endNote` says which).
     */
    readonly afterExitMs?: number;
    readonly endNote?: string;
  };
  /** The traced tracee's bursts and linger (undefined: all N calls at once, exit at once). */
  readonly shape?: Shape;
  /** Text of what went wrong in the harness (a guest that never finished…). */
  readonly note?: string;
}

export interface Programs { readonly tracee: string; readonly counters: string }

export async function buildPrograms(): Promise<Programs> {
  // Static: the same binary runs in the guest's busybox initramfs.
  const t = await buildProgram({ src: `${REFERENCE_SRC}/paths/04-tracers/tracee.c`, static: true });
  const c = await buildProgram({ src: `${REFERENCE_SRC}/paths/04-tracers/perf-counters.c` });
  return { tracee: t.path, counters: c.path };
}

const exitText = (r: RunResult) => (r.signal ? `signal ${r.signal}` : r.reason === 'timed-out' ? 'timed out' : `exit ${r.exitCode}`);

function traceeOf(pid: number, r: RunResult): Tracee {
  const m = r.stdout.match(/ns=(\d+)/);
  return { pid, exit: `${exitText(r)}${r.stderr.trim() ? ` (${r.stderr.trim().split('\n').pop()})` : ''}`, ...(m ? { ns: Number(m[1]) } : {}) };
}

/** Every process and its parent (for the recipe's process tree). */
function processTable(): Map<number, number> {
  const t = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(Number(d));
    if (s) t.set(Number(d), s.ppid);
  }
  return t;
}

/** The recipe's processes: `root` and its descendants, with their executables and perf event fds. */
export function processTree(root: number): Proc[] {
  const table = processTable();
  const inTree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of table) if (!inTree.has(pid) && inTree.has(ppid)) { inTree.add(pid); grew = true; }
  }
  const out: Proc[] = [];
  for (const pid of inTree) {
    let path = '?';
    let exeId = '?';
    let perfFds = 0;
    try { path = readlinkSync(`/proc/${pid}/exe`); } catch { /* gone */ }
    try { const st = statSync(`/proc/${pid}/exe`); exeId = `${st.dev}:${st.ino}`; } catch { /* gone */ }
    const exe = path === '?' ? '?' : basename(path);
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try { if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]') perfFds++; } catch { /* closed */ }
      }
    } catch { /* gone */ }
    out.push({ pid, ppid: table.get(pid) ?? 0, exe, path, exeId, perfFds });
  }
  return out;
}

function writeFifo(path: string, text: string): void {
  // Non-blocking: a tracee that is not waiting any more makes this fail (ENXIO) instead of hanging the spec.
  const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  try { writeSync(fd, text); } finally { closeSync(fd); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Open each go FIFO for writing once its tracee waits in open(2) of it (ENXIO until then: retried for up to 5 s). */
async function release(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const deadline = Date.now() + 5_000;
    for (;;) {
      // Open and close, nothing written: the tracee closes its end as soon as its open(2) returns (a write could meet EPIPE).
      try { closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)); break; } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw e;
        await sleep(5);
      }
    }
  }
}

let perfProbe: Promise<{ path: string; id: string } | undefined> | undefined;

/**
 * The perf(1) this machine runs when `perf` is typed: the harness starts one itself (through a wrapper script
 * where the distribution has one, as Ubuntu's linux-tools) and reads which file it runs. A recipe's "perf" must
 * be that file: a program of the recipe's own named perf is not perf.
 */
export function installedPerf(): Promise<{ path: string; id: string } | undefined> {
  return (perfProbe ??= (async () => {
    const bg = startBackground('perf', ['stat', '-e', 'dummy', '--', 'sleep', '10'], { timeoutMs: 20_000 });
    try {
      const deadline = Date.now() + 8_000;
      while (Date.now() < deadline) {
        const p = processTree(bg.pid).find((x) => /^perf/.test(x.exe) && x.exeId !== '?');
        if (p) return { path: p.path, id: p.exeId };
        await sleep(20);
      }
      return undefined;
    } finally {
      await bg.stop('SIGKILL');
    }
  })());
}

/** Wait until the tracee waits in open(2) of its FIFO as itself (not a wrapper exec'ing it). */
async function waitingTracee(bg: Background, tracee: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    let exe = '';
    try { exe = readlinkSync(`/proc/${bg.pid}/exe`); } catch { /* not yet */ }
    const st = readStat(bg.pid);
    if (exe === tracee && st?.state === 'S') return;
    await sleep(20);
  }
}

/** A recorder: a private instance with the syscall's entry tracepoint, for one pid. */
function recorder(syscall: string, pid: number) {
  const inst = makeTraceInstance([`syscalls/sys_enter_${syscall}`], { tag: 'rec', bufferKb: 8192, enable: false });
  if (!inst) throw new Error(`no tracefs instances or no syscalls/sys_enter_${syscall} tracepoint under ${TRACEFS}`);
  writeFileSync(inst.pidFile, String(pid));
  inst.setEnabled(true);
  return {
    read() {
      inst.setEnabled(false);
      const r = inst.read();
      return { count: r.events.filter((e) => e.event === `sys_${syscall}`).length, lost: r.lost };
    },
    release: inst.release,
  };
}

/**
 * The kernel's record of two processes' ends: sched_process_exit for their pids in a private instance (trace_clock
 * global: one clock across CPUs). The recipe's pid is added once it runs; `read` gives its end against the tracee's.
 */
function exitRecorder(tracee: number) {
  const inst = makeTraceInstance(['sched/sched_process_exit'], { tag: 'exit', clock: 'global', enable: false });
  if (!inst) throw new Error(`no tracefs instances or no sched/sched_process_exit tracepoint under ${TRACEFS}`);
  writeFileSync(inst.pidFile, String(tracee));
  inst.setEnabled(true);
  return {
    /** Record the recipe's end too (set_event_pid, appended). */
    add(pid: number) { appendFileSync(inst.pidFile, ` ${pid}`); },
    read(recipe: number) {
      inst.setEnabled(false);
      return recipeEnd(inst.read().lines, tracee, recipe);
    },
    release: inst.release,
  };
}

/** The recipe's end against the tracee's, from sched_process_exit lines of both (pure): ms after it, negative when before. */
export function recipeEnd(lines: readonly string[], tracee: number, recipe: number): { afterExitMs?: number; endNote?: string } {
  const at = (pid: number) => lines.map(parseTraceLine).find((e) => e?.event === 'sched_process_exit' && e.pid === pid)?.ts;
  const te = at(tracee);
  const re = at(recipe);
  if (te === undefined) return { endNote: `no sched_process_exit of the tracee ${tracee} in the kernel's record` };
  if (re === undefined) return { endNote: `no sched_process_exit of the recipe's process ${recipe} in the kernel's record` };
  return { afterExitMs: Math.round((re - te) * 1000) };
}

/** One native trial of perf, bpftrace or a baseline (no tracer); a traced one with the tracee's calls in `shape`. */
export async function hostTrial(p: Programs, tool: 'none' | 'perf' | 'bpftrace', syscall: string, n: number, m: number, shape?: Shape): Promise<Trial> {
  const dir = await makeTempDir('trc');
  const fifo = join(dir, 'fifo');
  const decoyFifo = join(dir, 'decoy.fifo');
  const go = join(dir, 'go');
  const decoyGo = join(dir, 'decoy.go');
  await run('mkfifo', [fifo, decoyFifo, go, decoyGo], { timeoutMs: 5_000 });
  const t = startBackground(p.tracee, [syscall, fifo, go], { timeoutMs: 60_000 });
  const d = startBackground(p.tracee, [syscall, decoyFifo, decoyGo], { timeoutMs: 60_000 });
  await Promise.all([waitingTracee(t, p.tracee), waitingTracee(d, p.tracee)]);
  // The counts now, before the recipe starts: from here on they are only in the tracees' memory.
  let note: string | undefined;
  try { writeFifo(decoyFifo, `${m}\n`); writeFifo(fifo, `${countLine(n, shape)}\n`); } catch (e) { note = `could not give the tracees their counts: ${(e as Error).message}`; }
  const rt = recorder(syscall, t.pid);
  const rd = recorder(syscall, d.pid);
  const ends = tool === 'none' ? undefined : exitRecorder(t.pid);
  let recipe: Background | undefined;
  let attach: Attach | undefined;
  if (tool !== 'none') {
    recipe = tool === 'perf'
      ? startBackground('sh', [labSource('paths/04-tracers/perf.sh'), syscall, String(t.pid)], { timeoutMs: 60_000 })
      : startBackground('bpftrace', [labSource('paths/04-tracers/count.bt'), syscall, String(t.pid)], { timeoutMs: 60_000 });
    ends!.add(recipe.pid);
    const started = Date.now();
    let procs: Proc[] = [];
    let bpf: PerfAttachment[] = [];
    let attached = false;
    let ended = false;
    void recipe.exited.then(() => { ended = true; });
    while (Date.now() - started < ATTACH_BOUND_MS && !ended) {
      procs = processTree(recipe.pid);
      const pids = new Set(procs.map((x) => x.pid));
      bpf = tool === 'bpftrace' ? (await perfAttachments().catch(() => [])).filter((a) => pids.has(a.pid)) : [];
      attached = tool === 'perf' ? procs.some((x) => x.perfFds > 0) : bpf.some((a) => a.fd_type === 'tracepoint');
      if (attached) break;
      await sleep(50);
    }
    const waitedMs = Date.now() - started;
    if (attached) {
      await sleep(tool === 'perf' ? Math.min(ENABLE_GRACE_MAX_MS, Math.max(ENABLE_GRACE_MS, waitedMs)) : ENABLE_GRACE_MS);
      procs = processTree(recipe.pid);
      const pids = new Set(procs.map((x) => x.pid));
      if (tool === 'bpftrace') bpf = (await perfAttachments().catch(() => [])).filter((a) => pids.has(a.pid));
    }
    const perfExe = tool === 'perf' ? await installedPerf() : undefined;
    attach = { attached, waitedMs, procs, bpf, ...(perfExe ? { installedPerf: perfExe } : {}) };
  }
  // perf: hold copies of the recipe's perf event fds, to read what they counted once the tracee is gone.
  let counters: Background | undefined;
  if (tool === 'perf' && attach?.attached) {
    const held = attach.procs.flatMap((x) => perfFdsOf(x.pid).map((fd) => `${x.pid}:${fd}`));
    if (held.length) {
      const c = startBackground(p.counters, [String(t.pid), ...held], { timeoutMs: 90_000 });
      counters = c;
      const deadline = Date.now() + 5_000;
      while (!/^held \d+/m.test(c.stdout()) && Date.now() < deadline) await sleep(10);
    }
  }
  // Release both tracees at once.
  try { await release([decoyGo, go]); } catch (e) { note ??= `could not release the tracees: ${(e as Error).message}`; }
  const [tr, dr] = await Promise.all([t.exited, d.exited]);
  if (counters && attach) attach = { ...attach, counters: parseCounters((await counters.exited).stdout) };
  let recipeOut: Trial['recipe'];
  if (recipe) {
    const r = recipe;
    const ended = await Promise.race([r.exited.then(() => true), sleep(END_BOUND_MS).then(() => false)]);
    const res = ended ? await r.exited : await r.stop('SIGINT');
    const end = ends!.read(r.pid);
    recipeOut = { ended, exit: exitText(res), stdout: res.stdout, stderr: res.stderr, ...end };
  }
  await ends?.release();
  const kt = rt.read();
  const kd = rd.read();
  await rt.release();
  await rd.release();
  return {
    tool, where: 'host', syscall, n, m,
    tracee: traceeOf(t.pid, tr), decoy: traceeOf(d.pid, dr),
    kernel: { tracee: kt.count, decoy: kd.count, lost: kt.lost || kd.lost },
    ...(attach ? { attach } : {}), ...(recipeOut ? { recipe: recipeOut } : {}), ...(shape ? { shape } : {}), ...(note ? { note } : {}),
  };
}

/** Can this kernel run the function tracer in an instance, filtered to one function? The reason when not. */
export function functionTracing(): { ok: true } | { ok: false; why: string } {
  const inst = makeTraceInstance([], { tag: 'fp' });
  if (!inst) return { ok: false, why: `no tracefs instances under ${TRACEFS}` };
  try {
    const tracers = readFileSync(join(inst.dir, 'available_tracers'), 'utf8').trim();
    if (!tracers.split(/\s+/).includes('function')) return { ok: false, why: `the instance's available_tracers is "${tracers}" (no function tracer)` };
    try { writeFileSync(join(inst.dir, 'set_ftrace_filter'), '__x64_sys_umask'); } catch (e) {
      return { ok: false, why: `writing __x64_sys_umask to an instance's set_ftrace_filter fails with ${(e as NodeJS.ErrnoException).code} (this kernel runs lockdown=integrity and refuses function tracing)` };
    }
    try { writeFileSync(join(inst.dir, 'current_tracer'), 'function'); writeFileSync(join(inst.dir, 'current_tracer'), 'nop'); } catch (e) {
      return { ok: false, why: `writing "function" to an instance's current_tracer fails with ${(e as NodeJS.ErrnoException).code}` };
    }
    return { ok: true };
  } finally {
    void inst.release();
  }
}

/** The sections "== name ==" of the trial script's output. */
export function sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  for (const line of text.split('\n')) {
    const m = line.match(/^== (.+) ==$/);
    if (m) { name = m[1]!; out.set(name, ''); continue; }
    if (name) out.set(name, `${out.get(name)!}${line}\n`);
  }
  return out;
}

/** One ftrace trial from ftrace-trial.sh's output (pure). */
export function parseFtraceTrial(text: string, tool: 'none' | 'ftrace', where: 'host' | 'guest', syscall: string, n: number, m: number, shape?: Shape): Trial {
  const s = sections(text);
  const kv = (sec: string, key: string) => (s.get(sec) ?? '').match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1]?.trim() ?? '';
  const words = (v: string) => v.split(/\s+/).filter(Boolean);
  const ids = (s.get('attach') ?? '').match(/tracee=(\d+) decoy=(\d+)/);
  const kernelLines = (s.get('kernel') ?? '').trim().split('\n');
  const kcount = (i: number) => { const x = kernelLines[i]?.match(/^(\d+)/); return x ? Number(x[1]) : undefined; };
  const lost = kernelLines.some((l) => { const x = l.match(/entries-written: (\d+)\/(\d+)/); return Boolean(x && x[1] !== x[2]); });
  const tracee = (which: string, pid: number): Tracee => {
    const line = (s.get('tracees') ?? '').split('\n').find((l) => l.startsWith(`${which} exit`)) ?? '';
    const x = line.match(/^\w+ exit (\d+)(.*)$/);
    const ns = line.match(/ns=(\d+)/);
    return { pid, exit: x ? `exit ${x[1]}${/calls=/.test(x[2]!) ? '' : x[2]!.trim() ? ` (${x[2]!.trim()})` : ''}` : 'no exit seen', ...(ns ? { ns: Number(ns[1]) } : {}) };
  };
  const ended = kv('recipe', 'ended');
  const exits = (s.get('exits') ?? '').split('\n');
  const who = exits[0]?.match(/^tracee=(\d+) recipe=(\d+)/);
  const end = who ? recipeEnd(exits.slice(1), Number(who[1]), Number(who[2])) : { endNote: 'the trial script printed no record of the ends' };
  return {
    tool, where, syscall, n, m,
    tracee: tracee('tracee', Number(ids?.[1] ?? 0)), decoy: tracee('decoy', Number(ids?.[2] ?? 0)),
    kernel: { tracee: kcount(0), decoy: kcount(1), lost },
    ...(tool === 'ftrace' ? {
      attach: {
        attached: kv('attach', 'current_tracer') !== 'nop' && kv('attach', 'current_tracer') !== '',
        waitedMs: Number(kv('attach', 'waited_ds') || 0) * 100,
        procs: [], bpf: [],
        ftrace: { currentTracer: kv('attach', 'current_tracer'), tracingOn: kv('attach', 'tracing_on'), filter: words(kv('attach', 'set_ftrace_filter')), pids: words(kv('attach', 'set_ftrace_pid')) },
      },
      recipe: { ended: ended.startsWith('exit'), exit: ended === 'no' ? 'did not end' : ended, stdout: s.get('recipe stdout') ?? '', stderr: s.get('recipe stderr') ?? '', ...end },
    } : {}),
    ...(shape ? { shape } : {}),
    ...(s.has('end') ? {} : { note: `the trial script did not finish; its output:\n${text.slice(-1500)}` }),
  };
}

export interface FtracePlan { readonly tool: 'none' | 'ftrace'; readonly n: number; readonly m: number; readonly shape?: Shape }

/** The trial script's shape arguments (none: all calls at once). */
const shapeArgs = (shape?: Shape) => (shape ? [String(shape.lingerMs), ...shape.pausesMs.map(String)] : []);

/** ftrace trials run natively (the host can run the function tracer). */
export async function ftraceNative(p: Programs, syscall: string, plan: readonly FtracePlan[]): Promise<Trial[]> {
  const out: Trial[] = [];
  const script = `${REFERENCE_SRC}/paths/04-tracers/ftrace-trial.sh`;
  for (const step of plan) {
    const dir = await makeTempDir('ftr');
    const names = ['ft', 'rec', 'dec', 'exit'].map((t) => join(TRACEFS, 'instances', uniqueName(t)));
    for (const d of names) defer(`tracefs instance ${d}`, () => { destroyTraceInstance(d); }, `rmdir ${d}`);
    const r = await run('sh', [script, step.tool, syscall, String(step.n), String(step.m), p.tracee, labSource('paths/04-tracers/ftrace.sh'), dir, ...names, ...shapeArgs(step.shape)],
      { timeoutMs: 60_000, reject: false });
    for (const d of names) destroyTraceInstance(d);
    out.push(parseFtraceTrial(r.stdout, step.tool, 'host', syscall, step.n, step.m, step.shape));
  }
  return out;
}

/** ftrace trials in one boot of Debian's kernel (this host refuses function tracing). */
export async function ftraceInGuest(p: Programs, syscall: string, plan: readonly FtracePlan[]): Promise<{ trials: Trial[]; seconds: number; exitCode?: number }> {
  const lines = plan.map((step, i) => [
    `echo "== trial ${i} =="`,
    `sh /lab/ftrace-trial.sh ${step.tool} ${syscall} ${step.n} ${step.m} /lab/tracee /lab/ftrace.sh /tmp/t${i} ` +
      `/sys/kernel/tracing/instances/kl-ft${i} /sys/kernel/tracing/instances/kl-rec${i} /sys/kernel/tracing/instances/kl-dec${i} ` +
      `/sys/kernel/tracing/instances/kl-exit${i} ${shapeArgs(step.shape).join(' ')}`,
  ].join('\n'));
  const g = await runInGuest({
    script: ['mkdir -p /tmp', ...lines].join('\n'),
    programs: [{ name: 'tracee', path: p.tracee }],
    files: [
      { path: 'lab/ftrace-trial.sh', data: readFileSync(`${REFERENCE_SRC}/paths/04-tracers/ftrace-trial.sh`), mode: 0o755 },
      { path: 'lab/ftrace.sh', data: readFileSync(labSource('paths/04-tracers/ftrace.sh')), mode: 0o755 },
    ],
    tracefs: true, memoryMb: 512, timeoutMs: 180_000,
  });
  const parts = g.output.split(/^== trial \d+ ==$/m).slice(1);
  const trials = plan.map((step, i) => parseFtraceTrial(parts[i] ?? '', step.tool, 'guest', syscall, step.n, step.m, step.shape));
  return { trials, seconds: g.boot.seconds, ...(g.exitCode === undefined ? {} : { exitCode: g.exitCode }) };
}
