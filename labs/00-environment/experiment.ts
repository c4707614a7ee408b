/**
 * Lab 0's experiment: what the host offers the labs (root, the kernel's
 * release and build configuration, tracefs, the doctor's capabilities) and
 * what the student's sysinfo.c does when run — plainly, under the UNAME26
 * personality (setarch --uname-2.6: the kernel's uname(2) gives a 2.6
 * release), as the first process of a new PID namespace, and under strace,
 * which shows the system calls it made and what the kernel returned. No
 * verdicts here: judge.ts and the spec decide.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { buildProgram } from '../../helpers/harness/compile.js';
import { run } from '../../helpers/harness/exec.js';
import { labSource } from '../../helpers/harness/paths.js';
import { makeTempDir } from '../../helpers/harness/resources.js';

const ARCH = process.arch === 'x64' ? 'x86_64' : process.arch;

/** The running kernel's build configuration: /proc/config.gz, or /boot/config-<release>. */
export function kernelConfig(): string {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString();
  } catch {
    return readFileSync(`/boot/config-${release()}`, 'utf8');
  }
}

/** /proc/sys/kernel/osrelease, as the kernel gives it. */
export const osRelease = () => readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();

/** One run of the program: what it printed, its pid, and the pid of the process that started it (this test runner). */
export interface SysinfoRun { readonly stdout: string; readonly pid: number; readonly parent: number }

const sysinfo = async () => (await buildProgram({ src: labSource('00-environment/sysinfo.c') })).path;

export async function runSysinfo(): Promise<SysinfoRun> {
  const r = await run(await sysinfo(), [], { timeoutMs: 10_000 });
  return { stdout: r.stdout, pid: r.pid, parent: process.pid };
}

/** The same program where the kernel answers otherwise: under UNAME26 (with the release uname -r gives there), and as pid 1 of a new PID namespace. */
export interface ElsewhereRuns { readonly uname26Release: string; readonly under26: string; readonly inPidNamespace: string }

export async function runElsewhere(): Promise<ElsewhereRuns> {
  const bin = await sysinfo();
  const uname26Release = (await run('setarch', [ARCH, '--uname-2.6', 'uname', '-r'], { timeoutMs: 10_000 })).stdout.trim();
  const under26 = await run('setarch', [ARCH, '--uname-2.6', bin], { timeoutMs: 10_000 });
  // unshare --fork: the program is the first process (pid 1) of a new PID namespace; its parent lives outside it (getppid() = 0).
  const inNs = await run('unshare', ['--pid', '--fork', bin], { timeoutMs: 10_000 });
  return { uname26Release, under26: under26.stdout, inPidNamespace: inNs.stdout };
}

/** The program under `strace -f` (uname, getpid, getppid) and UNAME26, so the kernel's answer differs from the machine's release. */
export interface StracedRun { readonly stdout: string; readonly trace: string }

export async function straceSysinfo(): Promise<StracedRun> {
  const bin = await sysinfo();
  const log = `${await makeTempDir('strace', { hidden: true })}/trace`; // out of the contained program's reach
  const r = await run('strace', ['-f', '-qq', '-v', '-o', log, '-e', 'trace=uname,getpid,getppid', 'setarch', ARCH, '--uname-2.6', bin], { timeoutMs: 15_000 });
  return { stdout: r.stdout, trace: readFileSync(log, 'utf8') };
}

/** The format of the syscall tracepoint the eBPF labs attach to. */
export const openatFormat = () => readFileSync('/sys/kernel/tracing/events/syscalls/sys_enter_openat/format', 'utf8');
