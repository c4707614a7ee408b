/**
 * Lab 1's experiment: each of the student's bpftrace scripts is started once
 * (helpers/kernel/bpftrace.ts), the experiment waits for its BEGIN line
 * "Tracing … Hit Ctrl-C to end." (every probe attached; never a sleep), then
 * runs its own children and collects the lines the script printed for their
 * PIDs. Without kprobes (hosts like this one) the exit script is the
 * tracepoint one. No assertions: judge.ts and the spec decide. A script
 * bpftrace rejects fails with bpftrace's own message.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { run, startBackground, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { listProbes, lostEvents, startBpftrace } from '../../../helpers/kernel/bpftrace.js';
import { exitedPids, opensOf, READY, type AttachPoints, type Exits, type Opens } from './judge.js';

/** Called with the reason when the lab takes another path than the seed's (the spec passes `adapted(ctx, …)`). */
export type Adapt = (message: string) => Promise<void>;

/** opensnoop.bt, then cat /etc/hosts <a file named at random> and ls /tmp under it. */
export async function traceOpens(): Promise<Opens> {
  // A path nobody can know in advance: only a script that prints what openat(2) received can show it.
  const random = join(await makeTempDir('bt'), `${uniqueName('open')}.txt`);
  writeFileSync(random, 'kernel labs\n');
  const bt = await startBpftrace(labSource('ebpf/01-bpftrace/opensnoop.bt'), { ready: READY });
  let cat: RunResult | undefined, ls: RunResult | undefined, lines: string[] = [];
  // On a machine busy with builds the perf buffer can overflow ("Lost N events"): run the pair again, up to 3 times.
  for (let attempt = 0; attempt < 3; attempt++) {
    cat = await run('cat', ['/etc/hosts', random], { timeoutMs: 10_000 });
    ls = await run('ls', ['/tmp'], { timeoutMs: 10_000 });
    const [c, l] = [cat.pid, ls.pid];
    lines = await bt.settle((x) => opensOf(x, c).some((o) => o.path === random) && opensOf(x, l).some((o) => o.path === '/tmp'), 4_000);
    if (opensOf(lines, c).length && opensOf(lines, l).length) break;
  }
  await bt.stop();
  if (!cat || !ls) throw new Error('unreachable');
  return { random, catPid: cat.pid, lsPid: ls.pid, lines, lost: lostEvents(bt.process.output()) };
}

/** exits_kprobe.bt (exits_tracepoint.bt without kprobes), then reaped children and one still alive under it. */
export async function traceExits(adapt: Adapt): Promise<Exits> {
  const caps = await capabilities();
  const script = caps.kprobes.ok ? 'ebpf/01-bpftrace/exits_kprobe.bt' : 'ebpf/01-bpftrace/exits_tracepoint.bt';
  if (!caps.kprobes.ok) {
    await adapt(`kprobes absent (${caps.kprobes.detail}): kprobe:do_exit replaced by tracepoint:sched:sched_process_exit (exits_tracepoint.bt), which do_exit() fires`);
  }
  const bt = await startBpftrace(labSource(script), { ready: READY });
  let pids: number[] = [];
  let lines: string[] = [];
  const misses: string[] = [];
  // Three children per attempt. On this 2-core machine under a full build load, an exit event was seen to go
  // missing now and then (perf buffer pressure), so up to 3 attempts: one attempt with every PID reported passes.
  for (let attempt = 0; attempt < 3; attempt++) {
    pids = [];
    for (let i = 0; i < 2; i++) pids.push((await run('true', [], { timeoutMs: 10_000 })).pid);
    // A process that exits without ever calling exec: a subshell forked by sh (its pid is $!).
    const sub = await run('sh', ['-c', '(exit 3) & wait $!; echo $!'], { timeoutMs: 10_000 });
    pids.push(Number(sub.stdout.trim()));
    lines = await bt.settle((l) => pids.every((p) => exitedPids(l).has(p)), 5_000);
    const missing = pids.filter((p) => !exitedPids(lines).has(p));
    if (!missing.length) break;
    misses.push(`attempt ${attempt + 1}: no line for ${missing.join(', ')}`);
  }
  if (misses.length) console.log(`[exits] ${misses.join('; ')}`);
  // A child still alive must not be reported: a script that prints at fork or exec instead of exit would.
  const alive = startBackground('sleep', ['30'], { timeoutMs: 60_000 });
  const early = await bt.settle((l) => exitedPids(l).has(alive.pid), 1_500);
  const reportedAlive = exitedPids(early).has(alive.pid);
  await alive.stop('SIGKILL');
  await bt.stop();
  return { script, probes: bt.probes, pids, lines, lost: lostEvents(bt.process.output()), alivePid: alive.pid, reportedAlive };
}

/** `bpftrace -l "tracepoint:*"` and `bpftrace -l "kprobe:*"`; without kprobes, says so through `adapt`. */
export async function listAttachPoints(adapt: Adapt): Promise<AttachPoints> {
  const caps = await capabilities();
  const [tracepoints, kprobes] = await Promise.all([listProbes('tracepoint:*'), listProbes('kprobe:*')]);
  if (!caps.kprobes.ok) {
    await adapt(`kprobes absent (${caps.kprobes.detail}): bpftrace lists ${kprobes.length} kprobes and ${tracepoints.length} tracepoints`);
  }
  return { tracepoints, kprobes, kprobesOk: caps.kprobes.ok };
}
