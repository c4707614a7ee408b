/**
 * What Labs 2 and 3 share: test files of chosen sizes, running a copy
 * program `<prog> <src> <dst>`, and comparing source and destination by hash
 * with the first differing byte offset when they differ.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { expect, type TestContext } from 'vitest';
import { advise } from '../../helpers/harness/advice.js';
import { buildProgram } from '../../helpers/harness/compile.js';
import { run, type RunResult } from '../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../helpers/harness/paths.js';
import { describeRequests, type RequestTrace } from '../../helpers/kernel/io-uring-trace.js';
import { makeTraceInstance } from '../../helpers/kernel/tracefs.js';

/** The block size the lab READMEs ask for (uring_cp and link_cp). */
export const BLOCK = 32 * 1024;
export const MiB = 1024 * 1024;

/** Sizes around the block size (and a page, and a larger block), then a 64 MiB file. */
export const EDGE_SIZES = [0, 1, 4095, 4097, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7, 256 * 1024 + 1] as const;
export const BIG_SIZE = 64 * MiB;

/**
 * Write back and drop the page cache of the lab's own files (fdatasync +
 * posix_fadvise(DONTNEED) by c/io_uring/drop_cache; never the host-wide
 * drop_caches), so the next read comes from the disk. A harness program, not
 * a student file: always built from the reference tree. Returns the ms spent
 * writing back.
 */
export async function dropPageCache(...files: string[]): Promise<number> {
  const prog = await buildProgram({ src: join(REFERENCE_SRC, 'io_uring/drop_cache.c'), name: 'drop_cache' });
  const r = await run(prog.path, files, { timeoutMs: 300_000 });
  return Number(r.stdout.match(/sync_ms=([\d.]+)/)?.[1] ?? 0);
}

/** Write a file of random bytes (in 8 MiB pieces). */
export async function randomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += 8 * MiB) await fh.write(randomBytes(Math.min(8 * MiB, size - off)));
  } finally {
    await fh.close();
  }
}

/** Open for reading, never through a symbolic link (the program's files are read as root; it runs as another uid). */
const NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

export async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, NOFOLLOW);
  for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer); // the stream closes the handle
  return h.digest('hex');
}

/** Offset of the first byte that differs (or where the shorter file ends); -1 when equal. */
export async function firstDifference(a: string, b: string): Promise<number> {
  const [fa, fb] = await Promise.all([open(a, NOFOLLOW), open(b, NOFOLLOW)]);
  try {
    const size = 1 * MiB;
    const ba = Buffer.alloc(size), bb = Buffer.alloc(size);
    for (let off = 0; ; off += size) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, size, off), fb.read(bb, 0, size, off)]);
      const n = Math.min(ra.bytesRead, rb.bytesRead);
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return off + i;
      if (ra.bytesRead !== rb.bytesRead) return off + n;
      if (ra.bytesRead === 0) return -1;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** Run `<prog> <src> <dst>` (never throws on exit status; the spec checks it after the content). */
export function runCopy(prog: string, src: string, dst: string, timeoutMs = 60_000): Promise<RunResult> {
  return run(prog, [src, dst], { timeoutMs, reject: false });
}

/**
 * Assert the copy is exact: same hash, else the first differing byte offset
 * and both sizes in the message; then that the program exited 0. What the
 * program prints about itself is shown, never required.
 */
export async function expectSameContent(what: string, src: string, dst: string, r: RunResult): Promise<void> {
  const srcSize = statSync(src).size;
  const exit = `${r.command} exited ${r.signal ?? r.exitCode}; stdout: ${r.stdout.trim() || '(none)'}; stderr: ${r.stderr.trim() || '(none)'}`;
  expect(existsSync(dst), `${what}: the copy was wrong: the destination ${dst} was not created. ${exit}`).toBe(true);
  // a copy is a file of its own: neither a link that leads a reader to the source nor the source's inode under a second name
  const l = lstatSync(dst);
  expect(l.isSymbolicLink(), `${what}: the copy was wrong: the destination ${dst} is a symbolic link (to ${l.isSymbolicLink() ? readlinkSync(dst) : ''}), not a copy: write the bytes into a new file. ${exit}`).toBe(false);
  expect(l.isFile(), `${what}: the copy was wrong: the destination ${dst} is not a regular file. ${exit}`).toBe(true);
  const s = statSync(src);
  expect(l.dev === s.dev && l.ino === s.ino, `${what}: the copy was wrong: the destination ${dst} is the source's own inode ${s.ino} (a hard link), not a copy. ${exit}`).toBe(false);
  const [hs, hd] = await Promise.all([sha256(src), sha256(dst)]);
  if (hs !== hd) {
    const at = await firstDifference(src, dst);
    expect.fail(`${what}: the copy was wrong: the copy differs from the source: first differing byte at offset ${at} ` +
      `(source ${srcSize} bytes sha256 ${hs.slice(0, 16)}…, copy ${statSync(dst).size} bytes sha256 ${hd.slice(0, 16)}…). ${exit}`);
  }
  expect(r.exitCode, `${what}: the copy is right but the program failed. ${exit}`).toBe(0);
}

/**
 * The kernel's account of a copy: the program created a ring, and the READ
 * and WRITE requests on it completed at least `size` bytes each. A copy that
 * moves the bytes another way (read(2), mmap, copy_file_range) while
 * submitting other requests has nothing to show here.
 */
export function expectBytesThroughRing(what: string, size: number, t: RequestTrace & { readonly result: RunResult }): void {
  const evidence = `${what} (pid ${t.result.pid}), io_uring tracepoints on the rings it created (${t.rings.length}): ${describeRequests(t)}; ` +
    `file size ${size} bytes. First events:\n${t.sample || '(none)'}`;
  expect(t.rings.length, `${evidence}\nThe program created no io_uring ring (io_uring_queue_init).`).toBeGreaterThan(0);
  expect(t.bytes.read, `${evidence}\nEvery byte must be read by an io_uring read request (io_uring_prep_read).`).toBeGreaterThanOrEqual(size);
  expect(t.bytes.write, `${evidence}\nEvery byte must be written by an io_uring write request (io_uring_prep_write).`).toBeGreaterThanOrEqual(size);
}

/** The correctness matrix: every edge size and the 64 MiB file, copied by `prog` and compared. */
export async function copyMatrix(prog: string, name: string, dir: string, files: ReadonlyMap<number, string>): Promise<void> {
  for (const [size, src] of files) {
    const dst = join(dir, `${name}-${size}.out`);
    const r = await runCopy(prog, src, dst);
    const file = name in COPY_PROGRAMS ? ` (fix ${copyProgramSource(name as CopyProgram)})` : '';
    await expectSameContent(`${name}${file} on a ${size}-byte file`, src, dst, r);
  }
}

/** Make the source files of the matrix in `dir`: size → path. */
export async function makeSources(dir: string, sizes: readonly number[] = [...EDGE_SIZES, BIG_SIZE]): Promise<Map<number, string>> {
  const files = new Map<number, string>();
  for (const size of sizes) {
    const path = join(dir, `src-${size}.bin`);
    await randomFile(path, size);
    files.set(size, path);
  }
  return files;
}

/**
 * A copy that cannot open its source or create its destination exits non-zero with a message on stderr. Which words
 * the message uses is the program's business (liburing's examples print `perror("open infile")`): naming the path is
 * advice, not a test.
 */
export async function expectErrorsReported(ctx: TestContext, prog: string, dir: string, existing: string): Promise<void> {
  const missing = join(dir, 'no-such-source.bin');
  const badDst = join(dir, 'no-such-dir', 'out.bin');
  const cases = [
    { what: 'a missing source', path: missing, r: await runCopy(prog, missing, join(dir, 'out-missing-src.bin')) },
    { what: "a destination whose directory does not exist", path: badDst, r: await runCopy(prog, existing, badDst) },
  ];
  for (const { what, r } of cases) {
    expect(r.exitCode, `${r.command} should fail on ${what}; it exited ${r.exitCode}, stderr: ${r.stderr || '(empty)'}`).not.toBe(0);
    expect(r.stderr.trim(), `${r.command} failed on ${what} (exit ${r.exitCode}) but said nothing on stderr: print why (perror(3), strerror(3))`).not.toBe('');
  }
  const unnamed = cases.filter(({ path, r }) => !r.stderr.includes(path));
  if (unnamed.length) {
    await advise(ctx, `${basename(prog)}: a message that names the file (${unnamed.map(({ path }) => path).join(', ')}) tells the user which of the two failed; ` +
      `it said: ${unnamed.map(({ r }) => JSON.stringify(r.stderr.trim().split('\n')[0])).join(' / ')}`);
  }
}

/** MiB/s of a run that copied `bytes`. */
export function mibPerSec(bytes: number, ms: number): number {
  return bytes / MiB / (Math.max(ms, 1) / 1000);
}


/**
 * Run `<prog> args…` with one tracepoint (e.g. "io_uring/io_uring_link")
 * enabled in a tracefs instance of its own, filtered to the program's pid,
 * and return how many times it fired and the program's exit. The instance
 * (kl-<run>-… under /sys/kernel/tracing/instances) is removed afterwards.
 */
export async function countTracepoint(event: string, prog: string, args: readonly string[], timeoutMs = 60_000): Promise<{ count: number; sample: string; result: RunResult }> {
  const inst = makeTraceInstance([event], { tag: 'iou', enable: false });
  if (!inst) throw new Error(`tracefs has no instances or no ${event} tracepoint`);
  try {
    // The shell writes its pid, then becomes the program (exec keeps the pid): every event of the program, none of others.
    const script = `echo $$ > ${inst.pidFile} && echo 1 > ${inst.enableFile(event)} && exec "$0" "$@"`;
    const result = await run('sh', ['-c', script, prog, ...args], { timeoutMs, reject: false });
    inst.setEnabled(false);
    const name = event.split('/').pop()!;
    const lines = inst.read().lines.filter((l) => l.includes(`${name}:`));
    return { count: lines.length, sample: lines.slice(0, 3).join('\n'), result };
  } finally {
    await inst.release();
  }
}

/** Where each copy program of the area lives (relative to c/ or LAB_SRC): the lab that has the student write it. */
const COPY_PROGRAMS = {
  uring_cp: 'io_uring/02-uring-cp/uring_cp.c',
  uring_cp_pipelined: 'io_uring/02-uring-cp/uring_cp_pipelined.c',
  link_cp: 'io_uring/03-link-cp/link_cp.c',
  rw_cp: 'io_uring/rw_cp.c',
} as const;
export type CopyProgram = keyof typeof COPY_PROGRAMS;

export function copyProgramSource(name: CopyProgram): string {
  return labSource(COPY_PROGRAMS[name]);
}
