/** Lab 0's verdicts (labs/00-environment/judge.ts) on made-up output and strace lines. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../helpers/harness/verdict.js';
import { makesTheCalls, parseSysinfo, printsWhatCallsReturned, reportsThisKernel, reportsWhatKernelAnswers } from '../../../labs/00-environment/judge.js';

const TRACE = [
  '4242  uname({sysname="Linux", nodename="h", release="2.6.78-kl", version="#1", machine="x86_64", domainname="(none)"}) = 0',
  '4242  getpid()                          = 4242',
  '4242  getppid()                         = 4240',
  '4242  getpid()                          = 4242',
].join('\n');

describe('Lab 0 judge', () => {
  it('reads key=value pairs in any order and layout, the last of a key winning', () => {
    expect(parseSysinfo('pid=3 ppid=2\nrelease=6.1\nraw_pid=3\npid=4')).toEqual({ pid: '4', ppid: '2', release: '6.1', raw_pid: '3' });
  });

  it('wants this kernel, the spawned pid and the runner as parent', () => {
    const run = (stdout: string) => ({ stdout, pid: 10, parent: 9 });
    expect(holds(reportsThisKernel(run('release=6.18.0 pid=10 ppid=9 raw_pid=10'), '6.18.0'))).toBe(true);
    expect(holds(reportsThisKernel(run('release=6.18. pid=10 ppid=9 raw_pid=10'), '6.18.0'))).toBe(false);
  });

  it('refuses a release written in: under UNAME26 it must change', () => {
    const e = (under26: string) => ({ uname26Release: '2.6.78-kl', under26, inPidNamespace: 'release=x pid=1 ppid=0 raw_pid=1' });
    expect(holds(reportsWhatKernelAnswers(e('release=2.6.78-kl pid=5 ppid=4 raw_pid=5')))).toBe(true);
    expect(holds(reportsWhatKernelAnswers(e('release=6.18.0 pid=5 ppid=4 raw_pid=5')))).toBe(false);
  });

  it('wants the calls made and their results printed', () => {
    expect(holds(makesTheCalls({ stdout: '', trace: TRACE }))).toBe(true);
    expect(holds(makesTheCalls({ stdout: '', trace: TRACE.split('\n').slice(0, 3).join('\n') }))).toBe(false);
    expect(holds(printsWhatCallsReturned({ stdout: 'release=2.6.78-kl pid=4242 ppid=4240 raw_pid=4242', trace: TRACE }))).toBe(true);
    expect(holds(printsWhatCallsReturned({ stdout: 'release=6.18.0 pid=4242 ppid=4240 raw_pid=4242', trace: TRACE }))).toBe(false);
  });
});
