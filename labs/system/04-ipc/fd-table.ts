/**
 * System Lab 4: which file each of the pipe writer's writes went to, judged from the kernel's trace of its fd table
 * rather than from the fd number. A number names a file only until the table changes: dup2(2)/dup3(2) put another
 * file at it, close(2)/close_range(2)/execve(2) (close-on-exec) free it for the next open. So the writer's
 * syscalls:sys_enter_write… events are read together with the enter/exit events of the calls that change its table
 * (FD_CALLS), in the kernel's order, and one look at /proc/<writer>/fd while it sleeps in pipe_write (marked in the
 * same trace with trace_marker) says what each number held at that moment. Each write is attributed to the file
 * (a file description: dup copies it, open makes a new one) its number held when it was made; a file the writer did
 * not hold while it slept has no known target — not the pipe.
 */
import { parseSyscallExit, parseTraceLine, syscallArgs } from '../../../helpers/kernel/tracefs.js';

/** The system calls that add to wchar (fs/read_write.c add_wchar) and the name of the fd they write to. */
export const WCHAR_CALLS: readonly { name: string; fd: string }[] = [
  { name: 'write', fd: 'fd' }, { name: 'writev', fd: 'fd' }, { name: 'pwrite64', fd: 'fd' }, { name: 'pwritev', fd: 'fd' },
  { name: 'pwritev2', fd: 'fd' }, { name: 'sendfile64', fd: 'out_fd' }, { name: 'copy_file_range', fd: 'fd_out' },
];

/** The calls that change which file a number holds (enter and exit traced: the exit says whether and where). */
export const FD_CALLS: readonly string[] = ['close', 'close_range', 'dup', 'dup2', 'dup3', 'fcntl', 'open', 'openat', 'openat2', 'creat', 'execve', 'execveat', 'io_uring_setup'];

/** The line the experiment writes to the instance's trace_marker just before it reads /proc/<writer>/fd. */
export const SNAPSHOT_MARK = 'kl-ipc-writer-fds';

const F_DUPFD = 0n;
const F_SETFD = 2n;
const F_DUPFD_CLOEXEC = 1030n;
const O_CLOEXEC = 0o2000000n;
const CLOSE_RANGE_CLOEXEC = 4n;
const EBADF = -9n;

/** One open file (file description) the trace saw: where it came from and, if the writer held it while it slept, its target. */
interface File { readonly origin: string; target?: string }
/** What one fd number holds: the file, how the number got it, its close-on-exec flag (undefined: not known). */
interface Slot { readonly file: File; readonly via?: string; cloexec?: boolean }

/** The writer's writes to one fd number while it held one file. */
export interface FdWrites {
  readonly fd: number;
  readonly calls: number;
  /** The bytes those calls wrote (their sys_exit_… return values; a call still in the kernel when the trace ended counts 0). */
  readonly bytes: number;
  /** What the number held when the writer slept (/proc/<writer>/fd); undefined: a file it did not hold then. */
  readonly target?: string;
  /** How the number came to hold that file, when not simply held since before the trace (e.g. "dup2(5, 4) after it slept"). */
  readonly via?: string;
}

export interface Attribution {
  readonly writes: FdWrites[];
  /** Set when the table could not be followed (no snapshot mark in the trace, io_uring): the writes are then not judged as the pipe's. */
  readonly unfollowed?: string;
}

const fdArg = (v: bigint | undefined) => (v === undefined ? undefined : Number(BigInt.asIntN(32, v)));

/**
 * Follow the writer's fd table through the trace's lines (pure): `writer` is its thread group (the instance records
 * tgids), `snapshot` what /proc/<writer>/fd held at the SNAPSHOT_MARK line (number → readlink).
 */
export function attributeWrites(lines: readonly string[], writer: number, snapshot: ReadonlyMap<number, string>): Attribution {
  const table = new Map<number, Slot>();
  /** Why a number is free (closed, replaced…): a number used later without a traced call putting a file there. */
  const freed = new Map<number, string>();
  let ranges: { lo: number; hi: number; how: string }[] = [];
  let execd: string | undefined;
  let slept = false;
  let unfollowed: string | undefined;
  const pending = new Map<number, { name: string; args: Map<string, bigint> }>();
  const writes: { fd: number; slot: Slot; bytes: number }[] = [];
  /** Each task's write call in progress (its index in writes), for the bytes its exit returns. */
  const writing = new Map<number, { name: string; at: number }>();
  const when = () => (slept ? 'after it slept' : 'before it slept');

  const slot = (fd: number): Slot => {
    let s = table.get(fd);
    if (!s) {
      const gone = freed.get(fd) ?? ranges.find((r) => fd >= r.lo && fd <= r.hi)?.how ?? execd;
      s = gone ? { file: { origin: `fd ${fd} after ${gone}: put there by a call the trace does not follow` }, via: `after ${gone}` } : { file: { origin: `fd ${fd}, held since before the trace` } };
      table.set(fd, s);
    }
    return s;
  };
  const put = (fd: number, s: Slot) => { table.set(fd, s); freed.delete(fd); };
  const free = (fd: number, how: string) => { table.delete(fd); freed.set(fd, how); };

  for (const line of lines) {
    const exit = parseSyscallExit(line);
    if (exit) {
      if ((exit.tgid ?? exit.pid) !== writer) continue;
      const wr = writing.get(exit.pid);
      if (wr && wr.name === exit.name) {
        writing.delete(exit.pid);
        if (exit.ret > 0n) writes[wr.at]!.bytes = Number(exit.ret);
        continue;
      }
      const call = pending.get(exit.pid);
      if (!call || call.name !== exit.name) continue;
      pending.delete(exit.pid);
      const a = call.args;
      const ret = exit.ret;
      const r = Number(ret);
      switch (call.name) {
        case 'close': {
          // close(2) frees the number whatever it returns, but EBADF (nothing was there).
          const fd = fdArg(a.get('fd'))!;
          if (ret !== EBADF) free(fd, `close(${fd}) ${when()}`);
          break;
        }
        case 'close_range': {
          if (ret !== 0n) break;
          const lo = fdArg(a.get('fd'))!;
          const max = a.get('max_fd') ?? 0n;
          const hi = max > 0x7fffffffn ? Number.MAX_SAFE_INTEGER : Number(max);
          const how = `close_range(${lo}, ${hi === Number.MAX_SAFE_INTEGER ? '~0' : hi}) ${when()}`;
          if ((a.get('flags') ?? 0n) & CLOSE_RANGE_CLOEXEC) {
            for (const [fd, s] of table) if (fd >= lo && fd <= hi) s.cloexec = true;
          } else {
            for (const fd of [...table.keys()]) if (fd >= lo && fd <= hi) free(fd, how);
            ranges.push({ lo, hi, how });
          }
          break;
        }
        case 'dup2':
        case 'dup3': {
          const from = fdArg(a.get('oldfd'))!;
          const to = fdArg(a.get('newfd'))!;
          if (r !== to || from === to) break;
          const via = `${call.name}(${from}, ${to}) ${when()}`;
          put(to, { file: slot(from).file, via, cloexec: call.name === 'dup3' ? ((a.get('flags') ?? 0n) & O_CLOEXEC) !== 0n : false });
          break;
        }
        case 'dup': {
          const from = fdArg(a.get('fildes'))!;
          if (r >= 0) put(r, { file: slot(from).file, via: `dup(${from}) = ${r} ${when()}`, cloexec: false });
          break;
        }
        case 'fcntl': {
          const fd = fdArg(a.get('fd'))!;
          const cmd = a.get('cmd');
          if ((cmd === F_DUPFD || cmd === F_DUPFD_CLOEXEC) && r >= 0) {
            put(r, { file: slot(fd).file, via: `fcntl(${fd}, ${cmd === F_DUPFD ? 'F_DUPFD' : 'F_DUPFD_CLOEXEC'}) = ${r} ${when()}`, cloexec: cmd === F_DUPFD_CLOEXEC });
          } else if (cmd === F_SETFD && ret === 0n) slot(fd).cloexec = ((a.get('arg') ?? 0n) & 1n) === 1n;
          break;
        }
        case 'open':
        case 'openat':
        case 'openat2':
        case 'creat': {
          if (r < 0) break;
          const via = `${call.name}() = ${r} ${when()}`;
          const flags = call.name === 'creat' ? 0n : call.name === 'openat2' ? undefined : a.get('flags');
          put(r, { file: { origin: via }, via, cloexec: flags === undefined ? undefined : (flags & O_CLOEXEC) !== 0n });
          break;
        }
        case 'execve':
        case 'execveat': {
          if (ret !== 0n) break;
          // The numbers not known to stay open across exec are free from now on.
          const how = `${call.name}() ${when()} (close-on-exec)`;
          for (const [fd, s] of [...table]) if (s.cloexec !== false) free(fd, how);
          execd = how;
          ranges = [];
          break;
        }
        default:
          break;
      }
      continue;
    }
    const ev = parseTraceLine(line);
    if (!ev) continue;
    if (ev.event === 'tracing_mark_write' || ev.event === 'print') {
      if (!slept && ev.body.includes(SNAPSHOT_MARK)) {
        // What each number held while the writer slept: the file the model has there gets that target. A file the
        // model has at a number /proc/<writer>/fd did not show was closed by a path the trace missed: no target.
        for (const [fd, target] of snapshot) {
          const s = slot(fd);
          if (s.file.target === undefined) s.file.target = target;
        }
        slept = true;
      }
      continue;
    }
    if ((ev.tgid ?? ev.pid) !== writer || !ev.event.startsWith('sys_')) continue;
    const name = ev.event.slice(4);
    const args = syscallArgs(ev.body);
    const w = WCHAR_CALLS.find((c) => c.name === name);
    if (w) {
      const fd = fdArg(args.get(w.fd));
      if (fd !== undefined) {
        writing.set(ev.pid, { name, at: writes.length });
        writes.push({ fd, slot: { ...slot(fd) }, bytes: 0 });
      }
      continue;
    }
    if (name === 'io_uring_setup') unfollowed ??= `the writer set up an io_uring (io_uring_setup ${when()}): its ring can close and open fds without a system call the trace sees`;
    if (FD_CALLS.includes(name)) pending.set(ev.pid, { name, args });
  }
  if (!slept) unfollowed ??= `the mark of the look at /proc/<writer>/fd (${SNAPSHOT_MARK}) is not in the trace`;

  // One entry per number and file, in the order first written.
  const groups = new Map<string, { fd: number; slot: Slot; calls: number; bytes: number }>();
  const ids = new Map<File, number>();
  for (const x of writes) {
    if (!ids.has(x.slot.file)) ids.set(x.slot.file, ids.size);
    const key = `${x.fd}/${ids.get(x.slot.file)}/${x.slot.via ?? ''}`;
    const g = groups.get(key);
    if (g) { g.calls++; g.bytes += x.bytes; } else groups.set(key, { fd: x.fd, slot: x.slot, calls: 1, bytes: x.bytes });
  }
  return {
    writes: [...groups.values()].map(({ fd, slot: s, calls, bytes }) => ({
      fd, calls, bytes,
      ...(s.file.target === undefined ? {} : { target: s.file.target }),
      ...(s.via === undefined ? {} : { via: s.via === s.file.origin || s.file.target !== undefined ? s.via : `${s.via}; the file: ${s.file.origin}` }),
    })),
    ...(unfollowed ? { unfollowed } : {}),
  };
}
