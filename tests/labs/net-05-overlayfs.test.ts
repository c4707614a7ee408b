/**
 * Teeth of Net Lab 5 (labs/net/05-overlayfs): three wrong scripts fail the
 * tests that name their mistake; a one-stage script in another style passes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSpecWith, summary, type NestedResult } from './fixture-workspace.js';

const SPEC = 'labs/net/05-overlayfs/overlayfs.spec.ts';
const FIXTURES = join(import.meta.dirname, '../fixtures/net/05-overlayfs');
const runWith = (name: string) => runSpecWith(SPEC, 'net/05-overlayfs', 'net/05-overlayfs/overlay.sh', join(FIXTURES, name));
const failed = (res: NestedResult) => [...res.tests].filter(([, v]) => v.status === 'failed').map(([t]) => t.split(':')[0]!.split(' ').slice(0, 3).join(' '));
const root = process.getuid?.() === 0;

describe.skipIf(!root)('Net Lab 5 fixtures', { timeout: 3 * 60_000 }, () => {
  it('copying lower into merged instead of mounting fails the mount, copy-up, whiteout and opaque tests', async () => {
    const res = await runWith('wrong-copy.sh');
    expect(failed(res), summary(res)).toEqual(['mounts the overlay', 'copies a file', 'records a deletion', 'makes a directory']);
  });

  it('mounting in the host\'s mount namespace fails the namespace test (and the spec takes the leaked mount down)', async () => {
    const before = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(' - overlay ')).length;
    const res = await runWith('wrong-host-namespace.sh');
    expect(failed(res), summary(res)).toEqual(['mounts the overlay']);
    const after = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(' - overlay ')).length;
    expect(after, 'overlay mounts in the host namespace before and after the nested run').toBe(before);
  });

  it('swapping lowerdir and upperdir fails the copy-up test (the image layer is written)', async () => {
    const res = await runWith('wrong-swapped-layers.sh');
    expect(failed(res), summary(res)).toEqual(expect.arrayContaining(['copies a file']));
  });

  // A helper playing the clever student wrote these; all four passed the spec of 2026-12-04.
  it.for([
    ['clever-emulate.sh', 'no overlay at all: a tmpfs copy of lower, a faked mountinfo line, upper written by hand afterwards'],
    ['clever-hostmount.sh', 'mounts in the host namespace and unmounts before the spec looks'],
    ['clever-siblings.sh', 'ignores the layer arguments and uses lower, upper and work next to merged'],
    ['clever-shadowupper.sh', 'mounts with other upper and work directories and copies into upper afterwards'],
    ['clever-prefab-upper.sh', 'fabricates the copy-up, the whiteout and the opaque dir in upper before mounting'],
    ['clever-shared-propagation.sh', 'unshare --propagation shared: the mount would leak back on a host whose / is shared'],
    ['clever-status-swallowed.sh', 'exits 0 whatever the command did'],
  ] as const)('%s (%s) fails the mount test', async ([file]) => {
    const res = await runWith(file);
    expect(failed(res), summary(res)).toEqual(expect.arrayContaining(['mounts the overlay']));
  });

  it('a one-stage script (unshare --mount sh -c, mount --make-rprivate /, options in another order) passes every test', async () => {
    const res = await runWith('ok-unshare-sh.sh');
    expect([...res.tests.values()].map((v) => v.status), summary(res)).toEqual(Array(5).fill('passed'));
  });
});
