/**
 * Softirq counts: /proc/softirqs (one row per vector, one column per CPU)
 * and a tracer's per-vector counts of irq:softirq_entry. Pure parsers; Net
 * Lab 3 compares the two over the same window, Lab 8.1 reads NET_RX around its traffic.
 */

/** The vectors in kernel order (include/linux/interrupt.h; irq:softirq_entry's `vec` is the index). */
export const SOFTIRQ_VECTORS = ['HI', 'TIMER', 'NET_TX', 'NET_RX', 'BLOCK', 'IRQ_POLL', 'TASKLET', 'SCHED', 'HRTIMER', 'RCU'] as const;

/** /proc/softirqs → total per vector over all CPUs. */
export function parseSoftirqs(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n').slice(1)) {
    const m = line.trim().match(/^([A-Z_]+):\s+(.*)$/);
    if (m) out[m[1]!] = m[2]!.trim().split(/\s+/).reduce((n, x) => n + Number(x), 0);
  }
  return out;
}

/** b − a per vector. */
export function softirqDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));
}

/**
 * A tracer's counts per vector name: bpftrace's map print (`@count[NET_RX]: 20417`),
 * one scalar map per vector (`@NET_RX: 20417`) or plain `NET_RX 20417` lines. Names are upper-cased and a `_SOFTIRQ` suffix
 * dropped, so `net_rx` and `NET_RX_SOFTIRQ` count as NET_RX.
 */
export function parseSoftirqCounts(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n')) {
    const m = line.trim().match(/^(?:@\w*\[\s*"?([A-Za-z_]+)"?\s*\]:|@?([A-Za-z_]+)[:\s])\s*(\d+)$/);
    if (!m) continue;
    const name = (m[1] ?? m[2]!).toUpperCase().replace(/_SOFTIRQ$/, '');
    out[name] = (out[name] ?? 0) + Number(m[3]);
  }
  return out;
}
