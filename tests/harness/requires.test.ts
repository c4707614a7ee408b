/** labRequires(): a spec's requirements come from the lab.json beside it, the only copy. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { labRequires } from '../../helpers/harness/requires.js';
import { listLabs } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

/** The temp dirs this file made: removed after it (they were left in /tmp, four a run). */
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function specIn(labJson: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'kl-requires-'));
  made.push(dir);
  writeFileSync(join(dir, 'lab.json'), JSON.stringify(labJson));
  return pathToFileURL(join(dir, 'x.spec.ts')).href;
}

describe('labRequires', () => {
  it('reads requires from the lab.json beside the spec, in its order', () => {
    expect(labRequires(specIn({ requires: ['root', 'cc', 'tracefs'] }))).toEqual(['root', 'cc', 'tracefs']);
    expect(labRequires(specIn({}))).toEqual([]);
  });

  it('refuses an id that is no capability', () => {
    expect(() => labRequires(specIn({ requires: ['root', 'bpftrac'] }))).toThrow(/"bpftrac"/);
    expect(() => labRequires(specIn({ requires: 'root' }))).toThrow(/capability ids/);
  });

  it('gives every lab of the course its lab.json list', () => {
    for (const lab of listLabs()) {
      expect(labRequires(pathToFileURL(join(REPO_ROOT, lab.spec)).href), lab.id).toEqual(lab.requires);
    }
  });
});
