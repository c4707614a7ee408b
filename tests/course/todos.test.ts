/**
 * Issue 28: a starter's TODO says what to do and where to read about it (the
 * concept, the man page or kernel document, the behaviour expected), never how:
 * no call written out with its arguments. A man page reference such as
 * `ptrace(2)` or `bpf-helpers(7)` is the point of a TODO and is allowed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findRegions } from '../../helpers/course/markers.js';
import { REFERENCE_SRC } from '../../helpers/harness/paths.js';

/** `name(args)` with something between the parentheses that is not a man page section. */
export function callsIn(hint: string): string[] {
  return [...hint.matchAll(/\b[A-Za-z_][\w.>-]*\(([^()]*)\)/g)]
    .filter((m) => m[1]!.trim() !== '' && !/^\s*\d[a-z]*\s*$/.test(m[1]!))
    .map((m) => m[0]);
}

/** Harmless exceptions: "file:line" of the region → why. */
const ALLOWED: Readonly<Record<string, string>> = {};

const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));

describe('starter TODOs', () => {
  it('the check finds a call with its arguments, and not a man page reference', () => {
    expect(callsIn('set the options (ptrace(PTRACE_SETOPTIONS, pid, 0, flags)) as ptrace(2) says')).toEqual(['ptrace(PTRACE_SETOPTIONS, pid, 0, flags)']);
    expect(callsIn('see ptrace(2), bpf-helpers(7) and io_uring_prep_read(3); count() is not an argument list')).toEqual([]);
  });

  it('no TODO of any starter writes out a call with its arguments', () => {
    const found: string[] = [];
    let regions = 0;
    for (const abs of walk(REFERENCE_SRC)) {
      const buf = readFileSync(abs);
      if (buf.includes(0)) continue;
      const rel = relative(REFERENCE_SRC, abs);
      for (const r of findRegions(buf.toString('utf8'), rel)) {
        regions++;
        const calls = callsIn(r.hint);
        if (calls.length && !ALLOWED[`${rel}:${r.begin}`]) found.push(`c/${rel}:${r.begin}: ${calls.join(' | ')}`);
      }
    }
    expect(regions).toBeGreaterThan(60);
    expect(found, 'say which interface and which man page section, not the call').toEqual([]);
  });
});
