/**
 * Cloud Lab 3's experiment: the student's VMMs (c/cloud/03-kvm: kvm_hlt,
 * kvm_io, kvm_exits, built on their vm_setup.h) run on /dev/kvm while a
 * private tracefs instance records kvm:kvm_userspace_exit (and kvm:kvm_pio),
 * and strace decodes, then fails on purpose, their ioctls. Each part returns
 * its evidence: the program's run, what it printed, and the kernel's events of
 * its pid (undefined where the host has no kvm tracepoints: the spec then
 * says it adapted). No verdicts here: judge.ts and the spec decide.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeTraceInstance, ofProcess, type TraceEvent, type TraceInstance } from '../../../helpers/kernel/tracefs.js';

/** Enough exits to time, few enough to stay well under a second even at ~15 µs per exit (PVM). */
export const EXIT_LOOPS = 20_000;

/** The steps of a VMM, as the ioctls strace decodes, in the order they must come. */
export const VMM_STEPS = ['KVM_GET_API_VERSION', 'KVM_CREATE_VM', 'KVM_SET_USER_MEMORY_REGION', 'KVM_CREATE_VCPU', 'KVM_SET_SREGS', 'KVM_SET_REGS', 'KVM_RUN'] as const;

/** The failures strace injects: the step, the errno, and strerror's text the program must print after "<step> failed: ". */
export const INJECTED = [['KVM_SET_USER_MEMORY_REGION', 'EPERM', 'Operation not permitted'], ['KVM_RUN', 'EFAULT', 'Bad address']] as const;

/** A run as the messages show it: the command, how it ended, its output. */
export interface Shown {
  readonly pid: number;
  readonly exitCode: number;
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
  /** "<command> exited <code>" and both outputs, for the messages. */
  readonly text: string;
}

function shown(r: RunResult): Shown {
  return {
    pid: r.pid, exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr,
    text: `${r.command} exited ${r.signal ?? r.exitCode}\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim()}`,
  };
}

async function build(name: string): Promise<string> {
  return (await buildProgram({ src: labSource(`cloud/03-kvm/${name}.c`) })).path;
}

/** The program's result line as key=value pairs (`text=` runs to the end of the line). */
export function parseResult(stdout: string, first: string): Record<string, string> {
  const line = stdout.split('\n').find((l) => l.startsWith(`${first}=`)) ?? '';
  const out: Record<string, string> = {};
  const textAt = line.indexOf(' text=');
  const head = textAt >= 0 ? line.slice(0, textAt) : line;
  if (textAt >= 0) out.text = line.slice(textAt + ' text='.length);
  for (const kv of head.split(' ')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** Write the guest image of make_guest.sh (a harness file: always the reference's) for `message` XOR `key`; its path. */
async function makeGuestImage(dir: string, message: string, key: number): Promise<string> {
  const image = join(dir, 'guest.bin');
  const r = await run('sh', ['-c', 'sh "$0" "$1" "$2" > "$3"', join(REFERENCE_SRC, 'cloud/03-kvm/make_guest.sh'), message, String(key), image], { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`make_guest.sh failed: ${r.stderr}`);
  return image;
}

/** Where the host has no kvm tracepoints (or no tracefs): what the spec announces as its adaptation. */
export const untracedNote = (events: readonly string[]) =>
  `tracefs lacks kvm:${events.join('/kvm:')}: the exit reasons are checked from the VMM's own output only`;

const traceKvm = (events: readonly string[]): TraceInstance | undefined =>
  makeTraceInstance(events.map((e) => `kvm/${e}`), { tag: 'kvm', bufferKb: 4096, recordTgid: true });

/** The exit reasons kvm:kvm_userspace_exit recorded for a process (any of its threads: the vCPU may run in any). */
const exitReasons = (events: readonly TraceEvent[], pid: number): number[] =>
  events.filter((e) => ofProcess(e, pid) && e.event === 'kvm_userspace_exit').map((e) => Number(e.body.match(/\((\d+)\)/)?.[1] ?? -1));

function userspaceExits(trace: TraceInstance, pid: number): { reasons: number[]; lost: boolean } {
  const { events, lost } = trace.read();
  return { reasons: exitReasons(events, pid), lost };
}

export interface HltRun {
  readonly run: Shown;
  /** Its result line (`exit_reason=… rip=… create_to_hlt_ns=…`). */
  readonly result: Record<string, string>;
  /** kvm:kvm_userspace_exit reasons of its pid; undefined without the tracepoint. */
  readonly reasons?: readonly number[];
}

/** kvm_hlt: a guest of one HLT byte, one KVM_RUN. */
export async function runHlt(): Promise<HltRun> {
  const bin = await build('kvm_hlt');
  const trace = traceKvm(['kvm_userspace_exit']);
  const r = await run(bin, [], { timeoutMs: 30_000, reject: false });
  return { run: shown(r), result: parseResult(r.stdout, 'exit_reason'), reasons: trace ? userspaceExits(trace, r.pid).reasons : undefined };
}

/** The KVM ioctls of a strace line list, in order. */
export const kvmIoctls = (straceStderr: string): string[] =>
  straceStderr.split('\n').map((l) => l.match(/^ioctl\(\d+, (KVM_\w+)/)?.[1]).filter((x): x is string => Boolean(x));

/** kvm_hlt under strace: the KVM ioctls it makes, in order. */
export async function straceHlt(): Promise<{ calls: string[] }> {
  const bin = await build('kvm_hlt');
  const r = await run('strace', ['-qq', '-e', 'trace=ioctl', bin], { timeoutMs: 30_000, reject: false });
  return { calls: kvmIoctls(r.stderr) };
}

export interface Injection {
  readonly step: string;
  readonly errno: string;
  readonly text: string;
  /** Which ioctl call strace fails (1-based); 0 when the program never makes that step (then it is not run). */
  readonly nth: number;
  readonly run?: Shown;
}

/** kvm_hlt with strace failing each step of INJECTED in turn; `calls` are its ioctls in a run without failures. */
export async function injectFailures(): Promise<{ calls: string[]; injections: Injection[] }> {
  const bin = await build('kvm_hlt');
  const seen = await run('strace', ['-qq', '-e', 'trace=ioctl', bin], { timeoutMs: 30_000, reject: false });
  const calls = kvmIoctls(seen.stderr);
  const injections: Injection[] = [];
  for (const [step, errno, text] of INJECTED) {
    const nth = calls.indexOf(step) + 1;
    if (!nth) { injections.push({ step, errno, text, nth }); continue; }
    const r = await run('strace', ['-qq', '-o', '/dev/null', '-e', 'trace=ioctl', '-e', `inject=ioctl:error=${errno}:when=${nth}`, bin], { timeoutMs: 30_000, reject: false });
    injections.push({ step, errno, text, nth, run: shown(r) });
  }
  return { calls, injections };
}

export interface IoRun {
  /** The text only the guest knows (random); after it the guest writes four bytes of its time-stamp counter. */
  readonly message: string;
  /** Whether the guest image holds the text in clear (it must not: make_guest.sh encodes it). */
  readonly imageHoldsText: boolean;
  readonly run: Shown;
  /** kvm:kvm_pio event bodies of its pid; undefined without the tracepoints. */
  readonly pio?: readonly string[];
  /** kvm:kvm_userspace_exit reasons of its pid; undefined without the tracepoints. */
  readonly reasons?: readonly number[];
}

/**
 * kvm_io on a guest image whose text exists only inside the guest: the image holds it XOR a random key, which the
 * guest's code undoes. After it the guest writes four bytes of its time-stamp counter, read at run time: no file
 * holds them. Each byte goes out with outsb from guest memory while AL holds its complement: the byte is in
 * kvm_run's data, not in a register.
 */
export async function runIo(): Promise<IoRun> {
  const bin = await build('kvm_io');
  const dir = await makeTempDir('kvm-io');
  const message = `kl ${randomBytes(6).toString('hex')} hello from the guest`;
  const image = await makeGuestImage(dir, message, randomInt(1, 256));
  const imageHoldsText = readFileSync(image).includes(Buffer.from(message));
  const trace = traceKvm(['kvm_userspace_exit', 'kvm_pio']);
  const r = await run(bin, [image], { timeoutMs: 30_000, reject: false });
  if (!trace) return { message, imageHoldsText, run: shown(r) };
  const { events } = trace.read();
  return {
    message, imageHoldsText, run: shown(r),
    pio: events.filter((e) => ofProcess(e, r.pid) && e.event === 'kvm_pio').map((e) => e.body),
    reasons: exitReasons(events, r.pid),
  };
}

export interface ExitsRun {
  /** The OUTs the guest makes (EXIT_LOOPS plus a random part). */
  readonly n: number;
  readonly run: Shown;
  /** Its result line (`exits=… ns_per_exit=… syscall_ns=… exit_reason=…`). */
  readonly result: Record<string, string>;
  /** kvm:kvm_userspace_exit reasons of its pid; undefined without the tracepoint. */
  readonly reasons?: readonly number[];
  /** The instance's buffer overflowed: `reasons` are not all of them. */
  readonly lost?: boolean;
}

/** kvm_exits N: a guest loop of N OUTs, the VMM counting the exits and timing them against getppid(2). */
export async function runExits(): Promise<ExitsRun> {
  const bin = await build('kvm_exits');
  const n = EXIT_LOOPS + randomInt(1000);
  const trace = traceKvm(['kvm_userspace_exit']);
  const r = await run(bin, [String(n)], { timeoutMs: 60_000, reject: false });
  const exits = trace ? userspaceExits(trace, r.pid) : undefined;
  return { n, run: shown(r), result: parseResult(r.stdout, 'exits'), reasons: exits?.reasons, lost: exits?.lost };
}
