/** Process Lab 4's verdicts (labs/process/04-pagecache/judge.ts) on made-up steps: eviction, cold and warm reads, and who read the file. */
import { describe, expect, it } from 'vitest';
import type { Step, Walk } from '../../../../labs/process/04-pagecache/experiment.js';
import { coldRead, eviction, readItself, warmRead } from '../../../../labs/process/04-pagecache/judge.js';

const f = { path: '/tmp/kl-x/data.bin', size: 100 * 4096 + 7, pages: 101 };
function step(extra: Partial<Step> = {}): Step {
  return {
    resident: 101, added: 0, deleted: 0, deletedByOthers: 0, ms: 10, sample: [], addedByOthers: 0, canaryDeletedBySelf: 0,
    rchar: 0, faults: 0, mapped: false, lookedUp: 0, lookups: 0, notLookedUp: '', touched: 0, deletedByTools: 0, addedByTools: 0,
    tools: '', fileBytes: 0, eofReads: 0, eofReadsPerThread: 0, populateCalls: '', populated: 0, ...extra,
  };
}
const walk = (steps: Step[]): Walk => ({ prog: {} as Walk['prog'], steps, before: 101, canaryBefore: 256, lookUps: true });

describe('Process Lab 4 judge', () => {
  it('eviction: the program itself dropped every page; a tool it ran, or the canary dropped too, is named', () => {
    const good = eviction(walk([]), step({ resident: 0, deleted: 101 }), f, '/tmp/c');
    expect(good.resident.facts).toEqual(good.resident.want);
    expect(good.byWhom.facts).toEqual(good.byWhom.want);
    const tool = eviction(walk([]), step({ resident: 0, deletedByTools: 101, tools: 'dd (pid 7)' }), f, '/tmp/c');
    expect(tool.byWhom.facts).toEqual({ droppedByProcessesItStarted: 101, leftForOthersToDrop: 101 });
    expect(tool.byWhom.message).toMatch(/101 by processes it started \(dd \(pid 7\)\)/);
    expect(eviction(walk([]), step({ resident: 0, deleted: 101, canaryDeletedBySelf: 256 }), f, '/tmp/c').canary.fact).toBe(256);
  });

  it('cold read: every page added once; reclaim by others excuses that many pages, no more', () => {
    expect(coldRead(step({ added: 101 }), f).facts).toEqual({ missingFromAdds: 0, addedBeyondReclaim: 0, notResident: 0 });
    expect(coldRead(step({ added: 80, resident: 80 }), f).facts).toEqual({ missingFromAdds: 21, addedBeyondReclaim: 0, notResident: 21 });
    expect(coldRead(step({ added: 105, resident: 97, deletedByOthers: 4 }), f).facts).toEqual({ missingFromAdds: 0, addedBeyondReclaim: 0, notResident: 0 });
  });

  it('warm read: nothing added but what reclaim took, nothing evicted', () => {
    expect(warmRead(step({ added: 101 }), step(), f).facts).toEqual({ addedBeyondReclaim: 0, evictedByProgram: 0, missing: 0 });
    expect(warmRead(step({ added: 101 }), step({ added: 101, deleted: 101 }), f).facts).toEqual({ addedBeyondReclaim: 101, evictedByProgram: 101, missing: 0 });
  });

  it('read by the program itself: look-ups and bytes, or a mapping it touched; readahead, a byte cap, a tool or a fixed count fail', () => {
    const ok = readItself(step({ lookedUp: 101, fileBytes: f.size, eofReadsPerThread: 1 }), f, true, 'the cold read');
    expect(ok.facts).toEqual(ok.want);
    const touched = readItself(step({ touched: 101, mapped: true }), f, true, 'the warm read');
    expect(touched.facts).toEqual(touched.want);
    // posix_fadvise(WILLNEED) or readahead(2): pages added, none looked up by a read.
    expect(readItself(step({ lookedUp: 0 }), f, true, 'x').facts.pagesNotReadThroughTheCache).toBe(101);
    // A read loop capped below the file's size.
    const capped = readItself(step({ lookedUp: 64, fileBytes: 64 * 4096, notLookedUp: '64-100' }), f, true, 'x');
    expect(capped.facts).toMatchObject({ pagesNotReadThroughTheCache: 37, bytesReadFromTheFile: false });
    expect(capped.message).toMatch(/covered 64 of the file's 101 pages \(not: 64-100…\)/);
    expect(readItself(step({ lookedUp: 101, fileBytes: f.size, eofReadsPerThread: 40 }), f, true, 'x').facts.readsPastTheEnd).toBe(38);
    expect(readItself(step({ lookedUp: 101, fileBytes: f.size, addedByOthers: 101, tools: 'cat (pid 9)' }), f, true, 'x').message).toMatch(/processes it started: cat \(pid 9\)/);
    // Kernels without the look-up tracepoints: rchar or a mapping.
    expect(readItself(step({ rchar: f.size }), f, false, 'x').facts).toMatchObject({ pagesNotReadThroughTheCache: 0, bytesReadFromTheFile: true });
    expect(readItself(step({ rchar: 4096 }), f, false, 'x').facts).toMatchObject({ pagesNotReadThroughTheCache: 101, bytesReadFromTheFile: false });
  });
});
