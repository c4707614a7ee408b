/** Process Lab 5's verdicts (labs/process/05-strace/judge.ts) on made-up runs, and the kernel's record of mytrace read from made-up trace lines (experiment.ts tracerEvidence). */
import { describe, expect, it } from 'vitest';
import { parseCounts, tracerEvidence, type Run, type TracerEvidence } from '../../../../labs/process/05-strace/experiment.js';
import { compareCounts, execves, exitStatus, getppids, sameAsStrace, table, tracer } from '../../../../labs/process/05-strace/judge.js';
import type { SyscallSummary } from '../../../../helpers/kernel/syscalls.js';
import type { TraceEvent } from '../../../../helpers/kernel/tracefs.js';

function summary(counts: Record<string, number>): SyscallSummary {
  const rows = Object.entries(counts).map(([name, calls]) => ({ name, calls, errors: 0, seconds: 0 }));
  return { rows, total: rows.reduce((a, r) => a + r.calls, 0), calls: (n) => counts[n] ?? 0 };
}
const CAT = { read: 3, write: 2, openat: 5, execve: 1 };
/** cat 200 under mytrace: resumed twice and asked once per call. */
function evidence(extra: Partial<TracerEvidence> = {}): TracerEvidence {
  return {
    pid: 100, command: new Map([[200, 'cat']]), calls: 40, failed: 0, failedSample: [], resumes: new Map([[200, 22]]), released: new Set([200]),
    reads: 11, outside: [], otherTracers: [], outlived: [], ...extra,
  };
}
function run(mine: Record<string, number>, extra: Partial<Run> = {}): Run {
  return { mine: new Map(Object.entries(mine)), strace: summary(CAT), exitCode: 0, stderr: '', tracer: evidence(), ...extra };
}

describe('Process Lab 5 judge', () => {
  it('parses "<calls> <name>" and "<name>: <calls>" lines, summing repeats, ignoring the rest', () => {
    expect([...parseCounts('  3 read\nwrite: 2\nread = 1\n% time seconds\n12 34\n')]).toEqual([['read', 4], ['write', 2]]);
  });

  it('the same table as strace: exit and exit_group aside, timing-dependent counts may differ, names may not', () => {
    const same = sameAsStrace(run({ ...CAT, exit_group: 1 }), 'cat x');
    expect([same.wrote.fact, same.names.facts, same.counts.fact]).toEqual([5, same.names.want, []]);
    expect(compareCounts(run({ ...CAT, read: 6 })).differences).toEqual(['read: mytrace 6, strace 3']);
    expect(compareCounts(run({ read: 3, write: 2, openat: 5 }))).toEqual({ onlyMine: [], onlyStrace: ['execve'], differences: ['execve: mytrace 0, strace 1'] });
    const timing = { strace: summary({ ...CAT, wait4: 2 }) };
    expect(compareCounts(run({ ...CAT, wait4: 5 }, timing)).differences).toEqual([]);
    expect(compareCounts(run(CAT, timing)).differences).toEqual(['wait4: mytrace 0, strace 2']);
    const none = sameAsStrace(run({}, { exitCode: 1, stderr: 'usage\n' }), 'cat x');
    expect(none.wrote.fact).toBe(0);
    expect(none.names.message).toMatch(/only in mytrace: none; only in strace: execve openat read write\n/);
    expect(table(run({ read: 3 }))).toMatch(/read\s+3\s+3\n[\s\S]*write\s+-\s+2\nmytrace exit 0; stderr: \(none\)$/);
  });

  it('the tracer: resumed and asked once per call, ended last, alone', () => {
    const ok = tracer(run(CAT), 'cat x');
    expect(ok.commandSeen.fact).toBe(1);
    expect([ok.outlived.fact, ok.untouched.fact]).toEqual([[], []]);
    expect(ok.resumed.fact).toBeGreaterThanOrEqual(ok.resumed.atLeast);
    expect(ok.reads.fact).toBeGreaterThanOrEqual(ok.reads.atLeast);
    expect(ok.delegation.facts).toEqual(ok.delegation.want);
    // The real strace below mytrace, and a second cat: tracing tool and rerun; mytrace's own calls all failed.
    const strace = tracer(run(CAT, { tracer: evidence({
      resumes: new Map(), released: new Set(), reads: 0, failed: 40, failedSample: ['ptrace(PTRACE_SYSCALL, 1) = ESRCH'],
      outside: [{ pid: 101, file: '/usr/bin/strace' }, { pid: 102, file: '/bin/cat' }], otherTracers: [{ pid: 101, calls: 30 }],
    }) }), 'cat x');
    expect(strace.untouched.fact).toEqual(['200 (cat)']);
    expect(strace.untouched.message).toMatch(/ever resumed .*: 200 \(cat\) \(of 1\)\. mytrace \(pid 100\) made 40 ptrace\(2\) calls, 40 failed \(ptrace\(PTRACE_SYSCALL, 1\) = ESRCH; …\)/);
    expect([strace.resumed.fact, strace.reads.fact, strace.reads.atLeast]).toEqual([0, 0, 11]);
    expect(strace.delegation.facts).toEqual({ tracingTools: ['strace'], secondCopyOfTheCommand: true, otherProcessesCallingPtrace: ['101 (30 calls)'] });
    // A child that outlived mytrace, and one never seen to end.
    const late = tracer(run(CAT, { tracer: evidence({ outlived: [{ pid: 201, comm: 'sh', after: 0.25 }, { pid: 202, comm: 'sh', after: NaN }] }) }), 'sh -c x');
    expect(late.outlived.fact).toEqual(['201 (sh) ended 250 ms after mytrace', '202 (sh) had not ended']);
    expect(tracer(run(CAT, { tracer: evidence({ command: new Map() }) }), 'x').commandSeen.fact).toBe(0);
  });

  it('execve, getppid and the exit status against what the run asked for', () => {
    expect(execves(run({ execve: 4 }, { strace: summary({ execve: 4 }) }), 3)).toMatchObject({ fact: 4, want: 4 });
    expect(getppids(run({ getppid: 599 }), 3, 200)).toMatchObject({ fact: 599, want: 600, message: expect.stringMatching(/^getppid made by 3 threads × 200 calls/) });
    const x = exitStatus(run(CAT, { exitCode: 3 }), { status: 40, later: 161, early: 41, script: 's' });
    expect([x.fact, x.want]).toEqual([3, 40]);
    expect(x.message).toMatch(/exits 40; its child, traced too \(-f\), exits 161 after it, and a child it started before exits 41 first\. mytrace.s status is the one waitpid/);
  });

  it('reads the kernel\'s record: the command\'s tasks, mytrace\'s ptrace calls on them, who outlived it', () => {
    const ev = (ts: number, pid: number, event: string, body: string): TraceEvent => ({ pid, tgid: pid, ts, event, body });
    const events = [
      ev(1.0, 100, 'sched_process_exec', 'filename=/tmp/mytrace pid=100 old_pid=100'),
      ev(1.1, 200, 'sched_process_exec', 'filename=/bin/sh pid=200 old_pid=200'),
      ev(1.2, 200, 'sched_process_fork', 'comm=sh pid=200 child_comm=sh child_pid=201'),
      ev(1.3, 300, 'sched_process_exec', 'filename=/usr/bin/strace pid=300 old_pid=300'),
      ev(1.5, 200, 'sched_process_exit', 'comm=sh pid=200 prio=120'),
      ev(1.6, 100, 'sched_process_exit', 'comm=mytrace pid=100 prio=120'),
    ];
    const line = (comm: string, pid: number, ts: string, rest: string) => `${comm.padStart(16)}-${pid}    (   ${pid}) [001] .....   ${ts}: ${rest}`;
    const lines = [
      line('mytrace', 100, '1.100100', 'sys_ptrace(request: 18, pid: c8, addr: 0, data: 0)'), line('mytrace', 100, '1.100110', 'sys_ptrace -> 0x0'),
      line('mytrace', 100, '1.100200', 'sys_ptrace(request: 4204, pid: c8, addr: 1, data: 7ffd)'), line('mytrace', 100, '1.100210', 'sys_ptrace -> 0x0'),
      line('mytrace', 100, '1.100300', 'sys_ptrace(request: 7, pid: c9, addr: 0, data: 0)'), line('mytrace', 100, '1.100310', 'sys_ptrace -> 0xfffffffffffffffd'),
      line('strace', 300, '1.300000', 'sys_ptrace(request: 4206, pid: c8, addr: 0, data: 0)'), line('strace', 300, '1.300010', 'sys_ptrace -> 0x0'),
    ];
    const t = tracerEvidence(events, lines, '/tmp/mytrace', '/bin/sh');
    expect(t.pid).toBe(100);
    expect([...t.command]).toEqual([[200, 'sh'], [201, 'sh']]);
    expect([t.calls, t.failed, t.reads]).toEqual([3, 1, 1]);
    expect(t.failedSample).toEqual(['ptrace(PTRACE_CONT, 201) = ESRCH']);
    expect([...t.resumes]).toEqual([[200, 1]]);
    expect([...t.released]).toEqual([200]);
    expect(t.outside).toEqual([{ pid: 300, file: '/usr/bin/strace' }]);
    expect(t.otherTracers).toEqual([{ pid: 300, calls: 1 }]);
    expect(t.outlived).toEqual([{ pid: 201, comm: 'sh', after: NaN }]);
  });
});
