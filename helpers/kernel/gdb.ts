/**
 * gdb in batch mode against QEMU's gdbstub (labs K2 and system/02-boot). The stub listens on a
 * port chosen free at run time (never a fixed :1234 that collides with a
 * neighbour); gdb runs with -batch -nx under run(), so a hang is killed with
 * its process group.
 */
import { createServer } from 'node:net';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from '../harness/exec.js';
import { makeTempDir } from '../harness/resources.js';

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface GdbBatchOptions {
  readonly port: number;
  /** vmlinux with symbols, or undefined for a bare x86-64 target. */
  readonly file?: string;
  /** Convenience variables set before the script (`set $name = value`). */
  readonly vars?: Readonly<Record<string, string | number | bigint>>;
  /** The gdb commands run after `target remote` (a student's script). */
  readonly script: string;
  /** Commands after the script (e.g. delete + continue to let the guest finish). */
  readonly after?: readonly string[];
  readonly timeoutMs?: number;
  /**
   * Run gdb as nobody in a PID namespace of its own with its own /proc: a
   * script's `shell` or `python` sees no other process (not QEMU's command
   * line) and cannot write the harness's root-only files (system/02-boot's
   * record of the gdbstub).
   */
  readonly isolate?: boolean;
}

/** The full command file gdb runs (pure). */
export function gdbCommandFile(opts: Omit<GdbBatchOptions, 'timeoutMs'>): string {
  const lines = ['set pagination off', 'set confirm off', 'set width 0', 'set architecture i386:x86-64'];
  if (opts.file) lines.push(`file ${opts.file}`);
  lines.push(`target remote 127.0.0.1:${opts.port}`);
  for (const [k, v] of Object.entries(opts.vars ?? {})) lines.push(`set $${k} = ${typeof v === 'bigint' ? `0x${v.toString(16)}` : v}`);
  lines.push(opts.script.trimEnd());
  lines.push(...(opts.after ?? []));
  return `${lines.join('\n')}\n`;
}

/** Run gdb -batch -nx with the command file; never rejects on gdb's exit code. */
export async function gdbBatch(opts: GdbBatchOptions): Promise<RunResult & { commandFile: string }> {
  const dir = await makeTempDir('gdb');
  const commandFile = join(dir, 'commands.gdb');
  await writeFile(commandFile, gdbCommandFile(opts));
  const argv = ['-batch', '-nx', '-x', commandFile];
  if (opts.isolate) await chmod(dir, 0o755);
  const r = opts.isolate
    ? await run('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', 'gdb', ...argv],
      { timeoutMs: opts.timeoutMs ?? 120_000, reject: false, env: { HOME: '/nonexistent' } })
    : await run('gdb', argv, { timeoutMs: opts.timeoutMs ?? 120_000, reject: false });
  return { ...r, commandFile };
}

/** `KL_HIT key=value …` lines a gdb script printed, as records. */
export function parseHits(output: string, tag = 'KL_HIT'): Record<string, string>[] {
  return output.split('\n').filter((l) => l.startsWith(`${tag} `)).map((l) =>
    Object.fromEntries(l.slice(tag.length + 1).trim().split(/\s+/).map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    })));
}
