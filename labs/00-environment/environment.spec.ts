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
import { capabilities, type CapabilityId } from '../../helpers/harness/capabilities.js';
import { buildProgram } from '../../helpers/harness/compile.js';
import { run } from '../../helpers/harness/exec.js';
import { labSource } from '../../helpers/harness/paths.js';
import { labRequires, need, requires } from '../../helpers/harness/requires.js';
import { makeTempDir } from '../../helpers/harness/resources.js';

/** Capabilities every lab of the course stands on. */
const CORE: readonly CapabilityId[] = ['root', 'kernel-config', 'cc', 'btf', 'tracefs', 'cgroup'];

function pick(o: Record<string, string>, keys: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

function kernelConfig(): string {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString();
  } catch {
    return readFileSync(`/boot/config-${release()}`, 'utf8');
  }
}

/**
 * The program's report: every `key=value` of release, pid, ppid and raw_pid
 * anywhere in its output (any order, any lines; the last one of a key wins).
 */
function parseSysinfo(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of stdout.matchAll(/(?:^|\s)(release|pid|ppid|raw_pid)=(\S+)/g)) out[m[1]!] = m[2]!;
  return out;
}

const STUDENT_FILE = 'your workspace file 00-environment/sysinfo.c';

/** The release the kernel's uname(2) gives under the UNAME26 personality (setarch --uname-2.6, util-linux). */
async function uname26Release(): Promise<string> {
  const r = await run('setarch', [process.arch === 'x64' ? 'x86_64' : process.arch, '--uname-2.6', 'uname', '-r'], { timeoutMs: 10_000 });
  return r.stdout.trim();
}

/** The release strace decoded from the uname(2) result, and the values getpid/getppid returned, per pid. */
function parseStraceSysinfo(trace: string): { uname: string[]; getpid: number[]; getppid: number[] } {
  const out = { uname: [] as string[], getpid: [] as number[], getppid: [] as number[] };
  for (const line of trace.split('\n')) {
    const u = line.match(/\buname\(\{.*\brelease="([^"]*)".*\}\)\s*=\s*0\b/);
    if (u) out.uname.push(u[1]!);
    const g = line.match(/\b(getpid|getppid)\(\)\s*=\s*(\d+)/);
    if (g) out[g[1] as 'getpid' | 'getppid'].push(Number(g[2]));
  }
  return out;
}

describe('Lab 0 — preparing the environment (通用准备工作)', () => {
  requires(...labRequires(import.meta.url));

  it('control: runs as root, as the labs need', () => {
    expect(process.getuid?.(), 'the labs load BPF programs and make namespaces: run with sudo').toBe(0);
  });

  it('control: reads the running kernel release and its build configuration', async (ctx) => {
    await need(ctx, 'kernel-config');
    expect(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()).toBe(release());
    const config = kernelConfig();
    expect(config, 'the labs need the bpf() system call').toMatch(/^CONFIG_BPF_SYSCALL=y$/m);
  });

  it('builds the student program, which reports this kernel, its own PID and its parent', async () => {
    const bin = await buildProgram({ src: labSource('00-environment/sysinfo.c') });
    const r = await run(bin.path, [], { timeoutMs: 10_000 });
    const info = parseSysinfo(r.stdout);
    expect(info, `${STUDENT_FILE} printed:\n${r.stdout}\nexpected the kernel's answers: release ${release()}, the pid the test spawned (${r.pid}), its parent (the test runner, ${process.pid})`).toMatchObject({
      release: release(),
      pid: String(r.pid),
      ppid: String(process.pid),
      raw_pid: String(r.pid),
    });
  });

  it('reports what the kernel answers, not a constant: the 2.6 release under the UNAME26 personality, pid 1 and parent 0 as the first process of a new PID namespace', async () => {
    const bin = await buildProgram({ src: labSource('00-environment/sysinfo.c') });
    const old = await uname26Release();
    expect(old, `setarch --uname-2.6 did not change the release uname(2) returns (${old})`).not.toBe(release());
    const under26 = await run('setarch', [process.arch === 'x64' ? 'x86_64' : process.arch, '--uname-2.6', bin.path], { timeoutMs: 10_000 });
    // unshare --fork: the program is the first process (pid 1) of a new PID namespace; its parent lives outside it (getppid() = 0).
    const inNs = await run('unshare', ['--pid', '--fork', bin.path], { timeoutMs: 10_000 });
    const got = { personality: parseSysinfo(under26.stdout).release, namespace: pick(parseSysinfo(inNs.stdout), ['pid', 'ppid', 'raw_pid']) };
    expect(got, `${STUDENT_FILE} must print what uname(2), getpid(2) and getppid(2) return at run time.\nunder setarch --uname-2.6 it printed: ${under26.stdout.trim()}\nin a new PID namespace it printed: ${inNs.stdout.trim()}`)
      .toEqual({ personality: old, namespace: { pid: '1', ppid: '0', raw_pid: '1' } });
  });

  it('makes the uname, getpid and getppid system calls itself, and prints what they returned (strace)', async (ctx) => {
    await need(ctx, 'strace');
    const bin = await buildProgram({ src: labSource('00-environment/sysinfo.c') });
    const dir = await makeTempDir('strace');
    const log = `${dir}/trace`;
    // Under UNAME26 the kernel's answer differs from the machine's release: the printed one must be the one strace saw returned.
    const r = await run('strace', ['-f', '-qq', '-v', '-o', log, '-e', 'trace=uname,getpid,getppid', 'setarch', process.arch === 'x64' ? 'x86_64' : process.arch, '--uname-2.6', bin.path], { timeoutMs: 15_000 });
    const trace = readFileSync(log, 'utf8');
    const calls = parseStraceSysinfo(trace);
    const info = parseSysinfo(r.stdout);
    const seen = { uname: calls.uname.length >= 1, getppid: calls.getppid.length >= 1, getpid: calls.getpid.length >= 2 };
    expect(seen, `${STUDENT_FILE}: strace must see uname, getppid and two getpid calls (the wrapper and the raw syscall); it saw:\n${trace}`)
      .toEqual({ uname: true, getppid: true, getpid: true });
    expect({ release: info.release, pid: Number(info.pid), ppid: Number(info.ppid), raw_pid: Number(info.raw_pid) },
      `${STUDENT_FILE} printed: ${r.stdout.trim()}\nthe kernel returned (strace):\n${trace}`)
      .toEqual({ release: calls.uname.at(-1), pid: calls.getpid.at(-1), ppid: calls.getppid.at(-1), raw_pid: calls.getpid.at(-1) });
  });

  it('control: has tracefs mounted with the syscall tracepoints the eBPF labs attach to', async (ctx) => {
    await need(ctx, 'tracefs');
    const format = readFileSync('/sys/kernel/tracing/events/syscalls/sys_enter_openat/format', 'utf8');
    expect(format).toMatch(/field:const char \* filename/);
  });

  it("control: holds the doctor's core capabilities", async () => {
    const caps = await capabilities();
    const broken = CORE.map((id) => caps[id]).filter((c) => !c.ok).map((c) => `✗ ${c.id}: ${c.detail} — fix: ${c.fix}`);
    expect(broken, broken.join('\n')).toEqual([]);
  });
});
