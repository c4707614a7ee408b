/**
 * System Lab 4's judge: pure functions from the evidence of experiment.ts to
 * the facts each test asserts, with a message that shows the kernel's view
 * and says what to fix.
 */
import { parseSignalGenerate, formatGenerated } from '../../../helpers/kernel/signals.js';
import { bit, pipeCapacity, type Run } from './experiment.js';
import type { Verdict } from '../../../helpers/harness/verdict.js';

export type { Verdict };

const stuck = (r: Run) => (r.stuck ? `; the run stopped early: ${r.stuck}` : '');
const out = (r: Run) => (r.output.trim() ? `; the program's output: ${r.output.trim().split('\n').slice(-6).join(' | ')}` : '');

/** The pipe's capacity as the kernel reports it (F_GETPIPE_SZ through the writer's fd). */
export function pipeSize(r: Run): Verdict<{ writerIsChild: boolean; capacity?: number }> {
  const e = r.pipe;
  const want = pipeCapacity(r.plan.pipeBytes);
  return {
    got: { writerIsChild: e.writer !== undefined && e.writerParent === r.pid, capacity: e.capacity },
    want: { writerIsChild: true, capacity: want },
    message: e.writer === undefined
      ? `'pipe ${r.plan.pipeBytes} ${r.plan.pipeTotal}' gave no writer pid${stuck(r)}${out(r)}`
      : `asked for a pipe of ${r.plan.pipeBytes} bytes: the kernel rounds that up to ${want} (whole pages, a power of two); ` +
        `F_GETPIPE_SZ on the writer's pipe says ${e.capacity ?? `nothing (${e.probeError})`}` +
        `${e.capacity === 65536 ? ' — the default: set the capacity with fcntl(2) F_SETPIPE_SZ before the writer writes' : ''}; ` +
        `writer ${e.writer} (parent ${e.writerParent ?? 'gone'}, the program is ${r.pid})${stuck(r)}`,
  };
}

/** The writer blocked on a full pipe: S in pipe_write, the pipe holding (nearly) its capacity. */
export function pipeBlocks(r: Run): Verdict<{ sleeping: boolean; inPipeWrite: boolean; onProgramsPipe: boolean; pipeFull: boolean }> {
  const e = r.pipe;
  const cap = e.capacity ?? pipeCapacity(r.plan.pipeBytes);
  const where = `${e.wchan ?? ''} ${e.stack.join(' ')}`;
  const full = e.inPipe !== undefined && e.inPipe >= cap / 2 && e.inPipe <= cap;
  return {
    got: { sleeping: e.state === 'S', inPipeWrite: /pipe_write/.test(where), onProgramsPipe: e.blockedOnShared === true, pipeFull: full },
    want: { sleeping: true, inPipeWrite: true, onProgramsPipe: true, pipeFull: true },
    message: `writer ${e.writer ?? '(none)'} writing ${r.plan.pipeTotal} bytes into a pipe of ${cap}: state ${e.state ?? '?'}, wchan ${e.wchan || '-'}, ` +
      `stack ${e.stack.join(' < ') || '-'}; /proc/<writer>/syscall ${e.syscall ?? '?'}: it writes to its fd ${e.blockedFd ?? '?'} → ${e.blockedTarget ?? '?'}, ` +
      `${e.blockedOnShared ? 'the pipe the program holds' : 'NOT a pipe the program holds — the writer must sleep on the program\'s pipe, not on another one'}; ` +
      `the kernel holds ${e.inPipe ?? '?'} bytes in the pipe (FIONREAD). ` +
      `A writer of more than the capacity must sleep in the kernel's pipe_write (state S) with the pipe full, until a reader makes room — ` +
      `write all <total> bytes with write(2) and let the program read nothing before 'drain'${stuck(r)}`,
  };
}

/** drain: the writer finished (exited), and the program read every byte (its rchar grew by the total). */
export function pipeDrains(r: Run): Verdict<{ writerFinished: boolean; notSignalled: boolean; writerWroteAll: boolean; writesOnlyToThePipe: boolean; pipeGotAll: boolean; readAll: boolean }> {
  const e = r.pipe;
  const total = r.plan.pipeTotal;
  const grew = e.rcharBefore !== undefined && e.rcharAfter !== undefined ? e.rcharAfter - e.rcharBefore : undefined;
  // A reaped child's I/O counts are added to its parent's /proc/<pid>/io (wait_task_zombie): the writer's writes show in the program's wchar.
  // A writer the program has not reaped yet (a zombie) still shows its own wchar.
  const wrote = e.writerWcharAfter ?? (e.wcharBefore !== undefined && e.wcharAfter !== undefined ? e.wcharAfter - e.wcharBefore : undefined);
  // wchar counts the writes to every file: each call that adds to it must have gone to the pipe the writer sleeps on —
  // the file its fd number held at that moment (fd-table.ts follows dup2/dup3/fcntl/close… in the same trace), not the number.
  const elsewhere = (e.writerWrites ?? []).filter((w) => e.blockedTarget === undefined || w.target !== e.blockedTarget);
  const onlyPipe = e.writerWrites === undefined || (!e.writeTraceLost && !e.fdTableUnfollowed && elsewhere.length === 0);
  // wchar also counts what the program (and any other child it reaps) writes anywhere: the pipe's own count is what the
  // writer's calls to the pipe returned (their sys_exit_… values), and that must be the total.
  const toPipe = (e.writerWrites ?? []).filter((w) => !elsewhere.includes(w)).reduce((a, w) => a + w.bytes, 0);
  const pipeGotAll = e.writerWrites === undefined || (toPipe >= total && toPipe <= total + 4096);
  const byFd = e.writerWrites === undefined ? '(syscall tracepoints missing: not judged)'
    : `${e.writerWrites.map((w) => `fd ${w.fd} → ${w.target ?? '(not open when it slept)'}${w.via ? ` (${w.via})` : ''} ${w.calls} call${w.calls === 1 ? '' : 's'} ${w.bytes} bytes${elsewhere.includes(w) ? ' — not the pipe' : ''}`).join('; ') || 'none'}` +
      `${e.fdTableUnfollowed ? ` (its fd table not followed: ${e.fdTableUnfollowed})` : ''}` +
      `${e.writeTraceLost ? ' (the trace lost events: too many small writes to follow; write in larger blocks)' : ''}`;
  const signals = e.writer === undefined ? [] : r.events.map(parseSignalGenerate).filter((g) => g !== undefined).filter((g) => g.pid === e.writer && g.sig < 32);
  return {
    got: {
      writerFinished: e.writerAfter === 'gone' || e.writerAfter === 'Z',
      notSignalled: signals.length === 0,
      writerWroteAll: wrote !== undefined && wrote >= total && wrote <= total + 4096,
      writesOnlyToThePipe: onlyPipe,
      pipeGotAll,
      readAll: grew !== undefined && grew >= total && grew <= total + 4096,
    },
    want: { writerFinished: true, notSignalled: true, writerWroteAll: true, writesOnlyToThePipe: true, pipeGotAll: true, readAll: true },
    message: `after 'drain' the writer ${e.writer ?? '(none)'} is ${e.writerAfter ?? '?'}${e.writerAfterWchan ? ` (wchan ${e.writerAfterWchan})` : ''}; ` +
      `signals to it (signal_generate): ${signals.map(formatGenerated).join('; ') || 'none'}; ` +
      `the program's wchar grew by ${wrote ?? '?'} bytes once the writer was reaped (a reaped child's writes count for its parent; the writer had written ${e.writerWchar ?? '?'} before drain); ` +
      `the writer's writes by fd (syscalls:sys_enter_write…): ${byFd}; ` +
      `${e.writerWrites === undefined ? '' : `the pipe got ${toPipe} bytes of its writes (what they returned, sys_exit_write…) for ${total}; `}` +
      `and its rchar (/proc/<pid>/io) grew by ${grew ?? '?'} bytes for ${total} written: ` +
      `let the writer finish its own write(2)s of all ${total} bytes (do not kill it or stop it early), read the pipe until read(2) returns 0 (every writer closed it), then reap the writer with waitpid(2)${stuck(r)}`,
  };
}

/** The messages wait in the kernel: QSIZE is the sum of their sizes, mq_curmsgs their number. */
export function mqHolds(r: Run): Verdict<{ qsize?: number; curmsgs?: number }> {
  const e = r.mq;
  const sum = r.plan.messages.reduce((a, m) => a + m.size, 0);
  return {
    got: { qsize: e.qsize, curmsgs: e.curmsgs },
    want: { qsize: sum, curmsgs: r.plan.messages.length },
    message: `sent ${r.plan.messages.length} messages (${r.plan.messages.map((m) => `${m.size} B prio ${m.prio}`).join(', ')}, ${sum} bytes) to ${r.plan.mqName}: ` +
      `the queue's file in the mqueue file system says ${e.fileLine ?? 'nothing (no such queue)'}; mq_getattr says ${e.curmsgs ?? '?'} messages ` +
      `(maxmsg ${e.maxmsg ?? '?'}, msgsize ${e.msgsize ?? '?'})${e.probeError ? ` — ${e.probeError}` : ''}. ` +
      `Create the queue with room for every message and send each with its own size, leaving them in the queue${stuck(r)}`,
  };
}

/** The order the kernel hands them out: highest priority first, oldest first within one; mqdone removes the name. */
export function mqOrder(r: Run): Verdict<{ received: string[]; emptied: boolean; removed: boolean }> {
  const e = r.mq;
  const want = r.plan.messages.map((m, i) => ({ ...m, i })).sort((a, b) => b.prio - a.prio || a.i - b.i).map((m) => `${m.prio}:${m.size}`);
  const got = e.received.map((m) => `${m.prio}:${m.size}`);
  return {
    got: { received: got, emptied: e.qsizeAfter === 0, removed: e.existsAfterDone === false },
    want: { received: want, emptied: true, removed: true },
    message: `the kernel handed out (prio:size) ${got.join(' ') || 'nothing'}; sent in the order ${r.plan.messages.map((m) => `${m.prio}:${m.size}`).join(' ')} ` +
      `it must give ${want.join(' ')} (highest priority first, first-in first-out within a priority) — send each message with its priority (mq_send(3)). ` +
      `QSIZE after: ${e.qsizeAfter ?? '?'}; after 'mqdone' the name ${e.existsAfterDone ? 'is still there: remove it with mq_unlink(3)' : 'is gone'}${stuck(r)}`,
  };
}

/**
 * A mapping of an object (a file, a memfd, shmem): an inode other than 0, or a System V segment, whose inode is its id
 * (the first segment of an IPC namespace has id 0: a contained program's namespace is its own).
 */
const isObject = (v: { inode: number; path: string }) => v.inode !== 0 || /^\/SYSV[0-9a-f]{8}\b/.test(v.path);

/** One object mapped shared in both, the same frames, the child's words read in the program. */
export function shmShared(r: Run): Verdict<{ childOfProgram: boolean; sharedMapping: boolean; sameObject: boolean; sameFrames: boolean; childWrote: boolean; wordsSeen: boolean }> {
  const e = r.shm;
  const p = e.programVma;
  const c = e.childVma;
  const framesOk = e.frames.length === r.plan.shmPages && e.frames.every((f) => f.program !== 0n && f.program === f.child);
  const words = Array.from({ length: r.plan.shmPages }, (_, i) => `${r.plan.shmToken} ${i}`);
  const stores = childStores(r);
  const unwritten = Array.from({ length: r.plan.shmPages }, (_, i) => i).filter((i) => !e.childWrites?.includes(i) && !stores.includes(i));
  const bad = e.frames.map((f, i) => ({ ...f, i })).filter((f) => !f.program || f.program !== f.child).slice(0, 4)
    .map((f) => `page ${f.i}: program ${f.program ? `0x${f.program.toString(16)}` : 'not present'}, child ${f.child ? `0x${f.child.toString(16)}` : 'not present'}`);
  return {
    got: {
      childOfProgram: e.child !== undefined && e.childParent === r.pid,
      sharedMapping: p?.perms[3] === 's' && c?.perms[3] === 's',
      sameObject: !!p && !!c && isObject(p) && p.inode === c.inode && p.dev === c.dev && p.path === c.path,
      sameFrames: framesOk,
      // The child wrote every page itself: a write fault of the child on each page of its mapping (not traced: not judged),
      // or, for a page it read first (no write fault follows), a store through its own PTE (childStores).
      childWrote: e.childWrites === undefined || unwritten.length === 0,
      wordsSeen: e.words.length === words.length && e.words.every((w, i) => w === words[i]),
    },
    want: { childOfProgram: true, sharedMapping: true, sameObject: true, sameFrames: true, childWrote: true, wordsSeen: true },
    message: `shm ${r.plan.shmPages} pages: child ${e.child ?? '(none)'} (parent ${e.childParent ?? '?'}, the program is ${r.pid}); ` +
      `mappings of that length: ${e.candidates.join('; ') || 'none'}; frames (pagemap): ${bad.length ? bad.join('; ') : e.frames.length ? 'all the same' : 'none read'}; ` +
      `the child's write faults (exceptions:page_fault_user) on pages ${e.childWrites === undefined ? '(not traced on this kernel)' : `${e.childWrites.join(',') || 'none'} of 0..${r.plan.shmPages - 1} (its faults page:error_code ${e.childFaults?.slice(0, 8).join(' ') || 'none'})` +
        `${stores.length ? `; pages it read first and then wrote through its own page table entry (no write fault: dirty in its smaps, ${e.childDirtyPages} of ${r.plan.shmPages} pages, with a clean folio in /proc/kpageflags): ${stores.join(',')}` : ''}` +
        `${unwritten.length ? `; pages the child did not write: ${unwritten.join(',')} (its mapping's dirty pages (smaps) ${e.childDirtyPages ?? '?'} of ${r.plan.shmPages}, folios dirty ${(e.folioDirty ?? []).map((d, i) => (d ? i : undefined)).filter((i) => i !== undefined).join(',') || 'none'}) — the child must write "<token> <i>" into every page itself, not only read what the program wrote` : ''}`}; ` +
      `the program's memory (/proc/<pid>/mem) at page 0..: ${e.words.slice(0, 3).map((w) => `'${w}'`).join(', ') || '-'} (want '${words[0]}', …). ` +
      `Map one shared object (MAP_SHARED of a memfd, a POSIX shm object or a System V segment) in both, let the child write every page, then read each page in the program${stuck(r)}`,
  };
}

/**
 * The pages the child wrote without a write fault: it read them first (a shared shmem page is mapped writable on a
 * read fault), so its store only set the dirty bit of its own PTE. Credited when the child's mapping counts every page
 * dirty (smaps: its PTE dirty, or the folio dirty) and this page's folio is clean (kpageflags): whatever else writes a
 * page — a write fault of the program, write(2) to the object, /proc/<pid>/mem — dirties the folio itself.
 */
export function childStores(r: Run): number[] {
  const e = r.shm;
  if (e.childDirtyPages !== r.plan.shmPages || !e.folioDirty || e.folioDirty.length !== r.plan.shmPages) return [];
  return e.folioDirty.map((d, i) => (d === false && !e.childWrites?.includes(i) ? i : -1)).filter((i) => i >= 0);
}

/** sigsend: the probe's sigwait got the value, from the program, as a queued signal (si_code SI_QUEUE), and the kernel recorded it. */
export function sigSend(r: Run): Verdict<{ heardValue?: number; fromProgram: boolean; siQueue: boolean; generated: boolean }> {
  const e = r.sig;
  const m = e.heard?.match(/^(\d+) (-?\d+) (-?\d+)$/);
  const gens = r.events.map(parseSignalGenerate).filter((g) => g !== undefined).filter((g) => g.pid === e.probePid && g.sig === r.plan.sendSig);
  return {
    got: { heardValue: m ? Number(m[3]) : undefined, fromProgram: !!m && Number(m[1]) === r.pid, siQueue: !!m && Number(m[2]) === -1, generated: gens.some((g) => g.sender === r.pid && g.code === -1) },
    want: { heardValue: r.plan.sendValue, fromProgram: true, siQueue: true, generated: true },
    message: `'sigsend ${e.probePid} ${r.plan.sendSig} ${r.plan.sendValue}': the receiver's sigtimedwait heard ${e.heard ?? 'nothing'} (sender pid, si_code, value; SI_QUEUE is -1); ` +
      `signal_generate for it: ${gens.map(formatGenerated).join('; ') || 'none'}. Queue the signal with its value (sigqueue(3)), not kill(2)${stuck(r)}`,
  };
}

const sigs = (m: bigint | undefined, only: readonly number[]) => (m === undefined ? '?' : only.filter((s) => m & bit(s)).join(',') || 'none');

/** Blocked real-time signals wait: SigBlk has both, ShdPnd has both, SigQ counts at least the ones queued. */
export function sigPending(r: Run): Verdict<{ alive: boolean; blocked: boolean; pending: boolean; counted: boolean }> {
  const e = r.sig;
  const [a, b] = r.plan.rtSignals;
  const both = bit(a) | bit(b);
  const pnd = (e.shdPnd ?? 0n) | (e.sigPnd ?? 0n);
  return {
    got: { alive: e.aliveAfterQueue, blocked: e.sigBlk !== undefined && (e.sigBlk & both) === both, pending: (pnd & both) === both, counted: (e.sigQ ?? 0) >= r.plan.queued.length },
    want: { alive: true, blocked: true, pending: true, counted: true },
    message: `after 'sigblock ${a} ${b}' the spec queued ${r.plan.queued.length} signals (${r.plan.queued.map((q) => `${q.sig}:${q.value}`).join(' ')}): ` +
      (e.aliveAfterQueue
        ? `/proc/${r.pid}/status SigBlk has ${sigs(e.sigBlk, [a, b])}, ShdPnd|SigPnd has ${sigs(pnd, [a, b])}, SigQ ${e.sigQ ?? '?'} queued. `
        : `the program ended (${e.programExit ?? '?'}) once they came (signal_generate: ${r.events.map(parseSignalGenerate).filter((g) => g !== undefined && g.pid === r.pid).slice(0, 3).map((g) => formatGenerated(g!)).join('; ') || 'none recorded'}): a real-time signal's default action ends the process. `) +
      `Block them (sigprocmask(2)) so that the kernel keeps them queued, each with its value, until the program takes them${stuck(r)}`,
  };
}

/** sigtake: the program took them in the kernel's order (lower signal first, FIFO within one) and showed each value (task_rename). */
export function sigTaken(r: Run): Verdict<{ names: string[]; pendingAfter: string }> {
  const e = r.sig;
  const [a, b] = r.plan.rtSignals;
  const want = [...r.plan.queued.filter((q) => q.sig === a), ...r.plan.queued.filter((q) => q.sig === b)].map((q) => `v${q.value}`);
  const all = r.events.filter((x) => x.event === 'task_rename').map((x) => x.body.match(/pid=(\d+) oldcomm=.* newcomm=(\S*) oom/)).filter((m) => m && Number(m[1]) === r.pid).map((m) => m![2]!);
  // The renames the program made itself: those after its exec (which names it after its file).
  const renames = all.slice(all.lastIndexOf(r.execName) + 1);
  return {
    got: { names: renames, pendingAfter: sigs(e.shdPndAfter, [a, b]) },
    want: { names: want, pendingAfter: 'none' },
    message: `the kernel's task_rename events of the program: ${renames.join(' ') || 'none'} (its comm now: ${e.comm ?? '?'}); ` +
      `queued ${r.plan.queued.map((q) => `${q.sig}:${q.value}`).join(' ')} — the kernel delivers the lower signal first and one signal's values in the order queued, ` +
      `so the names must be ${want.join(' ')}; still pending after sigtake: ${sigs(e.shdPndAfter, [a, b])}. ` +
      `Take them with sigwaitinfo(2) on the blocked set and rename with the value in siginfo (prctl(2) PR_SET_NAME)${stuck(r)}`,
  };
}

/** At the end of its input the program exits 0 and no child of it is left. */
export function ending(r: Run): Verdict<{ exit: string; leftovers: number[] }> {
  const x = r.exit;
  const exit = x ? (x.signal ? `killed by ${x.signal}` : `exit ${x.exitCode}`) : 'still running';
  return {
    got: { exit, leftovers: r.leftovers },
    want: { exit: 'exit 0', leftovers: [] },
    message: `after its input closed the program: ${exit}; children still alive: ${r.leftovers.join(' ') || 'none'}${stuck(r)}${out(r)}`,
  };
}
