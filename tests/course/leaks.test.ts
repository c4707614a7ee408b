/**
 * Issue 21: no answer in the guides, docs or starter. Every non-trivial line
 * of every LAB:BEGIN region of c/ (rule: helpers/course/leaks.ts) is looked
 * for in labs/**\/README.md, docs/**, the course README and every file of a
 * generated starter workspace.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLeaks, MIN_SIGNIFICANT, solutionLines, type Leak, type SolutionLine } from '../../helpers/course/leaks.js';
import { REFERENCE_SRC, REPO_ROOT } from '../../helpers/harness/paths.js';
import { writeStarter } from '../../scripts/starter.js';

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function textOf(path: string): string | undefined {
  const buf = readFileSync(path);
  return buf.includes(0) ? undefined : buf.toString('utf8');
}

/**
 * Lines a later lab's given code shares with another lab's region that are not
 * its answer (generic dispatch, a call of a given helper), each named by its
 * text: any other line found in the same pair of files is still a leak, and an
 * entry that no longer matches must be removed. The answers that used to leak
 * across labs (3.3's KVM_RUN and run loop, 2.2's completion bookkeeping in
 * 2.3's on_cqe()) are now student regions of the later file (#28).
 */
const KNOWN_GENERIC: readonly { solution: string; where: string; text: string; why: string }[] = [
  { solution: 'io_uring/03-link-cp/link_cp.c', where: 'io_uring/02-uring-cp/uring_cp_pipelined.c', text: 'if (op == OP_READ) {', why: "2.2's given queue() dispatches on the operation, as 2.3's on_cqe() does" },
  { solution: 'io_uring/03-link-cp/link_cp.c', where: 'io_uring/02-uring-cp/uring_cp_pipelined.c', text: 'return start_block(c, j);', why: "2.2's starter placeholder calls its given start_block(), as 2.3's on_cqe() does when a block is done" },
];
const known = (l: Leak) => KNOWN_GENERIC.find((k) => l.file === k.solution && l.where === `<workspace>/${k.where}` && l.text === k.text);
const isKnown = (l: Leak) => known(l) !== undefined;

function show(leaks: readonly Leak[]): string {
  return leaks.map((l) => `${l.where}:${l.whereLine} holds the solution line of c/${l.file}:${l.line}: ${l.text}`).join('\n');
}

describe('solution lines (the rule)', () => {
  const src = [
    'int main(void) {',
    '\t// LAB:BEGIN open the file read-only (open(2))',
    '\t// a comment inside the region is not a solution line',
    '\tint fd = open(path, O_RDONLY);',
    '\treturn 0;',
    '\t// LAB:STARTER',
    '\t// int fd = -1; /* starter text is handed out on purpose */',
    '\t// LAB:END',
    '}',
  ].join('\n');

  it('keeps the non-trivial lines of a region, not its comments, short lines or starter part', () => {
    expect(solutionLines(src, 'x.c').map((s) => s.text)).toEqual(['int fd = open(path, O_RDONLY);']);
    expect(MIN_SIGNIFICANT).toBeGreaterThanOrEqual(10);
  });

  it('finds a solution line re-indented inside a README code span, and nothing in unrelated text', () => {
    const sol = solutionLines(src, 'x.c');
    expect(findLeaks(sol, 'Step 1: `int  fd = open(path,  O_RDONLY);`', 'README.md')).toHaveLength(1);
    expect(findLeaks(sol, 'Open the file with open(2), read-only, and return 0;', 'README.md')).toEqual([]);
  });
});

describe('no answer outside the student regions (issue 21)', () => {
  let workspace = '';
  let solutions: SolutionLine[] = [];
  beforeAll(() => {
    workspace = mkdtempSync(join(tmpdir(), 'leak-check-'));
    writeStarter(workspace);
    solutions = walk(REFERENCE_SRC).flatMap((p) => {
      const text = textOf(p);
      return text === undefined ? [] : solutionLines(text, relative(REFERENCE_SRC, p));
    });
  });
  afterAll(() => rmSync(workspace, { recursive: true, force: true }));

  it('the course has solution lines to look for', () => {
    expect(solutions.length).toBeGreaterThan(20);
  });

  it('no lab guide (labs/**/README.md), docs/ page or the course README holds a solution line', () => {
    const guides = [
      ...walk(join(REPO_ROOT, 'labs')).filter((p) => p.endsWith('README.md')),
      ...walk(join(REPO_ROOT, 'docs')),
      join(REPO_ROOT, 'README.md'),
    ];
    const leaks = guides.flatMap((p) => {
      const text = textOf(p);
      return text === undefined ? [] : findLeaks(solutions, text, relative(REPO_ROOT, p));
    });
    expect(leaks, show(leaks)).toEqual([]);
  });

  it('no file of a generated starter workspace holds a solution line (generic shared lines listed apart, by text)', () => {
    const all = walk(workspace).flatMap((p) => {
      const text = textOf(p);
      return text === undefined ? [] : findLeaks(solutions, text, `<workspace>/${relative(workspace, p)}`);
    });
    const leaks = all.filter((l) => !isKnown(l));
    expect(leaks, show(leaks)).toEqual([]);
    const stale = KNOWN_GENERIC.filter((k) => !all.some((l) => known(l) === k));
    expect(stale, `no longer found: remove from KNOWN_GENERIC: ${stale.map((k) => `${k.where}: ${k.text}`).join(', ')}`).toEqual([]);
  });
});
