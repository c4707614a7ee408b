/**
 * Lab 0 — 通用准备工作 (preparing the environment).
 * The host is ready for the labs: root, a readable kernel and config, a C
 * toolchain whose programs really talk to the kernel, tracefs, and the
 * doctor's core capabilities.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { capabilities, type CapabilityId } from '../../helpers/capabilities.js';
import { buildProgram } from '../../helpers/compile.js';
import { run } from '../../helpers/exec.js';
import { labSource } from '../../helpers/paths.js';
import { need, requires } from '../../helpers/requires.js';
import { makeTempDir } from '../../helpers/resources.js';

/** Capabilities every lab of the course stands on. */
const CORE: readonly CapabilityId[] = ['root', 'kernel-config', 'cc', 'btf', 'tracefs', 'cgroup'];

function kernelConfig(): string {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString();
  } catch {
    return readFileSync(`/boot/config-${release()}`, 'utf8');
  }
}

/** Parse `release=… pid=… ppid=… raw_pid=…`. */
function parseSysinfo(stdout: string): Record<string, string> {
  const line = stdout.split('\n').find((l) => l.startsWith('release=')) ?? '';
  return Object.fromEntries(line.split(' ').map((kv) => kv.split('=') as [string, string]));
}

describe('Lab 0 — preparing the environment (通用准备工作)', () => {
  requires('root', 'cc');

  it('runs as root, as the labs need', () => {
    expect(process.getuid?.(), 'the labs load BPF programs and make namespaces: run with sudo').toBe(0);
  });

  it('reads the running kernel release and its build configuration', async (ctx) => {
    await need(ctx, 'kernel-config');
    expect(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()).toBe(release());
    const config = kernelConfig();
    expect(config, 'the labs need the bpf() system call').toMatch(/^CONFIG_BPF_SYSCALL=y$/m);
  });

  it('builds the student program, which reports this kernel, its own PID and its parent', async () => {
    const bin = await buildProgram({ src: labSource('environment/sysinfo.c') });
    const r = await run(bin.path, [], { timeoutMs: 10_000 });
    const info = parseSysinfo(r.stdout);
    expect(info, `sysinfo printed:\n${r.stdout}`).toMatchObject({
      release: release(),
      pid: String(r.pid),
      ppid: String(process.pid),
      raw_pid: String(r.pid),
    });
  });

  it('makes the uname, getpid and getppid system calls itself (strace sees each of them)', async (ctx) => {
    await need(ctx, 'strace');
    const bin = await buildProgram({ src: labSource('environment/sysinfo.c') });
    const dir = await makeTempDir('strace');
    const log = `${dir}/trace`;
    await run('strace', ['-f', '-qq', '-o', log, '-e', 'trace=uname,getpid,getppid', bin.path], { timeoutMs: 15_000 });
    const trace = readFileSync(log, 'utf8');
    const count = (name: string) => trace.split('\n').filter((l) => new RegExp(`\\b${name}\\(`).test(l)).length;
    expect({ uname: count('uname') >= 1, getppid: count('getppid') >= 1, getpid: count('getpid') >= 2 }, `strace saw:\n${trace}`)
      .toEqual({ uname: true, getppid: true, getpid: true });
  });

  it('has tracefs mounted with the syscall tracepoints the eBPF labs attach to', async (ctx) => {
    await need(ctx, 'tracefs');
    const format = readFileSync('/sys/kernel/tracing/events/syscalls/sys_enter_openat/format', 'utf8');
    expect(format).toMatch(/field:const char \* filename/);
  });

  it("holds the doctor's core capabilities", async () => {
    const caps = await capabilities();
    const broken = CORE.map((id) => caps[id]).filter((c) => !c.ok).map((c) => `✗ ${c.id}: ${c.detail} — fix: ${c.fix}`);
    expect(broken, broken.join('\n')).toEqual([]);
  });
});
