/**
 * Lab 1 — 初窥门径: kernel insight with bpftrace, no C written.
 * Each script is started once, the spec waits for "Attaching N probes..."
 * (never a sleep), then runs its own children and looks for their PIDs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { listProbes, lostEvents, startBpftrace } from '../../../helpers/kernel/bpftrace.js';
import { run, startBackground } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';

/** What each script's BEGIN probe prints once every probe is attached. */
const READY = /^Tracing .*Hit Ctrl-C to end\./;

/** Lines "<pid> <comm> Opening file: <path>" printed for `pid`. */
function opensOf(lines: readonly string[], pid: number): { comm: string; path: string }[] {
  return lines.flatMap((l) => {
    const m = l.match(/^(\d+) (\S+) Opening file: (.*)$/);
    return m && Number(m[1]) === pid ? [{ comm: m[2]!, path: m[3]! }] : [];
  });
}

describe('Lab 1 — bpftrace one-liners (初窥门径)', () => {
  requires(...labRequires(import.meta.url));

  it('prints the path of every openat(2): cat /etc/hosts and a file named at random, and ls /tmp, show up under their own PID and command name', async () => {
    // A path nobody can know in advance: only a script that prints what openat(2) received can show it.
    const random = join(await makeTempDir('bt'), `${uniqueName('open')}.txt`);
    writeFileSync(random, 'kernel labs\n');
    const bt = await startBpftrace(labSource('ebpf/01-bpftrace/opensnoop.bt'), { ready: READY });
    let cat, ls, lines: string[] = [];
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
    const lost = lostEvents(bt.process.output());
    const sample = [...lines.filter((l) => l.startsWith(`${cat.pid} `) || l.startsWith(`${ls.pid} `)).slice(0, 30)];
    const evidence = `bpftrace printed ${lines.length} lines${lost ? ` and lost ${lost} events (perf buffer full)` : ''}; those of cat (pid ${cat.pid}) and ls (pid ${ls.pid}):\n${sample.join('\n') || '(none)'}\nfirst lines:\n${lines.slice(0, 5).join('\n')}`;
    expect({
      catOpenedHosts: opensOf(lines, cat.pid).find((o) => o.path === '/etc/hosts')?.comm,
      catOpenedRandom: opensOf(lines, cat.pid).find((o) => o.path === random)?.comm,
      lsOpenedTmp: opensOf(lines, ls.pid).find((o) => o.path === '/tmp')?.comm,
    }, `your workspace file ebpf/01-bpftrace/opensnoop.bt; cat also opened ${random}\n${evidence}`).toEqual({ catOpenedHosts: 'cat', catOpenedRandom: 'cat', lsOpenedTmp: 'ls' });
  });

  it('reports the PID of a child that exited (kprobe:do_exit, or the sched_process_exit tracepoint without kprobes)', async (ctx) => {
    const caps = await capabilities();
    const script = caps.kprobes.ok ? 'ebpf/01-bpftrace/exits_kprobe.bt' : 'ebpf/01-bpftrace/exits_tracepoint.bt';
    if (!caps.kprobes.ok) {
      await adapted(ctx, `kprobes absent (${caps.kprobes.detail}): kprobe:do_exit replaced by tracepoint:sched:sched_process_exit (exits_tracepoint.bt), which do_exit() fires`);
    }
    const bt = await startBpftrace(labSource(script), { ready: READY });
    const exitedPids = (lines: string[]) => new Set(lines.flatMap((l) => { const m = l.match(/^PID (\d+) exited/); return m ? [Number(m[1])] : []; }));
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
    const seen = exitedPids(lines);
    expect(reportedAlive, `your workspace file ${script} reported "PID ${alive.pid} exited" while that process (sleep 30) was still running: print at exit, not at fork or exec`).toBe(false);
    expect(pids.map((p) => ({ pid: p, reported: seen.has(p) })),
      `your workspace file ${script} (${bt.probes} probe) printed ${lines.length} lines${lostEvents(bt.process.output()) ? ` and lost ${lostEvents(bt.process.output())} events` : ''}, e.g.:\n${lines.slice(0, 8).join('\n') || '(none)'}\nexpected "PID <pid> exited" for the reaped children ${pids.join(', ')} (the last one a forked subshell that never exec'd)`)
      .toEqual(pids.map((p) => ({ pid: p, reported: true })));
  });

  it('control: lists what each mechanism can attach to here: stable tracepoints vs kprobes on (almost) any kernel function', async (ctx) => {
    const caps = await capabilities();
    const [tracepoints, kprobes] = await Promise.all([listProbes('tracepoint:*'), listProbes('kprobe:*')]);
    recordMetric(ctx, { name: 'tracepoints (bpftrace -l "tracepoint:*")', value: tracepoints.length, unit: 'probes', group: 'attach points' });
    recordMetric(ctx, { name: 'kprobes (bpftrace -l "kprobe:*")', value: kprobes.length, unit: 'probes', group: 'attach points' });
    expect(tracepoints, `bpftrace -l "tracepoint:*" listed ${tracepoints.length}`).toEqual(expect.arrayContaining([
      'tracepoint:syscalls:sys_enter_openat', 'tracepoint:sched:sched_process_exit',
    ]));
    if (caps.kprobes.ok) {
      expect(kprobes.length, 'a kprobe can attach to any traceable kernel function: thousands more than tracepoints').toBeGreaterThan(tracepoints.length);
      expect(kprobes, 'kprobe:do_exit is what the seed attaches to').toContain('kprobe:do_exit');
    } else {
      await adapted(ctx, `kprobes absent (${caps.kprobes.detail}): bpftrace lists ${kprobes.length} kprobes and ${tracepoints.length} tracepoints`);
      expect(kprobes.length, 'without CONFIG_KPROBES no kernel function can be kprobed').toBe(0);
    }
  });
});
