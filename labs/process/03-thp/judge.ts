/**
 * Process Lab 3's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Walk`) to the facts each test asserts, with the message that
 * shows the evidence (the VMA, the process's mmap(2) calls, the page faults).
 * Unit-tested on made-up walks in tests/lab-units/process/03-thp/judge.test.ts.
 */
import type { TraceEvent, TracedSyscall } from '../../../helpers/kernel/tracefs.js';
import { faultAddress } from '../../../helpers/kernel/page-faults.js';
import { formatVma, type Vma } from '../../../helpers/kernel/procfs.js';
import type { Walk } from './experiment.js';

export const HUGE = 2 * 1024 * 1024;
/** minflt counts the program's other faults too (raise, the stack): a few. */
export const MINFLT_SLACK = 32;
/** MAP_FIXED, MAP_FIXED_NOREPLACE: the address is the program's, not the kernel's. */
export const FIXED_FLAGS = 0x10n | 0x100000n;
export const MAP_ANONYMOUS = 0x20n;

export const hex = (a: bigint) => `0x${a.toString(16)}`;
const arg = (c: TracedSyscall, k: string) => c.args.get(k) ?? 0n;
const flagNames = (f: bigint) => ([[0x10n, 'MAP_FIXED'], [0x100000n, 'MAP_FIXED_NOREPLACE'], [0x20n, 'MAP_ANONYMOUS']] as const)
  .filter(([b]) => (f & b) !== 0n).map(([, n]) => n).join('|');

/** THP must be "madvise" or "always" (not "never"): why not, with the fix, or undefined. */
export function thpModeProblem(mode: string): string | undefined {
  return ['madvise', 'always'].includes(mode) ? undefined
    : `transparent huge pages are "${mode}": the lab needs "madvise" or "always" (echo madvise > /sys/kernel/mm/transparent_hugepage/enabled)`;
}

/** Why no VMA advised MADV_HUGEPAGE. */
export const vmaMissing = (w: Walk) => `expected a VMA with VmFlags "hg" (madvise MADV_HUGEPAGE) in /proc/${w.pid}/smaps at stop 2; found none. ${w.stuck ?? ''}`;

/**
 * The region (test 1): its size and alignment, then who chose its address. Each verdict in the order the test asserts
 * them: a mapping of a file, a mapping the 6.7+ kernel aligned by itself, and not inside memory the kernel placed.
 */
export function region(w: Walk, v: Vma, mib: number, preloadHints: ReadonlySet<bigint>) {
  const shape = {
    facts: { aligned: v.start % BigInt(HUGE) === 0n, mib: Number(v.end - v.start) / 2 ** 20 },
    want: { aligned: true, mib },
    message: `VMA advised MADV_HUGEPAGE: ${formatVma(v)} (VmFlags ${v.vmFlags.join(' ')}). The program runs with a preload (misalign.so) that, like kernels before 6.7, ` +
      `does not place a large anonymous mapping on a 2 MiB boundary by itself: align the region yourself`,
  };
  // Who chose the address: the region must lie in what an mmap without an address of the program's own returned
  // (NULL, or the preload's random hint), at its first 2 MiB boundary. A constant address (MAP_FIXED, or a hint
  // the kernel honours because that range happens to be free) is a hard-coded answer.
  const mmaps = w.mmaps ?? [];
  const kernelChose = (c: TracedSyscall) => (arg(c, 'flags') & FIXED_FLAGS) === 0n && (arg(c, 'flags') & MAP_ANONYMOUS) !== 0n && (arg(c, 'addr') === 0n || preloadHints.has(arg(c, 'addr')));
  const holds = (c: TracedSyscall) => c.ret !== undefined && c.ret >= 0n && c.ret <= v.start && v.end <= c.ret + arg(c, 'len');
  // Anonymous memory from a file mapping (a private mapping of /dev/zero): the preload, which handles MAP_ANONYMOUS
  // mappings only, never sees it, and the kernel places /dev/zero's private mappings on a 2 MiB boundary by itself
  // (get_unmapped_area_zero → thp_get_unmapped_area): the program never had to align.
  const ofFile = mmaps.find((c) => holds(c) && (arg(c, 'flags') & MAP_ANONYMOUS) === 0n);
  const notAFile = {
    facts: ofFile === undefined,
    want: true,
    message: `the region ${hex(v.start)}-${hex(v.end)} lies in mmap(${ofFile ? `${hex(arg(ofFile, 'addr'))}, ${Number(arg(ofFile, 'len')) / 2 ** 20} MiB, flags ${hex(arg(ofFile, 'flags'))}, fd ${BigInt.asIntN(64, arg(ofFile, 'fd'))}) = ${hex(ofFile.ret!)}` : ''}, ` +
      `a mapping of a file (fd ${ofFile ? BigInt.asIntN(64, arg(ofFile, 'fd')) : '?'}), not MAP_ANONYMOUS (syscalls:sys_enter_mmap): the spec's preload, which makes mmap hand out unaligned addresses as kernels before 6.7 do, ` +
      `handles anonymous mappings only, and this ${w.kernel} kernel places a private mapping of /dev/zero on a 2 MiB boundary by itself (thp_get_unmapped_area), so nothing shows that your program aligns: ` +
      `map anonymous memory (MAP_PRIVATE|MAP_ANONYMOUS, fd -1) through libc, more than M MiB, and align inside what comes back yourself`,
  };
  // An mmap(NULL) the preload never saw (syscall(2) straight to the kernel) whose length is a multiple of 2 MiB: the
  // 6.7+ kernel placed it on a 2 MiB boundary by itself (thp_get_unmapped_area), older kernels do not — whatever the
  // program did with the result, it never had to align. (glibc's own mmap for posix_memalign asks for a length that
  // is not a multiple of 2 MiB: the kernel does not align that one, glibc does.)
  const kernelAligned = mmaps.find((c) => holds(c) && arg(c, 'addr') === 0n && (arg(c, 'flags') & FIXED_FLAGS) === 0n &&
    arg(c, 'len') % BigInt(HUGE) === 0n && c.ret! % BigInt(HUGE) === 0n);
  const notKernelAligned = {
    facts: Boolean(kernelAligned),
    want: false,
    message: `the region ${hex(v.start)}-${hex(v.end)} lies in mmap(NULL, ${kernelAligned ? Number(arg(kernelAligned, 'len')) / 2 ** 20 : '?'} MiB) = ${kernelAligned ? hex(kernelAligned.ret!) : '?'}, ` +
      `a mapping this ${w.kernel} kernel placed on a 2 MiB boundary by itself: since 6.7 Linux aligns an anonymous mmap(NULL) whose length is a multiple of 2 MiB; ` +
      `kernels before 6.7 (Debian 12's 6.1, Ubuntu 22.04's 5.15) do not. The spec's preload, which makes mmap hand out unaligned addresses as they do, did not see this call ` +
      `(syscall(2) straight to the kernel?), so nothing shows that your program aligns: call mmap(2) through libc, map more than M MiB and align inside what comes back yourself`,
  };
  const list = mmaps.map((c) => `mmap(${hex(arg(c, 'addr'))}${preloadHints.has(arg(c, 'addr')) ? ' (the preload\'s hint)' : ''}, ${Number(arg(c, 'len')) / 2 ** 20} MiB, ${flagNames(arg(c, 'flags')) || hex(arg(c, 'flags'))}) = ${c.ret === undefined ? '?' : c.ret < 0n ? c.ret : hex(c.ret)}`);
  const kernelPlaced = {
    facts: mmaps.filter((c) => holds(c) && kernelChose(c)).some((c) => v.start - c.ret! <= BigInt(HUGE)),
    want: true,
    message: `the region ${hex(v.start)}-${hex(v.end)} is not the first 2 MiB boundary inside memory whose address the kernel chose; the process's mmap(2) calls between stops 1 and 2 ` +
      `(syscalls:sys_enter_mmap/sys_exit_mmap):\n  ${list.join('\n  ') || '(none)'}\nAsk mmap for more than M MiB without an address (NULL) and align inside what it returns: ` +
      `an address of your own (MAP_FIXED or a hint) is a hard-coded answer, right only where that range happens to be free`,
  };
  return { shape, notAFile, notKernelAligned, kernelPlaced };
}

/** The region after the writes (test 2): AnonHugePages of the range at stop 3 = the VMA's size at stop 2. */
export function hugeBacked(w: Walk, v: Vma, after: Vma, mib: number) {
  const huge = after.kb.get('AnonHugePages') ?? 0;
  return {
    facts: huge,
    want: Number(v.end - v.start) / 1024,
    message: `AnonHugePages of ${formatVma(after)}: ${huge} kB; expected ${mib * 1024} kB (Rss ${after.kb.get('Rss')} kB, thp_fault_fallback +${w.thpFallback})`,
  };
}

/** The writes (test 3): page_fault_user events in the VMA (one per 2 MiB), minflt's growth (a few more at most), thp_fault_alloc's (machine-wide: at least). */
export function faults(w: Walk, v: Vma, mib: number) {
  const hugePages = mib / 2;
  const inside = w.faults.filter((e) => { const a = faultAddress(e); return a >= v.start && a < v.end; });
  const minflt = w.stats[1]!.minflt - w.stats[0]!.minflt;
  return {
    inside: {
      facts: inside.length,
      want: hugePages,
      message: `expected ${hugePages} page_fault_user events in ${hex(v.start)}-${hex(v.end)} (one per 2 MiB; ${mib * 256} with 4 KiB pages); got ${inside.length} (${w.faults.length} in all). Sample:\n  ${w.faultLines.slice(0, 3).join('\n  ')}`,
    },
    minflt: { fact: minflt, atMost: hugePages + MINFLT_SLACK, message: `minflt (field 10 of /proc/${w.pid}/stat) grew by ${minflt}; expected ${hugePages}..${hugePages + MINFLT_SLACK}` },
    // /proc/vmstat is machine-wide: other processes may add huge page faults, never take ours away.
    thpAlloc: { fact: w.thpAlloc, atLeast: hugePages, message: `thp_fault_alloc in /proc/vmstat grew by ${w.thpAlloc} while the region was written (machine-wide counter); expected ≥ ${hugePages}` },
  };
}
