/**
 * Net Lab 5 — OverlayFS, the file system under a container image.
 *
 * The student's overlay.sh mounts lower/upper/work at merged in a mount
 * namespace of its own and runs a command there. The spec's command changes
 * the merged view (append to a lower file, delete one, replace a directory)
 * and lists it; the spec then reads the layers themselves: the copied-up
 * file in upper, the whiteout (a 0/0 character device), the opaque directory
 * (trusted.overlay.opaque), the untouched lower layer — and the mount tables
 * inside and outside.
 *
 * The lab's anatomy: experiment.ts prepares the layers, runs overlay.sh and
 * collects the evidence (`OverlayRun`), judge.ts turns it into facts and
 * messages, this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { runOverlay, type OverlayRun } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

describe('Net Lab 5 — OverlayFS: copy-up, whiteouts, opaque directories (the layers under a container)', () => {
  requires(...labRequires(import.meta.url));
  let r: OverlayRun;

  beforeAll(async () => {
    r = await runOverlay();
  });

  it('mounts the overlay in a mount namespace of its own: the command sees an overlay at merged with these layers, the host never does', () => {
    holds(judge.ownNamespace(r));
  });

  it('copies a file up on write: upper holds the whole file (64 KiB from lower plus the appended line), lower is untouched', () => {
    holds(judge.copyUp(r));
  });

  it('records a deletion as a whiteout: upper/gone is a character device 0/0, lower/gone still exists', () => {
    holds(judge.whiteout(r));
  });

  it('makes a directory deleted and made again opaque: trusted.overlay.opaque = y on upper/dir, lower/dir/old hidden but kept', () => {
    holds(judge.opaque(r));
  });

  it('shows the union in the merged view: ls lists dir, file and keep — gone is hidden', () => {
    holds(judge.union(r));
  });
});
