/**
 * Lab 0 — 通用准备工作 (preparing the environment).
 * The host is ready for the labs: root, a readable kernel and config, a C
 * toolchain whose programs really talk to the kernel, tracefs, and the
 * doctor's core capabilities.
 *
 * The lab's anatomy: experiment.ts runs the program (plainly, under UNAME26,
 * in a new PID namespace, under strace) and reads the host, judge.ts turns the
 * evidence into facts and messages, this file says what must hold.
 */
import { release } from 'node:os';
import { describe, expect, it } from 'vitest';
import { capabilities, type CapabilityId } from '../../helpers/harness/capabilities.js';
import { labRequires, need, requires } from '../../helpers/harness/requires.js';
import { holds } from '../../helpers/harness/verdict.js';
import { kernelConfig, openatFormat, osRelease, runElsewhere, runSysinfo, straceSysinfo } from './experiment.js';
import * as judge from './judge.js';

/** Capabilities every lab of the course stands on. */
const CORE: readonly CapabilityId[] = ['root', 'kernel-config', 'cc', 'btf', 'tracefs', 'cgroup'];

describe('Lab 0 — preparing the environment (通用准备工作)', () => {
  requires(...labRequires(import.meta.url));

  it('control: runs as root, as the labs need', () => {
    expect(process.getuid?.(), 'the labs load BPF programs and make namespaces: run with sudo').toBe(0);
  });

  it('control: reads the running kernel release and its build configuration', async (ctx) => {
    await need(ctx, 'kernel-config');
    expect(osRelease()).toBe(release());
    expect(kernelConfig(), 'the labs need the bpf() system call').toMatch(/^CONFIG_BPF_SYSCALL=y$/m);
  });

  it('builds the student program, which reports this kernel, its own PID and its parent', async () => {
    holds(judge.reportsThisKernel(await runSysinfo(), release()));
  });

  it('reports what the kernel answers, not a constant: the 2.6 release under the UNAME26 personality, pid 1 and parent 0 as the first process of a new PID namespace', async () => {
    const e = await runElsewhere();
    expect(e.uname26Release, `setarch --uname-2.6 did not change the release uname(2) returns (${e.uname26Release})`).not.toBe(release());
    holds(judge.reportsWhatKernelAnswers(e));
  });

  it('makes the uname, getpid and getppid system calls itself, and prints what they returned (strace)', async (ctx) => {
    await need(ctx, 'strace');
    const s = await straceSysinfo();
    holds(judge.makesTheCalls(s));
    holds(judge.printsWhatCallsReturned(s));
  });

  it('control: has tracefs mounted with the syscall tracepoints the eBPF labs attach to', async (ctx) => {
    await need(ctx, 'tracefs');
    expect(openatFormat()).toMatch(/field:const char \* filename/);
  });

  it("control: holds the doctor's core capabilities", async () => {
    const caps = await capabilities();
    const broken = CORE.map((id) => caps[id]).filter((c) => !c.ok).map((c) => `✗ ${c.id}: ${c.detail} — fix: ${c.fix}`);
    expect(broken, broken.join('\n')).toEqual([]);
  });
});
