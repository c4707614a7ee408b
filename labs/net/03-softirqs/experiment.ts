/**
 * Net Lab 5.3's experiment: the student's bpftrace script
 * (c/net/03-softirqs/softirqs.bt, per-vector counts of irq:softirq_entry)
 * runs over three windows on the lab's veth pair — a ping flood, an idle
 * stretch, and shaped traffic that makes the rare vectors run (a tbf qdisc:
 * NET_TX; an ifb device fed by an ingress redirect: TASKLET; a paced TCP
 * stream: HRTIMER; direct I/O: BLOCK where the disk completes in softirq) —
 * and /proc/softirqs is read before the script starts, once its probes are
 * live, before it is stopped and after it exited. It returns the evidence
 * (`Softirqs`): per window the inner and outer /proc deltas, the script's
 * counts, what the kernel lists as its hooks (bpftool perf show) and the runs
 * the kernel skipped. Our own observer (observer.bt), live across the three
 * windows and read around each, counts every softirq_entry the kernel hands to
 * BPF programs: runs /proc/softirqs counted that it did not see are the
 * kernel's loss (`unseen`), not the script's. No verdicts here: judge.ts and
 * the spec decide.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, waitUntil } from '../../../helpers/harness/exec.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { startBpftrace, type BpftraceSession } from '../../../helpers/kernel/bpftrace.js';
import { heldPrograms, perfAttachments, progInfo, progXlated, readsKernelMemory, type PerfAttachment } from '../../../helpers/kernel/bpftool.js';
import { twoHosts } from '../../../helpers/kernel/netns.js';
import { parseSoftirqCounts, parseSoftirqs, softirqDelta } from '../../../helpers/kernel/softirqs.js';

/** The flood: ping -f, 3000–6000 echo requests (random) of 1000 bytes (one NET_RX each way per round trip, measured ~1 per request). */
export const FLOOD_PINGS = 3000 + randomInt(0, 3001);

/** Our observer (observer.bt): one count of every softirq_entry BPF programs are given, to tell the kernel's loss from the script's. */
const OBSERVER = join(import.meta.dirname, 'observer.bt');

/** One window of the script, framed by four reads of /proc/softirqs. */
export interface Window {
  /** /proc/softirqs delta between the reads right after the script's probes were live and right before it was stopped. */
  readonly inner: Record<string, number>;
  /** /proc/softirqs delta between the reads before the script was started and after it exited. */
  readonly outer: Record<string, number>;
  /** The script's per-vector counts, as it printed them when stopped. */
  readonly script: Record<string, number>;
  /** Seconds between the inner reads (the workload's own time). */
  readonly seconds: number;
  readonly output: string;
  /** What the script's bpftrace attached to, as the kernel lists it (bpftool perf show): tracepoints and kprobes. */
  readonly hooks: string[];
  /**
   * Runs of the script's programs the kernel skipped (bpftool prog show: recursion_misses): a softirq that
   * interrupts another BPF tracing program on its CPU (another tool on this shared machine) runs without them.
   */
  readonly misses: number;
  /**
   * Softirq runs that reached no BPF program on irq:softirq_entry and that the kernel did not count as skipped:
   * the /proc/softirqs total over the window (from before the script started to after it exited) less what our
   * observer counted meanwhile and the runs the kernel told it it skipped; 0 when it saw them all. A lower bound of
   * that loss (its readings frame the window from outside: it may count a few runs more), never more.
   */
  readonly unseen: number;
  /** The observer's figures behind `unseen`: the /proc total over its window, its count, its skipped runs. */
  readonly observer: { readonly total: number; readonly counted: number; readonly misses: number };
}

/** What the shaped window ran, decided once the host is known. */
export interface ShapedPlan { readonly tbf: boolean; readonly ifb: boolean; readonly bytes: number; readonly ios: number; readonly notes: string[] }

/** The evidence of the three windows. */
export interface Softirqs {
  readonly pings: number;
  readonly flood: Window;
  readonly idle: Window;
  readonly shaped: Window;
  readonly plan: ShapedPlan;
}

/**
 * One window. The script counts from the moment its probes are live to the
 * moment it stops, so its count of each vector lies between the /proc delta
 * of the inner window (read after it was live, before it was stopped) and
 * that of the outer window (read before it was started, after it exited) —
 * whatever else this shared machine does meanwhile. The only slack is that
 * /proc/softirqs sums per-CPU counters that move while it is read.
 */
async function window(observer: Observer, workload: () => Promise<void>): Promise<Window> {
  const before = await observer.reading();
  const z = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const bt = await startBpftrace(labSource('net/03-softirqs/softirqs.bt'), { ready: /^Counting/ });
  const a = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const { attached, hooks } = await scriptHooks(bt.process.pid);
  const ta = performance.now();
  await workload();
  const tb = performance.now();
  const b = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const misses = await skippedRuns(attached.map((h) => h.prog_id));
  await interrupt(bt);
  const c = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const after = await observer.reading();
  // Its readings frame z and c from outside: it may count a few runs more than happened between them, never fewer.
  const total = Object.values(softirqDelta(z, c)).reduce((n, v) => n + v, 0);
  const seen = { counted: after.counted - before.counted, misses: after.misses - before.misses };
  const output = bt.process.stdout();
  return {
    inner: softirqDelta(a, b), outer: softirqDelta(z, c), script: parseSoftirqCounts(output), seconds: (tb - ta) / 1000, output, hooks, misses,
    unseen: Math.max(0, total - seen.counted - seen.misses), observer: { total, ...seen },
  };
}

/** Our observer, live across the three windows: its count so far (bpftrace prints its maps on SIGUSR1) and its skipped runs. */
interface Observer {
  reading(): Promise<{ counted: number; misses: number }>;
  stop(): Promise<void>;
}

async function startObserver(): Promise<Observer> {
  const bt = await startBpftrace(OBSERVER, { ready: /^observing/ });
  const ids = (await perfAttachments(bt.process.pid)).filter((h) => h.fd_type === 'tracepoint').map((h) => h.prog_id);
  const prints = () => [...bt.process.stdout().matchAll(/^@runs:\s*(\d+)$/gm)].map((m) => Number(m[1]));
  return {
    async reading() {
      const n = prints().length;
      // A map with no run yet prints nothing (asked again: the machine's timer ticks make that a matter of milliseconds);
      // a reading that does not come throws: the loss it measures is then unknown, never taken as all.
      for (let ask = 0; ask < 20 && prints().length === n; ask++) {
        process.kill(bt.process.pid, 'SIGUSR1');
        await waitUntil('the observer\'s count (observer.bt, printed on SIGUSR1)', prints, (p) => p.length > n, { timeoutMs: 500, intervalMs: 10 }).catch(() => undefined);
      }
      const printed = prints();
      if (printed.length === n) throw new Error(`the observer (${OBSERVER}) printed no count on SIGUSR1 in 10 s: ${bt.process.stdout().slice(-300)}`);
      return { counted: printed[printed.length - 1]!, misses: await skippedRuns(ids) };
    },
    stop: () => interrupt(bt),
  };
}

/**
 * The runs the kernel skipped for these programs (bpftool prog show: recursion_misses). Programs on one tracepoint
 * run as one list and are skipped together: a skipped run counts once, however many programs the script put there.
 */
async function skippedRuns(ids: number[]): Promise<number> {
  return (await Promise.all([...new Set(ids)].map((id) => progInfo(id).catch(() => undefined))))
    .reduce((n, p) => Math.max(n, (p as { recursion_misses?: number } | undefined)?.recursion_misses ?? 0), 0);
}

/** BPF program types (include/uapi/linux/bpf.h enum bpf_prog_type) a bpftrace script's probes may load here: kprobe (uprobes too), tracepoint. */
const PROBE_PROG_TYPES: Readonly<Record<number, string>> = { 2: 'kprobe', 5: 'tracepoint' };

/**
 * What the script's bpftrace hooked, as the kernel lists it: its perf-event attachments (bpftool perf show; bpftrace's
 * own BEGIN/END uprobes on its binary aside), any program it holds of another type (an interval or profile probe's
 * perf_event program, which bpftool perf show does not list: /proc/<pid>/fdinfo) and, as a hook of its own, a
 * program that reads kernel memory (bpf_probe_read_kernel in its instructions: a copy of the counters
 * /proc/softirqs sums, not a count of runs).
 */
async function scriptHooks(pid: number): Promise<{ attached: PerfAttachment[]; hooks: string[] }> {
  let exe = '';
  try { exe = realpathSync(`/proc/${pid}/exe`); } catch { /* gone: its uprobes are then named */ }
  const all = await perfAttachments(pid);
  const own = (h: PerfAttachment) => (h.fd_type === 'uprobe' || h.fd_type === 'uretprobe') && h.filename !== undefined && realpathOr(h.filename) === exe;
  const attached = all.filter((h) => !own(h));
  const hooks = attached.map((h) => `${h.fd_type} ${h.tracepoint ?? h.func ?? h.filename ?? '?'}`);
  const held = heldPrograms(pid);
  for (const [, type] of held) if (!(type in PROBE_PROG_TYPES)) hooks.push(`a BPF program of type ${type} (bpf_prog_type; 7 is perf_event: an interval or profile probe)`);
  const ids = new Set([...all.map((h) => h.prog_id), ...held.keys()]);
  for (const id of ids) if (readsKernelMemory(await progXlated(id).catch(() => ''))) hooks.push(`kernel memory read (bpf_probe_read_kernel) in program ${id}`);
  return { attached, hooks };
}

const realpathOr = (p: string) => { try { return realpathSync(p); } catch { return p; } };

/** SIGINT runs a script's END and prints its maps; under load bpftrace's teardown can outlast the harness's kill grace, so wait for it here. */
async function interrupt(bt: BpftraceSession): Promise<void> {
  process.kill(bt.process.pid, 'SIGINT');
  await Promise.race([bt.process.exited, new Promise((r) => setTimeout(r, 30_000))]);
  await bt.stop();
}

/**
 * Which kernel options the shaped traffic may use: built in, or a module already loaded (the lab never makes
 * the kernel load one: a freshly loaded ifb module would add ifb0 and ifb1 to the host's own namespace).
 * Undefined when the kernel's config cannot be read.
 */
function usableOptions(): Record<string, boolean> | undefined {
  const modules: Record<string, string> = { CONFIG_IFB: 'ifb', CONFIG_NET_SCH_TBF: 'sch_tbf', CONFIG_NET_SCH_INGRESS: 'sch_ingress', CONFIG_NET_CLS_U32: 'cls_u32', CONFIG_NET_ACT_MIRRED: 'act_mirred' };
  let config = '';
  try {
    config = existsSync('/proc/config.gz') ? gunzipSync(readFileSync('/proc/config.gz')).toString() : readFileSync(`/boot/config-${release()}`, 'utf8');
  } catch { return undefined; }
  let loaded = new Set<string | undefined>();
  try { loaded = new Set(readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0])); } catch { /* a kernel without modules */ }
  return Object.fromEntries(Object.entries(modules).map(([opt, mod]) => {
    const v = config.match(new RegExp(`^${opt}=(.)`, 'm'))?.[1];
    return [opt, v === 'y' || (v === 'm' && loaded.has(mod))];
  }));
}

/** The shaped window's plan: tbf and ifb where the kernel has them, random amounts the script cannot know. */
function planShaped(): ShapedPlan {
  const usable = usableOptions();
  const notes: string[] = [];
  const tbf = usable?.CONFIG_NET_SCH_TBF ?? false;
  const ifb = ['CONFIG_IFB', 'CONFIG_NET_SCH_INGRESS', 'CONFIG_NET_CLS_U32', 'CONFIG_NET_ACT_MIRRED'].every((o) => usable?.[o]);
  if (!usable) notes.push('the kernel config is unreadable: no tbf, no ifb (NET_TX and TASKLET are judged only if they run anyway)');
  else {
    if (!tbf) notes.push('tbf is neither built in nor loaded: NET_TX is judged only if it runs anyway');
    if (!ifb) notes.push('ifb, ingress, u32 or mirred is neither built in nor loaded: TASKLET is judged only if it runs anyway');
  }
  return { tbf, ifb, bytes: (3 + randomInt(0, 3)) * 1_000_000, ios: 60 + randomInt(0, 61), notes };
}

/** The three windows over the lab's veth pair (released with the run's resources). */
export async function countSoftirqs(): Promise<Softirqs> {
  const paced = (await buildProgram({ src: join(import.meta.dirname, 'paced-stream.c') })).path;
  const tmp = await makeTempDir('sirq');
  const hosts = await twoHosts({ disableIpv6: true, staticNeighbours: true, ips: ['10.199.3.1', '10.199.3.2'] });
  const observer = await startObserver();
  try {
    return await windows(observer, hosts, tmp, paced);
  } finally { await observer.stop(); }
}

/** The three windows, one after the other. */
async function windows(observer: Observer, hosts: Awaited<ReturnType<typeof twoHosts>>, tmp: string, paced: string): Promise<Softirqs> {
  const { left, right } = hosts;
  const flood = await window(observer, () => left.ns.exec('ping', ['-f', '-q', '-c', String(FLOOD_PINGS), '-s', '1000', right.ip], { timeoutMs: 60_000 }).then(() => undefined));
  // At least 3 s: a quiet tickless machine runs only some 25 TIMER softirqs a second, and a vector must reach 20 in the window to be judged.
  const idle = await window(observer, () => new Promise((r) => setTimeout(r, Math.max(3000, flood.seconds * 1000))));
  // The shaped window: the vectors neither window above makes run, each from user space, in amounts the script cannot know.
  const plan = planShaped();
  if (plan.tbf) await run('tc', ['-n', left.ns.name, 'qdisc', 'add', 'dev', left.ifname, 'root', 'tbf', 'rate', '200mbit', 'burst', '20k', 'latency', '50ms'], { timeoutMs: 10_000 });
  if (plan.ifb) {
    // The ifb device lives in the lab's namespace and goes with it.
    await run('ip', ['-n', right.ns.name, 'link', 'add', 'klifb', 'type', 'ifb'], { timeoutMs: 10_000 });
    await run('ip', ['-n', right.ns.name, 'link', 'set', 'klifb', 'up'], { timeoutMs: 10_000 });
    await run('tc', ['-n', right.ns.name, 'qdisc', 'add', 'dev', right.ifname, 'handle', 'ffff:', 'ingress'], { timeoutMs: 10_000 });
    await run('tc', ['-n', right.ns.name, 'filter', 'add', 'dev', right.ifname, 'parent', 'ffff:', 'protocol', 'ip', 'u32', 'match', 'u32', '0', '0',
      'action', 'mirred', 'egress', 'redirect', 'dev', 'klifb'], { timeoutMs: 10_000 });
  }
  const shaped = await window(observer, async () => {
    const port = String(20_000 + randomInt(0, 10_000));
    const receiver = right.ns.background(paced, ['recv', right.ip, port], { timeoutMs: 60_000 });
    await receiver.waitFor(/listening/, 'the paced stream\'s receiver', 10_000);
    // SO_MAX_PACING_RATE 32 MB/s: about one HRTIMER softirq per 64 KiB sent (measured).
    await left.ns.exec(paced, ['send', right.ip, port, String(plan.bytes), '32000000'], { timeoutMs: 60_000 });
    await receiver.exited;
    await run('dd', ['if=/dev/zero', `of=${join(tmp, 'direct')}`, 'bs=4096', `count=${plan.ios}`, 'oflag=direct', 'status=none'], { timeoutMs: 60_000 });
  });
  return { pings: FLOOD_PINGS, flood, idle, shaped, plan };
}
