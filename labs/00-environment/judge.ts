/**
 * Lab 0's verdicts: pure functions from the experiment's evidence (what the
 * program printed in each run, what strace saw the kernel return) to what each
 * test compares — `got` against `want` — with the message that shows the
 * evidence. Unit-tested in tests/lab-units/00-environment/judge.test.ts.
 */
import type { Verdict } from '../../helpers/harness/verdict.js';
import type { ElsewhereRuns, StracedRun, SysinfoRun } from './experiment.js';

export type { Verdict };

const STUDENT_FILE = 'your workspace file 00-environment/sysinfo.c';

/**
 * The program's report: every `key=value` of release, pid, ppid and raw_pid
 * anywhere in its output (any order, any lines; the last one of a key wins).
 */
export function parseSysinfo(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stdout.matchAll(/(?:^|\s)(release|pid|ppid|raw_pid)=(\S+)/g)) out[m[1]!] = m[2]!;
  return out;
}

/** The release strace decoded from the uname(2) result, and the values getpid/getppid returned. */
export function parseStraceSysinfo(trace: string): { uname: string[]; getpid: number[]; getppid: number[] } {
  const out = { uname: [] as string[], getpid: [] as number[], getppid: [] as number[] };
  for (const line of trace.split('\n')) {
    const u = line.match(/\buname\(\{.*\brelease="([^"]*)".*\}\)\s*=\s*0\b/);
    if (u) out.uname.push(u[1]!);
    const g = line.match(/\b(getpid|getppid)\(\)\s*=\s*(\d+)/);
    if (g) out[g[1] as 'getpid' | 'getppid'].push(Number(g[2]));
  }
  return out;
}

const pick = (o: Record<string, string>, keys: readonly string[]) => Object.fromEntries(keys.map((k) => [k, o[k]]));

/** This kernel's release, the pid the test spawned, its parent (the test runner). */
export function reportsThisKernel(r: SysinfoRun, kernelRelease: string): Verdict<Record<string, string | undefined>> {
  const want = { release: kernelRelease, pid: String(r.pid), ppid: String(r.parent), raw_pid: String(r.pid) };
  return {
    got: pick(parseSysinfo(r.stdout), Object.keys(want)),
    want,
    message: `${STUDENT_FILE} printed:\n${r.stdout}\nexpected the kernel's answers: release ${kernelRelease}, the pid the test spawned (${r.pid}), its parent (the test runner, ${r.parent})`,
  };
}

/** Where the kernel answers otherwise, the program reports that: the 2.6 release; pid 1 and parent 0 in a new PID namespace. */
export function reportsWhatKernelAnswers(e: ElsewhereRuns): Verdict<{ personality?: string; namespace: Record<string, string | undefined> }> {
  return {
    got: { personality: parseSysinfo(e.under26).release, namespace: pick(parseSysinfo(e.inPidNamespace), ['pid', 'ppid', 'raw_pid']) },
    want: { personality: e.uname26Release, namespace: { pid: '1', ppid: '0', raw_pid: '1' } },
    message: `${STUDENT_FILE} must print what uname(2), getpid(2) and getppid(2) return at run time.\nunder setarch --uname-2.6 it printed: ${e.under26.trim()}\n` +
      `in a new PID namespace it printed: ${e.inPidNamespace.trim()}`,
  };
}

/** strace sees uname, getppid and two getpid calls (the libc wrapper and the raw syscall). */
export function makesTheCalls(s: StracedRun): Verdict<{ uname: boolean; getppid: boolean; getpid: boolean }> {
  const calls = parseStraceSysinfo(s.trace);
  return {
    got: { uname: calls.uname.length >= 1, getppid: calls.getppid.length >= 1, getpid: calls.getpid.length >= 2 },
    want: { uname: true, getppid: true, getpid: true },
    message: `${STUDENT_FILE}: strace must see uname, getppid and two getpid calls (the wrapper and the raw syscall); it saw:\n${s.trace}`,
  };
}

/** What it printed is what those calls returned (the last of each). */
export function printsWhatCallsReturned(s: StracedRun): Verdict<Record<string, string | number | undefined>> {
  const calls = parseStraceSysinfo(s.trace);
  const info = parseSysinfo(s.stdout);
  return {
    got: { release: info.release, pid: Number(info.pid), ppid: Number(info.ppid), raw_pid: Number(info.raw_pid) },
    want: { release: calls.uname.at(-1), pid: calls.getpid.at(-1), ppid: calls.getppid.at(-1), raw_pid: calls.getpid.at(-1) },
    message: `${STUDENT_FILE} printed: ${s.stdout.trim()}\nthe kernel returned (strace):\n${s.trace}`,
  };
}
