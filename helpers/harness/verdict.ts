/**
 * A lab's verdict: what one test compares (judge.ts's pure functions return it; the spec asserts it). `got` are
 * the facts taken from the kernel's evidence, `want` what they must be, `message` the evidence a student reads
 * when they differ (docs/AUTHORING.md: the lab's anatomy).
 */
import { isDeepStrictEqual } from 'node:util';
import { expect } from 'vitest';

export interface Verdict<T = unknown> { readonly got: T; readonly want: T; readonly message: string }

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A value as one short line (bigints as numbers, long values cut). */
function show(x: unknown): string {
  const s = x === undefined ? 'undefined' : JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)) ?? String(x);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

/** The facts that differ, one line each ("direct: false (want true)"); for facts that are not a record, the whole value. */
export function differences(v: Verdict): string[] {
  if (isDeepStrictEqual(v.got, v.want)) return [];
  if (!isRecord(v.got) || !isRecord(v.want)) return [`${show(v.got)} (want ${show(v.want)})`];
  const got = v.got;
  const want = v.want;
  return [...new Set([...Object.keys(want), ...Object.keys(got)])]
    .filter((k) => !isDeepStrictEqual(got[k], want[k]))
    .map((k) => `${k}: ${show(got[k])} (want ${show(want[k])})`);
}

/** A message of at most ~16 K characters: its head and its tail (it may quote a program's whole output). */
export function clip(message: string, max = 16_384): string {
  if (message.length <= max) return message;
  const head = Math.floor(max / 2);
  const rest = max - head;
  return `${message.slice(0, head)}\n[… ${message.length - max} characters cut …]\n${message.slice(-rest)}`;
}

/**
 * Assert a verdict: the facts must be what it wants; its message shows the evidence, and ends with the facts that differ.
 * A list is asserted in order: the first that does not hold fails with its message.
 */
export function holds(v: Verdict | readonly Verdict[]): void {
  for (const one of Array.isArray(v) ? v : [v as Verdict]) {
    const d = differences(one);
    expect(one.got, d.length ? `${clip(one.message)}\ndiffers: ${d.join('; ')}` : clip(one.message)).toEqual(one.want);
  }
}

/** Whether a verdict holds, without asserting (to end a series of runs early, to pick what to show). */
export const holdsQuietly = (v: Verdict): boolean => isDeepStrictEqual(v.got, v.want);
