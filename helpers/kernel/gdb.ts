/**
 * gdb in batch mode against QEMU's gdbstub (labs K2 and system/02-boot). QEMU's stub listens on a
 * Unix socket in a dir of the harness's alone (gdbStub: never a fixed :1234 that collides with a
 * neighbour); gdb reaches it through a relay of the harness's on a socket in a temp dir of the lab's
 * (reachable from a contained gdb, whose network namespace is empty), which passes the remote
 * protocol on but for `qRcmd`: gdb's `monitor` is QEMU's human monitor, where `migrate "exec:…"`
 * runs a shell command and `pmemsave … "<file>"` writes a file, as QEMU's user (root) on the host
 * (RspFilter). gdb runs with -batch -nx under run(), so a hang is killed with its process group.
 *
 * The student's script is gdb's code (`shell`, `python`, `pipe` run as whoever runs gdb): gdbBatch
 * hands it to gdb as a file of its own (`-x <prelude> -x <the student's file> -x <after>`), so in a
 * lab whose lab.json says `"contain": {"interpreters": ["gdb"]}` gdb is the student's program
 * (helpers/harness/contain.ts: its private namespaces, the run's unprivileged uid, no capabilities).
 * An error in one `-x` file ends that file only: gdb goes on with the next (the harness's `after`).
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { activeContainment, studentInputCopy } from '../harness/contain.js';
import { run, waitUntil, type RunResult } from '../harness/exec.js';
import { makeTempDir } from '../harness/resources.js';

/** QEMU's gdbstub socket (qemu.ts `gdbSocket`; in a dir of the harness's alone) and gdb's, the relay's (in a temp dir the lab's program sees). */
export interface GdbStub { readonly qemu: string; readonly socket: string }

/** The two sockets of a gdbstub (gdbStub: QEMU's and the relay's); make them before QEMU starts and before any student run. */
export async function gdbStub(): Promise<GdbStub> {
  const qemu = join(await makeTempDir('gdbstub-qemu', { hidden: true }), 'qemu.sock');
  const socket = join(await makeTempDir('gdbstub'), 'gdb.sock');
  for (const p of [qemu, socket]) if (Buffer.byteLength(p) > 100) throw new Error(`gdbStub: ${p} is too long for a Unix socket's path (sun_path: 108 bytes)`);
  return { qemu, socket };
}

/** Is a Unix socket listening at `path` (/proc/net/unix: flags 00010000, __SO_ACCEPTCON)? */
export function unixListening(path: string, table = readFileSync('/proc/net/unix', 'utf8')): boolean {
  return table.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f.length >= 8 && f[3] === '00010000' && f.slice(7).join(' ') === path;
  });
}

/** Wait until QEMU's gdbstub listens on `socket` (its Unix socket). */
export async function waitForStub(socket: string, timeoutMs = 15_000): Promise<void> {
  await waitUntil(`QEMU's gdbstub listening on ${socket}`, () => unixListening(socket), (ok) => ok, { timeoutMs });
}

const DOLLAR = 0x24, HASH = 0x23, ESCAPE = 0x7d, STAR = 0x2a;
const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
/** Longest packet let through, decoded: QEMU's line buffer is 4096 bytes, and on an overrun it drops to idle mid-packet. */
const MAX_PAYLOAD = 4000;

/** A packet of the remote protocol with its checksum. */
export const rspPacket = (payload: string) => {
  const sum = [...Buffer.from(payload, 'latin1')].reduce((a, b) => (a + b) & 0xff, 0);
  return Buffer.from(`$${payload}#${sum.toString(16).padStart(2, '0')}`, 'latin1');
};

/** What QEMU is sent in place of a refused packet: a query it does not know (it answers an empty packet: "not supported"). */
export const REFUSED_PACKET = 'qKlMonitorRefused';

/**
 * The gdb → QEMU direction of the relay (pure, byte for byte): frames the remote protocol as QEMU's gdbstub does
 * (`$`, payload with `}` escaping the next byte, `#`, two checksum characters) and passes each packet on unchanged —
 * but a packet QEMU would read as `qRcmd` (gdb's `monitor`: QEMU's human monitor, whose `migrate "exec:…"` runs a
 * shell command and `pmemsave`, `dump-guest-memory`, `logfile` write files as QEMU's user), or one that could leave
 * QEMU's framing out of step with this one (run-length `*`, which gdb never sends; a `$` inside; a checksum that is
 * not hex; one longer than QEMU's buffer), goes on as REFUSED_PACKET. Between packets only `+`, `-` and the
 * interrupt (0x03) pass. `refused` counts the packets replaced.
 */
export class RspFilter {
  refused = 0;
  private state: 'idle' | 'payload' | 'escape' | 'sum1' | 'sum2' = 'idle';
  private raw: number[] = [];
  private decoded: number[] = [];
  private bad = false;

  push(chunk: Uint8Array): Buffer {
    const out: number[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case 'idle':
          if (b === DOLLAR) { this.state = 'payload'; this.raw = [b]; this.decoded = []; this.bad = false; }
          else if (b === 0x2b || b === 0x2d || b === 0x03) out.push(b);
          break;
        case 'payload':
          if (this.raw.length <= MAX_PAYLOAD + 8) this.raw.push(b);
          if (b === HASH) { this.state = 'sum1'; break; }
          if (b === ESCAPE) { this.state = 'escape'; break; }
          if (b === DOLLAR || b === STAR) this.bad = true;
          this.decoded.length <= MAX_PAYLOAD ? this.decoded.push(b) : (this.bad = true);
          break;
        case 'escape':
          if (this.raw.length <= MAX_PAYLOAD + 8) this.raw.push(b);
          if (b === DOLLAR) this.bad = true;
          this.decoded.length <= MAX_PAYLOAD ? this.decoded.push(b ^ 0x20) : (this.bad = true);
          this.state = 'payload';
          break;
        case 'sum1':
        case 'sum2':
          this.raw.push(b);
          if (!isHex(b)) this.bad = true;
          if (this.state === 'sum1') { this.state = 'sum2'; break; }
          this.state = 'idle';
          if (this.bad || this.raw.length > MAX_PAYLOAD + 8 || Buffer.from(this.decoded).toString('latin1').startsWith('qRcmd')) {
            this.refused++;
            out.push(...rspPacket(REFUSED_PACKET));
          } else out.push(...this.raw);
          break;
      }
    }
    return Buffer.from(out);
  }
}

/**
 * The relay: a Unix socket at `stub.socket` (mode 0666: connect(2) needs write permission on the socket file; its
 * directory decides who reaches it), each connection passed on to QEMU's `stub.qemu` through an RspFilter.
 */
export async function startRelay(stub: GdbStub): Promise<{ refused(): number; close(): Promise<void> }> {
  const conns = new Set<Socket>();
  let refused = 0;
  const server = createServer((client) => {
    const up = createConnection(stub.qemu);
    const filter = new RspFilter();
    conns.add(client); conns.add(up);
    const end = () => { refused += filter.refused; filter.refused = 0; client.destroy(); up.destroy(); conns.delete(client); conns.delete(up); };
    client.on('data', (d) => { const f = filter.push(d); refused += filter.refused; filter.refused = 0; if (f.length) up.write(f); });
    up.on('data', (d) => client.write(d));
    for (const s of [client, up]) { s.on('error', end); s.on('close', end); }
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(stub.socket, () => ok()); });
  await chmod(stub.socket, 0o666);
  return {
    refused: () => refused,
    close: () => new Promise<void>((ok) => { for (const c of conns) c.destroy(); server.close(() => ok()); }),
  };
}

export interface GdbBatchOptions {
  /** QEMU's gdbstub on a Unix socket (gdbStub): gdb goes through the relay (startRelay), never straight to QEMU. */
  readonly stub: GdbStub;
  /** vmlinux with symbols, or undefined for a bare x86-64 target. */
  readonly file?: string;
  /** Convenience variables set before the script (`set $name = value`). */
  readonly vars?: Readonly<Record<string, string | number | bigint>>;
  /** The harness's own gdb commands after the variables, before the student's script (7.2's stop observer). */
  readonly prelude?: string;
  /**
   * The student's script: one of the lab's sources (labSource(…)), handed to gdb as a file of its own, between the
   * harness's prelude and `after` (while the lab is contained, a copy: studentInputCopy).
   */
  readonly scriptFile: string;
  /** Commands after the script (e.g. delete + continue to let the guest finish); they run even when the script failed. */
  readonly after?: readonly string[];
  readonly timeoutMs?: number;
  /**
   * Where the lab is not contained (LABS_CONTAIN=0) and the run is root's: run gdb as nobody in a PID namespace of
   * its own with its own /proc, so that a script's `shell` or `python` sees no other process (not QEMU's command line)
   * and cannot write the harness's root-only files (system/02-boot's record of the gdbstub). Contained, the lab's
   * containment does that and more, and this is not used.
   */
  readonly isolate?: boolean;
}

/** The harness's commands before the student's script: settings, the target, the variables, the prelude (pure). */
export function gdbPrelude(opts: Pick<GdbBatchOptions, 'stub' | 'file' | 'vars' | 'prelude'>): string {
  const lines = ['set pagination off', 'set confirm off', 'set width 0', 'set architecture i386:x86-64'];
  if (opts.file) lines.push(`file ${opts.file}`);
  lines.push(`target remote ${opts.stub.socket}`);
  for (const [k, v] of Object.entries(opts.vars ?? {})) lines.push(`set $${k} = ${typeof v === 'bigint' ? `0x${v.toString(16)}` : v}`);
  if (opts.prelude) lines.push(opts.prelude.trimEnd());
  return `${lines.join('\n')}\n`;
}

/**
 * Run gdb -batch -nx: `-x <prelude> -x <script> -x <after>`; never rejects on gdb's exit code. `commands`, the three
 * files' text in the order gdb ran them (for a message).
 */
export async function gdbBatch(opts: GdbBatchOptions): Promise<RunResult & { commands: string }> {
  const dir = await makeTempDir('gdb');
  const contained = Boolean(activeContainment());
  const isolate = Boolean(opts.isolate) && !contained && process.getuid?.() === 0;
  const prelude = join(dir, 'prelude.gdb');
  await writeFile(prelude, gdbPrelude(opts), { mode: 0o644 });
  // contained: a copy the program's uid can read, counted as the student's source (gdb is then the program);
  // isolated (nobody): a copy in this dir, as a workspace may be 0700; else the file itself
  const script = contained ? await studentInputCopy(opts.scriptFile, dir)
    : isolate ? join(dir, basename(opts.scriptFile)) : opts.scriptFile;
  if (isolate) await writeFile(script, await readFile(opts.scriptFile), { mode: 0o644 });
  const after = join(dir, 'after.gdb');
  await writeFile(after, opts.after?.length ? `${opts.after.join('\n')}\n` : '', { mode: 0o644 });
  const argv = ['-batch', '-nx', '-x', prelude, '-x', script, '-x', after];
  const commands = [prelude, script, after].map((f) => readFileSync(f, 'utf8')).join('');
  const timeoutMs = opts.timeoutMs ?? 120_000;
  if (isolate) {
    await chmod(dir, 0o755);
    await chmod(dirname(opts.stub.socket), 0o755);
  }
  await waitForStub(opts.stub.qemu);
  const relay = await startRelay(opts.stub);
  let r: RunResult;
  try {
    r = isolate
      ? await run('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', 'gdb', ...argv],
        { timeoutMs, reject: false, env: { HOME: '/nonexistent' } })
      : await run('gdb', argv, { timeoutMs, reject: false });
  } finally {
    await relay.close();
  }
  const refused = relay.refused();
  if (refused) r = { ...r, stderr: `${r.stderr}\n[harness] refused ${refused} monitor (qRcmd) packet(s): QEMU's monitor is not the script's\n` };
  return { ...r, commands };
}

/** `KL_HIT key=value …` lines a gdb script printed, as records. */
export function parseHits(output: string, tag = 'KL_HIT'): Record<string, string>[] {
  return output.split('\n').filter((l) => l.startsWith(`${tag} `)).map((l) =>
    Object.fromEntries(l.slice(tag.length + 1).trim().split(/\s+/).map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    })));
}
