/**
 * System Lab 2's judge: pure functions from the boot's evidence (the harness's
 * own record of every gdb stop, the script's KL_STOP/KL_CMDLINE lines, /proc/1
 * and /proc/2 of the booted guest) to the facts each test asserts, with the
 * message that shows the evidence and says what to fix.
 */
import { parseHits } from '../../../helpers/kernel/gdb.js';
import type { Verdict } from '../../../helpers/harness/verdict.js';

export const STOP_NAMES = ['start_kernel', 'rest_init', 'kernel_init', 'kthreadd'] as const;
type Name = (typeof STOP_NAMES)[number];
const SCRIPT = 'your workspace file system/02-boot/boot_trail.gdb';

/** Byte offsets of task_struct members, from the kernel's BTF. */
export interface TaskOffsets { readonly pid: number; readonly comm: number }

/** pid and comm offsets in `bpftool btf dump … format raw` output (pure). */
export function taskOffsets(raw: string): TaskOffsets {
  const lines = raw.split('\n');
  const at = lines.findIndex((l) => /^\[\d+\] STRUCT 'task_struct' size=\d+ vlen=\d+/.test(l));
  if (at < 0) throw new Error('no STRUCT task_struct in the BTF dump');
  const found: Record<string, number> = {};
  for (let i = at + 1; i < lines.length && /^\s+'/.test(lines[i]!); i++) {
    const m = lines[i]!.match(/^\s+'(\w*)' type_id=\d+ bits_offset=(\d+)/);
    if (m && (m[1] === 'pid' || m[1] === 'comm') && !(m[1] in found)) found[m[1]] = Number(m[2]) / 8;
  }
  if (found.pid === undefined || found.comm === undefined) throw new Error(`task_struct in the BTF dump lacks pid or comm: ${JSON.stringify(found)}`);
  return { pid: found.pid, comm: found.comm };
}

/** A symbol's value in /proc/kallsyms lines (`<addr> <type> <name>`, any type: per-CPU and data symbols too), pure. */
export function kallsymsValue(lines: string, symbol: string): bigint | undefined {
  const m = lines.match(new RegExp(`^([0-9a-f]{16})\\s+\\w\\s+${symbol}$`, 'm'));
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/**
 * QEMU's own record of the gdbstub (`-trace gdbstub_io_command,gdbstub_io_reply`):
 * every packet gdb sent and every reply, out of gdb's reach. A stop is a stop
 * reply after a resume; its window runs until the next resume and holds the
 * registers gdb fetched (`g`: rip, gs_base) and every byte QEMU answered to a
 * memory read (`m`) — the reads of the script at that stop.
 */
export interface WireStop {
  readonly pc?: bigint;
  readonly gsBase?: bigint;
  /** Resumed by a step (vCont;s), not a continue. */
  readonly step: boolean;
  /** The breakpoint inserted at pc when the CPU was resumed (Z1 hardware, Z0 software), if any. */
  readonly bp?: 'hw' | 'sw';
  /** Bytes QEMU returned to memory reads in this stop's window. */
  readonly mem: ReadonlyMap<bigint, number>;
}

/** The trace lines → the stops (pure). */
export function parseGdbstubTrace(log: string): WireStop[] {
  const stops: { pc?: bigint; gsBase?: bigint; step: boolean; bp?: 'hw' | 'sw'; mem: Map<bigint, number> }[] = [];
  const active = new Map<bigint, 'hw' | 'sw'>();
  const written = new Set<bigint>();
  let pending = '';
  let resumed: { step: boolean; bps: Map<bigint, 'hw' | 'sw'> } | undefined;
  let cur: (typeof stops)[number] | undefined;
  for (const line of log.split('\n')) {
    const c = /^gdbstub_io_command Received: (.*)$/.exec(line);
    if (c) {
      pending = c[1]!.trim();
      const r = /^(?:vCont;([cCsS])|([cCsS])(?:[0-9a-fA-F;]|$))/.exec(pending);
      if (r) { resumed = { step: /s/i.test(r[1] ?? r[2]!), bps: new Map(active) }; cur = undefined; }
      continue;
    }
    const m = /^gdbstub_io_reply Sent: (.*)$/.exec(line);
    if (!m) continue;
    const reply = m[1]!.trim();
    const cmd = pending;
    pending = '';
    if (resumed && /^[TS][0-9a-fA-F]{2}/.test(reply) && (cmd === '' || /^(vCont;[cCsS]|[cCsS])/.test(cmd))) {
      cur = { step: resumed.step, mem: new Map() };
      stops.push(cur);
      const bps = resumed.bps;
      resumed = undefined;
      (cur as { bpsAt?: Map<bigint, 'hw' | 'sw'> }).bpsAt = bps;
      continue;
    }
    const z = /^([zZ])([01]),([0-9a-fA-F]+),/.exec(cmd);
    if (z && reply === 'OK') {
      const addr = BigInt(`0x${z[3]}`);
      if (z[1] === 'Z') active.set(addr, z[2] === '1' ? 'hw' : 'sw'); else active.delete(addr);
      continue;
    }
    const wr = /^[MX]([0-9a-fA-F]+),([0-9a-fA-F]+):/.exec(cmd);
    if (wr) {
      // Bytes the script wrote itself are no longer the kernel's: never count them as read.
      const at = BigInt(`0x${wr[1]}`);
      for (let i = 0; i < Number.parseInt(wr[2]!, 16); i++) written.add((at + BigInt(i)) & 0xffffffffffffffffn);
      continue;
    }
    if (!cur) continue;
    if (cmd === 'g' && /^[0-9a-fA-F]{360,}$/.test(reply)) {
      // QEMU's x86-64 core registers: 16 GPRs, rip (8 bytes at 128), eflags, 6 segment selectors (4 each), fs_base, gs_base (at 172).
      const b = Buffer.from(reply.slice(0, 360), 'hex');
      cur.pc = b.readBigUInt64LE(128);
      cur.gsBase = b.readBigUInt64LE(172);
      const bps = (cur as { bpsAt?: Map<bigint, 'hw' | 'sw'> }).bpsAt;
      if (!cur.step && bps?.has(cur.pc)) cur.bp = bps.get(cur.pc);
      continue;
    }
    const rd = /^m([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(cmd);
    if (rd && /^(?:[0-9a-fA-F]{2})+$/.test(reply)) {
      const at = BigInt(`0x${rd[1]}`);
      const bytes = Buffer.from(reply, 'hex');
      for (let i = 0; i < bytes.length; i++) {
        const a = (at + BigInt(i)) & 0xffffffffffffffffn;
        if (!written.has(a)) cur.mem.set(a, bytes[i]!);
      }
    }
  }
  return stops.map(({ pc, gsBase, step, bp, mem }) => ({ pc, gsBase, step, bp, mem }));
}

/** n bytes at addr if the window holds all of them. */
function bytesAt(mem: ReadonlyMap<bigint, number>, addr: bigint, n: number): Buffer | undefined {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const v = mem.get((addr + BigInt(i)) & 0xffffffffffffffffn);
    if (v === undefined) return undefined;
    out[i] = v;
  }
  return out;
}

/** A NUL-terminated string at addr, as far as the window holds it (undefined: its first byte was never read). */
function stringAt(mem: ReadonlyMap<bigint, number>, addr: bigint, max: number): string | undefined {
  let s = '';
  for (let i = 0; i < max; i++) {
    const v = mem.get((addr + BigInt(i)) & 0xffffffffffffffffn);
    if (v === undefined) return i === 0 ? undefined : s;
    if (v === 0) return s;
    s += String.fromCharCode(v);
  }
  return s;
}

/** What the kernel's memory says at one stop, from the bytes the script read there: current, its pid and comm, the command line. */
export function kernelView(w: WireStop, where: { currentTask: bigint; bootCommandLine: bigint; offsets: TaskOffsets }): { task?: bigint; pid?: number; comm?: string; cmdline?: string; unread: string[] } {
  const unread: string[] = [];
  const tb = w.gsBase === undefined ? undefined : bytesAt(w.mem, w.gsBase + where.currentTask, 8);
  const task = tb?.readBigUInt64LE(0);
  if (task === undefined) unread.push(`current_task (8 bytes at ${w.gsBase === undefined ? 'gs_base' : `0x${w.gsBase.toString(16)}`} + 0x${where.currentTask.toString(16)})`);
  const pb = task === undefined ? undefined : bytesAt(w.mem, task + BigInt(where.offsets.pid), 4);
  if (task !== undefined && !pb) unread.push(`pid (4 bytes at task + ${where.offsets.pid})`);
  const comm = task === undefined ? undefined : stringAt(w.mem, task + BigInt(where.offsets.comm), 16);
  if (task !== undefined && comm === undefined) unread.push(`comm (at task + ${where.offsets.comm})`);
  return { task, pid: pb?.readInt32LE(0), comm, cmdline: stringAt(w.mem, where.bootCommandLine, 4096), unread };
}

/** One stop as the harness's observer saw it, with what the script printed until the next stop. */
export interface KernelStop {
  readonly n: number;
  readonly pc?: bigint;
  readonly bp: readonly { n: number; hw: boolean }[];
  readonly task?: bigint;
  readonly pid?: number;
  readonly comm?: string;
  readonly error?: string;
  /** The string at boot_command_line as far as the script read it at this stop (QEMU's record; undefined: not read). */
  readonly cmdline?: string;
  /** What of current the script never read at this stop (QEMU's record). */
  readonly unread?: readonly string[];
  /** KL_STOP records the script printed after this stop (before the next). */
  readonly records: Record<string, string>[];
  /** KL_CMDLINE texts printed after this stop. */
  readonly cmdlines: string[];
}

export interface BootTrail {
  readonly stops: readonly KernelStop[];
  /** What the script printed before the kernel ever stopped. */
  readonly before: { readonly records: Record<string, string>[]; readonly cmdlines: string[] };
  /** /proc/<pid> of the booted guest (KL_PROC lines of its /init). */
  readonly procs: readonly Record<string, string>[];
  /** Set when QEMU's record of the gdbstub was checked: tagged stop lines it has no stop for, stops at the four functions without a tagged line. */
  readonly wire?: { readonly stops: number; readonly phantom: readonly string[]; readonly unmarked: readonly string[] };
}

/** QEMU's record of the gdbstub and where to read current and the command line in it. */
export interface WireRecord {
  readonly stops: readonly WireStop[];
  readonly symbols: Readonly<Record<Name | 'current_task' | 'boot_command_line', bigint>>;
  readonly offsets: TaskOffsets;
}

function big(v: string | undefined): bigint | undefined {
  try { return v === undefined ? undefined : BigInt(v); } catch { return undefined; }
}

/** gdb's stdout and the guest's console → the trail (pure). */
export function parseBoot(stdout: string, tag: string, consoleLines: readonly string[], wire?: WireRecord): BootTrail {
  const stops: KernelStop[] = [];
  const phantom: string[] = [];
  let cursor = 0;
  const before = { records: [] as Record<string, string>[], cmdlines: [] as string[] };
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${tag} `)) {
      let r: Record<string, unknown> = {};
      try { r = JSON.parse(line.slice(tag.length + 1)) as Record<string, unknown>; } catch { r = { error: `unparsable: ${line}` }; }
      const said = {
        n: Number(r.n), pc: big(r.pc as string | undefined), bp: (r.bp as { n: number; hw: boolean }[] | undefined) ?? [],
        task: big(r.task as string | undefined), pid: r.pid as number | undefined, comm: r.comm as string | undefined,
        error: r.error as string | undefined, records: [], cmdlines: [],
      };
      if (!wire) { stops.push(said); continue; }
      // The tagged line only marks where in gdb's output a stop happened; what the stop was comes from QEMU's record.
      const at = wire.stops.findIndex((w, i) => i >= cursor && w.pc !== undefined && w.pc === said.pc);
      if (at < 0) {
        phantom.push(`n=${said.n} pc=${hex(said.pc)}`);
        stops.push({ n: said.n, bp: [], error: `QEMU's record of the gdbstub has no stop at pc=${hex(said.pc)} here`, records: [], cmdlines: [] });
        continue;
      }
      cursor = at + 1;
      const w = wire.stops[at]!;
      const v = kernelView(w, { currentTask: wire.symbols.current_task, bootCommandLine: wire.symbols.boot_command_line, offsets: wire.offsets });
      stops.push({
        n: said.n, pc: w.pc, bp: w.bp ? [{ n: said.bp[0]?.n ?? 0, hw: w.bp === 'hw' }] : [],
        task: v.task, pid: v.pid, comm: v.comm, cmdline: v.cmdline, unread: v.unread, records: [], cmdlines: [],
      });
      continue;
    }
    const into = stops.at(-1) ?? before;
    if (line.startsWith('KL_STOP ')) into.records.push(...parseHits(line, 'KL_STOP'));
    else if (line.startsWith('KL_CMDLINE')) into.cmdlines.push(line.slice('KL_CMDLINE'.length).trim());
  }
  const procs = consoleLines.filter((l) => l.startsWith('KL_PROC ')).flatMap((l) => parseHits(l.trim(), 'KL_PROC'));
  if (!wire) return { stops, before, procs };
  const marked = new Set(stops.map((s) => s.pc).filter((pc): pc is bigint => pc !== undefined));
  const unmarked = wire.stops.filter((w) => !w.step && w.pc !== undefined && !marked.has(w.pc))
    .flatMap((w) => STOP_NAMES.filter((n) => wire.symbols[n] === w.pc));
  return { stops, before, procs, wire: { stops: wire.stops.length, phantom, unmarked } };
}

const hex = (v: bigint | undefined) => (v === undefined ? '?' : `0x${v.toString(16)}`);

/** Which of the four functions a pc is (undefined: elsewhere). */
function nameOf(pc: bigint | undefined, symbols: Readonly<Record<Name, bigint>>): Name | undefined {
  return STOP_NAMES.find((s) => pc !== undefined && symbols[s] === pc);
}

/** The stops at the four functions, in the order the kernel reached them. */
export function namedStops(t: BootTrail, symbols: Readonly<Record<Name, bigint>>): { name: Name; stop: KernelStop }[] {
  return t.stops.flatMap((stop) => { const name = nameOf(stop.pc, symbols); return name ? [{ name, stop }] : []; });
}

function describeStops(t: BootTrail, symbols: Readonly<Record<Name, bigint>>): string {
  const where = STOP_NAMES.map((s) => `${s}=${hex(symbols[s])}`).join(' ');
  const rows = t.stops.map((s) => `  stop ${s.n}: pc=${hex(s.pc)} (${nameOf(s.pc, symbols) ?? 'none of the four'}) breakpoint ${s.bp.map((b) => `${b.n}${b.hw ? ' (hardware)' : ' (software)'}`).join(',') || 'none'}`
    + ` current=${hex(s.task)} pid=${s.pid ?? '?'} comm=${s.comm ?? '?'}${s.error ? ` [${s.error}]` : ''}; your script printed ${s.records.length ? s.records.map((r) => JSON.stringify(r)).join(' ') : 'no KL_STOP line'}`);
  const early = t.before.records.length || t.before.cmdlines.length
    ? `\nprinted before the kernel ever stopped (proves nothing): ${[...t.before.records.map((r) => JSON.stringify(r)), ...t.before.cmdlines.map((c) => `KL_CMDLINE ${c}`)].join(' ')}` : '';
  return `the kernel stopped ${t.stops.length} time(s) (the harness's record of every gdb stop${t.wire ? `, checked against QEMU's record of the gdbstub: ${t.wire.stops} stop(s) there, steps included` : ''}; ${where}):\n${rows.join('\n') || '  (never)'}${early}${tampered(t)}`;
}

/** The harness's tagged stop lines against QEMU's record: made-up lines, or stops at the four functions the tag never marked (its observer silenced). */
function tampered(t: BootTrail): string {
  if (!t.wire) return '';
  const out: string[] = [];
  if (t.wire.phantom.length) out.push(`${t.wire.phantom.length} line(s) with the harness's stop tag (${t.wire.phantom.join('; ')}) match no stop in QEMU's own record of the gdbstub: they were printed, not observed — leave the harness's stop observer alone and stop the kernel with breakpoints`);
  if (t.wire.unmarked.length) out.push(`QEMU's record has stop(s) at ${t.wire.unmarked.join(', ')} that the harness's stop observer never reported: your script disconnected or silenced it`);
  return out.length ? `\n${out.join('\n')}` : '';
}

export type { Verdict };

/** start_kernel, then rest_init, then kernel_init and kthreadd in whichever order the kernel ran them; one KL_STOP each with its pc. */
export function order(t: BootTrail, symbols: Readonly<Record<Name, bigint>>): Verdict<{ first: string[]; then: string[]; recorded: string[]; harnessRecord: string }> {
  const named = namedStops(t, symbols);
  const names = named.map((n) => n.name);
  const recorded = named.filter((n) => n.stop.records.some((r) => big(r.pc) === n.stop.pc)).map((n) => n.name);
  const harnessRecord = t.wire && (t.wire.phantom.length || t.wire.unmarked.length)
    ? `${t.wire.phantom.length} made-up stop line(s), ${t.wire.unmarked.length} stop(s) not reported` : 'intact';
  const facts = { first: names.slice(0, 2), then: [...names.slice(2)].sort(), recorded, harnessRecord };
  const expected = { first: ['start_kernel', 'rest_init'], then: ['kernel_init', 'kthreadd'], recorded: names.length === 4 ? names : ['start_kernel', 'rest_init', 'kernel_init', 'kthreadd'], harnessRecord: 'intact' };
  const missing = STOP_NAMES.filter((s) => !names.includes(s));
  const why = t.stops.length === 0
    ? `${SCRIPT}: gdb never stopped the kernel — set a breakpoint at each function's address ($start_kernel …) and continue to it; lines printed without a stop prove nothing`
    : names.length === 0
      ? `${SCRIPT}: no stop at ${missing.join(', ')} — the kernel stopped only elsewhere: break at the four functions' addresses ($start_kernel …) and let the boot run to them`
    : missing.length
      ? `${SCRIPT}: no stop at ${missing.join(', ')} — a breakpoint set only after the kernel already ran a function never fires (kernel_init and kthreadd start in an order the scheduler picks): set all four before the first continue`
      : `${SCRIPT}: print one KL_STOP line with pc=$pc right after each stop, in the order the stops happen`;
  return { got: facts, want: expected, message: `${why}\n${describeStops(t, symbols)}` };
}

/** At the start_kernel stop the script read this run's random boot parameter out of boot_command_line. */
export function commandLine(t: BootTrail, symbols: Readonly<Record<Name, bigint>> & { boot_command_line?: bigint }, magic: string): Verdict<{ readAtStartKernel: boolean }> {
  const sk = namedStops(t, symbols).find((n) => n.name === 'start_kernel');
  const read = sk?.stop.cmdlines ?? [];
  const printed = read.some((c) => c.split(/\s+/).includes(magic));
  /** QEMU's record: the script's reads at boot_command_line at that stop returned the parameter. */
  const inMemory = !t.wire || (sk?.stop.cmdline ?? '').split(/\s+/).includes(magic);
  const ok = printed && inMemory;
  const notRead = printed && !inMemory
    ? `\nyour KL_CMDLINE has it, but QEMU's record of the gdbstub shows that at the start_kernel stop your script never read it at boot_command_line (${hex(symbols.boot_command_line)}): ${sk?.stop.cmdline === undefined ? 'no read there at all' : `it read only ${JSON.stringify(sk.stop.cmdline)}`} — take the string from the kernel's memory at that stop, not from anywhere else`
    : '';
  return {
    got: { readAtStartKernel: ok }, want: { readAtStartKernel: true },
    message: `${SCRIPT}: at the start_kernel stop print "KL_CMDLINE <the string at $boot_command_line>"; this run's kernel was booted with the random parameter ${magic}.\n`
      + (sk ? `after the start_kernel stop your script printed: ${read.length ? read.map((c) => JSON.stringify(c)).join(', ') : 'no KL_CMDLINE line'}` : 'the kernel never stopped at start_kernel')
      + notRead
      + (t.before.cmdlines.length ? `\nbefore any stop it printed ${t.before.cmdlines.map((c) => JSON.stringify(c)).join(', ')} (not read at a stop in the kernel)` : ''),
  };
}

/** Each stop's KL_STOP record names `current` as the kernel holds it there: task address, pid and comm. */
export function current(t: BootTrail, symbols: Readonly<Record<Name, bigint>>): Verdict<Record<string, string>> {
  /** The boot task (init_task): current at start_kernel. */
  const initTask = namedStops(t, symbols).find((n) => n.name === 'start_kernel')?.stop.task;
  const facts: Record<string, string> = {};
  const expected: Record<string, string> = {};
  for (const { name, stop } of namedStops(t, symbols)) {
    const r = stop.records.find((x) => big(x.pc) === stop.pc) ?? stop.records[0];
    facts[name] = r ? `task=${hex(big(r.task))} pid=${r.pid ?? '?'} comm=${r.comm ?? '?'}` : 'no KL_STOP record';
    expected[name] = stop.unread?.length ? `not read at this stop: ${stop.unread.join(', ')}` : `task=${hex(stop.task)} pid=${stop.pid ?? '?'} comm=${stop.comm ?? '?'}`;
  }
  for (const s of STOP_NAMES) if (!(s in expected)) { facts[s] = 'no stop'; expected[s] = 'a stop with its record'; }
  // A record with init_task where the CPU ran another task (or, where the script never read current, at a stop of a task that is never init_task).
  const fixed = initTask !== undefined && namedStops(t, symbols).some(({ name, stop }) => facts[name]!.startsWith(`task=${hex(initTask)} `)
    && (stop.task !== undefined ? stop.task !== initTask : name === 'kernel_init' || name === 'kthreadd'));
  const unread = namedStops(t, symbols).filter(({ stop }) => stop.unread?.length).map(({ name }) => name);
  return {
    got: facts, want: expected,
    message: `${SCRIPT}: at each stop read current${t.wire ? ' (the kernel side below is what QEMU answered to the memory reads your script made at that stop)' : ''} — the per-CPU current_task of the CPU that stopped (that CPU's per-CPU base plus $current_task) — then pid and comm at their offsets in that task_struct (the kernel's BTF has them)`
      + (fixed ? `; you read a fixed task (init_task=${hex(initTask)}) where the CPU already runs another one` : '')
      + (unread.length ? `\nQEMU's record of the gdbstub shows no read of these at the ${unread.join(', ')} stop(s): a value not read out of the kernel's memory at the stop (hard-coded, or computed from elsewhere) is not current's — read each at every stop` : '')
      + `\nyour records vs the kernel at each stop:\n${Object.keys(expected).map((n) => `  ${n}: yours ${facts[n]} — kernel ${expected[n]}`).join('\n')}`,
  };
}

/** The boot task runs start_kernel and rest_init as pid 0; kernel_init runs as pid 1 and kthreadd as pid 2 — /proc/1 and /proc/2 afterwards. */
export function pids(t: BootTrail, symbols: Readonly<Record<Name, bigint>>): Verdict<Record<string, string>> {
  const rec: Record<string, string> = {};
  for (const { name, stop } of namedStops(t, symbols)) {
    const r = stop.records.find((x) => big(x.pc) === stop.pc) ?? stop.records[0];
    rec[name] = r?.pid ?? 'no record';
  }
  const proc = (p: string) => t.procs.find((x) => x.pid === p);
  const facts = {
    start_kernel: rec.start_kernel ?? 'no stop', rest_init: rec.rest_init ?? 'no stop',
    kernel_init: rec.kernel_init ?? 'no stop', kthreadd: rec.kthreadd ?? 'no stop',
    proc1: proc('1') ? `comm=${proc('1')!.comm} ppid=${proc('1')!.ppid}` : 'not read',
    proc2: proc('2') ? `comm=${proc('2')!.comm} ppid=${proc('2')!.ppid}` : 'not read',
  };
  const expected = { start_kernel: '0', rest_init: '0', kernel_init: '1', kthreadd: '2', proc1: 'comm=init ppid=0', proc2: 'comm=kthreadd ppid=0' };
  return {
    got: facts, want: expected,
    message: `${SCRIPT}: the pids your records give (the pid field of current at each stop) and /proc of the booted guest: ${JSON.stringify(facts)}`
      + (facts.kernel_init === '0' ? '\nkernel_init recorded as pid 0: that is the boot task (init_task, swapper) — read current at the stop, not a fixed task' : ''),
  };
}
