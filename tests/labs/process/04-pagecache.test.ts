/**
 * Teeth of Process Lab 4: wrong programs a clever student might write fail
 * the spec on the test that names their mistake; a correct program in another
 * style passes every test. Runs the lab spec (root only) in a nested vitest.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/harness/paths.js';
import { runSpecWith } from '../run-lab-spec.js';

const SPEC = 'labs/process/04-pagecache/pagecache.spec.ts';
const SOURCE = 'process/04-pagecache/pcache.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/process/04-pagecache', name);
const asRoot = process.getuid?.() === 0;

const WRONG = [
  { file: 'wrong-no-evict.c', fails: /^posix_fadvise\(DONTNEED\) on the file evicts it/, says: /fincore of .* before the program and at stop 1/ },
  { file: 'wrong-no-evict.c', fails: /^the cold read brings every page back/, says: /\(no event for the inode\)/ },
  { file: 'wrong-skips-first-block.c', fails: /^the cold read brings every page back/, says: /pages added to the page cache for this inode .*the file has \d+ pages/ },
  { file: 'wrong-o-direct.c', fails: /^the cold read brings every page back/, says: /\(no event for the inode\)/ },
  // A helper playing the clever student wrote these; all five passed the spec of 2026-12-04.
  { file: 'clever-dropcaches.c', fails: /^posix_fadvise\(DONTNEED\) on the file evicts it/, says: /a file it never opened/ },
  { file: 'clever-nowarm.c', fails: /^the warm read adds no page/, says: /the warm read: the program's rchar .* grew by \d+ bytes .*does not have the file mapped/ },
  { file: 'clever-readahead.c', fails: /^the cold read brings every page back/, says: /the cold read: the program's rchar .* grew by \d+ bytes .*does not have the file mapped/ },
  { file: 'clever-willneed.c', fails: /^the cold read brings every page back/, says: /the cold read: the program's rchar .* grew by \d+ bytes .*does not have the file mapped/ },
  { file: 'clever-delegate.c', fails: /^the cold read brings every page back/, says: /pages of the file added by other tasks: [1-9]/ },
] as const;

const runs = new Map<string, ReturnType<typeof runSpecWith>>();
const runOnce = (file: string) => { if (!runs.has(file)) runs.set(file, runSpecWith(SPEC, { [SOURCE]: fixture(file) })); return runs.get(file)!; };

describe.skipIf(!asRoot)('Process Lab 4 fixtures', () => {
  it.each(WRONG)('$file fails "$fails" with the fincore / trace evidence', { timeout: 180_000 }, async ({ file, fails, says }) => {
    const out = await runOnce(file);
    const failed = [...out.status].filter(([, s]) => s === 'failed').map(([t]) => t);
    const title = failed.find((t) => fails.test(t));
    expect(title, `failed tests: ${failed.join(' | ') || 'none'}\n${out.fileMessage}`).toBeDefined();
    expect(out.failure.get(title!)).toMatch(says);
  });

  it('a correct program in another style (mmap and one byte per page, DONTNEED with an explicit length) passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-mmap-touch.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(3);
  });
});
