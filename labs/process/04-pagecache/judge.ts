/**
 * Process Lab 4's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Walk`, `Step`) to the facts each test asserts, with the
 * message that shows the evidence. Unit-tested on made-up steps in
 * tests/lab-units/process/04-pagecache/judge.test.ts.
 */
import type { Step, Walk } from './experiment.js';

export const PAGE = 4096;
/** A reader thread sees the end of the file once per read (twice, with a short read before it); a fixed byte count reads on past it. */
export const EOF_READS_PER_THREAD = 2;

/** The file, as the experiment made it. */
export interface FileShape { readonly path: string; readonly size: number; readonly pages: number }

export const stopMissing = (w: Walk, n: number) => `expected the program to reach stop ${n}; ${w.stuck ?? ''}`;

/** Stop 1: who evicted the file (the program itself, every page, no other file). */
export function eviction(w: Walk, s1: Step, f: FileShape, canary: string) {
  const reclaimed = s1.deletedByOthers;
  return {
    resident: {
      facts: { before: w.before, afterEvict: s1.resident },
      want: { before: f.pages, afterEvict: 0 },
      message: `fincore of ${f.path} (${f.pages} pages, ${f.size} bytes) before the program and at stop 1`,
    },
    reclaimed,
    byWhom: {
      facts: { droppedByProcessesItStarted: s1.deletedByTools, leftForOthersToDrop: Math.max(0, w.before - s1.deleted - reclaimed) },
      want: { droppedByProcessesItStarted: 0, leftForOthersToDrop: 0 },
      message: `from the program's start to stop 1, mm_filemap_delete_from_page_cache for ${f.path}: ${s1.deleted} pages dropped by the program itself, ` +
        `${s1.deletedByTools} by processes it started${s1.tools ? ` (${s1.tools})` : ''}, ${reclaimed} by memory reclaim; ${w.before} were cached. ` +
        'Evict the file in the program itself (posix_fadvise(2) on its descriptor), not by running another tool (dd iflag=nocache, vmtouch -e)',
    },
    canary: {
      fact: s1.canaryDeletedBySelf,
      message: `the program (or a process it started) dropped ${s1.canaryDeletedBySelf} pages of ${canary}, a file it never opened (mm_filemap_delete_from_page_cache in its context; ` +
        `${w.canaryBefore} of its pages were cached before): evict the lab's file only (posix_fadvise(2) on it), never every process's cache (/proc/sys/vm/drop_caches)`,
    },
  };
}

/** Stop 2: the cold read added every page once (reclaim by others may add or take away that many), and fincore shows them. */
export function coldRead(s2: Step, f: FileShape) {
  const reclaimed = s2.deletedByOthers;
  return {
    reclaimed,
    facts: { missingFromAdds: Math.max(0, f.pages - s2.added), addedBeyondReclaim: Math.max(0, s2.added - f.pages - reclaimed), notResident: Math.max(0, f.pages - s2.resident - reclaimed) },
    want: { missingFromAdds: 0, addedBeyondReclaim: 0, notResident: 0 },
    message: `between stop 1 and stop 2: ${s2.added} pages added to the page cache for this inode (sum of 2^order over the events; deleted by the program ${s2.deleted}, by others ${reclaimed}) ` +
      `and ${s2.resident} resident (fincore); the file has ${f.pages} pages. Sample:\n  ${s2.sample.join('\n  ') || '(no event for the inode)'}`,
  };
}

/** Stop 3: the warm read added nothing (but what reclaim took away) and evicted nothing. */
export function warmRead(s2: Step, s3: Step, f: FileShape) {
  const reclaimed = s2.deletedByOthers + s3.deletedByOthers;
  return {
    reclaimed,
    facts: { addedBeyondReclaim: Math.max(0, s3.added - reclaimed), evictedByProgram: s3.deleted, missing: Math.max(0, f.pages - s3.resident - reclaimed) },
    want: { addedBeyondReclaim: 0, evictedByProgram: 0, missing: 0 },
    message: `between stop 2 and stop 3: ${s3.added} pages added for the inode, deleted by the program ${s3.deleted}, by others (reclaim) ${s3.deletedByOthers}; ${s3.resident} resident (file: ${f.pages}); ` +
      `the cold read had added ${s2.added}; times cold ${s2.ms.toFixed(0)} ms, warm ${s3.ms.toFixed(0)} ms`,
  };
}

/**
 * The program read the whole file itself, through the page cache. The kernel's evidence: its own threads looked every
 * page of the file up in the cache (mm_filemap_get_pages for read(2), pread(2), readv(2), sendfile(2)…;
 * mm_filemap_map_pages and mm_filemap_fault for a mapping), or — a mapping kept from the cold read, read without
 * faults — referenced every page of its mapping since the last stop (smaps Referenced; not in a step where it had the
 * kernel fill the mapping: madvise MADV_POPULATE_READ, mmap MAP_POPULATE, mlock); the bytes reached it (rchar grew
 * by the file's size, or it touched every mapped page); no read call of one thread returned 0 (end of file) more than
 * twice (a fixed byte count instead of the end of the file); and no other task (a cat or dd it ran) added the pages.
 * readahead(2) and posix_fadvise(WILLNEED) fill the cache without looking a page up for a read; O_DIRECT bypasses the
 * cache; rereading one block looks up one block; reading /dev/zero adds to rchar, not to the look-ups.
 * `lookUps`: the kernel has the look-up tracepoints (6.10 and later); without them only rchar and the mapping count.
 */
export function readItself(s: Step, f: FileShape, lookUps: boolean, what: string) {
  const read = lookUps ? Math.max(s.lookedUp, Math.min(f.pages, s.touched)) : (s.rchar >= f.size || s.mapped ? f.pages : 0);
  return {
    facts: {
      pagesNotReadThroughTheCache: f.pages - read,
      bytesReadFromTheFile: lookUps ? s.fileBytes >= f.size || s.touched >= f.pages : s.rchar >= f.size || s.mapped,
      readsPastTheEnd: Math.max(0, s.eofReadsPerThread - EOF_READS_PER_THREAD),
      pagesAddedByOtherTasks: s.addedByOthers,
    },
    want: { pagesNotReadThroughTheCache: 0, bytesReadFromTheFile: true, readsPastTheEnd: 0, pagesAddedByOtherTasks: 0 },
    message: `${what}: the program's own reads of the file through the page cache (its read calls that looked the file up, by offset and bytes returned; ` +
      `its threads' ${s.lookups} mm_filemap_get_pages/map_pages/fault events) covered ${s.lookedUp} of the file's ${f.pages} pages${s.notLookedUp ? ` (not: ${s.notLookedUp}…)` : ''}; ` +
      `pages of its mappings of the file it referenced since the last stop (smaps Referenced, when it made no read call on the file and had the kernel fill no mapping of it): ${s.touched}${s.mapped ? '' : ' (no mapping of the file)'}; ` +
      `its calls that had the kernel fill a mapping of the file (syscalls:sys_enter_*/sys_exit_*, and the map_pages/fault events inside them, not reads by the program): ${s.populateCalls || 'none'}${s.populated ? `, ${s.populated} pages looked up only by them` : ''}; ` +
      `its read calls that looked the file up (syscalls:sys_enter_*/sys_exit_* around mm_filemap_get_pages) returned ${s.fileBytes} bytes, its rchar (/proc/<pid>/io) grew by ${s.rchar} (file: ${f.size} bytes); ` +
      `its read calls returned 0 (end of file, sys_exit_* ret 0) ${s.eofReads} times, at most ${s.eofReadsPerThread} in one thread; ` +
      `pages of the file added by other tasks: ${s.addedByOthers}${s.tools ? ` (processes it started: ${s.tools})` : ''}. ` +
      'Read every byte of the file in the program itself, through the page cache (read(2)/pread(2) without O_DIRECT, or a mapping whose pages it touches itself, ' +
      'not one the kernel fills for it: madvise MADV_POPULATE_READ, MAP_POPULATE, mlock), from the first byte until a read returns 0.',
  };
}
