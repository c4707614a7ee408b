/**
 * Teeth of Process Lab 5: wrong tracers a clever student might write fail the
 * spec on the test that names their mistake; a correct tracer in another style
 * passes every test. Runs the lab spec (root only) in a nested vitest.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/harness/paths.js';
import { runSpecWith } from '../run-lab-spec.js';

const SPEC = 'labs/process/05-strace/strace.spec.ts';
const SOURCE = 'process/05-strace/mytrace.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/process/05-strace', name);
const asRoot = process.getuid?.() === 0;

const WRONG = [
  { file: 'wrong-counts-entry-and-exit.c', fails: /^counts the system calls of one process/, says: /the same count as strace -c -f for every deterministic call .*read: mytrace (\d+), strace \d+/ },
  { file: 'wrong-no-follow.c', fails: /^follows the children of a shell/, says: /execve: the shell and its \d cat commands/ },
  { file: 'wrong-no-follow.c', fails: /^follows threads too/, says: /getppid made by \d threads × \d+ calls/ },
  { file: 'wrong-starts-after-exec.c', fails: /^counts the system calls of one process/, says: /only in mytrace: none; only in strace: execve\n/ },
  // A helper playing the clever student wrote these; all three passed the spec of 2026-12-04.
  { file: 'clever-delegate.c', fails: /^counts the system calls of one process/, says: /no successful ptrace\(2\) call of mytrace's own process ever resumed .*: \d+ \(cat\) \(of 1\)\. mytrace \(pid \d+\) made 0 ptrace\(2\) calls/ },
  { file: 'clever-exit3.c', fails: /^exits with the traced command's exit status/, says: /exits \d+; its child, traced too/ },
  { file: 'clever-lastexit.c', fails: /^exits with the traced command's exit status/, says: /exits \d+; its child, traced too/ },
  // Issue #27: each passed the spec of that day. The real strace, then one failing ptrace(2) call per counted call.
  { file: 'clever-delegate-dummy-ptrace.c', fails: /^counts the system calls of one process/, says: /ever resumed .*: \d+ \(cat\) \(of 1\)\. mytrace \(pid \d+\) made \d+ ptrace\(2\) calls, \d+ failed \(ptrace\(PTRACE_SYSCALL, 1\) = ESRCH/ },
  // The real strace, and a dummy child of its own really traced: every ptrace call succeeds, none is on the command.
  { file: 'clever-delegate-traces-dummy.c', fails: /^follows threads too/, says: /ever resumed .*: (\d+ \(workload\)(, )?)+.*successful resumes \(PTRACE_SYSCALL, _CONT…\) of the command's tasks: 0\./ },
  // Stops when the command exits (PTRACE_O_EXITKILL then kills the child that outlives it).
  { file: 'wrong-stops-at-command-exit.c', fails: /^exits with the traced command's exit status/, says: /mytrace ended while tasks of sh -c .* it traces were still running \(sched:sched_process_exit\): \d+ \(sh\) (ended \d+ ms after mytrace|had not ended)/ },
  // Resumes every stop with signal 0: the shell's SIGCHLD handler never runs.
  { file: 'wrong-swallows-signals.c', fails: /^follows the children of a shell/, says: /only in strace: rt_sigreturn/ },
  // Attackers who read only the spec and guide (2026-12-04), each passed the spec of that day: the ptrace loop resumes every stop
  // and never asks which call it is; the counts come from a tracefs instance of mytrace's own, or from strace on a second run.
  { file: 'clever-own-tracefs.c', fails: /^counts the system calls of one process/, says: /that read which system call a task of the command is in \(PTRACE_GET_SYSCALL_INFO, .*\): 0, for the \d+ system calls/ },
  { file: 'clever-strace-rerun.c', fails: /^counts the system calls of one process/, says: /that read which system call a task of the command is in \(PTRACE_GET_SYSCALL_INFO, .*\): 0, for the \d+ system calls/ },
  // The same, reading the syscall info it then ignores: the kernel shows strace and a second cat started below mytrace.
  { file: 'clever-strace-rerun-reads.c', fails: /^counts the system calls of one process/, says: /programs mytrace \(pid \d+\) started outside the command's tree for cat .*: \d+ \/usr\/bin\/strace, \d+ \/bin\/cat/ },
] as const;

const runs = new Map<string, ReturnType<typeof runSpecWith>>();
const runOnce = (file: string) => { if (!runs.has(file)) runs.set(file, runSpecWith(SPEC, { [SOURCE]: fixture(file) })); return runs.get(file)!; };

describe.skipIf(!asRoot)('Process Lab 5 fixtures', () => {
  it.each(WRONG)('$file fails "$fails" against strace -c -f', { timeout: 180_000 }, async ({ file, fails, says }) => {
    const out = await runOnce(file);
    const failed = [...out.status].filter(([, s]) => s === 'failed').map(([t]) => t);
    const title = failed.find((t) => fails.test(t));
    expect(title, `failed tests: ${failed.join(' | ') || 'none'}\n${out.fileMessage}`).toBeDefined();
    expect(out.failure.get(title!)).toMatch(says);
  });

  it('a correct tracer in another style (PTRACE_SEIZE, counting at syscall exit like strace, "name: count" lines) passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-count-at-exit.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(4);
  });

  it('a correct tracer that writes its table through a helper process of its own (sort(1) via popen(3), not traced) passes every test: only the command must be traced', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-sorted-by-helper.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(4);
  });
});
