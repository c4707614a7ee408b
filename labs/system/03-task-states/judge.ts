/**
 * System Lab 3's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`) to the facts each test asserts, with the message that
 * shows the kernel's evidence. Unit-tested on made-up runs in
 * tests/lab-units/system/03-task-states/judge.test.ts.
 */
import type { TraceEvent } from '../../../helpers/kernel/tracefs.js';
import { formatGenerated, parseSignalGenerate, SIGNAL_RESULTS, type GeneratedSignal } from '../../../helpers/kernel/signals.js';
import { parseSwitch, type Switch } from '../../../helpers/kernel/sched.js';
import type { Child, ProcView, Run, TaskState } from './experiment.js';

/** The R child must have run for at least this share of the window (2 CPUs, ≤ 2 spinners, the spec and the host's load). */
export const MIN_RUN_SHARE = 0.1;
/** A sleeping child may use this much CPU in the window (ns): none, in practice. */
export const MAX_SLEEP_RUN_NS = 1_000_000;
/** The stop signals: SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU. */
export const STOP_SIGNALS: readonly number[] = [19, 20, 21, 22];
const SIGTERM = 15;
const SIGCHLD = 17;

/** signal_generate (helpers/kernel/signals.ts: pid is the target) and signal_deliver (`sig=15 errno=0 code=0 sa_handler=… sa_flags=…`: the line's task). */
export function parseSignal(e: TraceEvent): { sig: number; target: number; res?: number } | undefined {
  if (e.event === 'signal_generate') {
    const g = parseSignalGenerate(e);
    return g ? { sig: g.sig, target: g.pid, res: SIGNAL_RESULTS.indexOf(g.result as (typeof SIGNAL_RESULTS)[number]) } : undefined;
  }
  const sig = e.body.match(/\bsig=(\d+)/);
  return e.event === 'signal_deliver' && sig ? { sig: Number(sig[1]), target: e.pid } : undefined;
}

/** When `pid` exited (sched_process_exit of that task), or undefined. */
export function exitTs(events: readonly TraceEvent[], pid: number): number | undefined {
  return events.find((e) => e.event === 'sched_process_exit' && e.pid === pid)?.ts;
}

/** When `pid` took a SIGKILL (its own signal_deliver of signal 9), or undefined. */
export function killedAt(events: readonly TraceEvent[], pid: number): number | undefined {
  return events.find((e) => e.event === 'signal_deliver' && e.pid === pid && parseSignal(e)?.sig === 9)?.ts;
}

/** The timestamp of the window's end marker (everything before it happened before the spec sent a signal). */
export function windowEnd(r: Run): number {
  return r.events.find((e) => e.event === 'tracing_mark_write' || e.body.includes('kl-task-states: window over'))?.ts ?? Infinity;
}

const switchesOf = (r: Run, pid: number, before = windowEnd(r)) =>
  r.events.map(parseSwitch).filter((s): s is Switch => s !== undefined && s.prevPid === pid && s.ts < before);

const showView = (v?: ProcView) => (v?.stat
  ? `stat state ${v.stat.state}, ppid ${v.stat.ppid}, wchan ${v.wchan || '?'}, TracerPid ${v.tracerPid ?? '?'}${v.stack.length ? `, stack ${v.stack.slice(0, 3).join(' < ')}` : ''}`
  : 'gone from /proc');
const showSamples = (c: Child) => (c.samples.length ? c.samples.join('') : 'none');
const ms = (ns?: number) => (ns === undefined ? '?' : `${(ns / 1e6).toFixed(1)} ms`);

/** Every command answered with a new child of the program's own. */
export function answers(r: Run) {
  const pids = r.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  const ofProgram = r.children.filter((c) => c.view?.stat?.ppid === r.pid && c.view.tgid === c.pid);
  const threads = r.children.filter((c) => c.pid !== undefined && c.view?.tgid !== undefined && c.view.tgid !== c.pid);
  const rows = r.children.map((c) => `  ${c.asked} → ${c.line === undefined ? '(no line)' : `'${c.line}'`}: ${c.pid ? showView(c.view) : 'no pid'}`);
  return {
    facts: { answered: pids.length, distinct: new Set(pids).size, childrenOfTheProgram: ofProgram.length },
    message: `the spec wrote ${r.order.length} commands (${r.order.join(' ')}) to the stdin of program ${r.pid}; for each it expects a line with the pid of a new child ` +
      `of the program (ppid ${r.pid} in /proc/<pid>/stat, its own thread group: Tgid = pid in /proc/<pid>/status). What came back:\n${rows.join('\n')}` +
      `${threads.length ? `\nnot processes but threads of another process (Tgid in /proc/<pid>/status): ${threads.map((c) => `${c.pid} (${c.asked}) thread of ${c.view!.tgid}`).join(', ')}: each command makes a new process with fork(2), not a thread` : ''}${r.stuck ? `\n${r.stuck}` : ''}\nstdout+stderr: ${r.output.trim().slice(-300) || '(none)'}`,
  };
}

const ofState = (r: Run, s: TaskState) => r.children.filter((c) => c.asked === s);

/** Facts every child shares: it exists as the program's child, settled in the state asked, stayed there for the whole window, and its last switch before the window ended says so. */
function common(r: Run, c: Child) {
  const sw = c.pid ? switchesOf(r, c.pid) : [];
  const last = sw[sw.length - 1];
  return {
    facts: {
      child: c.view?.stat?.ppid === r.pid,
      state: c.view?.stat?.state,
      window: c.samples.length > 0 && c.samples.every((s) => s === c.asked),
    },
    last,
    sw,
    evidence: `child ${c.pid ?? '?'} (asked '${c.asked}', printed '${c.line ?? ''}'): states while settling ${c.seen.join('→') || 'none'}; ${showView(c.view)}; ` +
      `sampled every 50 ms over the window: ${showSamples(c)}; CPU in the window ${ms(c.runNs)}, switches ${c.switches ?? '?'}; its last sched_switch before the window ended: ${last?.line ?? 'none'}` +
      (r.lost ? `\n${LOST_NOTE}` : ''),
  };
}

/**
 * Said with every child's evidence when the trace lost events: the ring buffer (8 MiB per CPU) overwrote its oldest,
 * so a missing sched_switch or signal may be the trace's, not the program's.
 */
export const LOST_NOTE = 'NOTE: the kernel\'s trace of this run lost events (its ring buffer filled and overwrote the oldest), so an event missing above may be ' +
  'lost, not absent: a child that switches very often (sched_yield in a loop) or a busy machine fills it. Run the lab again on a quieter machine; ' +
  'a child that sleeps or spins without yielding makes far fewer events.';

/** R: runnable all the time, running (CPU time grows), switched out only by preemption. */
export function running(r: Run, windowMs: number) {
  return ofState(r, 'R').map((c) => {
    const k = common(r, c);
    const slept = k.sw.filter((s) => !s.prevState.startsWith('R'));
    return {
      pid: c.pid,
      facts: { ...k.facts, ran: (c.runNs ?? 0) >= MIN_RUN_SHARE * windowMs * 1e6, sleepingSwitches: slept.length },
      expected: { child: true, state: 'R', window: true, ran: true, sleepingSwitches: 0 },
      message: `${k.evidence}\nexpected state R throughout, at least ${MIN_RUN_SHARE * windowMs} ms of CPU in the ${windowMs} ms window (/proc/<pid>/schedstat), ` +
        `and every switch away from it leaves it runnable (prev_state=R or R+: preempted, or a sched_yield); switches where it went to sleep: ${slept.slice(0, 3).map((s) => s.line).join('; ') || 'none'}. ` +
        `A running task never calls into a sleep: a loop without system calls that block`,
    };
  });
}

/** S: asleep, woken by a signal: SIGSTOP stops it at once, SIGCONT sends it back to sleep. */
export function sleeping(r: Run) {
  return ofState(r, 'S').map((c) => {
    const k = common(r, c);
    const a = c.pid ? r.actions.sleepStop.get(c.pid) : undefined;
    return {
      pid: c.pid,
      facts: { ...k.facts, idle: c.runNs !== undefined && c.runNs <= MAX_SLEEP_RUN_NS, lastSwitch: k.last?.prevState, stopped: a?.stopped, resumed: a?.resumed },
      expected: { child: true, state: 'S', window: true, idle: true, lastSwitch: 'S', stopped: 'T', resumed: 'S' },
      message: `${k.evidence}\nafter SIGSTOP: ${a?.stopped ?? 'not sent'}; after SIGCONT: ${a?.resumed ?? 'not sent'}. ` +
        `Expected an interruptible sleep (TASK_INTERRUPTIBLE): state S, no CPU in the window, prev_state=S when it left the CPU, ` +
        `and a signal wakes it: SIGSTOP stops it at once (T), SIGCONT puts it back to sleep (S)`,
    };
  });
}

const inVforkWait = (v?: ProcView) => Boolean(v && [v.wchan ?? '', ...v.stack].some((f) => /kernel_clone|wait_for_vfork_done|vfork/.test(f)));

/** D: asleep in the vfork wait: not woken by anything but the end of that wait or a fatal signal. */
export function uninterruptible(r: Run) {
  return ofState(r, 'D').map((c) => {
    const k = common(r, c);
    return {
      pid: c.pid,
      facts: { ...k.facts, idle: c.runNs !== undefined && c.runNs <= MAX_SLEEP_RUN_NS, lastSwitch: k.last?.prevState, inVforkWait: inVforkWait(c.view) },
      expected: { child: true, state: 'D', window: true, idle: true, lastSwitch: 'D', inVforkWait: true },
      message: `${k.evidence}\nexpected state D throughout, prev_state=D when it left the CPU, and the kernel's wait channel or stack in the vfork wait ` +
        `(kernel_clone / wait_for_vfork_done: the parent of a vfork(2) child sleeps there until that child execs or exits)`,
    };
  });
}

const hasSig = (mask: bigint | undefined, sig: number) => mask !== undefined && ((mask >> BigInt(sig - 1)) & 1n) === 1n;

/** The first D child: SIGTERM (caught) stays pending while it waits; the end of the wait wakes it and the signal is delivered. */
export function termWhileWaiting(r: Run) {
  const t = r.actions.termed;
  if (!t) return { facts: { tested: false }, message: `no child reached state D (or none was asked): ${ofState(r, 'D').map((c) => common(r, c).evidence).join('\n') || 'none'}` };
  // The wait ends when the vfork child lets go of the memory (do_exit → exit_mm), before its sched_process_exit: on 6.12 the
  // woken parent took its SIGTERM 8 µs before that event. The child's own delivery of the SIGKILL comes before both.
  const kidEnd = Math.min(...t.vforkKids.map((k) => killedAt(r.events, k) ?? exitTs(r.events, k) ?? Infinity));
  const kidExit = Math.min(...t.vforkKids.map((k) => exitTs(r.events, k) ?? Infinity));
  const delivered = r.events.filter((e) => e.event === 'signal_deliver' && e.pid === t.pid && parseSignal(e)?.sig === SIGTERM);
  const state = t.afterTerm.stat?.state ?? 'gone';
  return {
    facts: {
      tested: true,
      vforkChild: t.vforkKids.length > 0,
      stillD: state,
      termCaught: hasSig(t.afterTerm.caught, SIGTERM),
      termPending: hasSig(t.afterTerm.pending, SIGTERM),
      wokeWhenTheWaitEnded: t.afterEnd ? t.afterEnd.stat?.state !== 'D' : false,
      deliveredAfterTheWait: delivered.some((e) => e.ts > kidEnd),
    },
    message: `child ${t.pid}: its children (the vfork child) ${t.vforkKids.join(', ') || 'none'}; ${IGNORE_TEXT} after SIGTERM: ${showView(t.afterTerm)}, pending signals 0x${(t.afterTerm.pending ?? 0n).toString(16)}, caught (SigCgt) 0x${(t.afterTerm.caught ?? 0n).toString(16)} ` +
      `(SIGTERM is bit 15, 0x4000); after its vfork child was killed: ${t.afterEnd ? showView(t.afterEnd) : 'not done'}; the vfork child took its SIGKILL at ${Number.isFinite(kidEnd) ? kidEnd.toFixed(6) : 'not seen'} and exited at ${Number.isFinite(kidExit) ? kidExit.toFixed(6) : 'not seen'}, ` +
      `signal_deliver of SIGTERM to ${t.pid} at ${delivered.map((e) => e.ts.toFixed(6)).join(', ') || 'never'}.\n` +
      (state === 'Z' || state === 'gone'
        ? `SIGTERM ended the child while it waited: a signal whose default action kills the process is fatal, and a fatal signal wakes even a killable sleep. Catch SIGTERM (sigaction) before vfork: a caught signal cannot wake it.`
        : !hasSig(t.afterTerm.caught, SIGTERM) && state === 'D'
          ? `SIGTERM is not caught (SigCgt lacks bit 15): blocking or ignoring it is not the lesson — install on_term with sigaction(SIGTERM) before vfork, so a caught, non-fatal signal waits for the wait to end.`
          : `Expected: still D with SIGTERM caught and pending while the vfork child lives, then awake and the SIGTERM delivered (its handler run) once that child is gone.`),
  };
}
const IGNORE_TEXT = '0.4 s';
const IGNORE_TEXT_REACT = 'up to 1.5 s';

/** The second D child: SIGKILL ends the vfork wait (TASK_KILLABLE) while the vfork child still lives. */
export function killedWhileWaiting(r: Run) {
  const k = r.actions.killed;
  if (!k) return { facts: { tested: false }, message: `fewer than two children reached state D: ${ofState(r, 'D').map((c) => `${c.pid}: ${c.view?.stat?.state ?? 'no pid'}`).join(', ') || 'none asked'}` };
  const dExit = exitTs(r.events, k.pid);
  const kidExits = k.vforkKids.map((p) => exitTs(r.events, p));
  const after = k.after?.stat?.state ?? 'gone';
  return {
    facts: {
      tested: true,
      vforkChildAlive: k.kidsAliveAtKill.length > 0,
      ended: after === 'Z' || after === 'gone',
      exitedFirst: dExit !== undefined && kidExits.every((t) => t === undefined || t >= dExit),
      vforkChildDiedWithIt: k.kidsAfter !== undefined && k.kidsAfter.length > 0 && k.kidsAfter.every((s) => s === 'Z' || s === 'gone'),
    },
    message: `child ${k.pid} in D, its vfork child(ren) ${k.vforkKids.join(', ') || 'none'} alive at the SIGKILL: ${k.kidsAliveAtKill.join(', ') || 'none'}; after SIGKILL: ${showView(k.after)}; ` +
      `sched_process_exit of ${k.pid} at ${dExit?.toFixed(6) ?? 'not seen'}, of the vfork child at ${kidExits.map((t) => t?.toFixed(6) ?? 'not seen').join(', ') || '-'}; ` +
      `the vfork child's state ${IGNORE_TEXT_REACT} after: ${k.kidsAfter?.join(', ') ?? 'not read'}${k.kidsAfter?.some((s) => s !== 'Z' && s !== 'gone') ? ' (still alive: it would outlive its parent — prctl(PR_SET_PDEATHSIG, SIGKILL) in the vfork child)' : ''}. ` +
      `Expected: the vfork wait is killable (TASK_KILLABLE): SIGKILL ends the child at once, before its vfork child ends, and the vfork child dies with it (its death signal)`,
  };
}

/** T: a group stop by a stop signal, not traced; SIGCONT ends it. */
export function stopped(r: Run) {
  const before = windowEnd(r);
  return ofState(r, 'T').map((c) => {
    const k = common(r, c);
    const stops = r.events.map((e) => ({ e, s: parseSignal(e) }))
      .filter(({ e, s }) => e.event === 'signal_generate' && e.ts < before && s !== undefined && s.target === c.pid && STOP_SIGNALS.includes(s.sig) && s.res === 0);
    const after = c.pid ? r.actions.continued.get(c.pid) : undefined;
    return {
      pid: c.pid,
      facts: { ...k.facts, tracer: c.view?.tracerPid, lastSwitch: k.last?.prevState, stopSignal: stops.length > 0, continued: after !== undefined && after !== 'T' && after !== 't' },
      expected: { child: true, state: 'T', window: true, tracer: 0, lastSwitch: 'T', stopSignal: true, continued: true },
      message: `${k.evidence}\nstop signals generated for it (signal:signal_generate, sig 19–22, delivered): ${stops.map(({ e }) => e.body).join('; ') || 'none'}; ` +
        `state after SIGCONT: ${after ?? 'not sent'}. Expected a group stop: state T, TracerPid 0, prev_state=T, stopped by SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU ` +
        `sent by the child or the program, and continued by SIGCONT`,
    };
  });
}

/** t: a ptrace stop whose tracer is the program; SIGCONT does not end it. */
export function traced(r: Run) {
  return ofState(r, 't').map((c) => {
    const k = common(r, c);
    const after = c.pid ? r.actions.tracedAfterCont.get(c.pid) : undefined;
    return {
      pid: c.pid,
      facts: { ...k.facts, tracer: c.view?.tracerTgid, lastSwitch: k.last?.prevState, afterSigcont: after },
      expected: { child: true, state: 't', window: true, tracer: r.pid, lastSwitch: 't', afterSigcont: 't' },
      message: `${k.evidence}; its tracer's thread group ${c.view?.tracerTgid ?? 'none'}; state after SIGCONT: ${after ?? 'not sent'}.\n` +
        `Expected a ptrace stop (TASK_TRACED): state t, TracerPid a thread of the program ${r.pid}, prev_state=t, ` +
        `and SIGCONT does not move it: only its tracer resumes a tracee`,
    };
  });
}

/** Z: exited, not reaped, until W; W reaps it and leaves the live children alone. */
export function zombies(r: Run) {
  const before = windowEnd(r);
  const w = r.actions.afterW;
  const live = r.children.filter((c) => c.pid && ['R', 'S', 't'].includes(c.asked) && c.view?.stat?.state === c.asked);
  const lostLive = live.filter((c) => { const s = w?.children.get(c.pid!); return !s || s.state === 'Z' || s.ppid !== r.pid; });
  return ofState(r, 'Z').map((c) => {
    const k = common(r, c);
    const exit = c.pid ? exitTs(r.events, c.pid) : undefined;
    const afterW = c.pid ? w?.children.get(c.pid) : undefined;
    return {
      pid: c.pid,
      facts: {
        ...k.facts, exited: exit !== undefined && exit < before, noThreadLeft: c.view?.tasks !== undefined && c.view.tasks.every((t) => t === c.pid), lastSwitch: k.last?.prevState,
        reapedByW: w !== undefined && afterW === undefined, programAlive: w?.program !== undefined && w.program.state !== 'Z', liveChildrenKept: lostLive.map((l) => l.pid),
      },
      expected: { child: true, state: 'Z', window: true, exited: true, noThreadLeft: true, lastSwitch: 'Z', reapedByW: true, programAlive: true, liveChildrenKept: [] },
      message: `${k.evidence}; sched_process_exit at ${exit?.toFixed(6) ?? 'not seen'}; tasks in /proc/${c.pid ?? '?'}/task: ${c.view?.tasks?.join(', ') ?? 'none'}` +
        `${c.view?.tasks?.some((t) => t !== c.pid) ? ' (only its main thread exited: a thread of it still lives, so the process has not exited — Z of a thread-group leader is not a zombie process)' : ''}; after W: ${afterW ? `still there (${afterW.state}, ppid ${afterW.ppid})` : 'gone'}, ` +
        `program ${w?.program ? `state ${w.program.state}` : 'gone'}; live children (R, S, t) gone or no longer its own after W: ${lostLive.map((l) => `${l.pid} (${l.asked})`).join(', ') || 'none'}.\n` +
        `Expected a zombie: the child has exited, every thread of it (sched_process_exit, prev_state=Z), but stays in /proc as Z, its parent the program, until the program waits for it; ` +
        `W must reap the children that exited, and only those`,
    };
  });
}

/**
 * The zombies the program left unreaped when it exited. Its last thread's exit (exit_notify → forget_original_parent →
 * reparent_leader, kernel/exit.c) hands each zombie child to the reaper above (a subreaper, else init) and tells that
 * reaper with do_notify_parent: a SIGCHLD generated in the program's own context after its sched_process_exit. Its own
 * death notice to its parent comes last (a SIGCHLD to `r.parent`); every other one is a zombie nobody here reaped.
 */
export function leftZombies(r: Run): { handedOver: GeneratedSignal[]; lastExit?: number } {
  const exits = r.events.filter((e) => e.event === 'sched_process_exit' && (e.tgid ?? e.pid) === r.pid);
  const lastExit = exits.length ? Math.max(...exits.map((e) => e.ts)) : undefined;
  if (lastExit === undefined) return { handedOver: [] };
  const sent = r.events.filter((e) => e.event === 'signal_generate' && (e.tgid ?? e.pid) === r.pid && e.ts >= lastExit)
    .map(parseSignalGenerate).filter((g): g is GeneratedSignal => g !== undefined && g.sig === SIGCHLD && g.pid !== r.pid);
  const own = sent.length && sent[sent.length - 1]!.pid === r.parent ? sent.length - 1 : -1;
  return { handedOver: sent.filter((_, i) => i !== own), lastExit };
}

/** At the end of its input the program ends every child it made and reaps it before it exits, and exits 0 by itself. */
export function ending(r: Run) {
  const progExit = exitTs(r.events, r.pid);
  const made = r.children.map((c) => c.pid).filter((p): p is number => p !== undefined && p > 0);
  const late = made.filter((p) => { const t = exitTs(r.events, p); return t === undefined || progExit === undefined || t > progExit; });
  const how = r.exit ? `${r.exit.signal ?? `exit ${r.exit.exitCode}`}` : 'still running 5 s (× LABS_TIMEOUT_SCALE) after its input closed';
  const z = leftZombies(r);
  return {
    facts: { exit: how, childrenOutlivingIt: late, survivors: r.survivors.map((s) => s.pid), zombiesLeftForTheReaper: z.handedOver.length },
    message: `after its input closed the program ${r.pid} ended with ${how} (sched_process_exit at ${progExit?.toFixed(6) ?? 'not seen'}); ` +
      `its children that had not exited before it (the sandbox ends them after): ${late.map((p) => `${p} (${r.children.find((c) => c.pid === p)?.asked}, exit ${exitTs(r.events, p)?.toFixed(6) ?? 'not seen'})`).join(', ') || 'none'}; ` +
      `still running after its end: ${r.survivors.map((s) => `${s.pid} ${s.state} ppid ${s.ppid}`).join(', ') || 'none'}; ` +
      `zombies left for the reaper: ${z.handedOver.length}${z.handedOver.length ? ` — at its exit the kernel handed ${z.handedOver.length} unreaped child(ren) to ${z.handedOver[0]!.comm} ${z.handedOver[0]!.pid} ` +
        `(signal_generate SIGCHLD from the program's exit_notify, after its last sched_process_exit at ${z.lastExit!.toFixed(6)}: ${z.handedOver.slice(0, 4).map(formatGenerated).join('; ')}): ` +
        `a child that has died stays a zombie until its parent collects it with wait(2) — killing it is not reaping it` : ''}. ` +
      `Expected: every child ended by the program (a stopped or traced child ignores all but SIGKILL) and reaped with wait(2) before it exits 0${r.lost ? `\n${LOST_NOTE}` : ''}`,
  };
}
