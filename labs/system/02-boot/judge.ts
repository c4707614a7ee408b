/**
 * System Lab 2's judge: pure functions from the boot's evidence (the harness's
 * own record of every gdb stop, the script's KL_STOP/KL_CMDLINE lines, /proc/1
 * and /proc/2 of the booted guest) to the facts each test asserts, with the
 * message that shows the evidence and says what to fix.
 */
import { parseHits } from '../../../helpers/kernel/gdb.js';

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

/** One stop as the harness's observer saw it, with what the script printed until the next stop. */
export interface KernelStop {
  readonly n: number;
  readonly pc?: bigint;
  readonly bp: readonly { n: number; hw: boolean }[];
  readonly task?: bigint;
  readonly pid?: number;
  readonly comm?: string;
  readonly error?: string;
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
}

function big(v: string | undefined): bigint | undefined {
  try { return v === undefined ? undefined : BigInt(v); } catch { return undefined; }
}

/** gdb's stdout and the guest's console → the trail (pure). */
export function parseBoot(stdout: string, tag: string, consoleLines: readonly string[]): BootTrail {
  const stops: KernelStop[] = [];
  const before = { records: [] as Record<string, string>[], cmdlines: [] as string[] };
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${tag} `)) {
      let r: Record<string, unknown> = {};
      try { r = JSON.parse(line.slice(tag.length + 1)) as Record<string, unknown>; } catch { r = { error: `unparsable: ${line}` }; }
      stops.push({
        n: Number(r.n), pc: big(r.pc as string | undefined), bp: (r.bp as { n: number; hw: boolean }[] | undefined) ?? [],
        task: big(r.task as string | undefined), pid: r.pid as number | undefined, comm: r.comm as string | undefined,
        error: r.error as string | undefined, records: [], cmdlines: [],
      });
      continue;
    }
    const into = stops.at(-1) ?? before;
    if (line.startsWith('KL_STOP ')) into.records.push(...parseHits(line, 'KL_STOP'));
    else if (line.startsWith('KL_CMDLINE')) into.cmdlines.push(line.slice('KL_CMDLINE'.length).trim());
  }
  return { stops, before, procs: consoleLines.filter((l) => l.startsWith('KL_PROC ')).flatMap((l) => parseHits(l.trim(), 'KL_PROC')) };
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
  return `the kernel stopped ${t.stops.length} time(s) (the harness's record of every gdb stop; ${where}):\n${rows.join('\n') || '  (never)'}${early}`;
}

export interface Verdict<T> { readonly facts: T; readonly expected: T; readonly message: string }

/** start_kernel, then rest_init, then kernel_init and kthreadd in whichever order the kernel ran them; one KL_STOP each with its pc. */
export function order(t: BootTrail, symbols: Readonly<Record<Name, bigint>>): Verdict<{ first: string[]; then: string[]; recorded: string[] }> {
  const named = namedStops(t, symbols);
  const names = named.map((n) => n.name);
  const recorded = named.filter((n) => n.stop.records.some((r) => big(r.pc) === n.stop.pc)).map((n) => n.name);
  const facts = { first: names.slice(0, 2), then: [...names.slice(2)].sort(), recorded };
  const expected = { first: ['start_kernel', 'rest_init'], then: ['kernel_init', 'kthreadd'], recorded: names.length === 4 ? names : ['start_kernel', 'rest_init', 'kernel_init', 'kthreadd'] };
  const missing = STOP_NAMES.filter((s) => !names.includes(s));
  const why = t.stops.length === 0
    ? `${SCRIPT}: gdb never stopped the kernel — set a breakpoint at each function's address ($start_kernel …) and continue to it; lines printed without a stop prove nothing`
    : names.length === 0
      ? `${SCRIPT}: no stop at ${missing.join(', ')} — the kernel stopped only elsewhere: break at the four functions' addresses ($start_kernel …) and let the boot run to them`
    : missing.length
      ? `${SCRIPT}: no stop at ${missing.join(', ')} — a breakpoint set only after the kernel already ran a function never fires (kernel_init and kthreadd start in an order the scheduler picks): set all four before the first continue`
      : `${SCRIPT}: print one KL_STOP line with pc=$pc right after each stop, in the order the stops happen`;
  return { facts, expected, message: `${why}\n${describeStops(t, symbols)}` };
}

/** At the start_kernel stop the script read this run's random boot parameter out of boot_command_line. */
export function commandLine(t: BootTrail, symbols: Readonly<Record<Name, bigint>>, magic: string): Verdict<{ readAtStartKernel: boolean }> {
  const sk = namedStops(t, symbols).find((n) => n.name === 'start_kernel');
  const read = sk?.stop.cmdlines ?? [];
  const ok = read.some((c) => c.split(/\s+/).includes(magic));
  return {
    facts: { readAtStartKernel: ok }, expected: { readAtStartKernel: true },
    message: `${SCRIPT}: at the start_kernel stop print "KL_CMDLINE <the string at $boot_command_line>"; this run's kernel was booted with the random parameter ${magic}.\n`
      + (sk ? `after the start_kernel stop your script printed: ${read.length ? read.map((c) => JSON.stringify(c)).join(', ') : 'no KL_CMDLINE line'}` : 'the kernel never stopped at start_kernel')
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
    expected[name] = `task=${hex(stop.task)} pid=${stop.pid ?? '?'} comm=${stop.comm ?? '?'}`;
  }
  for (const s of STOP_NAMES) if (!(s in expected)) { facts[s] = 'no stop'; expected[s] = 'a stop with its record'; }
  const fixed = initTask !== undefined && Object.entries(facts).some(([n, f]) => f.startsWith(`task=${hex(initTask)}`) && !expected[n]!.startsWith(`task=${hex(initTask)}`));
  return {
    facts, expected,
    message: `${SCRIPT}: at each stop read current — the per-CPU current_task of the CPU that stopped (that CPU's per-CPU base plus $current_task) — then pid and comm at their offsets in that task_struct (the kernel's BTF has them)`
      + (fixed ? `; you read a fixed task (init_task=${hex(initTask)}) where the CPU already runs another one` : '')
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
    facts, expected,
    message: `${SCRIPT}: the pids your records give (the pid field of current at each stop) and /proc of the booted guest: ${JSON.stringify(facts)}`
      + (facts.kernel_init === '0' ? '\nkernel_init recorded as pid 0: that is the boot task (init_task, swapper) — read current at the stop, not a fixed task' : ''),
  };
}
