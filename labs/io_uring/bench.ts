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
 * write of the same file give the device's speed to compare with, and a fio
 * read of the source running at the same time as a write of another file
 * gives a copy's ceiling on this device (a copy must do both).
 * --sweep also times the pipelined copy over a grid of queue depths and
 * block sizes (how the README's NJOBS and BS were chosen), buffered and
 * with -DDIRECT_IO (O_DIRECT on both files).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildProgram } from '../../helpers/harness/compile.js';
import { run } from '../../helpers/harness/exec.js';
import { runFio } from '../../helpers/kernel/fio.js';
import { labSource } from '../../helpers/harness/paths.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { countSyscalls } from '../../helpers/kernel/syscalls.js';
import { copyProgramSource, type CopyProgram, dropPageCache, firstDifference, MiB } from './copy-check.js';

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
  const build = (name: CopyProgram, cflags: string[] = []) =>
    buildProgram({ src: copyProgramSource(name), ldlibs: ['-luring'], cflags, name }).then((b) => b.path);

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
  // A copy's ceiling: read the source and write another file at the same time; the copy is done when both are.
  const both = join(dir, 'read-and-write.fio');
  await writeFile(both, `[global]\nioengine=io_uring\ndirect=1\nbs=1M\niodepth=16\nsize=${sizeMiB}M\n[read]\nrw=read\nfilename=${src}\n[write]\nrw=write\nfilename=${join(dir, 'fio-write.bin')}\n`);
  let ceiling = 0;
  for (let t = 0; t < trials; t++) {
    const { report } = await runFio({ name: 'read-and-write', jobFile: both, options: {} }, { outputDir: dir, timeoutMs: 600_000 });
    const slowest = Math.max(...report.jobs.map((j) => Math.max(j.read.runtimeMs, j.write.runtimeMs)));
    ceiling = Math.max(ceiling, sizeMiB / (slowest / 1000));
  }
  console.log(`device (fio, O_DIRECT, 1 MiB blocks, depth 16): read ${devRead.toFixed(0)} MiB/s, write ${devWrite.toFixed(0)} MiB/s, ` +
    `read and write at once ${ceiling.toFixed(0)} MiB/s (a copy's ceiling)`);

  console.log(`\n${'program'.padEnd(20)} ${'copy MiB/s'.padStart(11)} ${'+sync MiB/s'.padStart(12)} ${'of ceiling'.padStart(11)} ${'syscalls/MiB'.padStart(13)}  io_uring_enter`);
  for (const name of PROGRAMS) {
    const prog = await build(name);
    let bestCopy = 0, bestSynced = 0;
    for (let t = 0; t < trials; t++) {
      await dropPageCache(src, ...(t > 0 ? [dst] : []));
      const r = await run(prog, [src, dst], { timeoutMs: 600_000 });
      const syncMs = await dropPageCache(dst);
      bestCopy = Math.max(bestCopy, bytes / MiB / (r.durationMs / 1000));
      bestSynced = Math.max(bestSynced, bytes / MiB / ((r.durationMs + syncMs) / 1000));
    }
    const diff = await firstDifference(src, dst);
    if (diff >= 0) throw new Error(`${name} produced a wrong copy: first differing byte at offset ${diff}`);
    await dropPageCache(src, dst);
    const { summary } = await countSyscalls(prog, [src, dst], { timeoutMs: 600_000 });
    const share = `${((100 * bestSynced) / ceiling).toFixed(0)} %`;
    console.log(`${name.padEnd(20)} ${fmt(bestCopy).padStart(11)} ${fmt(bestSynced).padStart(12)} ${share.padStart(11)} ${fmt(summary.total / sizeMiB, 1).padStart(13)}  ${summary.calls('io_uring_enter')}`);
  }

  if (args.includes('--sweep')) {
    const sweep = async (title: string, depths: number[], blocks: number[], cflags: string[]) => {
      console.log(`\nuring_cp_pipelined ${title} (MiB/s including write-back, best of ${trials}, cold source):`);
      console.log(`${'BS \\ NJOBS'.padEnd(12)}${depths.map((d) => String(d).padStart(8)).join('')}`);
      for (const kib of blocks) {
        const row: string[] = [];
        for (const qd of depths) {
          const prog = await build('uring_cp_pipelined', [`-DNJOBS=${qd}`, `-DBS=(${kib}*1024)`, ...cflags]);
          let best = 0;
          for (let t = 0; t < trials; t++) {
            await dropPageCache(src, dst);
            const r = await run(prog, [src, dst], { timeoutMs: 600_000 });
            const syncMs = await dropPageCache(dst);
            best = Math.max(best, bytes / MiB / ((r.durationMs + syncMs) / 1000));
          }
          row.push(fmt(best));
        }
        console.log(`${`${kib} KiB`.padEnd(12)}${row.join('')}`);
      }
    };
    await sweep('buffered', [1, 2, 4, 8, 16, 32], [32, 64, 128, 256, 1024], []);
    await sweep('with -DDIRECT_IO (O_DIRECT)', [4, 16, 32], [64, 256, 1024], ['-DDIRECT_IO']);
  }
}
