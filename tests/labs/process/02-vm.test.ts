/**
 * Teeth of Process Lab 2: wrong programs a clever student might write fail
 * the spec on the test that names their mistake; a correct program in another
 * style passes every test. Runs the lab spec (root only) in a nested vitest.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../helpers/harness/paths.js';
import { runSpecWith } from '../run-lab-spec.js';

const SPEC = 'labs/process/02-vm/vm.spec.ts';
const SOURCE = 'process/02-vm/vm.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/process/02-vm', name);
const asRoot = process.getuid?.() === 0;

const WRONG = [
  { file: 'wrong-reads-instead-of-writes.c', fails: /^RSS grows by pages/, says: /expected growth \d+ kB/ },
  { file: 'wrong-reads-instead-of-writes.c', fails: /^every written page has a physical frame/, says: /shows \d+ present, 1 distinct PFNs/ },
  { file: 'wrong-skips-first-page.c', fails: /^writing each page once takes exactly one page fault/, says: /got (\d+) there \(\1 pages, \1 writes; .*trace sample:\n.*page_fault_user: address=0x/ },
  { file: 'wrong-map-populate.c', fails: /^mmap of N pages/, says: /mmap alone allocates no page/ },
  { file: 'wrong-map-populate.c', fails: /^writing each page once/, says: /got 0 there \(0 pages, 0 writes; 0 in all\)/ },
  { file: 'wrong-second-mapping-private.c', fails: /^two mappings of one memfd page/, says: /got perms rw-p\/rw-s|got perms rw-s\/rw-p/ },
  // A helper playing the clever student: the private mapping comes first, so only one of the two was checked (2026-12-04).
  { file: 'clever-private-second-map.c', fails: /^two mappings of one memfd page/, says: /expected both mappings MAP_SHARED/ },
  // Issue #27: attackers who read the spec for what it did not check; each passed the spec of that day.
  // A new page mapped over page 0 (MAP_FIXED) in the child: new PFN, parent kept, page 1 shared — but no copy on write.
  { file: 'wrong-cow-map-fixed.c', fails: /^after fork the child shares/, says: /error_code=0x6\n[\s\S]*its calls over the region in that time: mmap\(0x[0-9a-f]+, 0x1000, / },
  // The same with the zero page populated read-only and made writable: the one write fault is then 0x7, the calls give it away.
  { file: 'clever-cow-populate-mprotect.c', fails: /^after fork the child shares/, says: /its calls over the region in that time: mmap\([^;]*\); mprotect\(/ },
  { file: 'wrong-cow-child-writes-all.c', fails: /^after fork the child shares/, says: /child pages 1… no longer the parent's frame: \d+ \(pages 1, 2, / },
  // Only pages 0 and 1 were compared: a child that writes every page but page 1 passed.
  { file: 'clever-cow-writes-all-but-second.c', fails: /^after fork the child shares/, says: /child pages 1… no longer the parent's frame: \d+ \(pages 2, 3, / },
  // exit 0 after a sleep, never a waitpid: the child is left a zombie for init.
  { file: 'wrong-parent-no-wait.c', fails: /^the parent waits for its child/, says: /the parent's wait4\/waitid calls: none/ },
  // Attackers who read only the spec and guide (2026-12-04), each passed the spec of that day:
  // a disk file named /memfd:vm-lab, MAP_POPULATE'd twice: its device is the disk's, not the kernel's shmem mount, and no access faulted.
  { file: 'clever-fake-memfd.c', fails: /^two mappings of one memfd page/, says: /a memfd's mappings show the device of the kernel's internal shmem mount \(00:[0-9a-f]+ on this host.*\); these two show (?!00:)/ },
  // A real memfd, MAP_POPULATE'd twice and never accessed: no page fault of the program in either mapping.
  { file: 'clever-memfd-populate.c', fails: /^two mappings of one memfd page/, says: /page_fault_user events of process \d+ between stops 3 and 4: 0 in [\s\S]*, 0 in [\s\S]*MAP_POPULATE fills the page tables in advance/ },
  // clone(CLONE_VM) without CLONE_THREAD writes the pages: another process; N reads of a pad elsewhere made minflt N.
  { file: 'clever-clone-sibling.c', fails: /^writing each page once takes exactly one page fault/, says: /got 0 there [\s\S]*faults in the range came from other processes \(tgid \d+\): a clone\(2\) child/ },
] as const;

const runs = new Map<string, ReturnType<typeof runSpecWith>>();
const runOnce = (file: string) => { if (!runs.has(file)) runs.set(file, runSpecWith(SPEC, { [SOURCE]: fixture(file) })); return runs.get(file)!; };

describe.skipIf(!asRoot)('Process Lab 2 fixtures', () => {
  it.each(WRONG)('$file fails "$fails" with the kernel evidence', { timeout: 180_000 }, async ({ file, fails, says }) => {
    const out = await runOnce(file);
    const failed = [...out.status].filter(([, s]) => s === 'failed').map(([t]) => t);
    const title = failed.find((t) => fails.test(t));
    expect(title, `failed tests: ${failed.join(' | ') || 'none'}\n${out.fileMessage}`).toBeDefined();
    expect(out.failure.get(title!)).toMatch(says);
  });

  it('a correct program in another style (MAP_NORESERVE, memset backwards, the memfd reopened via /proc/self/fd) passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-reverse-memset.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(7);
  });

  it('a correct program that writes its pages from a worker thread (last page first) passes every test: the kernel records the process, not one thread', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-worker-thread-touch.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(7);
  });

  it('a correct program whose child writes page 0 from a thread of its own and whose parent waits with waitid(2) (returns 0, not the pid) passes every test', { timeout: 180_000 }, async () => {
    const out = await runOnce('correct-cow-thread-waitid.c');
    const notPassed = [...out.status].filter(([, s]) => s !== 'passed');
    expect(notPassed, [...out.failure.values()].filter(Boolean).join('\n---\n') + out.fileMessage).toEqual([]);
    expect(out.status.size).toBe(7);
  });
});
