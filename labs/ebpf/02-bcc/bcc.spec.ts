/**
 * Lab 2 — 登堂入室: a complete eBPF application with BCC and Python.
 * Each BCC program is started once (its clang compile takes a while), the
 * spec waits for its READY line, asks the kernel what it attached (bpftool),
 * then spawns shells that each call clone(2) once (`sh -c 'true & wait'`) and
 * looks for them in the program's output.
 *
 * The lab's anatomy: experiment.ts runs the programs and collects the
 * evidence, judge.ts turns it into facts and messages, this file says what must hold.
 */
import { describe, it, type TestContext } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { fromShells, runHello, runRingbuf, type Attached } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

/** Start-up time, the tracepoint adaptation where the kernel has no kprobes, and the kernel's view of the attachment. */
async function started(ctx: TestContext, r: Attached): Promise<void> {
  const name = r.script.split('/').pop();
  recordMetric(ctx, { name: `${name} start (BCC compile + load + attach)`, value: r.startSeconds, unit: 's', group: 'BCC start-up' });
  if (r.mode !== 'kprobe') await adapted(ctx, `kprobes absent: ${name} attached to the ${r.points} tracepoints instead of the clone syscall kprobe`);
  holds(judge.attachedToClone(r));
}

describe('Lab 2 — BCC with Python (登堂入室)', () => {
  requires(...labRequires(import.meta.url));

  it('prints "Hello, clone!" through bpf_trace_printk when new processes are created', async (ctx) => {
    const r = await runHello();
    await started(ctx, r);
    recordMetric(ctx, { name: 'trace_pipe lines read (all processes on the machine)', value: r.lines.length, unit: 'lines', group: 'trace_pipe noise' });
    recordMetric(ctx, { name: 'trace_pipe lines from the shells this test spawned', value: fromShells(r.lines, r.pids).length, unit: 'lines', group: 'trace_pipe noise' });
    holds(judge.helloFromShells(r));
  });

  it('sends {pid, comm} through a BPF ring buffer, and the PID and command name of every shell the test spawned arrive', async (ctx) => {
    const r = await runRingbuf();
    await started(ctx, r);
    holds(judge.everyShellArrived(r));
  });
});
