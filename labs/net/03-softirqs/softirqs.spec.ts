/**
 * Net Lab 3 — softirqs: the bottom half, counted two ways.
 *
 * The student's bpftrace script (c/net/03-softirqs/softirqs.bt) counts
 * irq:softirq_entry per vector. The spec runs it over three windows — one
 * with a ping flood over the lab's veth pair, one idle, and one with shaped
 * traffic that makes the rare vectors run (a tbf qdisc: NET_TX; an ifb device
 * fed by an ingress redirect: TASKLET; a paced TCP stream: HRTIMER; direct
 * I/O: BLOCK where the disk completes in softirq) — and reads /proc/softirqs
 * before the script starts, once its probes are live, before it is stopped
 * and after it exited: its count of a vector that ran must lie between the
 * inner and the outer /proc deltas, and no vector it names may exceed the
 * outer one (see window()). So every vector name is checked against the
 * kernel's order wherever that vector runs here: HI and IRQ_POLL, which
 * nothing raises on a host without their drivers, stay unjudged.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run } from '../../../helpers/harness/exec.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { labSource } from '../../../helpers/harness/paths.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { startBpftrace } from '../../../helpers/kernel/bpftrace.js';
import { perfAttachments, progInfo } from '../../../helpers/kernel/bpftool.js';
import { twoHosts, type TwoHosts } from '../../../helpers/kernel/netns.js';
import { parseSoftirqCounts, parseSoftirqs, softirqDelta, SOFTIRQ_VECTORS } from '../../../helpers/kernel/softirqs.js';

/** The flood: ping -f, 3000–6000 echo requests (random) of 1000 bytes (one NET_RX each way per round trip, measured ~1 per request). */
const FLOOD_PINGS = 3000 + randomInt(0, 3001);

interface Window {
  /** /proc/softirqs delta between the reads right after the script's probes were live and right before it was stopped. */
  readonly inner: Record<string, number>;
  /** /proc/softirqs delta between the reads before the script was started and after it exited. */
  readonly outer: Record<string, number>;
  readonly script: Record<string, number>;
  readonly seconds: number;
  readonly output: string;
  /** What the script's bpftrace attached to, as the kernel lists it (bpftool perf show): tracepoints and kprobes. */
  readonly hooks: string[];
  /**
   * Runs of the script's programs the kernel skipped (bpftool prog show: recursion_misses): a softirq that
   * interrupts another BPF tracing program on its CPU (another tool on this shared machine) runs without them.
   */
  readonly misses: number;
}

/**
 * One window. The script counts from the moment its probes are live to the
 * moment it stops, so its count of each vector lies between the /proc delta
 * of the inner window (read after it was live, before it was stopped) and
 * that of the outer window (read before it was started, after it exited) —
 * whatever else this shared machine does meanwhile. The only slack is that
 * /proc/softirqs sums per-CPU counters that move while it is read.
 */
async function window(workload: () => Promise<void>): Promise<Window> {
  const z = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const bt = await startBpftrace(labSource('net/03-softirqs/softirqs.bt'), { ready: /^Counting/ });
  const a = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const attached = (await perfAttachments(bt.process.pid)).filter((h) => h.fd_type !== 'uprobe' && h.fd_type !== 'uretprobe');
  const hooks = attached.map((h) => `${h.fd_type} ${h.tracepoint ?? h.func ?? '?'}`);
  const ta = performance.now();
  await workload();
  const tb = performance.now();
  const b = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const misses = (await Promise.all([...new Set(attached.map((h) => h.prog_id))].map((id) => progInfo(id).catch(() => undefined))))
    .reduce((n, p) => n + ((p as { recursion_misses?: number } | undefined)?.recursion_misses ?? 0), 0);
  // SIGINT runs the script's END (its counts); under load bpftrace's teardown can outlast the harness's kill grace, so wait for it here.
  process.kill(bt.process.pid, 'SIGINT');
  await Promise.race([bt.process.exited, new Promise((r) => setTimeout(r, 30_000))]);
  await bt.stop();
  const c = parseSoftirqs(readFileSync('/proc/softirqs', 'utf8'));
  const output = bt.process.stdout();
  return { inner: softirqDelta(a, b), outer: softirqDelta(z, c), script: parseSoftirqCounts(output), seconds: (tb - ta) / 1000, output, hooks, misses };
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

/** What the shaped window runs, decided once the host is known. */
interface ShapedPlan { readonly tbf: boolean; readonly ifb: boolean; readonly bytes: number; readonly ios: number; readonly notes: string[] }

/** Slack for /proc/softirqs reading per-CPU counters while they move. */
const READ_SLACK = 5;

/**
 * Below the inner delta, also 2 % of it: on this shared machine the tick-raised vectors (RCU, TIMER) came up to
 * 0.8 % short of the inner delta in a few windows, with no recursion miss counted (other tools tracing meanwhile).
 * A wrong vector table, another CPU's share or another tracepoint is off by far more.
 */
const SHORT_SHARE = 0.02;

function bounds(w: Window, vec: string): { low: number; high: number } {
  const inner = w.inner[vec] ?? 0;
  return { low: inner - READ_SLACK - w.misses - Math.floor(inner * SHORT_SHARE), high: (w.outer[vec] ?? 0) + READ_SLACK };
}

function table(w: Window): string {
  return (w.misses ? [`(the kernel skipped ${w.misses} runs of the script's programs: recursion_misses, another BPF program was running on the CPU)`] : []).concat(SOFTIRQ_VECTORS.map((v) => {
    const t = bounds(w, v);
    const judged = (w.inner[v] ?? 0) >= ACTIVE ? `accepted [${t.low}, ${t.high}]` : `ran < ${ACTIVE} times: at most ${t.high} if named`;
    return `${v.padEnd(8)} script ${w.script[v] ?? '(missing)'}, /proc inner delta ${w.inner[v] ?? 0}, outer delta ${w.outer[v] ?? 0}, ${judged}`;
  })).join('\n');
}

/** A vector is judged from below once it ran this often in the inner window. */
const ACTIVE = 20;

describe('Net Lab 3 — softirqs per vector (irq:softirq_entry vs /proc/softirqs)', () => {
  requires(...labRequires(import.meta.url));
  let hosts: TwoHosts;
  let idle: Window;
  let flood: Window;
  let shaped: Window;
  let plan: ShapedPlan;

  beforeAll(async () => {
    const paced = (await buildProgram({ src: join(import.meta.dirname, 'paced-stream.c') })).path;
    const tmp = await makeTempDir('sirq');
    hosts = await twoHosts({ disableIpv6: true, staticNeighbours: true, ips: ['10.199.3.1', '10.199.3.2'] });
    flood = await window(() => hosts.left.ns.exec('ping', ['-f', '-q', '-c', String(FLOOD_PINGS), '-s', '1000', hosts.right.ip], { timeoutMs: 60_000 }).then(() => undefined));
    // At least 3 s: a quiet tickless machine runs only some 25 TIMER softirqs a second, and a vector must reach 20 in the window to be judged.
    idle = await window(() => new Promise((r) => setTimeout(r, Math.max(3000, flood.seconds * 1000))));
    // The shaped window: the vectors neither window above makes run, each from user space, in amounts the script cannot know.
    const usable = usableOptions();
    const notes: string[] = [];
    const tbf = usable?.CONFIG_NET_SCH_TBF ?? false;
    const ifb = ['CONFIG_IFB', 'CONFIG_NET_SCH_INGRESS', 'CONFIG_NET_CLS_U32', 'CONFIG_NET_ACT_MIRRED'].every((o) => usable?.[o]);
    if (!usable) notes.push('the kernel config is unreadable: no tbf, no ifb (NET_TX and TASKLET are judged only if they run anyway)');
    else {
      if (!tbf) notes.push('tbf is neither built in nor loaded: NET_TX is judged only if it runs anyway');
      if (!ifb) notes.push('ifb, ingress, u32 or mirred is neither built in nor loaded: TASKLET is judged only if it runs anyway');
    }
    const { left, right } = hosts;
    if (tbf) await run('tc', ['-n', left.ns.name, 'qdisc', 'add', 'dev', left.ifname, 'root', 'tbf', 'rate', '200mbit', 'burst', '20k', 'latency', '50ms'], { timeoutMs: 10_000 });
    if (ifb) {
      // The ifb device lives in the lab's namespace and goes with it.
      await run('ip', ['-n', right.ns.name, 'link', 'add', 'klifb', 'type', 'ifb'], { timeoutMs: 10_000 });
      await run('ip', ['-n', right.ns.name, 'link', 'set', 'klifb', 'up'], { timeoutMs: 10_000 });
      await run('tc', ['-n', right.ns.name, 'qdisc', 'add', 'dev', right.ifname, 'handle', 'ffff:', 'ingress'], { timeoutMs: 10_000 });
      await run('tc', ['-n', right.ns.name, 'filter', 'add', 'dev', right.ifname, 'parent', 'ffff:', 'protocol', 'ip', 'u32', 'match', 'u32', '0', '0',
        'action', 'mirred', 'egress', 'redirect', 'dev', 'klifb'], { timeoutMs: 10_000 });
    }
    plan = { tbf, ifb, bytes: (3 + randomInt(0, 3)) * 1_000_000, ios: 60 + randomInt(0, 61), notes };
    shaped = await window(async () => {
      const port = String(20_000 + randomInt(0, 10_000));
      const receiver = right.ns.background(paced, ['recv', right.ip, port], { timeoutMs: 60_000 });
      await receiver.waitFor(/listening/, 'the paced stream\'s receiver', 10_000);
      // SO_MAX_PACING_RATE 32 MB/s: about one HRTIMER softirq per 64 KiB sent (measured).
      await left.ns.exec(paced, ['send', right.ip, port, String(plan.bytes), '32000000'], { timeoutMs: 60_000 });
      await receiver.exited;
      await run('dd', ['if=/dev/zero', `of=${join(tmp, 'direct')}`, 'bs=4096', `count=${plan.ios}`, 'oflag=direct', 'status=none'], { timeoutMs: 60_000 });
    });
  });

  it('counts every vector that ran in agreement with the /proc/softirqs delta of the same window (flooded, idle, shaped), from irq:softirq_entry alone, each under its own name', async (ctx) => {
    for (const note of plan.notes) await adapted(ctx, note);
    for (const [name, w] of [['flood', flood], ['idle', idle], ['shaped', shaped]] as const) {
      // The kernel's list of what the script hooked (BEGIN/END are bpftrace's own uprobes): one softirq run = one softirq_entry.
      expect([...new Set(w.hooks)].sort(), `bpftool perf show for the script's bpftrace (pid of the ${name} window): it must count softirq runs at irq:softirq_entry, ` +
        'and nothing else (softirq_exit, softirq_raise, napi_poll or netif_rx count something else that happens to be close)').toEqual(['tracepoint softirq_entry']);
      const msg = `${name} window, ${w.seconds.toFixed(3)} s between the inner /proc reads:\n${table(w)}\nscript output:\n${w.output.trim().split('\n').slice(-12).join('\n')}`;
      const active = SOFTIRQ_VECTORS.filter((v) => (w.inner[v] ?? 0) >= ACTIVE);
      expect(active.length, msg).toBeGreaterThan(0);
      // A vector that ran: counted under its name, between the two deltas.
      const wrong = active.filter((v) => { const t = bounds(w, v); const n = w.script[v] ?? -1; return n < t.low || n > t.high; });
      // Any vector the script names: never more than ran. A name given to another vector's runs shows here.
      const overcounted = SOFTIRQ_VECTORS.filter((v) => w.script[v] !== undefined && w.script[v]! > bounds(w, v).high);
      expect({ outsideBounds: wrong, moreThanRan: overcounted }, `${msg}\nEach vector's name must be the one of its index in include/linux/interrupt.h's enum ` +
        '(the order /proc/softirqs lists): a count under a name that ran fewer times, or a vector that ran but is missing, is a name given to the wrong index.')
        .toEqual({ outsideBounds: [], moreThanRan: [] });
      for (const v of ['NET_RX', 'TIMER', 'RCU']) recordMetric(ctx, { name: `${v}, ${name}`, value: w.inner[v] ?? 0, unit: 'softirqs', group: 'softirqs in the window (/proc/softirqs)' });
    }
    for (const v of ['NET_TX', 'TASKLET', 'HRTIMER', 'BLOCK']) recordMetric(ctx, { name: `${v}, shaped`, value: shaped.inner[v] ?? 0, unit: 'softirqs', group: 'softirqs in the window (/proc/softirqs)' });
  });

  it('control: the shaped traffic makes the rare vectors run (HRTIMER from the paced stream; NET_TX from tbf and TASKLET from ifb where the kernel has them)', async (ctx) => {
    for (const note of plan.notes) await adapted(ctx, note);
    const want = ['HRTIMER', ...(plan.tbf ? ['NET_TX'] : []), ...(plan.ifb ? ['TASKLET'] : [])];
    expect(want.filter((v) => (shaped.inner[v] ?? 0) < ACTIVE), `shaped window (${plan.bytes} bytes paced at 32 MB/s, ${plan.ios} direct writes), ` +
      `${shaped.seconds.toFixed(3)} s:\n${table(shaped)}`).toEqual([]);
  });

  it('shows NET_RX rise with a ping flood over the veth (3000–6000 packets, random) and stay flat without it', () => {
    // Rates over the inner window (the workload's own time); the script's counts also hold its start and stop, which a loaded machine makes long.
    const rate = (w: Window) => (w.inner.NET_RX ?? 0) / Math.max(w.seconds, 0.001);
    const msg = `${FLOOD_PINGS} pings. NET_RX: flood ${flood.inner.NET_RX} (/proc) / ${flood.script.NET_RX} (script) in ${flood.seconds.toFixed(3)} s; ` +
      `idle ${idle.inner.NET_RX} / ${idle.script.NET_RX} in ${idle.seconds.toFixed(3)} s (/proc per second: flood ${rate(flood).toFixed(0)}, idle ${rate(idle).toFixed(0)})`;
    // Each echo request and reply is received by the other veth end through the backlog and NET_RX (measured ~1 per round trip, batched).
    expect(flood.script.NET_RX ?? 0, msg).toBeGreaterThan(FLOOD_PINGS / 4);
    // Other work on this shared machine also receives packets, at its own rate (measured: 0–16000/s idle, 40000–70000/s flooded):
    // "flat" is under half the flood's rate.
    expect(rate(idle) * 2, msg).toBeLessThan(rate(flood));
  });
});
