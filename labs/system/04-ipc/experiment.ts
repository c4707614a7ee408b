/**
 * System Lab 4's experiment: build the student's `ipc` and the spec's own
 * `ipc_probe` (c/system/ipc_probe.c, never the student's), then drive `ipc`
 * over its stdin (a FIFO the spec holds) part by part with random parameters,
 * and read each state from outside while it holds:
 *  - pipe: the writer's /proc/<pid>/stat state, wchan and stack; the pipe's
 *    capacity (F_GETPIPE_SZ) and the bytes in it (FIONREAD), asked by the probe
 *    through /proc/<writer>/fd/<n>; then `drain` and the program's rchar; the
 *    writer's calls that add to wchar (syscalls:sys_enter_write…), each judged
 *    by the file its fd held then (its dup2/close/open… followed: fd-table.ts).
 *  - message queue: QSIZE in a private mqueue mount, mq_curmsgs, then the
 *    probe takes every message in the kernel's order; then `mqdone`.
 *  - shared memory: both processes' maps (the shared VMA, its inode),
 *    pagemap PFNs page by page, the words in /proc/<program>/mem, the child's
 *    write faults, its dirty pages (smaps) and each folio's dirty flag (kpageflags).
 *  - signals: the probe's sigwait hears `sigsend`; a private tracefs instance
 *    records signal_generate (real-time signals) and the program's task_rename;
 *    /proc/<program>/status SigBlk, ShdPnd, SigQ while the probe's sigqueue'd
 *    signals wait, then `sigtake`.
 * Never throws once built: a program that does not answer leaves `stuck`.
 */
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { activeContainment, inProgramIpc, programUid } from '../../../helpers/harness/contain.js';
import { run, scaledTimeout, startBackground, type Background, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { readIo, readMaps, readPagemap, readStat, readStatus, listProcesses, type Vma } from '../../../helpers/kernel/procfs.js';
import { makeTraceInstance, tracepointExists, type TraceEvent } from '../../../helpers/kernel/tracefs.js';
import { errorCode, faultAddress, faultsIn, PF_WRITE } from '../../../helpers/kernel/page-faults.js';
import { attributeWrites, FD_CALLS, SNAPSHOT_MARK, WCHAR_CALLS, type FdWrites } from './fd-table.js';

export const PAGE = 4096;
const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** The capacity the kernel gives a pipe asked for `bytes`: whole pages, rounded up to a power of two (fs/pipe.c round_pipe_size). */
export function pipeCapacity(bytes: number): number {
  let pages = 1;
  while (pages * PAGE < bytes) pages *= 2;
  return pages * PAGE;
}

/** One run's random parameters. */
export interface Plan {
  readonly pipeBytes: number;
  readonly pipeTotal: number;
  readonly mqName: string;
  /** The messages in the order sent (sizes all different; at least two share a priority). */
  readonly messages: readonly { prio: number; size: number }[];
  readonly shmPages: number;
  readonly shmToken: string;
  /** Two real-time signals, lower first, and the values queued in the order sent. */
  readonly rtSignals: readonly [number, number];
  readonly queued: readonly { sig: number; value: number }[];
  readonly sendSig: number;
  readonly sendValue: number;
}

export function makePlan(): Plan {
  // Never the default capacity (16 pages): a program that sets nothing must not pass by chance.
  let pipeBytes = rnd(PAGE + 1, 30 * PAGE);
  while (pipeCapacity(pipeBytes) === 16 * PAGE) pipeBytes = rnd(PAGE + 1, 30 * PAGE);
  const cap = pipeCapacity(pipeBytes);
  const n = rnd(4, 7);
  const sizes = new Set<number>();
  while (sizes.size < n) sizes.add(rnd(1, 4000));
  const prios = Array.from({ length: n }, () => rnd(0, 40));
  prios[rnd(1, n - 1)] = prios[0]!;
  const a = 34 + rnd(0, 12);
  const b = a + rnd(1, 10);
  const queued = Array.from({ length: rnd(4, 6) }, () => ({ sig: Math.random() < 0.5 ? a : b, value: rnd(1000, 999_999) }));
  queued[0] = { ...queued[0]!, sig: b };
  queued[1] = { ...queued[1]!, sig: a };
  return {
    // More than the capacity asked for and more than the default: whichever pipe the program made, its writer blocks
    // (a pipe left at 64 KiB is then seen full at 64 KiB, not emptied by a writer that has already exited).
    pipeBytes, pipeTotal: Math.max(cap, 16 * PAGE) + rnd(PAGE, 3 * cap),
    mqName: `/${uniqueName('mq', 40)}`,
    messages: [...sizes].map((size, i) => ({ prio: prios[i]!, size })),
    shmPages: rnd(3, 24), shmToken: `kl${rnd(100000, 999999)}`,
    rtSignals: [a, b], queued, sendSig: 34 + rnd(0, 20), sendValue: rnd(1000, 999_999),
  };
}

export { WCHAR_CALLS } from './fd-table.js';

export const ANSWER_MS = scaledTimeout(5_000);
export const SETTLE_MS = scaledTimeout(3_000);
export const EXIT_MS = scaledTimeout(5_000);

export interface PipeEvidence {
  writer?: number;
  writerParent?: number;
  /** Writer while the pipe is full: state, wchan, first stack frames. */
  state?: string;
  wchan?: string;
  stack: string[];
  /** The probe's answer through the writer's fd: F_GETPIPE_SZ and FIONREAD. */
  capacity?: number;
  inPipe?: number;
  probeError?: string;
  /** /proc/<writer>/syscall while it sleeps: the syscall and the fd it writes to, that fd's target. */
  syscall?: string;
  blockedFd?: number;
  blockedTarget?: string;
  /** Whether the program holds the pipe the writer is blocked writing to. */
  blockedOnShared?: boolean;
  /** The program's rchar before and after drain. */
  rcharBefore?: number;
  rcharAfter?: number;
  /** The program's wchar before and after drain: a reaped child's writes are added to its parent's (wait_task_zombie). */
  wcharBefore?: number;
  wcharAfter?: number;
  /** The writer's own wchar, last seen before drain. */
  writerWchar?: number;
  /** The writer's own wchar after drain, when it is a zombie the program has not reaped yet (/proc/<pid>/io still reads). */
  writerWcharAfter?: number;
  /**
   * The writer's calls that count in wchar (write, writev, pwrite64, pwritev, pwritev2, sendfile, copy_file_range:
   * syscalls:sys_enter_*, its thread group, from its fork to the end of drain), by the fd written to and the file that
   * number held at that moment (fd-table.ts: its dup2/dup3/fcntl F_DUPFD/close/close_range/open/execve calls followed
   * in the same trace), with that file's target when the writer slept (undefined: a file it did not hold then) and the
   * bytes they wrote (sys_exit_*: what the pipe got from the writer, whatever else adds to wchar).
   * wchar is the process's total over every file; these say which file got the writes. undefined when the syscall
   * tracepoints are missing.
   */
  writerWrites?: FdWrites[];
  /** Why the writer's fd table could not be followed (its writes are then not judged the pipe's). */
  fdTableUnfollowed?: string;
  /** The write trace overflowed (too many calls for its buffer): the fds are then not all known. */
  writeTraceLost?: boolean;
  /** What became of the writer after drain ('gone', 'Z', or a live state). */
  writerAfter?: string;
  writerAfterWchan?: string;
}

export interface MqEvidence {
  /** QSIZE of the queue's file while the messages sit there (undefined: no such file). */
  qsize?: number;
  fileLine?: string;
  curmsgs?: number;
  maxmsg?: number;
  msgsize?: number;
  /** What the probe took, in the kernel's order. */
  received: { prio: number; size: number }[];
  qsizeAfter?: number;
  probeError?: string;
  /** Whether the name still existed after mqdone. */
  existsAfterDone?: boolean;
}

export interface ShmEvidence {
  child?: number;
  childParent?: number;
  /** The VMA of the program and of the child that is `pages` pages long and shared, if any. */
  programVma?: Vma;
  childVma?: Vma;
  /** Per page: the frame in the program and in the child (0n: not present). */
  frames: { program: bigint; child: bigint }[];
  /** The words at the start of each page, read through /proc/<program>/mem. */
  words: string[];
  candidates: string[];
  /**
   * The pages of its mapping the child took a write fault on (exceptions:page_fault_user, error_code bit 1,
   * the program and its children only); undefined when that tracepoint is missing (not x86).
   */
  childWrites?: number[];
  /** The child's page faults in its mapping, for the message: "<page>:<error_code>". */
  childFaults?: string[];
  /**
   * A child that reads a page before it writes it takes one read fault only: the kernel maps a shared shmem page
   * writable on a read fault (no write notification for shmem), so the CPU's store sets the dirty bit of the child's
   * own page table entry and no write fault follows. The evidence then: the child's mapping counts every page dirty
   * (smaps Shared_Dirty + Private_Dirty: a dirty PTE of the child, or a dirty folio), while the page's folio is clean
   * (/proc/kpageflags bit 4): a write fault, a write(2) to the object or a write through /proc/<pid>/mem dirties the
   * folio; only a store through a writable PTE leaves it clean.
   */
  childDirtyPages?: number;
  /** Per page of the child's mapping: is its folio dirty (KPF_DIRTY)? undefined where unread. */
  folioDirty?: (boolean | undefined)[];
}

export interface SigEvidence {
  /** sigsend: what the probe's sigwait heard ("<pid> <code> <value>" or "timeout"), and its pid. */
  probePid?: number;
  heard?: string;
  /** After sigblock and the probe's sigqueue'd signals: the program's status lines. */
  sigBlk?: bigint;
  shdPnd?: bigint;
  sigPnd?: bigint;
  sigQ?: number;
  /** After sigtake. */
  shdPndAfter?: bigint;
  comm?: string;
  /** The program's state after the signals were queued (gone: the signals killed it). */
  aliveAfterQueue: boolean;
  programExit?: string;
}

export interface Run {
  readonly pid: number;
  /** The comm the program's exec gave it (the file's name, 15 characters at most). */
  readonly execName: string;
  readonly plan: Plan;
  pipe: PipeEvidence;
  mq: MqEvidence;
  shm: ShmEvidence;
  sig: SigEvidence;
  events: TraceEvent[];
  exit?: RunResult;
  /** Children of the program still alive once it exited. */
  leftovers: number[];
  stuck?: string;
  output: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readText = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };
const mask = (hex?: string) => BigInt(`0x${hex ?? '0'}`);
export const bit = (sig: number) => 1n << BigInt(sig - 1);

export async function buildIpc(): Promise<{ program: string; probe: string }> {
  const q = await buildProgram({ src: join(REFERENCE_SRC, 'system/ipc_probe.c'), ldlibs: ['-lrt'] });
  const p = await buildProgram({ src: labSource('system/04-ipc/ipc.c'), ldlibs: ['-lrt'] });
  return { program: p.path, probe: q.path };
}

const ioCount = (pid: number, key: 'rchar' | 'wchar') => readIo(pid)?.get(key);
const rchar = (pid: number) => ioCount(pid, 'rchar');

function fdTargets(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  try { for (const fd of readdirSync(`/proc/${pid}/fd`)) { try { out.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { /* closed */ } } } catch { /* gone */ }
  return out;
}

function readMem(pid: number, addr: bigint, len: number): string {
  try {
    const fd = openSync(`/proc/${pid}/mem`, 'r');
    try {
      const b = Buffer.alloc(len);
      const n = readSync(fd, b, 0, len, addr as unknown as number);
      const s = b.subarray(0, n).toString('latin1');
      return s.split('\0')[0]!;
    } finally { closeSync(fd); }
  } catch (e) { return `<unreadable: ${(e as Error).message}>`; }
}

/** /proc/kpageflags of one frame: is the page (its folio) dirty (KPF_DIRTY, bit 4)? undefined when unreadable. */
export function frameDirty(pfn: bigint): boolean | undefined {
  if (pfn === 0n) return undefined;
  try {
    const fd = openSync('/proc/kpageflags', 'r');
    try {
      const b = Buffer.alloc(8);
      if (readSync(fd, b, 0, 8, (pfn * 8n) as unknown as number) !== 8) return undefined;
      return ((b.readBigUInt64LE(0) >> 4n) & 1n) === 1n;
    } finally { closeSync(fd); }
  } catch { return undefined; }
}

/** The probe runs in the program's IPC namespace (its own when the lab is contained): it opens the program's queue by name. */
async function probe(path: string, args: string[]): Promise<RunResult> {
  const c = inProgramIpc(path, args);
  return run(c.file, c.args, { timeoutMs: 10_000, reject: false });
}

/** Run the whole protocol once; never throws once built (the tests judge). */
export async function runIpc(program: string, probePath: string, plan: Plan = makePlan()): Promise<Run> {
  const dir = await makeTempDir('ipc');
  const fifo = join(dir, 'commands');
  await run('mkfifo', [fifo], { timeoutMs: 5_000 });
  const mnt = join(dir, 'mqueue');
  await run('mkdir', [mnt], { timeoutMs: 5_000 });
  // An mqueue file system shows the queues of the IPC namespace that mounts it: the program's.
  const mount = inProgramIpc('mount', ['-t', 'mqueue', 'none', mnt]);
  const mounted = (await run(mount.file, mount.args, { timeoutMs: 10_000, reject: false })).exitCode === 0;
  if (mounted) defer(`mqueue mount ${mnt}`, () => run('umount', [mnt], { reject: false, timeoutMs: 10_000 }), `umount ${mnt}`);
  // Registered after the mount: released first. The queue is removed whatever the program did.
  defer(`message queue ${plan.mqName}`, () => run('rm', ['-f', join(mnt, plan.mqName.slice(1))], { reject: false, timeoutMs: 5_000 }));
  let fd: number | undefined = openSync(fifo, 'r+');
  const trace = makeTraceInstance(['signal/signal_generate', 'task/task_rename'], { tag: 'ipc', bufferKb: 2048, clock: 'mono', enable: false });
  const prog = startBackground('sh', ['-c', 'exec "$0" < "$1"', program, fifo], { timeoutMs: 120_000 });
  const pid = prog.pid;
  const r: Run = {
    pid, execName: basename(program).slice(0, 15), plan, pipe: { stack: [] }, mq: { received: [] }, shm: { frames: [], words: [], candidates: [] },
    sig: { aliveAfterQueue: false }, events: [], leftovers: [], output: '',
  };
  const finish = async (stuck?: string): Promise<Run> => {
    if (fd !== undefined) { closeSync(fd); fd = undefined; }
    const exit = await Promise.race([prog.exited, sleep(EXIT_MS).then(() => undefined)]);
    const kids = listProcesses().filter((p) => p.ppid === pid && p.state !== 'Z').map((p) => p.pid);
    if (trace) { trace.setEnabled(false); r.events = trace.read().events; await trace.release(); }
    await prog.stop('SIGKILL');
    return Object.assign(r, { exit, leftovers: exit ? kids : [], output: prog.output(), ...(stuck ? { stuck } : {}) });
  };
  if (!trace) return finish('tracefs instances or signal:signal_generate, task:task_rename missing');
  // Real-time signals, and the ones that end a process (a writer killed instead of drained): the record stays small on a busy host.
  try { writeFileSync(join(trace.dir, 'events/signal/signal_generate/filter'), 'sig >= 34 || sig == 1 || sig == 2 || sig == 9 || sig == 13 || sig == 15'); } catch { /* every signal then */ }
  trace.setEnabled(true);

  const lines = () => prog.stdout().split('\n').map((l) => l.trim()).filter(Boolean);
  /** Send one command; its answer line, or undefined when none came in time. */
  const ask = async (cmd: string): Promise<string | undefined> => {
    const before = lines().length;
    try { writeSync(fd!, `${cmd}\n`); } catch { return undefined; }
    const deadline = Date.now() + ANSWER_MS;
    while (lines().length <= before && Date.now() < deadline && readStat(pid) && readStat(pid)!.state !== 'Z') await sleep(5);
    return lines()[before];
  };
  const alive = () => { const s = readStat(pid); return s !== undefined && s.state !== 'Z'; };

  // ---- the pipe
  {
    const e = r.pipe;
    // Which fds the writer writes to: the program and what it forks from now on, every call that adds to wchar.
    // And the calls that change which file a number holds, so that each write is judged by the file, not the number.
    const tableEvents = FD_CALLS.flatMap((c) => [`syscalls/sys_enter_${c}`, `syscalls/sys_exit_${c}`]).filter(tracepointExists);
    const writes = makeTraceInstance([...WCHAR_CALLS.flatMap((c) => [`syscalls/sys_enter_${c.name}`, `syscalls/sys_exit_${c.name}`]), ...tableEvents],
      { tag: 'ipcw', bufferKb: 4096, enable: false, recordTgid: true, clock: 'global' });
    if (writes) {
      writeFileSync(join(writes.dir, 'options', 'event-fork'), '1');
      writeFileSync(writes.pidFile, String(pid));
      writes.setEnabled(true);
    }
    let writerFds = new Map<string, string>();
    const ans = await ask(`pipe ${plan.pipeBytes} ${plan.pipeTotal}`);
    const w = ans !== undefined && /^\d+$/.test(ans) ? Number(ans) : undefined;
    if (w && w !== pid) {
      e.writer = w;
      e.writerParent = readStat(w)?.ppid;
      const settle = Date.now() + SETTLE_MS;
      for (;;) {
        const s = readStat(w);
        e.state = s?.state ?? 'gone';
        e.wchan = readText(`/proc/${w}/wchan`)?.trim();
        if ((e.state === 'S' && /pipe_write/.test(e.wchan ?? '')) || e.state === 'gone' || e.state === 'Z' || Date.now() > settle) break;
        await sleep(10);
      }
      // Give a writer that would only pause a moment the time to show it is not blocked.
      await sleep(150);
      e.state = readStat(w)?.state ?? 'gone';
      e.wchan = readText(`/proc/${w}/wchan`)?.trim();
      e.stack = (readText(`/proc/${w}/stack`) ?? '').split('\n').filter(Boolean).slice(0, 4).map((l) => l.replace(/^\[<[0-9a-f]+>\]\s*/, ''));
      // The pipe: a pipe the writer holds that the program holds too (not the spec's stdout pipe).
      const mine = fdTargets(pid);
      const shared = new Set([...mine].filter(([n, t]) => Number(n) > 2 && t.startsWith('pipe:')).map(([, t]) => t));
      // The look at the writer's fds, marked in the write trace: what each number held at this point of its calls.
      if (writes) { try { writeFileSync(join(writes.dir, 'trace_marker'), SNAPSHOT_MARK); } catch { /* judged: the mark is missing */ } }
      const wtargets = fdTargets(w);
      writerFds = wtargets;
      // The fd the writer sleeps writing to (/proc/<pid>/syscall: "<nr> <fd> …"): the pipe must be that one.
      e.syscall = readText(`/proc/${w}/syscall`)?.trim();
      const sc = e.syscall?.split(/\s+/);
      // Only a writer asleep in pipe_write: its first argument is then the fd (write, writev, pwritev2).
      if (sc && sc.length >= 3 && /^\d+$/.test(sc[0]!) && /pipe_write/.test(`${e.wchan ?? ''} ${e.stack.join(' ')}`)) {
        e.blockedFd = Number(sc[1]);
        e.blockedTarget = wtargets.get(String(e.blockedFd));
        e.blockedOnShared = e.blockedTarget !== undefined && shared.has(e.blockedTarget);
      }
      e.writerWchar = ioCount(w, 'wchar');
      const wfds = [...wtargets].filter(([n, t]) => shared.has(t) && (e.blockedFd === undefined || Number(n) === e.blockedFd));
      // Inherited pipes (the harness's) are shared too: the writer's pipe is the one it sleeps on (else the one the kernel finds bytes in).
      for (const [n] of wfds) {
        const p = await probe(probePath, ['pipe', String(w), n]);
        const m = p.stdout.match(/^(-?\d+) (-?\d+)/);
        if (!m) { e.probeError = p.stderr.trim() || p.stdout.trim(); continue; }
        if (e.inPipe === undefined || Number(m[2]) > e.inPipe) { e.capacity = Number(m[1]); e.inPipe = Number(m[2]); }
      }
      if (!wfds.length) e.probeError = `no pipe held by both the writer and the program${e.blockedFd !== undefined ? ` that the writer writes to (it sleeps writing to its fd ${e.blockedFd} → ${e.blockedTarget ?? '?'})` : ''} (writer fds: ${[...wtargets].map(([n, t]) => `${n}→${t}`).join(', ') || 'none'}; program fds >2: ${[...mine].filter(([n]) => Number(n) > 2).map(([n, t]) => `${n}→${t}`).join(', ') || 'none'})`;
      e.rcharBefore = rchar(pid);
      e.wcharBefore = ioCount(pid, 'wchar');
    }
    await ask('drain');
    if (w) {
      const deadline = Date.now() + SETTLE_MS;
      while (readStat(w) && readStat(w)!.state !== 'Z' && Date.now() < deadline) await sleep(10);
      const s = readStat(w);
      e.writerAfter = s?.state ?? 'gone';
      // A writer not reaped yet (Z) still has its own counts; once reaped they are in the program's wchar.
      if (s?.state === 'Z') e.writerWcharAfter = ioCount(w, 'wchar');
      e.writerAfterWchan = s ? readText(`/proc/${w}/wchan`)?.trim() : undefined;
    }
    e.rcharAfter = rchar(pid);
    e.wcharAfter = ioCount(pid, 'wchar');
    if (writes) {
      writes.setEnabled(false);
      const t = writes.read();
      if (w) {
        const a = attributeWrites(t.lines, w, new Map([...writerFds].map(([n, target]) => [Number(n), target])));
        e.writerWrites = a.writes;
        if (a.unfollowed) e.fdTableUnfollowed = a.unfollowed;
        e.writeTraceLost = t.lost;
      }
      await writes.release();
    }
    if (!alive()) return finish(`the program ${pid} ended during the pipe part`);
  }

  // ---- the message queue
  {
    const e = r.mq;
    const file = join(mnt, plan.mqName.slice(1));
    await ask(`mq ${plan.mqName} ${plan.messages.map((m) => `${m.prio}:${m.size}`).join(' ')}`);
    const text = mounted ? readText(file) : undefined;
    e.fileLine = text?.trim();
    const q = text?.match(/QSIZE:(\d+)/);
    if (q) e.qsize = Number(q[1]);
    const p = await probe(probePath, ['mq', plan.mqName]);
    const [head, ...rest] = p.stdout.trim().split('\n');
    const m = head?.match(/^(\d+) (\d+) (\d+)$/);
    if (m) {
      e.curmsgs = Number(m[1]); e.maxmsg = Number(m[2]); e.msgsize = Number(m[3]);
      e.received = rest.map((l) => l.split(' ').map(Number)).map(([prio, size]) => ({ prio: prio!, size: size! }));
    } else e.probeError = p.stderr.trim() || 'no answer';
    const after = mounted ? readText(file)?.match(/QSIZE:(\d+)/) : undefined;
    if (after) e.qsizeAfter = Number(after[1]);
    await ask(`mqdone ${plan.mqName}`);
    e.existsAfterDone = mounted ? readText(file) !== undefined : undefined;
    if (!alive()) return finish(`the program ${pid} ended during the message queue part`);
  }

  // ---- shared memory
  {
    const e = r.shm;
    const len = BigInt(plan.shmPages * PAGE);
    // Who wrote the pages: the user page faults of the program and of the children it forks from now on.
    const faults = makeTraceInstance(['exceptions/page_fault_user'], { tag: 'ipcf', bufferKb: 1024, enable: false });
    if (faults) {
      writeFileSync(join(faults.dir, 'options', 'event-fork'), '1');
      writeFileSync(faults.pidFile, String(pid));
      faults.setEnabled(true);
    }
    const ans = await ask(`shm ${plan.shmPages} ${plan.shmToken}`);
    const c = ans !== undefined && /^\d+$/.test(ans) ? Number(ans) : undefined;
    if (c && c !== pid) {
      e.child = c;
      e.childParent = readStat(c)?.ppid;
      const pick = (p: number) => (readMaps(p) ?? []).filter((v) => v.end - v.start === len);
      const shared = (v?: Vma) => v?.perms[3] === 's';
      const deadline = Date.now() + SETTLE_MS;
      for (;;) {
        const pv = pick(pid);
        const cv = pick(c);
        e.candidates = [...pv.map((v) => `program ${v.perms} ${v.dev} ${v.inode} ${v.path || '[anon]'}`), ...cv.map((v) => `child ${v.perms} ${v.dev} ${v.inode} ${v.path || '[anon]'}`)];
        e.programVma = pv.find(shared) ?? pv[0];
        e.childVma = cv.find((v) => v.start === e.programVma?.start) ?? cv.find(shared) ?? cv[0];
        if (e.programVma && e.childVma) {
          const a = readPagemap(pid, e.programVma.start, plan.shmPages);
          const b = readPagemap(c, e.childVma.start, plan.shmPages);
          e.frames = a.map((x, i) => ({ program: x.pfn, child: b[i]?.pfn ?? 0n }));
          if (e.frames.every((f) => f.program && f.child)) break;
        }
        if (Date.now() > deadline) break;
        await sleep(20);
      }
      // Dirty as the child sees it (its smaps) and each folio's own dirty flag, before anything else touches the pages.
      if (e.childVma) {
        const v = (readMaps(c, true) ?? []).find((x) => x.start === e.childVma!.start);
        if (v) e.childDirtyPages = Math.round(((v.kb.get('Shared_Dirty') ?? 0) + (v.kb.get('Private_Dirty') ?? 0)) / (PAGE / 1024));
        e.folioDirty = e.frames.map((f) => frameDirty(f.child));
      }
      if (e.programVma) for (let i = 0; i < plan.shmPages; i++) e.words.push(readMem(pid, e.programVma.start + BigInt(i * PAGE), 40));
      if (faults && e.childVma) {
        faults.setEnabled(false);
        const v = e.childVma;
        const mine = faultsIn(faults.read().events.filter((x) => x.pid === c && x.event === 'page_fault_user'), v.start, v.end)
          .map((x) => ({ addr: faultAddress(x), code: errorCode(x) }));
        const page = (a: bigint) => Number((a - v.start) / BigInt(PAGE));
        e.childFaults = mine.map((f) => `${page(f.addr)}:0x${f.code.toString(16)}`);
        e.childWrites = [...new Set(mine.filter((f) => f.code & PF_WRITE).map((f) => page(f.addr)))].sort((x, y) => x - y);
      }
    }
    if (faults) await faults.release();
    await ask('shmdone');
    if (!alive()) return finish(`the program ${pid} ended during the shared memory part`);
  }

  // ---- signals: the program sends, the probe receives
  {
    const e = r.sig;
    // a contained program may signal only its own uid: the probe becomes it (and stays undumpable: the program cannot reach its pipes)
    const uid = activeContainment() ? [String(programUid())] : [];
    const w: Background = startBackground(probePath, ['sigwait', String(plan.sendSig), String(scaledTimeout(3_000)), ...uid], { timeoutMs: 20_000 });
    try { await w.waitFor(/^ready/m, 'the probe blocking its signal', ANSWER_MS); } catch { /* judged: heard stays undefined */ }
    e.probePid = w.pid;
    await ask(`sigsend ${w.pid} ${plan.sendSig} ${plan.sendValue}`);
    const ended = await Promise.race([w.exited, sleep(scaledTimeout(5_000)).then(() => undefined)]);
    e.heard = ended ? w.stdout().split('\n').map((l) => l.trim()).filter((l) => l && l !== 'ready')[0] : undefined;
    await w.stop('SIGKILL');
    if (!alive()) return finish(`the program ${pid} ended during sigsend`);

    // ---- the program receives: blocked, queued, then taken
    await ask(`sigblock ${plan.rtSignals.join(' ')}`);
    for (const q of plan.queued) {
      if (!alive()) break;
      await probe(probePath, ['sigqueue', String(pid), String(q.sig), String(q.value)]);
    }
    await sleep(50);
    e.aliveAfterQueue = alive();
    const st = readStatus(pid);
    if (st && e.aliveAfterQueue) {
      e.sigBlk = mask(st.fields.get('SigBlk'));
      e.shdPnd = mask(st.fields.get('ShdPnd'));
      e.sigPnd = mask(st.fields.get('SigPnd'));
      e.sigQ = Number((st.fields.get('SigQ') ?? '0/0').split('/')[0]);
      await ask(`sigtake ${plan.queued.length}`);
      const after = readStatus(pid);
      e.shdPndAfter = after ? mask(after.fields.get('ShdPnd')) | mask(after.fields.get('SigPnd')) : undefined;
      e.comm = readText(`/proc/${pid}/comm`)?.trim();
    } else {
      const x = await Promise.race([prog.exited, sleep(1000).then(() => undefined)]);
      e.programExit = x ? (x.signal ? `killed by ${x.signal}` : `exit ${x.exitCode}`) : 'not ended';
    }
  }
  return finish();
}
