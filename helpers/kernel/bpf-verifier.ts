/**
 * What the BPF verifier said, once and at the right level: libbpf prints the
 * verifier's log between "-- BEGIN PROG LOAD LOG --" and "-- END PROG LOAD
 * LOG --"; the line that matters is the verifier's complaint just before its
 * "processed N insns" summary. A lab that loads the same object in several
 * tests prints the log in the first failure only: the later tests say "not
 * run: the program did not load" (rememberRejection / rejectedBefore).
 */
import { statSync } from 'node:fs';
import { sourceOf } from '../harness/compile.js';
import { LabError } from '../harness/errors.js';

/** The verifier's log from libbpf's "-- BEGIN PROG LOAD LOG --" block, if the load failed there. */
export function verifierLog(stderr: string): string | undefined {
  const m = stderr.match(/-- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/);
  if (!m) return undefined;
  const head = stderr.split('\n').find((l) => /BPF program load failed/.test(l));
  return `${head ? `${head}\n` : ''}${m[1]!.trimEnd()}`;
}

/** Common rejections, said for a student (what it means, where to look) — never the fix's code. */
const NOTES: readonly { readonly when: RegExp; readonly note: string }[] = [
  { when: /invalid access to map value/, note: 'the access is outside a map value — and string constants and other read-only data the compiler puts in .rodata are map values too: check the offset and size against the object you meant to read' },
  { when: /map_value_or_null|_or_null/, note: 'a pointer that may be NULL (what bpf_map_lookup_elem returns) is used without a NULL check on this path' },
  { when: /invalid access to packet|outside of the packet|pkt_end/, note: 'packet data is read before a bounds check against data_end that the verifier can see on this path' },
  { when: /back-edge|infinite loop|loop is not bounded|BPF program is too large|jump out of range/, note: 'a loop the verifier cannot prove ends (or unrolls past its limit): bound it by a constant' },
  { when: /unreleased reference|reference has not been released/, note: 'a reference (a socket, a ring-buffer reservation) is not released on every path' },
  { when: /invalid mem access 'scalar'|invalid mem access 'inv'/, note: 'a number is dereferenced as if it were a pointer: read kernel memory through a helper (bpf_probe_read_kernel) or a typed pointer' },
  { when: /unknown func|helper call is not allowed|program of this type cannot use helper/, note: 'this helper is not available to this program type on this kernel' },
];

export interface Rejection {
  /** The verifier's complaint (the line before its "processed N insns" summary). */
  readonly keyLine: string;
  readonly note?: string;
  readonly log: string;
}

export function explainRejection(log: string): Rejection {
  const lines = log.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const summary = lines.findIndex((l) => /^processed \d+ insns/.test(l));
  const before = (summary >= 0 ? lines.slice(0, summary) : lines).filter((l) => !/^libbpf:|^\d+: |^; |^\s*$/.test(l));
  const keyLine = before.find((l) => NOTES.some((n) => n.when.test(l))) ?? before[before.length - 1] ?? lines[lines.length - 1] ?? '';
  const note = NOTES.find((n) => n.when.test(keyLine) || n.when.test(log))?.note;
  return { keyLine, ...(note ? { note } : {}), log };
}

/** The one message of a rejection: headline with the key line, a note, and the log's last lines. */
export function formatRejection(object: string, how: string, log: string, tailLines = 40): string {
  const r = explainRejection(log);
  const lines = log.split('\n');
  const shown = lines.length > tailLines ? [`… (${lines.length - tailLines} earlier lines)`, ...lines.slice(-tailLines)] : lines;
  const src = sourceOf(object);
  return `the BPF verifier rejected ${src ?? object}${src ? ` (the object ${object})` : ''}: ${r.keyLine}\n` +
    (r.note ? `note: ${r.note}\n` : '') +
    `("Permission denied" at the end of a libbpf load means the verifier refused the program (EACCES), not missing privileges.)\n` +
    `how it was loaded: ${how}\nverifier log:\n${shown.join('\n')}`;
}

/** Rejections seen in this run, by object (path + mtime: a rebuilt object is tried again). */
const rejected = new Map<string, Rejection>();
const keyOf = (object: string) => { try { return `${object}@${statSync(object).mtimeMs}`; } catch { return object; } };

export function rememberRejection(object: string, log: string): void {
  rejected.set(keyOf(object), explainRejection(log));
}

/** Throws "not run: … did not load" when the verifier already rejected this object in this run. */
export function rejectedBefore(object: string): void {
  const r = rejected.get(keyOf(object));
  if (r) {
    throw new LabError(`not run: ${sourceOf(object) ?? object} did not load — the BPF verifier rejected it (${r.keyLine}); its log is in the first failed test above. Fix the load first.`, { code: 'E_NOT_RUN' });
  }
}
