/** Process Lab 3's verdicts (labs/process/03-thp/judge.ts) on made-up evidence: the region and who placed it, its huge pages, its faults. */
import { describe, expect, it } from 'vitest';
import type { Walk } from '../../../../labs/process/03-thp/experiment.js';
import { faults, hugeBacked, region, thpModeProblem, vmaMissing } from '../../../../labs/process/03-thp/judge.js';
import type { ProcStat, Vma } from '../../../../helpers/kernel/procfs.js';
import type { TraceEvent, TracedSyscall } from '../../../../helpers/kernel/tracefs.js';

const MiB = 2n ** 20n;
const vma = (start: bigint, end: bigint, kb: Record<string, number> = {}): Vma =>
  ({ start, end, perms: 'rw-p', offset: 0n, dev: '00:00', inode: 0, path: '', kb: new Map(Object.entries(kb)), vmFlags: ['rd', 'wr', 'mr', 'mw', 'me', 'ac', 'hg'] });
/** An mmap(2) as syscalls:sys_enter_mmap/sys_exit_mmap record it. */
const mmap = (addr: bigint, len: bigint, flags: bigint, ret: bigint | undefined, fd = 0xffffffffffffffffn): TracedSyscall =>
  ({ pid: 100, tgid: 100, name: 'mmap', args: new Map([['addr', addr], ['len', len], ['prot', 3n], ['flags', flags], ['fd', fd], ['off', 0n]]), ts: 1, ...(ret === undefined ? {} : { ret, exitTs: 2 }) });
const fault = (address: bigint): TraceEvent => ({ pid: 100, tgid: 100, event: 'page_fault_user', body: `address=0x${address.toString(16)} ip=0x401000 error_code=0x6`, ts: 1 });
const walk = (extra: Partial<Walk> = {}): Walk =>
  ({ pid: 100, kernel: '6.18.0', hgVmas: [], stats: [], faults: [], faultLines: [], thpAlloc: 0, thpFallback: 0, vmSizeKb: [], ...extra });

/** The preload's hint, 3 pages past a 2 MiB boundary; the kernel honoured it. */
const HINT = 0x7e0000000000n + 3n * 4096n;
const HINTS = new Set([HINT]);
const FIRST = 0x7e0000000000n + 2n * MiB; // the first 2 MiB boundary inside [HINT, HINT + len)
const PRIVATE_ANON = 0x22n;

describe('Process Lab 3 judge', () => {
  it('THP "madvise" or "always" will do, "never" says how to fix it', () => {
    expect(thpModeProblem('madvise')).toBeUndefined();
    expect(thpModeProblem('always')).toBeUndefined();
    expect(thpModeProblem('never')).toMatch(/are "never": .*echo madvise > /);
    expect(vmaMissing(walk({ stuck: 'stuck at 2' }))).toBe('expected a VMA with VmFlags "hg" (madvise MADV_HUGEPAGE) in /proc/100/smaps at stop 2; found none. stuck at 2');
  });

  it('a region at the first 2 MiB boundary of an mmap the kernel placed (at the preload\'s hint) holds; its size and alignment come from the VMA', () => {
    const v = vma(FIRST, FIRST + 8n * MiB);
    const r = region(walk({ mmaps: [mmap(HINT, 10n * MiB, PRIVATE_ANON, HINT)] }), v, 8, HINTS);
    for (const k of ['shape', 'notAFile', 'notKernelAligned', 'kernelPlaced'] as const) expect(r[k].facts, k).toEqual(r[k].want);
    const odd = region(walk({ mmaps: [mmap(HINT, 10n * MiB, PRIVATE_ANON, HINT)] }), vma(HINT, HINT + 8n * MiB), 6, HINTS);
    expect(odd.shape.facts).toEqual({ aligned: false, mib: 8 });
    expect(odd.shape.message).toMatch(/^VMA advised MADV_HUGEPAGE: 7e0000003000-7e0000803000 rw-p 00000000 00:00 0 \(VmFlags rd wr mr mw me ac hg\)\. .*align the region yourself$/);
  });

  it('who chose the address: not a constant (MAP_FIXED, a hint of the program\'s), not past the first boundary, not a failed call', () => {
    const v = vma(0x600000000000n, 0x600000000000n + 8n * MiB);
    const fixed = region(walk({ mmaps: [mmap(0x600000000000n, 8n * MiB, PRIVATE_ANON | 0x10n, 0x600000000000n)] }), v, 8, HINTS).kernelPlaced;
    expect(fixed.facts).toBe(false);
    expect(fixed.message).toMatch(/\n {2}mmap\(0x600000000000, 8 MiB, MAP_FIXED\|MAP_ANONYMOUS\) = 0x600000000000\nAsk mmap/);
    expect(region(walk({ mmaps: [mmap(0x600000000000n, 8n * MiB, PRIVATE_ANON, 0x600000000000n)] }), v, 8, HINTS).kernelPlaced.facts).toBe(false);
    const past = region(walk({ mmaps: [mmap(HINT, 12n * MiB, PRIVATE_ANON, HINT)] }), vma(FIRST + 2n * MiB, FIRST + 10n * MiB), 8, HINTS).kernelPlaced;
    expect(past.facts).toBe(false);
    expect(past.message).toMatch(/mmap\(0x7e0000003000 \(the preload's hint\), 12 MiB, MAP_ANONYMOUS\) = 0x7e0000003000/);
    expect(region(walk({ mmaps: [mmap(HINT, 10n * MiB, PRIVATE_ANON, -12n)] }), vma(FIRST, FIRST + 8n * MiB), 8, HINTS).kernelPlaced.message).toMatch(/= -12\n/);
    expect(region(walk({ mmaps: [mmap(HINT, 10n * MiB, PRIVATE_ANON, undefined)] }), vma(FIRST, FIRST + 8n * MiB), 8, HINTS).kernelPlaced).toMatchObject({ facts: false });
    expect(region(walk(), v, 8, HINTS).kernelPlaced.message).toMatch(/\n {2}\(none\)\n/);
  });

  it('a private mapping of /dev/zero, or an mmap(NULL) of a 2 MiB multiple the kernel aligned itself, shows no alignment of the program\'s', () => {
    const zero = region(walk({ kernel: '6.18.0-x', mmaps: [mmap(0n, 8n * MiB + 4096n, 0x2n, 0x7f0000000000n, 3n)] }), vma(0x7f0000000000n, 0x7f0000000000n + 8n * MiB), 8, HINTS);
    expect(zero.notAFile.facts).toBe(false);
    expect(zero.notAFile.message).toMatch(/lies in mmap\(0x0, 8\.00390625 MiB, flags 0x2, fd 3\) = 0x7f0000000000, a mapping of a file \(fd 3\), not MAP_ANONYMOUS .*this 6\.18\.0-x kernel/);
    const raw = region(walk({ mmaps: [mmap(0n, 10n * MiB, PRIVATE_ANON, 0x7f0000000000n)] }), vma(0x7f0000000000n, 0x7f0000000000n + 8n * MiB), 8, HINTS);
    expect(raw.notAFile.facts).toBe(true);
    expect(raw.notKernelAligned.facts).toBe(true);
    expect(raw.notKernelAligned.message).toMatch(/lies in mmap\(NULL, 10 MiB\) = 0x7f0000000000, a mapping this 6\.18\.0 kernel placed on a 2 MiB boundary by itself: .*kernels before 6\.7 \(Debian 12/);
    // glibc's posix_memalign asks for a length that is not a multiple of 2 MiB: the kernel did not align that one.
    expect(region(walk({ mmaps: [mmap(0n, 10n * MiB + 4096n, PRIVATE_ANON, 0x7f0000000000n)] }), vma(0x7f0000000000n, 0x7f0000000000n + 8n * MiB), 8, HINTS).notKernelAligned.facts).toBe(false);
  });

  it('huge pages: AnonHugePages of the range after the writes against the VMA\'s size', () => {
    const v = vma(FIRST, FIRST + 8n * MiB);
    expect(hugeBacked(walk(), v, vma(FIRST, FIRST + 8n * MiB, { AnonHugePages: 8192, Rss: 8192 }), 8)).toMatchObject({ facts: 8192, want: 8192 });
    const some = hugeBacked(walk({ thpFallback: 2 }), v, vma(FIRST, FIRST + 8n * MiB, { AnonHugePages: 4096, Rss: 8192 }), 8);
    expect(some.facts).toBe(4096);
    expect(some.message).toMatch(/: 4096 kB; expected 8192 kB \(Rss 8192 kB, thp_fault_fallback \+2\)$/);
  });

  it('faults: only those inside the VMA count; minflt at most a few more than the huge pages, thp_fault_alloc at least as many', () => {
    const v = vma(FIRST, FIRST + 8n * MiB);
    const stats = [{ minflt: 10 } as ProcStat, { minflt: 14 } as ProcStat];
    const f = faults(walk({ stats, thpAlloc: 5, faults: [0n, 2n, 4n, 6n].map((k) => fault(FIRST + k * MiB)).concat(fault(FIRST + 8n * MiB), fault(0x1000n)) }), v, 8);
    expect(f.inside).toMatchObject({ facts: 4, want: 4 });
    expect(f.inside.message).toMatch(/got 4 \(6 in all\)/);
    expect(f.minflt).toMatchObject({ fact: 4, atMost: 36 });
    expect(f.thpAlloc).toMatchObject({ fact: 5, atLeast: 4 });
    const small = faults(walk({ stats, faults: Array.from({ length: 2048 }, (_, k) => fault(FIRST + BigInt(k) * 4096n)) }), v, 8);
    expect(small.inside.facts).toBe(2048);
    expect(small.inside.message).toMatch(/^expected 4 page_fault_user events in 0x7e0000200000-0x7e0000a00000 \(one per 2 MiB; 2048 with 4 KiB pages\); got 2048 /);
  });
});
