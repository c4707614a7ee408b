/**
 * Student regions in reference sources. One syntax for C, BPF C, bpftrace
 * (`//` comments), Python and shell (`#` comments):
 *
 *     // LAB:BEGIN <hint: what the student must write>
 *     …reference solution…
 *     // LAB:STARTER            (optional)
 *     // code the starter gets instead, commented out here
 *     // LAB:END
 *
 * `toStarter()` replaces each region with `// TODO: <hint>` followed by the
 * uncommented STARTER lines (so that a starter still builds and runs, and
 * its spec fails on the outcome rather than on a compile error).
 */

export interface Region {
  /** 1-based line of the BEGIN marker. */
  readonly begin: number;
  /** 1-based line of the END marker. */
  readonly end: number;
  readonly hint: string;
  /** Lines the starter gets in place of the solution (uncommented). */
  readonly starter: readonly string[];
  readonly indent: string;
  readonly leader: string;
}

export class MarkerError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'MarkerError';
  }
}

const MARKER = /^(\s*)(\/\/|#)\s*LAB:(BEGIN|STARTER|END)\b(.*)$/;

/** Parse the marked regions of a source. Throws MarkerError on unbalanced or nested markers. */
export function findRegions(text: string, file = '<source>'): Region[] {
  const lines = text.split('\n');
  const regions: Region[] = [];
  let open: { begin: number; hint: string; indent: string; leader: string; starterAt?: number } | undefined;
  let starter: string[] = [];
  lines.forEach((line, i) => {
    const m = line.match(MARKER);
    const n = i + 1;
    if (!m) {
      if (open?.starterAt !== undefined) {
        const body = line.trimStart();
        if (!body.startsWith(open.leader) && body !== '') throw new MarkerError(file, n, `STARTER lines must be commented with "${open.leader}"`);
        const uncommented = body.slice(open.leader.length).replace(/^ /, '');
        const lineIndent = line.slice(0, line.length - body.length);
        starter.push(body === '' ? '' : lineIndent + uncommented);
      }
      return;
    }
    const [, indent = '', leader = '', kind, rest = ''] = m;
    if (kind === 'BEGIN') {
      if (open) throw new MarkerError(file, n, `LAB:BEGIN inside the region opened at line ${open.begin}`);
      const hint = rest.replace(/^[:\s]+/, '').trim();
      if (!hint) throw new MarkerError(file, n, 'LAB:BEGIN needs a hint for the student');
      open = { begin: n, hint, indent, leader };
      starter = [];
    } else if (kind === 'STARTER') {
      if (!open) throw new MarkerError(file, n, 'LAB:STARTER outside a region');
      if (open.starterAt !== undefined) throw new MarkerError(file, n, 'second LAB:STARTER in one region');
      open.starterAt = n;
    } else {
      if (!open) throw new MarkerError(file, n, 'LAB:END without LAB:BEGIN');
      regions.push({ begin: open.begin, end: n, hint: open.hint, starter, indent: open.indent, leader: open.leader });
      open = undefined;
    }
  });
  if (open) throw new MarkerError(file, open.begin, 'LAB:BEGIN is never closed by LAB:END');
  return regions;
}

/** The student's version of a source: each region becomes its TODO hint plus the starter lines. */
export function toStarter(text: string, file = '<source>'): string {
  const regions = findRegions(text, file);
  if (!regions.length) return text;
  const lines = text.split('\n');
  const out: string[] = [];
  let next = 0;
  for (const r of regions) {
    out.push(...lines.slice(next, r.begin - 1));
    out.push(`${r.indent}${r.leader} TODO: ${r.hint}`);
    out.push(...r.starter);
    next = r.end;
  }
  out.push(...lines.slice(next));
  return out.join('\n');
}
