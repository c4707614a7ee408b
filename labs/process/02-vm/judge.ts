/**
 * Process Lab 2's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Walk`) to the facts each test asserts, with the message that
 * shows the evidence. Unit-tested on made-up walks in
 * tests/lab-units/process/02-vm/judge.test.ts.
 */
import { ofProcess, type TraceEvent, type TracedSyscall } from '../../../helpers/kernel/tracefs.js';
import { errorCode, faultAddress, PF_PROTECTION, PF_WRITE } from '../../../helpers/kernel/page-faults.js';
import { formatVma, type PagemapEntry, type Vma } from '../../../helpers/kernel/procfs.js';
import type { Stop, Walk } from './experiment.js';

/** A copy-on-write fault: a write to a page that was present (read-only). */
const COW = PF_PROTECTION | PF_WRITE;

export const PAGE = 4096;
/** minflt counts every fault of the process: raise(SIGSTOP) and the return from it may add a few besides the N. */
export const MINFLT_SLACK = 32;
/** RssAnon is counted in pages and may move by a page or two besides the N (stack, libc). */
export const RSS_SLACK_KB = 16;

export interface Range { start: bigint; end: bigint }

/**
 * Before 6.2 each task kept its RSS counts in a cache of its own and added them to the mm's (what /proc shows)
 * every 64 page faults (SPLIT_RSS_COUNTING, mm/memory.c check_sync_rss_stat): RssAnon may lag by up to 63
 * pages. Seen in the guest pass under Debian's 6.1: 484 of 680 kB. Ubuntu 22.04 (5.15) and Debian 12 (6.1)
 * have it; 6.2 replaced it with per-CPU counters. The fault-count test stays exact on every kernel.
 */
export function splitRssLagKb(kernelRelease: string): number {
  const [maj = 0, min = 0] = kernelRelease.split('.').map(Number);
  return maj < 6 || (maj === 6 && min < 2) ? 63 * 4 : 0;
}

/**
 * x86-64 system calls that can put another page (or nothing) where a page of the region was: a child that
 * maps a new page over page 0 (MAP_FIXED), drops it (munmap, madvise DONTNEED) or moves one there (mremap)
 * and then writes has a new frame that is not a copy. With the range each call covers, from its arguments.
 */
export const ADDRESS_SPACE_CALLS: Readonly<Record<number, { name: string; range?: (a: readonly bigint[]) => [bigint, bigint][] }>> = {
  9: { name: 'mmap', range: (a) => [[a[0]!, a[1]!]] },
  10: { name: 'mprotect', range: (a) => [[a[0]!, a[1]!]] },
  11: { name: 'munmap', range: (a) => [[a[0]!, a[1]!]] },
  25: { name: 'mremap', range: (a) => [[a[0]!, a[1]!], ...((a[3]! & 2n) === 2n ? [[a[4]!, a[2]!] as [bigint, bigint]] : [])] },
  28: { name: 'madvise', range: (a) => [[a[0]!, a[1]!]] },
  30: { name: 'shmat', range: (a) => [[a[1]!, 1n << 40n]] },
  216: { name: 'remap_file_pages', range: (a) => [[a[0]!, a[1]!]] },
  237: { name: 'mbind', range: (a) => [[a[0]!, a[1]!]] },
  323: { name: 'userfaultfd' },
  329: { name: 'pkey_mprotect', range: (a) => [[a[0]!, a[1]!]] },
  440: { name: 'process_madvise' },
};

export const hex = (a: bigint) => `0x${a.toString(16)}`;
export const pfnList = (es: readonly PagemapEntry[]) => es.map((e) => (e.present ? hex(e.pfn) : 'not present')).join(', ');

/** Byte ranges covered by anonymous VMAs in `after` but not in `before` (the new mapping, even if it merged with a neighbour). */
export function newAnonRanges(before: readonly Vma[], after: readonly Vma[]): Range[] {
  const covered = (a: bigint) => before.some((v) => v.start <= a && a < v.end);
  const out: Range[] = [];
  for (const v of after.filter((x) => x.inode === 0 && x.path === '')) {
    for (let a = v.start; a < v.end; a += BigInt(PAGE)) {
      if (covered(a)) continue;
      const last = out[out.length - 1];
      if (last && last.end === a) last.end = a + BigInt(PAGE);
      else out.push({ start: a, end: a + BigInt(PAGE) });
    }
  }
  return out;
}

/** Why stop `n` is missing. */
export const stopMissing = (w: Walk, n: number) => `expected the program to reach stop ${n} (raise(SIGSTOP)); ${w.stuck ?? ''}`;
/** Why no range: the anonymous VMAs at stop 2. */
export const rangeMissing = (w: Walk) =>
  `no new anonymous VMA appeared between stop 1 and stop 2; anonymous VMAs at stop 2:\n  ${w.stops[1]!.maps.filter((v) => v.path === '' && v.inode === 0).map(formatVma).join('\n  ')}`;

/** The mmap step (stops 1 → 2): the new range's size and perms, and RssAnon's growth without a touch. */
export function mapping(s1: Stop, s2: Stop, r: Range) {
  const vma = s2.maps.find((v) => v.start <= r.start && r.start < v.end)!;
  return {
    vma: { pages: Number(r.end - r.start) / PAGE, perms: vma.perms },
    vmaMessage: `new range ${hex(r.start)}-${hex(r.end)} in the VMA "${formatVma(vma)}"`,
    rssGrowthKb: s2.rssAnonKb - s1.rssAnonKb,
    rssMessage: `RssAnon before mmap ${s1.rssAnonKb} kB, after ${s2.rssAnonKb} kB: mmap alone allocates no page (no MAP_POPULATE, no touching yet)`,
  };
}

/** The touch (stops 2 → 3): the process's page faults in the range and elsewhere, minflt's growth, µs per fault. */
export function touch(w: Walk, r: Range, pages: number) {
  const pid = w.pid;
  const own = w.faults.filter((e) => ofProcess(e, pid));
  const inRange = (e: TraceEvent) => { const a = faultAddress(e); return a >= r.start && a < r.end; };
  const inside = own.filter(inRange);
  const foreign = w.faults.filter((e) => !ofProcess(e, pid) && inRange(e));
  const pagesHit = new Set(inside.map((e) => faultAddress(e) / BigInt(PAGE)));
  const writes = inside.filter((e) => (errorCode(e) & PF_WRITE) !== 0);
  const sample = `trace sample:\n  ${w.faultLines.slice(0, 3).join('\n  ')}`;
  // Every fault of the process in that time: the N writes and the few of raise(SIGSTOP). Reads of other memory add
  // minor faults too (the zero page), so minflt alone could be padded to N without a single fault in the region.
  const elsewhere = own.filter((e) => !inRange(e));
  const [s2, s3] = [w.stops[1]!, w.stops[2]!];
  const times = inside.map((e) => Number(w.faultLines.find((l) => l.includes(e.body))?.match(/\s([\d.]+):/)?.[1] ?? NaN));
  return {
    inRegion: { events: inside.length, pages: pagesHit.size, writes: writes.length },
    inRegionMessage: `expected ${pages} page_fault_user events (one per page, all writes) of process ${pid} (any of its threads) between stop 2 and stop 3 in ${hex(r.start)}-${hex(r.end)}; ` +
      `got ${inside.length} there (${pagesHit.size} pages, ${writes.length} writes; ${own.length} in all). ${sample}` +
      (foreign.length ? `\n${foreign.length} faults in the range came from other processes (tgid ${[...new Set(foreign.map((e) => e.tgid))].join(', ')}): a clone(2) child that ` +
        `shares the address space (CLONE_VM without CLONE_THREAD) is another process with a minflt of its own, not a thread of this one; write the pages from this process (any of its threads)` : ''),
    ofProcess: own.length,
    ofProcessMessage: `process ${pid} took ${own.length} page_fault_user events between stop 2 and stop 3, ${elsewhere.length} of them outside ${hex(r.start)}-${hex(r.end)} ` +
      `(first: ${elsewhere.slice(0, 3).map((e) => e.body).join('; ') || 'none'}); expected ${pages} in the region and at most ${MINFLT_SLACK} elsewhere: touch the region's pages, nothing else`,
    minflt: s3.stat.minflt - s2.stat.minflt,
    minfltMessage: `minflt (field 10 of /proc/${pid}/stat): ${s2.stat.minflt} at stop 2, ${s3.stat.minflt} at stop 3; expected ${pages}..${pages + MINFLT_SLACK}`,
    usPerFault: times.length > 1 && times.every(Number.isFinite) ? ((times[times.length - 1]! - times[0]!) * 1e6) / (times.length - 1) : undefined,
  };
}

/** RssAnon's growth over the touch (stops 2 → 3). */
export function rssGrowth(w: Walk, pages: number, lagKb: number) {
  const grew = w.stops[2]!.rssAnonKb - w.stops[1]!.rssAnonKb;
  return {
    grew,
    message: `RssAnon at stop 2: ${w.stops[1]!.rssAnonKb} kB, at stop 3: ${w.stops[2]!.rssAnonKb} kB; expected growth ${pages * 4} kB ± ${RSS_SLACK_KB} kB${lagKb ? ` (and up to ${lagKb} kB less on this kernel < 6.2, whose per-task RSS cache reaches /proc every 64 faults)` : ''}${grew < RSS_SLACK_KB ? ': no page of the region was written (a page that is only read maps the shared zero page and adds nothing; one never touched adds nothing either)' : ''}`,
  };
}

/** The written range's frames at stop 3. */
export function frames(w: Walk, pages: number) {
  const present = w.pfns.filter((e) => e.present);
  const distinct = new Set(present.map((e) => e.pfn));
  return {
    facts: { present: present.length, distinctPfns: distinct.size, zeroPfns: present.filter((e) => e.pfn === 0n).length },
    message: `expected ${pages} present pages with ${pages} different PFNs; /proc/${w.pid}/pagemap shows ${present.length} present, ${distinct.size} distinct PFNs; first PFNs: ${pfnList(w.pfns.slice(0, 6))}`,
  };
}

/** The memfd step (stop 4): two mappings of one memfd, their devices, the faults that filled them, their frames. */
export function memfdPair(w: Walk, memfdDev: string) {
  const byInode = new Map<number, typeof w.memfd>();
  for (const m of w.memfd) byInode.set(m.vma.inode, [...(byInode.get(m.vma.inode) ?? []), m]);
  const twice = [...byInode.values()].find((l) => l.length >= 2);
  const evidence = w.memfd.map((m) => `${formatVma(m.vma)} → ${m.entry.present ? `PFN ${hex(m.entry.pfn)}` : 'not present'}`).join('\n  ') || '(no /memfd: VMA)';
  const pairMessage = `expected two VMAs of the same memfd (same inode) in /proc/${w.pid}/maps at stop 4:\n  ${evidence}`;
  if (!twice) return { twice, pairMessage };
  const [a, b] = twice as [typeof twice[0], typeof twice[0]];
  const faultIn = (v: Vma) => (w.memfdFaults ?? []).filter((e) => { const x = faultAddress(e); return x >= v.start && x < v.end; }).length;
  return {
    twice,
    pairMessage,
    // A real memfd lives on the kernel's internal shmem mount (major 0 in maps): a disk file named /memfd:… does not.
    devices: { devices: [a.vma.dev, b.vma.dev] },
    devicesMessage: `a memfd's mappings show the device of the kernel's internal shmem mount (${memfdDev || '?'} on this host, ` +
      `read from a memfd the spec made itself); these two show ${a.vma.dev} and ${b.vma.dev}: that is a file on a mounted filesystem named like a memfd, ` +
      `not memory from memfd_create(2). Keep the memfd_create call and map its descriptor:\n  ${evidence}`,
    // Both page-table entries come from the program's own accesses (a write through one, a read through the other): a page
    // fault in each mapping between stops 3 and 4, not entries filled in advance by MAP_POPULATE.
    faults: { faultsInFirst: faultIn(a.vma) > 0, faultsInSecond: faultIn(b.vma) > 0 },
    faultsMessage: `page_fault_user events of process ${w.pid} between stops 3 and 4: ${faultIn(a.vma)} in ${formatVma(a.vma)}, ${faultIn(b.vma)} in ${formatVma(b.vma)} ` +
      `(${w.memfdFaults?.length ?? 'not traced'} in all). Write through one mapping and read through the other: each first access is a fault that maps the page ` +
      `in that mapping (MAP_POPULATE fills the page tables in advance, so no access of the program shows)`,
    frame: { shared: `${a.vma.perms[3]}${b.vma.perms[3]}`, present: [a.entry.present, b.entry.present], samePfn: a.entry.pfn === b.entry.pfn && a.entry.pfn !== 0n },
    frameMessage: `expected both mappings MAP_SHARED (perms …s), both touched, one frame; got perms ${a.vma.perms}/${b.vma.perms}, PFNs ${pfnList([a.entry, b.entry])}:\n  ${evidence}`,
  };
}

type Frames = { parent: PagemapEntry[]; child: PagemapEntry[] };

/** After fork, before the child's write (stop 5): page 0 is one frame in both. */
export function sharedBeforeWrite(w: Walk) {
  const { before, child } = w.cow!;
  return {
    shared: before.child[0]?.present && before.child[0].pfn === before.parent[0]?.pfn && before.parent[0].pfn !== 0n,
    message: `before the child's write (stop 5), page 0 must be one frame in both (pages 0–2): ${showFrames(w.pid, child, before)}`,
  };
}

const showFrames = (parent: number, child: number, s: Frames) => `parent ${parent}: ${pfnList(s.parent.slice(0, 3))}…; child ${child}: ${pfnList(s.child.slice(0, 3))}…`;

/** After the child's write (stop 6): its page 0 moved, the parent kept every frame, the other pages stay shared. */
export function copyOnWrite(w: Walk, after: Frames) {
  const { before, child } = w.cow!;
  const a = after;
  const pages = (l: readonly number[]) => `${l.length} (pages ${l.slice(0, 8).join(', ')}${l.length > 8 ? ', …' : ''})`;
  const idx = a.child.map((_, i) => i);
  const parentMoved = idx.filter((i) => a.parent[i]!.pfn !== before.parent[i]!.pfn);
  const unshared = idx.slice(1).filter((i) => !(a.child[i]!.present && a.child[i]!.pfn === a.parent[i]!.pfn && a.parent[i]!.pfn !== 0n));
  return {
    facts: {
      childPage0Moved: a.child[0]!.present && a.child[0]!.pfn !== before.parent[0]!.pfn,
      parentFramesKept: parentMoved.length === 0,
      otherPagesStillShared: unshared.length === 0,
    },
    message: `pagemap of the ${a.child.length} pages at stop 5 (before the child's write): ${showFrames(w.pid, child, before)}; at stop 6: ${showFrames(w.pid, child, a)}; ` +
      `parent pages whose frame changed: ${pages(parentMoved)}; child pages 1… no longer the parent's frame: ${pages(unshared)} (the child writes page 0 only)`,
  };
}

/**
 * Who made the child's new frame: the kernel's copy on write is one fault, a write to page 0 while it is present and
 * write-protected (error_code bits 0 and 1: 0x7 from user mode). A fresh page mapped over it faults "not present"
 * (0x6); a page replaced by mmap/munmap/madvise/mremap shows as that call.
 */
export function whoMadeTheFrame(w: Walk, r: Range) {
  const { child, window } = w.cow!;
  const faults = (window ?? []).filter((e) => e.event.startsWith('page_fault_') && faultAddress(e) >= r.start && faultAddress(e) < r.end);
  const calls = (window ?? []).filter((e) => e.event === 'sys_enter').map((e) => {
    const m = e.body.match(/^NR (\d+) \(([^)]*)\)/);
    const args = (m?.[2] ?? '').split(',').map((x) => BigInt(`0x${x.trim() || '0'}`));
    const known = ADDRESS_SPACE_CALLS[Number(m?.[1])];
    const ranges = known?.range ? known.range(args) : undefined;
    const touches = !ranges || ranges.some(([s, len]) => s < r.end && r.start < s + (len || 1n));
    return { text: `${known?.name ?? `syscall ${m?.[1]}`}(${args.slice(0, 4).map((x) => hex(x)).join(', ')}…)`, touches };
  }).filter((c) => c.touches);
  const page0 = r.start / BigInt(PAGE);
  const shown = faults.slice(0, 6).map((e) => `${e.event}: ${e.body}`).join('\n  ') || '(none)';
  return {
    facts: {
      cowFaultsOnPage0: faults.filter((e) => faultAddress(e) / BigInt(PAGE) === page0 && (errorCode(e) & COW) === COW).length > 0,
      faultsNotACopy: faults.filter((e) => (errorCode(e) & COW) !== COW).length,
      faultsOffPage0: faults.filter((e) => faultAddress(e) / BigInt(PAGE) !== page0).length,
      callsOverTheRegion: calls.map((c) => c.text),
    },
    message: `the child ${child}'s page faults in ${hex(r.start)}-${hex(r.end)} between its stops 5 and 6 (exceptions:page_fault_user/kernel, filtered to the child):\n  ${shown}\n` +
      `its calls over the region in that time: ${calls.map((c) => c.text).join('; ') || 'none'}\n` +
      `expected the copy-on-write fault: a write to page 0 while it is present and write-protected (error_code & 3 = 3, e.g. 0x7), no fault of another kind ` +
      `(error_code 0x6 = the page was not present: a new page, not a copy of the parent's) and no mmap/munmap/mprotect/madvise/mremap over the region — ` +
      `the kernel copies the page when the child writes to the memory fork() shared; write to it, do not replace it`,
  };
}

/** wait options (include/uapi/linux/wait.h) by name, for the messages. */
const WAIT_FLAGS: [bigint, string][] = [[1n, 'WNOHANG'], [2n, 'WSTOPPED'], [4n, 'WEXITED'], [8n, 'WCONTINUED'], [0x1000000n, 'WNOWAIT'],
  [0x20000000n, '__WNOTHREAD'], [0x40000000n, '__WALL'], [0x80000000n, '__WCLONE']];
const WNOWAIT = 0x1000000n;
const WEXITED = 4n;
export const waitFlags = (o: bigint, wait4: boolean) =>
  WAIT_FLAGS.filter(([b]) => (o & b) === b).map(([b, n]) => (wait4 && b === 2n ? 'WUNTRACED' : n)).join('|') || '0';

/**
 * Whether the parent reaped its child. wait4 returns the pid it reaped — or, with WUNTRACED, the pid of a child that
 * only stopped: it counts when it came back after the child's exit. waitid returns 0 (the pid is in its siginfo), also
 * with WNOHANG when nothing happened and with WNOWAIT, which reports the exit but leaves the zombie: it counts when it
 * came back after the child's exit, asked for WEXITED without WNOWAIT, and named this child (P_PID child) — or any
 * child (P_ALL, P_PGID, P_PIDFD) while this one was the parent's only child (another child could be the one reaped).
 */
export function reaping(w: Walk) {
  const child = w.cow!.child;
  const post = w.post!;
  const exits = post.events.filter((e) => e.event === 'sched_process_exit');
  const childExit = exits.find((e) => e.pid === child);
  const parentExit = exits.find((e) => e.pid === w.pid);
  // Other children of the parent: seen when the spec found this one, or (event-fork) exiting since stop 4.
  const others = [...new Set([...(w.cow!.others ?? []), ...exits.filter((e) => e.tgid !== undefined && e.tgid === e.pid && e.tgid !== w.pid && e.tgid !== child).map((e) => e.pid)])];
  const waits = post.calls.filter((c) => (c.tgid ?? c.pid) === w.pid);
  const arg = (c: TracedSyscall, k: string) => c.args.get(k) ?? 0n;
  const after = (c: TracedSyscall) => Boolean(childExit) && c.exitTs !== undefined && c.exitTs >= childExit!.ts;
  const why = (c: TracedSyscall): string | undefined => {
    if (c.ret === undefined) return 'it never returned';
    if (c.name === 'wait4') {
      if (c.ret !== BigInt(child)) return c.ret < 0n ? `it failed (${c.ret})` : `it returned another pid than the child ${child}`;
      return after(c) ? undefined : `it returned before the child exited (${c.exitTs?.toFixed(6)} s): a stopped child's pid (WUNTRACED), not a reap`;
    }
    if (c.ret !== 0n) return `it failed (${c.ret})`;
    const o = arg(c, 'options');
    if ((o & WEXITED) === 0n) return 'without WEXITED it reports no exit and reaps nothing (0 with WNOHANG means "nothing yet")';
    if ((o & WNOWAIT) !== 0n) return 'WNOWAIT reports the exit and leaves the child a zombie';
    if (!after(c)) return `it returned before the child exited (${c.exitTs?.toFixed(6)} s)${(o & 1n) ? ': 0 with WNOHANG means "nothing yet"' : ''}`;
    const which = arg(c, 'which');
    if (which === 1n && arg(c, 'upid') !== BigInt(child)) return `P_PID ${arg(c, 'upid')} is another process than the child ${child}`;
    if (which !== 1n && others.length) return `it waits for any child, and the parent has others (${others.join(', ')}): the one reaped need not be ${child}`;
    return undefined;
  };
  const reaped = waits.find((c) => why(c) === undefined);
  const t = (e?: TraceEvent) => (e ? `${e.ts.toFixed(6)} s` : 'not seen');
  const show = (c: TracedSyscall) => {
    const w4 = c.name === 'wait4';
    const head = w4 ? `${BigInt.asIntN(64, arg(c, 'upid'))}` : `${arg(c, 'which')}, ${BigInt.asIntN(64, arg(c, 'upid'))}`;
    const r = why(c);
    return `${c.name}(${head}, ${waitFlags(arg(c, 'options'), w4)}) = ${c.ret ?? '(no return)'}${r ? ` (not a reap: ${r})` : ''}`;
  };
  const waitList = waits.map(show).join('; ') || 'none';
  return {
    reaped: Boolean(reaped),
    message: `the kernel's record of parent ${w.pid} and child ${child}: the child exited at ${t(childExit)}, the parent at ${t(parentExit)}; ` +
      `the parent's wait4/waitid calls: ${waitList} (syscalls:sys_enter/sys_exit_wait4/waitid). A parent that exits (or sleeps and exits) without reaping leaves its child a zombie for init or a subreaper to reap: ` +
      `wait for the child's exit (waitpid(child, &status, 0), or waitid(P_PID, child, &info, WEXITED)) before returning`,
  };
}
