/**
 * Process Lab 2's experiment: build the student's `vm`, run `vm <PAGES>` once
 * through its six stops and collect what the kernel shows at each (maps,
 * /proc/<pid>/stat and status, page_fault_user events in private tracefs
 * instances, pagemap), then the fork: the child's frames before and after its
 * write, its faults and address-space calls between its stops, the parent's
 * waits and both exits. Never throws once built: a program that does not stop
 * ends the walk early with `stuck` (the evidence says why), and judge.ts and
 * the spec decide.
 */
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, startBackground } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { makeTraceInstance, ofProcess, pairSyscalls, type TraceEvent, type TracedSyscall } from '../../../helpers/kernel/tracefs.js';
import {
  formatStat, listProcesses, listTasks, readMaps, readPagemap, readStat, readStatus, type PagemapEntry, type ProcStat, type Vma,
} from '../../../helpers/kernel/procfs.js';
import { continueToStop } from '../stops.js';
import { ADDRESS_SPACE_CALLS, newAnonRanges, PAGE, splitRssLagKb, type Range } from './judge.js';

/** Random page count per run: below 512 so that no 2 MiB huge page fits even where THP is "always". */
export const PAGES = 64 + Math.floor(Math.random() * 384);
/** How long one step may take to reach its stop (a page fault costs microseconds; the host may be busy). */
export const STOP_MS = 5_000;
/** RssAnon's lag on this kernel (judge.ts splitRssLagKb: kernels before 6.2). */
export const SPLIT_RSS_LAG_KB = splitRssLagKb(release());

/** The device of a real memfd's mapping, read by a probe the spec builds itself: a file elsewhere named /memfd:… shows its disk. */
const MEMFD_PROBE = `#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void)
{
	char line[512];
	int fd = memfd_create("kl-probe", 0);
	FILE *f;
	if (fd < 0 || ftruncate(fd, 4096) || mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		return 1;
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:kl-probe"))
			fputs(line, stdout);
	return 0;
}
`;

/** What the kernel recorded from stop 4 on, for parent and child (event-fork): faults, the address-space calls, the waits, the exits. */
const POST_FORK_EVENTS = ['exceptions/page_fault_user', 'exceptions/page_fault_kernel', 'raw_syscalls/sys_enter', 'syscalls/sys_enter_wait4', 'syscalls/sys_exit_wait4',
  'syscalls/sys_enter_waitid', 'syscalls/sys_exit_waitid', 'sched/sched_process_exit'];

/** The built program and what the host shows for a memfd. */
export interface VmSetup {
  readonly program: string;
  /**
   * The device of a real memfd's mapping in /proc/<pid>/maps on this host (the kernel's internal shmem mount, major 0:
   * "00:01" here), read from a memfd the spec makes itself; a file elsewhere named /memfd:… shows its disk.
   */
  readonly memfdDev: string;
}

/** What the kernel showed at one stop. */
export interface Stop {
  readonly stat: ProcStat;
  readonly rssAnonKb: number;
  readonly maps: Vma[];
}

/** The evidence of one run of `vm PAGES`. */
export interface Walk {
  readonly pid: number;
  /** Stops 1–4 of the program as reached (fewer when it did not stop). */
  readonly stops: Stop[];
  /** Why the walk ended early, with the evidence. */
  readonly stuck?: string;
  /** The range that appeared between stops 1 and 2 (bytes). */
  readonly range?: Range;
  readonly faults: TraceEvent[];
  readonly faultLines: string[];
  readonly pfns: PagemapEntry[];
  readonly memfd: { vma: Vma; entry: PagemapEntry }[];
  /** The process's page_fault_user events between stops 3 and 4 (the memfd step), when traced. */
  readonly memfdFaults?: TraceEvent[];
  /** pagemap of every page of the anonymous range in parent and child, at stop 5 (before the child's write) and stop 6 (after). */
  readonly cow?: {
    child: number;
    /** The parent's other children when the spec found this one (processes whose parent it is). */
    others?: number[];
    before: { parent: PagemapEntry[]; child: PagemapEntry[] };
    after?: { parent: PagemapEntry[]; child: PagemapEntry[] };
    /** The child's recorded events between its stops 5 and 6 (page faults, address-space calls). */
    window?: TraceEvent[];
  };
  /** Everything recorded from stop 4 to the end: the waits of the parent, the exits of both. */
  readonly post?: { events: TraceEvent[]; calls: TracedSyscall[] };
  readonly exit?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Build the student's vm.c and read a real memfd's device from a probe. */
export async function buildVm(): Promise<VmSetup> {
  const program = (await buildProgram({ src: labSource('process/02-vm/vm.c'), ldlibs: ['-lpthread'] })).path;
  const dir = await makeTempDir('memfd-probe');
  writeFileSync(join(dir, 'memfd_probe.c'), MEMFD_PROBE);
  const probe = (await buildProgram({ src: join(dir, 'memfd_probe.c') })).path;
  const memfdDev = (await run(probe, [], { timeoutMs: 10_000 })).stdout.trim().split(/\s+/)[3] ?? '';
  return { program, memfdDev };
}

function snapshot(pid: number): Stop | undefined {
  const stat = readStat(pid);
  const status = readStatus(pid);
  const maps = readMaps(pid);
  return stat && status && maps ? { stat, rssAnonKb: status.kb('RssAnon') ?? 0, maps } : undefined;
}

/** A private tracefs instance of `events` following every task of `pid` and (event-fork) what they start; disabled. */
function traceProcess(pid: number, events: string[], options: { tag: string; bufferKb: number; clock?: 'mono' }, filter?: string) {
  // recordTgid: a clone(CLONE_VM) child without CLONE_THREAD shares the address space but is another process; event-fork
  // follows it too, so each event says whose thread group it was and the judge counts the program's own only.
  const trace = makeTraceInstance(events, { ...options, enable: false, recordTgid: true });
  if (!trace) return undefined;
  if (filter) writeFileSync(join(trace.dir, 'events', 'raw_syscalls', 'sys_enter', 'filter'), filter);
  // The process, not one thread: every task of its thread group now, and (event-fork) any thread it starts.
  writeFileSync(trace.pidFile, listTasks(pid).join(' ') || String(pid));
  writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  return trace;
}

/** Run `vm PAGES` once through all its stops, collecting the kernel's view; never throws (the tests judge). */
export async function walkVm(setup: VmSetup): Promise<Walk> {
  const prog = startBackground(setup.program, [String(PAGES)], { timeoutMs: 60_000 });
  const pid = prog.pid;
  const stops: Stop[] = [];
  let faults: TraceEvent[] = [];
  let faultLines: string[] = [];
  let pfns: PagemapEntry[] = [];
  let memfd: Walk['memfd'] = [];
  let memfdFaults: TraceEvent[] | undefined;
  let range: Walk['range'];
  let cow: Walk['cow'];
  let exit: string | undefined;
  const result = (stuck?: string): Walk => ({ pid, stops, stuck, range, faults, faultLines, pfns, memfd, memfdFaults, cow, ...(exit ? { exit } : {}) });
  const reach = async (n: number): Promise<string | undefined> => {
    const why = await continueToStop(pid, n, stops.length === 0, STOP_MS, () => prog.output());
    const s = why === undefined ? snapshot(pid) : undefined;
    if (s) { stops.push(s); return undefined; }
    if (why) return why;
    const st = readStat(pid);
    return `the program did not stop itself at stop ${n} within ${STOP_MS} ms (state: ${st ? formatStat(st) : 'exited'}; output: ${prog.output().trim().slice(-400) || 'none'})`;
  };
  const pages = (p: number) => (range ? readPagemap(p, range.start, Number((range.end - range.start) / BigInt(PAGE))) : []);
  let stuck = await reach(1);
  if (stuck) return result(stuck);
  if ((stuck = await reach(2))) return result(stuck);
  range = newAnonRanges(stops[0]!.maps, stops[1]!.maps).sort((a, b) => Number(b.end - b.start - (a.end - a.start)))[0];
  // Stop 2 → 3: the touch, traced (a design that writes its pages from a worker thread is judged like any other).
  const trace = traceProcess(pid, ['exceptions/page_fault_user'], { tag: 'pf', bufferKb: 4096 });
  if (!trace) return result('tracefs instances or exceptions:page_fault_user missing');
  trace.setEnabled(true);
  stuck = await reach(3);
  trace.setEnabled(false);
  const rec = trace.read();
  faultLines = rec.lines;
  faults = rec.events.filter((e) => e.event === 'page_fault_user'); // the process's tasks and (event-fork) what they started: tgid tells them apart
  await trace.release();
  if (stuck) return result(stuck);
  pfns = pages(pid);
  // Stop 3 → 4: the memfd step, traced: the two mappings' page-table entries must come from the program's accesses (faults).
  const mtrace = traceProcess(pid, ['exceptions/page_fault_user'], { tag: 'mfd', bufferKb: 1024 });
  if (!mtrace) return result('tracefs instances or exceptions:page_fault_user missing');
  mtrace.setEnabled(true);
  stuck = await reach(4);
  mtrace.setEnabled(false);
  memfdFaults = mtrace.read().events.filter((e) => e.event === 'page_fault_user' && ofProcess(e, pid));
  await mtrace.release();
  if (stuck) return result(stuck);
  memfd = stops[3]!.maps.filter((v) => v.path.startsWith('/memfd:')).map((vma) => ({ vma, entry: readPagemap(pid, vma.start, 1)[0]! }));
  // After stop 4: fork. The child stops (5) before writing and (6) after. From here on the kernel records, for
  // the parent and (event-fork) the child, page faults, calls that change the address space, waits and exits.
  const post = traceProcess(pid, POST_FORK_EVENTS, { tag: 'cow', bufferKb: 4096, clock: 'mono' },
    Object.keys(ADDRESS_SPACE_CALLS).map((nr) => `id == ${nr}`).join(' || '));
  if (!post) return result(`tracefs instances or one of ${POST_FORK_EVENTS.join(', ')} missing`);
  post.setEnabled(true);
  const finish = async (stuck?: string): Promise<Walk> => {
    post.setEnabled(false);
    const rec = post.read();
    await post.release();
    return { ...result(stuck), post: { events: rec.events, calls: pairSyscalls(rec.lines, ['wait4', 'waitid']) } };
  };
  process.kill(pid, 'SIGCONT');
  const deadline = Date.now() + STOP_MS;
  let child: ProcStat | undefined;
  while (Date.now() < deadline && !(child = listProcesses().find((p) => p.ppid === pid && p.state === 'T'))) await sleep(10);
  if (!child) return finish(`no child of ${pid} stopped itself within ${STOP_MS} ms after stop 4 (fork, then SIGSTOP in the child)`);
  const ofChild = () => post.read().events.filter((e) => ofProcess(e, child!.pid));
  cow = { child: child.pid, others: listProcesses().filter((p) => p.ppid === pid && p.pid !== child!.pid).map((p) => p.pid), before: { parent: pages(pid), child: pages(child.pid) } };
  // The child is stopped: what it did up to stop 5 is all in the buffer, and all of it comes before what it does next.
  const upTo5 = ofChild();
  if ((await continueToStop(child.pid, 6, false, STOP_MS, () => '')) === undefined) {
    cow.after = { parent: pages(pid), child: pages(child.pid) };
    cow.window = ofChild().slice(upTo5.length);
  }
  try { process.kill(child.pid, 'SIGCONT'); } catch { /* gone */ }
  const r = await Promise.race([prog.exited, sleep(STOP_MS).then(() => undefined)]);
  exit = r ? `exit ${r.signal ?? r.exitCode}` : 'still running';
  return finish(cow.after ? undefined : `the child ${child.pid} did not stop again after its write`);
}
