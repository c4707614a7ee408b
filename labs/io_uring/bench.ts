/**
 * sudo npm run bench -- io_uring [--size-mib=1024] [--trials=3] [--sweep]
 *
 * Copies a 1 GiB file with the plain read/write loop (rw_cp), the naive
 * io_uring copy (uring_cp), the pipelined one (uring_cp_pipelined) and the
 * linked one (link_cp), the page cache of the lab's own files dropped before
 * every run (fdatasync + posix_fadvise(DONTNEED) by c/io_uring/drop_cache;
 * never the host-wide drop_caches). Prints, best of N: MiB/s of the copy,
 * MiB/s including the write-back of the copy (fdatasync), and system calls
 * per MiB (strace -c -f, a separate run). fio's sequential O_DIRECT read and
 * write of the same file give the device's speed to compare with.
 * --sweep also times the pipelined copy over a grid of queue depths and
 * block sizes (how the README's NJOBS and BS were chosen).
 */
import { join } from 'node:path';
import { buildProgram } from '../../helpers/compile.js';
import { run } from '../../helpers/exec.js';
import { runFio } from '../../helpers/fio.js';
import { labSource } from '../../helpers/paths.js';
import { makeTempDir } from '../../helpers/resources.js';
import { countSyscalls } from '../../helpers/syscalls.js';
import { firstDifference, MiB } from './copy-check.js';

const PROGRAMS = ['rw_cp', 'uring_cp', 'uring_cp_pipelined', 'link_cp'] as const;

function option(args: string[], name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : fallback;
}

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(8);

export async function bench(args: string[]): Promise<void> {
  const sizeMiB = option(args, 'size-mib', 1024);
  const trials = option(args, 'trials', 3);
  const bytes = sizeMiB * MiB;
  const dir = await makeTempDir('iou-bench');
  const src = join(dir, 'src.bin');
  const dst = join(dir, 'dst.bin');
  const build = (name: string, cflags: string[] = []) =>
    buildProgram({ src: labSource(`io_uring/${name}.c`), ldlibs: ['-luring'], cflags, name }).then((b) => b.path);
  const dropCache = await build('drop_cache');
  const drop = async (...files: string[]) => {
    const r = await run(dropCache, files, { timeoutMs: 300_000 });
    return Number(r.stdout.match(/sync_ms=([\d.]+)/)?.[1] ?? 0);
  };

  console.log(`io_uring benchmark: ${sizeMiB} MiB in ${dir}, best of ${trials}, page cache of src and dst dropped before each run`);
  // The source: written by fio (real blocks, not unwritten extents), random-ish content.
  await runFio({ name: 'src', filename: src, rw: 'write', ioengine: 'libaio', bs: '1M', iodepth: 8, size: `${sizeMiB}M`, direct: true,
    extra: { refill_buffers: 1 } }, { outputDir: dir, timeoutMs: 600_000 });

  // The device's speed: sequential O_DIRECT read of the source and write of another file.
  const seq = async (rw: 'read' | 'write', filename: string) => {
    let best = 0;
    for (let t = 0; t < trials; t++) {
      const { job } = await runFio({ name: `seq${rw}`, filename, rw, ioengine: 'io_uring', bs: '1M', iodepth: 16, size: `${sizeMiB}M`, direct: true },
        { outputDir: dir, timeoutMs: 600_000 });
      best = Math.max(best, (rw === 'read' ? job.read : job.write).bwBytesPerSec / MiB);
    }
    return best;
  };
  const devRead = await seq('read', src);
  const devWrite = await seq('write', join(dir, 'fio-write.bin'));
  console.log(`device (fio, O_DIRECT, 1 MiB blocks, depth 16): read ${devRead.toFixed(0)} MiB/s, write ${devWrite.toFixed(0)} MiB/s`);

  console.log(`\n${'program'.padEnd(20)} ${'copy MiB/s'.padStart(11)} ${'+sync MiB/s'.padStart(12)} ${'syscalls/MiB'.padStart(13)}  io_uring_enter`);
  for (const name of PROGRAMS) {
    const prog = await build(name);
    let bestCopy = 0, bestSynced = 0;
    for (let t = 0; t < trials; t++) {
      await drop(src, ...(t > 0 ? [dst] : []));
      const r = await run(prog, [src, dst], { timeoutMs: 600_000 });
      const syncMs = await drop(dst);
      bestCopy = Math.max(bestCopy, bytes / MiB / (r.durationMs / 1000));
      bestSynced = Math.max(bestSynced, bytes / MiB / ((r.durationMs + syncMs) / 1000));
    }
    const diff = await firstDifference(src, dst);
    if (diff >= 0) throw new Error(`${name} produced a wrong copy: first differing byte at offset ${diff}`);
    await drop(src, dst);
    const { summary } = await countSyscalls(prog, [src, dst], { timeoutMs: 600_000 });
    console.log(`${name.padEnd(20)} ${fmt(bestCopy).padStart(11)} ${fmt(bestSynced).padStart(12)} ${fmt(summary.total / sizeMiB, 1).padStart(13)}  ${summary.calls('io_uring_enter')}`);
  }

  if (args.includes('--sweep')) {
    console.log('\nuring_cp_pipelined sweep (copy MiB/s, best of trials, cold source):');
    const depths = [1, 2, 4, 8, 16, 32];
    const blocks = [32, 64, 128, 256, 1024];
    console.log(`${'BS \\ NJOBS'.padEnd(12)}${depths.map((d) => String(d).padStart(8)).join('')}`);
    for (const kib of blocks) {
      const row: string[] = [];
      for (const qd of depths) {
        const prog = await build('uring_cp_pipelined', [`-DNJOBS=${qd}`, `-DBS=(${kib}*1024)`]);
        let best = 0;
        for (let t = 0; t < trials; t++) {
          await drop(src, dst);
          const r = await run(prog, [src, dst], { timeoutMs: 600_000 });
          best = Math.max(best, bytes / MiB / (r.durationMs / 1000));
        }
        row.push(fmt(best));
      }
      console.log(`${`${kib} KiB`.padEnd(12)}${row.join('')}`);
    }
  }
}
