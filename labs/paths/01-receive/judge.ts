/**
 * Lab 8.1's judge (pure): the evidence of experiment.ts → the facts each test
 * asserts, each with the message that shows the kernel's record beside the
 * tracer's lines. The kernel's record is the answer: the tracer's poll lines
 * must be the lab device's napi_poll events (all phases), its gro and rx lines
 * the lab device's napi_gro_receive_entry and netif_receive_skb events of
 * phase B (the lab's connection), one for one.
 */
import type { Run } from './experiment.js';
import { eventKey, insideNetRx, missingFrom, type RecordEvent, type TracerLine } from './rx-path.js';

/** The evidence the judge reads (Run without what it does not need: unit tests build it by hand). */
export type Evidence = Pick<Run, 'port' | 'segments' | 'mss' | 'rxDev' | 'otherDev' | 'phases' | 'record' | 'recordLost' | 'output' | 'lines' | 'lost' | 'netRx'>;

const SHOW = 12;

/** The phase an event belongs to (by the record's counter), or undefined after the last. */
export function phaseOf(r: Pick<Evidence, 'phases'>, e: Pick<RecordEvent, 'ts'>): 'A' | 'B' | 'C' | undefined {
  return r.phases.find((p) => e.ts <= p.end)?.name;
}

/** The lab device's events of `point`, in `phase` (all phases when absent). */
export function labDevice(r: Evidence, point: RecordEvent['point'], phase?: 'A' | 'B' | 'C'): RecordEvent[] {
  return r.record.filter((e) => e.dev === r.rxDev && e.point === point && (!phase || phaseOf(r, e) === phase));
}

function show<T>(xs: readonly T[], f: (x: T) => string): string {
  return xs.slice(0, SHOW).map((x) => `  ${f(x)}`).join('\n') + (xs.length > SHOW ? `\n  … ${xs.length - SHOW} more` : '');
}

function tracerTail(r: Evidence): string {
  const lost = r.lost ? `\n(bpftrace reported ${r.lost} lost events)` : '';
  return `\nyour tracer printed ${r.output.length} lines, ${r.lines.length} of them poll/gro/rx lines; the first:\n${show(r.output, (l) => l) || '  (none)'}${lost}`;
}

/** The kernel's record of the lab's connection: segments into GRO, skbs out, the longest, the polls. */
export function kernelMerge(r: Evidence) {
  const gro = labDevice(r, 'gro', 'B');
  const rx = labDevice(r, 'rx', 'B');
  const polls = labDevice(r, 'poll');
  // Segments that carry data: longer than the 52 bytes of IPv4 + TCP + timestamps, and than the SYN (60). TCP cuts the
  // write at MSS boundaries but not every GSO skb is a multiple of the MSS, so a few segments are shorter than MTU-sized.
  const data = gro.filter((e) => (e.len ?? 0) > 60);
  const full = data.filter((e) => e.len === r.mss + 52).length;
  const bytes = data.reduce((n, e) => n + (e.len ?? 0) - 52, 0);
  const longest = Math.max(0, ...rx.map((e) => e.len ?? 0));
  const overBudget = polls.filter((p) => (p.work ?? 0) > (p.budget ?? 0));
  const batched = polls.filter((p) => (p.work ?? 0) > 1).length;
  const message = `the kernel's record of ${r.rxDev} during the lab's connection (port ${r.port}, ${r.segments} segments of ${r.mss} bytes sent): ` +
    `${gro.length} napi_gro_receive_entry (${data.length} carrying data, ${bytes} bytes; ${full} of them full segments, len ${r.mss + 52}), ${rx.length} netif_receive_skb, the longest len ${longest} (MTU ${1500}); ` +
    `${polls.length} napi_poll of the device in all, ${batched} taking more than one packet, ${overBudget.length} over their budget${r.recordLost ? '; the ring buffer overwrote events' : ''}\n` +
    `netif_receive_skb lengths: ${rx.map((e) => e.len).join(' ')}`;
  return { gro: gro.length, data: data.length, full, bytes, rx: rx.length, longest, polls: polls.length, batched, overBudget: overBudget.length, lost: r.recordLost, message };
}

/** Every poll of the lab device ran inside a NET_RX softirq on its CPU; the NET_RX runs that polled it, against /proc/softirqs. */
export function softirqs(r: Evidence) {
  const polls = labDevice(r, 'poll');
  const inside = insideNetRx(polls, r.record);
  const outside = polls.filter((_, i) => inside[i] === undefined);
  const runs = new Set(inside.filter((x): x is number => x !== undefined)).size;
  const delta = r.netRx.after - r.netRx.before;
  const message = `${polls.length} polls of ${r.rxDev} in the record, ${outside.length} not inside a NET_RX softirq_entry/exit of their CPU` +
    (outside.length ? ` (first at counter ${outside[0]!.ts} on CPU ${outside[0]!.cpu})` : '') +
    `; they ran in ${runs} NET_RX softirqs; /proc/softirqs NET_RX rose by ${delta} (all CPUs, around the window)`;
  return { polls: polls.length, outside: outside.length, runs, delta, message };
}

function compare(r: Evidence, point: 'poll' | 'gro' | 'rx', kernel: readonly RecordEvent[], what: string) {
  const mine = r.lines.filter((l) => l.point === point);
  const missing = missingFrom(kernel, mine, eventKey, eventKey);
  const message = `${missing.length} of the kernel's ${kernel.length} ${what} have no line of yours (${point} with the same ${point === 'poll' ? 'work and budget' : 'skb address and len'}); the first missing:\n` +
    `${show(missing, eventKey)}\nyou printed ${mine.length} ${point} lines${tracerTail(r)}`;
  return { kernel: kernel.length, mine: mine.length, missing: missing.map(eventKey), message };
}

/** The tracer's poll lines against the lab device's napi_poll events (every phase). */
export function polls(r: Evidence) {
  return compare(r, 'poll', labDevice(r, 'poll'), `napi_poll events of ${r.rxDev} (work/budget: ${labDevice(r, 'poll').map((p) => `${p.work}/${p.budget}`).join(' ')})`);
}

/** The tracer's gro lines against the lab's connection's napi_gro_receive_entry events. */
export function segments(r: Evidence) {
  return compare(r, 'gro', labDevice(r, 'gro', 'B'), `napi_gro_receive_entry events of the lab's connection on ${r.rxDev}`);
}

/** The tracer's rx lines against the lab's connection's netif_receive_skb events; its own figures (rx against gro lines, the longest). */
export function skbs(r: Evidence) {
  const c = compare(r, 'rx', labDevice(r, 'rx', 'B'), `netif_receive_skb events of the lab's connection on ${r.rxDev}`);
  const gro = r.lines.filter((l) => l.point === 'gro').length;
  const longest = Math.max(0, ...r.lines.filter((l) => l.point === 'rx').map((l) => l.len ?? 0));
  return { ...c, groLines: gro, longest, figures: `your tracer: ${c.mine} rx lines for ${gro} gro lines, the longest rx len ${longest}; the kernel: ${c.kernel} skbs for ${labDevice(r, 'gro', 'B').length} segments` };
}

/** What a stray line of the tracer is, by the record: which device and phase holds an event with its figures. */
function identify(r: Evidence, l: TracerLine): string {
  const key = eventKey(l);
  const at = r.record.filter((e) => e.point === l.point && eventKey(e) === key);
  if (!at.length) return `${l.text} — no ${l.point === 'poll' ? 'napi_poll' : l.point === 'gro' ? 'napi_gro_receive_entry' : 'netif_receive_skb'} with these figures on ${r.rxDev} or ${r.otherDev} in the kernel's record (another device's, e.g. the host's own NIC, or made up)`;
  const where = at.map((e) => e.dev === r.otherDev
    ? `the connection to port ${r.port} on the other device ${r.otherDev}`
    : phaseOf(r, e) === 'B' ? `the lab's connection on ${r.rxDev} (printed more often than the kernel recorded it)` : `phase ${phaseOf(r, e)} on ${r.rxDev}: the decoys (TCP to port ${r.port + 1}, in A from port ${r.port}; UDP to port ${r.port})`);
  return `${l.text} — the kernel's record has it as: ${[...new Set(where)].join('; ')}`;
}

/** Tracer lines that are no event of the lab's device (polls) or of its connection (gro, rx), one for one. */
export function strays(r: Evidence) {
  const expected = [...labDevice(r, 'poll'), ...labDevice(r, 'gro', 'B'), ...labDevice(r, 'rx', 'B')];
  const stray = missingFrom(r.lines, expected, eventKey, eventKey);
  const message = `${stray.length} of your ${r.lines.length} poll/gro/rx lines are no event of ${r.rxDev}'s polls or of the lab's connection (TCP to port ${r.port}) there; the first:\n` +
    `${show(stray, (l) => identify(r, l))}`;
  return { lines: r.lines.length, stray: stray.map((l) => l.text), message };
}
