/**
 * Lab 2 — 登堂入室: a complete eBPF application with BCC and Python.
 * Each BCC program is started once (its clang compile takes a while), the
 * spec waits for its READY line, then spawns shells that each call clone(2)
 * once (`sh -c 'true & wait'`) and looks for them in the program's output.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { hooksClone, perfAttachments, progInfo, type PerfAttachment } from '../../../helpers/kernel/bpftool.js';
import { run, startBackground, waitUntil, type Background } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';

/** BCC lives in the system Python (python3-bpfcc), not in a pyenv/venv python3 on PATH. */
const PYTHON = '/usr/bin/python3';
const READY_TIMEOUT_MS = 120_000;
const SHELLS = 5;
/** A command name of the full TASK_COMM_LEN - 1 = 15 characters: a truncated or made-up comm cannot match it. */
const FORKER_COMM = 'kl-clone-forker';

/**
 * The kernel's view of what the student's process attached: the BPF programs it
 * holds on perf events (bpftool perf show, by pid) that hook clone or clone3.
 * A program that learns about new processes another way holds none.
 */
async function assertAttachedToClone(bg: Background, script: string): Promise<PerfAttachment[]> {
  const all = await perfAttachments(bg.pid);
  const clone = all.filter(hooksClone);
  const types = await Promise.all([...new Set(clone.map((a) => a.prog_id))].map(async (id) => (await progInfo(id)).type));
  expect({ attachedToClone: clone.length > 0, programTypes: [...new Set(types)].every((t) => t === 'tracepoint' || t === 'kprobe') },
    `your workspace file ${script} (pid ${bg.pid}) must load a BPF program and attach it to the clone system call (kprobe or syscalls:sys_enter_clone tracepoint); ` +
    `bpftool perf show lists for that process: ${JSON.stringify(all) || '(nothing)'}; program types: ${types.join(', ') || '(none)'}`)
    .toEqual({ attachedToClone: true, programTypes: true });
  return clone;
}

/** Start a BCC script, wait for "READY mode=… attached=…", announce the tracepoint adaptation. */
async function startBcc(ctx: TestContext, script: string): Promise<{ bg: Background; mode: string; points: string }> {
  const started = Date.now();
  const bg = startBackground(PYTHON, [labSource(script), '--duration', '120'], { timeoutMs: 5 * 60_000 });
  const m = await bg.waitFor(/^READY mode=(\S+) attached=(\S*)/, `${script} to compile and attach (READY line)`, READY_TIMEOUT_MS);
  recordMetric(ctx, { name: `${script.split('/').pop()} start (BCC compile + load + attach)`, value: (Date.now() - started) / 1000, unit: 's', group: 'BCC start-up' });
  const [, mode = '?', points = ''] = m;
  if (mode !== 'kprobe') await adapted(ctx, `kprobes absent: ${script.split('/').pop()} attached to the ${points} tracepoints instead of the clone syscall kprobe`);
  await assertAttachedToClone(bg, script);
  return { bg, mode, points };
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

describe('Lab 2 — BCC with Python (登堂入室)', () => {
  requires(...labRequires(import.meta.url));

  it('prints "Hello, clone!" through bpf_trace_printk when new processes are created', async (ctx) => {
    const { bg } = await startBcc(ctx, 'ebpf/02-bcc/hello_bcc.py');
    const pids: number[] = [];
    const hellos = () => bg.stdout().split('\n').filter((l) => l.startsWith('HELLO '));
    const fromOurShells = (l: string[]) => l.filter((x) => x.endsWith('msg=Hello, clone!') && pids.some((p) => x.startsWith(`HELLO pid=${p} `)));
    // trace_pipe is one global, consuming stream: another reader on the machine may take some lines, so keep creating processes for a while.
    try {
      await waitUntil('"Hello, clone!" from one of our shells in trace_pipe', async () => { pids.push(await forkingShell()); return hellos(); },
        (l) => fromOurShells(l).length > 0, { timeoutMs: 5_000, intervalMs: 100 });
    } catch { /* asserted below with the evidence */ }
    await bg.stop('SIGINT');
    const lines = hellos();
    const ours = fromOurShells(lines);
    recordMetric(ctx, { name: 'trace_pipe lines read (all processes on the machine)', value: lines.length, unit: 'lines', group: 'trace_pipe noise' });
    recordMetric(ctx, { name: 'trace_pipe lines from the shells this test spawned', value: ours.length, unit: 'lines', group: 'trace_pipe noise' });
    // Only a line from one of our shells counts: trace_pipe keeps unread lines of earlier runs and of other programs.
    expect(ours.length,
      `your workspace file ebpf/02-bcc/hello_bcc.py printed ${lines.length} HELLO lines while ${pids.length} shells forked (pids ${pids.slice(0, 10).join(', ')}${pids.length > 10 ? ', …' : ''}); ` +
      `expected "HELLO pid=<one of them> comm=sh msg=Hello, clone!":\n${lines.slice(0, 10).join('\n') || '(none)'}\nstderr:\n${bg.stderr().slice(-1500)}`)
      .toBeGreaterThan(0);
  });

  it('sends {pid, comm} through a BPF ring buffer, and the PID and command name of every shell the test spawned arrive', async (ctx) => {
    const { bg } = await startBcc(ctx, 'ebpf/02-bcc/hello_bcc_ringbuf.py');
    const shell = await renamedShell();
    const pids: number[] = [];
    const comms: string[] = [];
    for (let i = 0; i < SHELLS; i++) {
      const named = i % 2 === 1; // sh and a 15-character name, alternately
      pids.push(await forkingShell(named ? shell : 'sh'));
      comms.push(named ? FORKER_COMM : 'sh');
    }
    const events = () => bg.stdout().split('\n').flatMap((l) => {
      const m = l.match(/^EVENT pid=(\d+) comm=(.*)$/);
      return m ? [{ pid: Number(m[1]), comm: m[2]! }] : [];
    });
    const arrived = (p: number) => events().find((e) => e.pid === p);
    try {
      await waitUntil('every spawned shell in the ring buffer', events, () => pids.every((p) => arrived(p)), { timeoutMs: 5_000 });
    } catch { /* asserted below */ }
    await bg.stop('SIGINT');
    const all = events();
    expect(pids.map((p) => ({ pid: p, comm: arrived(p)?.comm })),
      `your workspace file ebpf/02-bcc/hello_bcc_ringbuf.py delivered ${all.length} events, e.g.:\n${all.slice(0, 10).map((e) => `pid=${e.pid} comm=${e.comm}`).join('\n') || '(none)'}\nstderr:\n${bg.stderr().slice(-1500)}`)
      .toEqual(pids.map((p, i) => ({ pid: p, comm: comms[i] })));
  });
});
