/** Lab 1.2's verdicts (labs/ebpf/02-bcc/judge.ts) on made-up evidence. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { Attached, HelloRun, RingbufRun } from '../../../../labs/ebpf/02-bcc/experiment.js';
import { attachedToClone, everyShellArrived, helloFromShells } from '../../../../labs/ebpf/02-bcc/judge.js';
import type { PerfAttachment } from '../../../../helpers/kernel/bpftool.js';

const tp: PerfAttachment = { pid: 10, fd: 4, prog_id: 7, fd_type: 'tracepoint', tracepoint: 'sys_enter_clone' };
const attached = (over: Partial<Attached> = {}): Attached => ({
  script: 'ebpf/02-bcc/hello_bcc.py', mode: 'tracepoint', points: 'sys_enter_clone', startSeconds: 3, attachments: [tp], cloneHooks: [tp], programTypes: ['tracepoint'], ...over,
});

describe('Lab 1.2 judge', () => {
  it('wants a kprobe or tracepoint program on clone, as the kernel lists it', () => {
    expect(holds(attachedToClone(attached()))).toBe(true);
    expect(attachedToClone(attached({ attachments: [], cloneHooks: [], programTypes: [] })).got).toEqual({ attachedToClone: false, programTypes: true });
    expect(holds(attachedToClone(attached({ programTypes: ['tracepoint', 'perf_event'] })))).toBe(false);
  });

  it('counts only a HELLO line from one of the spawned shells', () => {
    const run = (lines: string[]): HelloRun => ({ ...attached(), pids: [300, 301], lines, stderr: '' });
    expect(holds(helloFromShells(run(['HELLO pid=301 comm=sh msg=Hello, clone!'])))).toBe(true);
    expect(holds(helloFromShells(run(['HELLO pid=3011 comm=sh msg=Hello, clone!', 'HELLO pid=42 comm=sh msg=Hello, clone!'])))).toBe(false);
  });

  it('wants every shell with the comm the kernel gave it', () => {
    const run = (events: RingbufRun['events']): RingbufRun => ({
      ...attached(), shells: [{ pid: 5, comm: 'sh' }, { pid: 6, comm: 'kl-clone-forker' }], events, stderr: '',
    });
    expect(holds(everyShellArrived(run([{ pid: 5, comm: 'sh' }, { pid: 6, comm: 'kl-clone-forker' }])))).toBe(true);
    expect(everyShellArrived(run([{ pid: 5, comm: 'sh' }, { pid: 6, comm: 'kl-clone-forke' }])).got[1]).toEqual({ pid: 6, comm: 'kl-clone-forke' });
    expect(holds(everyShellArrived(run([{ pid: 5, comm: 'sh' }])))).toBe(false);
  });
});
