/** tests/labs/nested-run.ts: what an interrupted run left (workspaces, batch dirs) is found by the pid in its name. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { staleByPid } from './nested-run.js';

const dir = mkdtempSync(join(tmpdir(), 'kl-unit-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('staleByPid', () => {
  it('finds the entries of processes that are gone, and keeps live ones, names without a pid and anything with a mount under it', () => {
    for (const n of ['lab-fixture-4242-aaaa', 'lab-fixture-77-bbbb', 'lab-fixture-cccc', 'lab-fixture-4243-dddd', 'other-4242-x']) mkdirSync(join(dir, n));
    const alive = (pid: number) => pid === 77;
    const mounts = [join(dir, 'lab-fixture-4243-dddd', 'merged')];
    expect(staleByPid(dir, 'lab-fixture-', alive, mounts).sort()).toEqual([join(dir, 'lab-fixture-4242-aaaa')]);
    // The batch dirs: the pid starts the name.
    expect(staleByPid(dir, '', alive, mounts)).toEqual([]);
    mkdirSync(join(dir, '4244-xyz-1'));
    expect(staleByPid(dir, '', alive, mounts)).toEqual([join(dir, '4244-xyz-1')]);
  });

  it('finds nothing in a directory that does not exist', () => {
    expect(staleByPid(join(dir, 'none'), 'lab-fixture-')).toEqual([]);
  });
});
