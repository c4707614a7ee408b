/**
 * Teeth of Process Lab 3: wrong programs a clever student might write fail
 * the spec on the test that names their mistake; a correct program in another
 * style passes every test. Runs the lab spec (root only) in a nested vitest.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/harness/paths.js';
import { runSpecWith } from '../run-lab-spec.js';

const SPEC = 'labs/process/03-thp/thp.spec.ts';
const SOURCE = 'process/03-thp/thp.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/process/03-thp', name);
const asRoot = process.getuid?.() === 0;

const WRONG = [
  { file: 'wrong-no-madvise.c', fails: /^the region is M MiB/, says: /expected a VMA with VmFlags "hg"/ },
  { file: 'wrong-untrimmed.c', fails: /^the region is M MiB/, says: /VMA advised MADV_HUGEPAGE: [0-9a-f]+-[0-9a-f]+ rw-p/ },
  { file: 'wrong-advises-first-block-only.c', fails: /^the region is M MiB/, says: /VMA advised MADV_HUGEPAGE: [0-9a-f]+-[0-9a-f]+ rw-p/ },
  { file: 'wrong-advises-first-block-only.c', fails: /^page faults fall 512-fold/, says: /expected \d+ page_fault_user events in 0x[0-9a-f]+-0x[0-9a-f]+ \(one per 2 MiB; \d+ with 4 KiB pages\); got 1 / },
  // A helper playing the clever student wrote these; both passed the spec of 2026-12-04 on this 6.18 host.
  { file: 'clever-noalign.c', fails: /^the region is M MiB/, says: /align the region yourself/ },
  { file: 'clever-rounddown.c', fails: /^the region is M MiB/, says: /align the region yourself|expected a VMA with VmFlags "hg"/ },
  // Issue #27: hard-coded addresses, each passed the spec of that day; the kernel's record of the mmap calls shows whose address it was.
  { file: 'wrong-fixed-address.c', fails: /^the region is M MiB/, says: /\n  mmap\(0x600000000000, \d+ MiB, MAP_FIXED\|MAP_ANONYMOUS\) = 0x600000000000\nAsk mmap/ },
  { file: 'clever-fixed-hint.c', fails: /^the region is M MiB/, says: /\n  mmap\(0x600000000000, \d+ MiB, MAP_ANONYMOUS\) = 0x600000000000\nAsk mmap/ },
  { file: 'clever-huge-reserve.c', fails: /^the region is M MiB/, says: /\(the preload's hint\), \d+ MiB, MAP_ANONYMOUS\) = 0x[0-9a-f]+\n  mmap\(0x600000000000, \d+ MiB, MAP_FIXED\|MAP_ANONYMOUS\)/ },
  // No alignment at all, past the preload (syscall(2)): the 6.7+ kernel aligned the exact-size mapping itself.
  { file: 'clever-raw-syscall-noalign.c', fails: /^the region is M MiB/, says: /lies in mmap\(NULL, \d+ MiB\) = 0x[0-9a-f]+, a mapping this .* kernel placed on a 2 MiB boundary by itself/ },
  // Attackers who read only the spec and guide (2026-12-04), each passed the spec of that day:
  // the preload misaligned by exactly 4 KiB, so adding 2 MiB - 4 KiB aligned; now it misaligns by 1–511 pages, random per run.
  { file: 'clever-hard4k.c', fails: /^the region is M MiB/, says: /align the region yourself/ },
  // mmap(NULL, M + 2 MiB) past the preload: not exactly M, but still a 2 MiB multiple the 6.7+ kernel aligned by itself.
  { file: 'clever-kernelalign.c', fails: /^the region is M MiB/, says: /lies in mmap\(NULL, \d+ MiB\) = 0x[0-9a-f]+, a mapping this .* kernel placed on a 2 MiB boundary by itself: .*kernels before 6\.7 \(Debian 12/ },
] as const;

const runs = new Map<string, ReturnType<typeof runSpecWith>>();
const runOnce = (file: string) => { if (!runs.has(file)) runs.set(file, runSpecWith(SPEC, { [SOURCE]: fixture(file) })); return runs.get(file)!; };

describe.skipIf(!asRoot)('Process Lab 3 fixtures', () => {
  it.each(WRONG)('$file fails "$fails" with the smaps / trace evidence', { timeout: 180_000 }, async ({ file, fails, says }) => {
    const out = await runOnce(file);
    const failed = [...out.status].filter(([, s]) => s === 'failed').map(([t]) => t);
    const title = failed.find((t) => fails.test(t));
    expect(title, `failed tests: ${failed.join(' | ') || 'none'}\n${out.fileMessage}`).toBeDefined();
    expect(out.failure.get(title!)).toMatch(says);
  });

  it('a correct program in another style (posix_memalign with 2 MiB alignment) passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-posix-memalign.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(3);
  });

  it('a correct program that reserves M + 2 MiB (PROT_NONE) and maps the region MAP_FIXED at the first 2 MiB boundary inside it passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-reserve-then-fixed.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(3);
  });

  it('a correct program that writes the region from a worker thread passes every test: the kernel records the process, not one thread', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-worker-thread.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
  });
});
