import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CommandError, TimeoutError, WaitTimeoutError } from '../../helpers/harness/errors.js';
import { run, startBackground, waitUntil } from '../../helpers/harness/exec.js';
import { OUTPUT_CAP } from '../../helpers/harness/launch.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // a zombie still answers kill(0): look at its state
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('exec.run', () => {
  it('returns stdout, stderr and the exit code', async () => {
    const r = await run('sh', ['-c', 'echo out; echo err >&2']);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  });

  it('throws a CommandError naming the command, the exit code and the stderr tail', async () => {
    const e = await run('sh', ['-c', 'echo boom >&2; exit 3']).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).code).toBe('E_COMMAND');
    expect((e as CommandError).exitCode).toBe(3);
    expect((e as Error).message).toMatch(/^Command failed with exit code 3: sh -c 'echo boom >&2; exit 3'/);
    expect((e as Error).message).toContain('boom');
  });

  it('does not throw with reject: false', async () => {
    expect((await run('sh', ['-c', 'exit 4'], { reject: false })).exitCode).toBe(4);
  });

  it('stops a program that prints without end at the output cap, and says so in a message of bounded size', async () => {
    const r = await run('yes', ['0123456789abcdef'], { reject: false, timeoutMs: 30_000 });
    expect(r.reason).toBe('limit');
    expect(r.limit).toMatch(/^output: more than 32 MiB on stdout/);
    expect(r.stdout.length).toBeLessThanOrEqual(OUTPUT_CAP);
    const e = (await run('sh', ['-c', 'yes >&2'], { maxOutput: 1 << 20 }).catch((x: unknown) => x)) as CommandError;
    expect(e).toBeInstanceOf(CommandError);
    expect(e.message).toMatch(/stopped by the run's output cap \(output: more than 1 MiB on stderr/);
    expect(e.message.length).toBeLessThan(12_000);
  });

  it('stops at the cap a program that ignores SIGPIPE and prints on, and reports the limit even when it then exits 0', async () => {
    const loop = 'trap "" PIPE; while :; do printf "%01024d\\n" 0 2>/dev/null; done';
    const r = await run('bash', ['-c', loop], { reject: false, maxOutput: 1 << 20, timeoutMs: 20_000 });
    expect(r.reason).toBe('limit');
    expect(r.limit).toMatch(/^output: more than 1 MiB on stdout/);
    expect(r.durationMs).toBeLessThan(15_000);
    const quiet = await run('sh', ['-c', 'trap "" PIPE; head -c 3000000 /dev/zero; exit 0'], { reject: false, maxOutput: 1 << 20 });
    expect(quiet.reason).toBe('limit');
  });

  it('keeps the tail of one endless line to a few kilobytes in a message', async () => {
    const e = (await run('sh', ['-c', 'head -c 3000000 /dev/zero | tr "\\0" x; exit 1']).catch((x: unknown) => x)) as CommandError;
    expect(e.stdout.length).toBe(3_000_000);
    expect(e.message).toMatch(/… \(\d+ earlier characters\)\nx+$/);
    expect(e.message.length).toBeLessThan(10_000);
  });

  it('names a program that cannot start', async () => {
    await expect(run('/nonexistent/prog')).rejects.toThrow(/could not start: \/nonexistent\/prog/);
  });

  it('kills the whole process group on timeout, grandchildren included', async () => {
    const e = (await run('sh', ['-c', 'sleep 60 & echo $!; wait'], { timeoutMs: 500, killGraceMs: 200 }).catch((x: unknown) => x)) as TimeoutError;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.code).toBe('E_TIMEOUT');
    expect(e.message).toMatch(/timed out after 500 ms; its process group was killed: sh -c/);
    const grandchild = Number(e.stdout.trim());
    expect(grandchild).toBeGreaterThan(0);
    await waitUntil('the grandchild sleep to die', () => alive(grandchild), (a) => !a, { timeoutMs: 3000 });
  });

  it('kills the process group when the given signal aborts (a test timeout)', async () => {
    const ac = new AbortController();
    const pending = run('sh', ['-c', 'sleep 60 & wait'], { timeoutMs: 30_000, signal: ac.signal, reject: false });
    setTimeout(() => ac.abort(), 200);
    const r = await pending;
    expect(r.signal).toBe('SIGTERM');
    expect(r.durationMs).toBeLessThan(5000);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const started = Date.now();
    const e = (await run('sh', ['-c', "trap '' TERM; while :; do sleep 0.05; done"], { timeoutMs: 300, killGraceMs: 300 }).catch((x: unknown) => x)) as TimeoutError;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('exec.startBackground', () => {
  it('waits for a line of output, then stops the group', async () => {
    const bg = startBackground('sh', ['-c', 'sleep 0.2; echo "Attaching 1 probe..."; sleep 60'], { autoStop: false });
    const m = await bg.waitFor(/Attaching (\d+) probe/, 'bpftrace-like attach line', 5000);
    expect(m[1]).toBe('1');
    const r = await bg.stop();
    expect(r.signal).toBe('SIGTERM');
    expect(alive(bg.pid)).toBe(false);
  });

  it('rejects waitFor with the output when the program exits first', async () => {
    const bg = startBackground('sh', ['-c', 'echo syntax error >&2; exit 1'], { autoStop: false });
    await expect(bg.waitFor(/Attaching/, 'attach', 5000)).rejects.toThrow(/exited \(code 1\) before attach[\s\S]*syntax error/);
  });

  it('rejects waitFor on timeout with the last output seen', async () => {
    const bg = startBackground('sh', ['-c', 'echo still loading; sleep 60'], { autoStop: false });
    const e = await bg.waitFor(/never/, 'a line that never comes', 300).catch((x: unknown) => x);
    await bg.stop();
    expect(e).toBeInstanceOf(WaitTimeoutError);
    expect((e as Error).message).toContain('still loading');
  });
});

describe('exec.waitUntil', () => {
  it('returns the accepted value', async () => {
    let n = 0;
    expect(await waitUntil('n to reach 3', () => ++n, (v) => v >= 3, { intervalMs: 1 })).toBe(3);
  });

  it('times out showing the last value seen', async () => {
    await expect(waitUntil('the file to say ready', () => 'loading', (v) => v === 'ready', { timeoutMs: 100, intervalMs: 10 }))
      .rejects.toThrow(/waiting for the file to say ready\.\nLast seen:\nloading/);
  });
});
