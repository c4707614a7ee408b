/**
 * Figures a lab measured, kept on the test's metadata (vitest carries
 * `task.meta` to reporters) so the results report can show them, and printed
 * as one line for the student.
 */
import type { TestContext } from 'vitest';

export interface Metric {
  /** What was measured, e.g. "io_uring IOPS (median of 3)". */
  readonly name: string;
  readonly value: number;
  /** e.g. "IOPS", "MiB/s", "ns/exit", "calls". */
  readonly unit: string;
  /** Metrics with the same group are shown together (one table / chart). */
  readonly group?: string;
}

declare module 'vitest' {
  interface TaskMeta {
    metrics?: Metric[];
    adaptations?: string[];
    skipReason?: string;
  }
}

export function recordMetric(ctx: TestContext, metric: Metric): void {
  (ctx.task.meta.metrics ??= []).push(metric);
  const v = Number.isInteger(metric.value) ? metric.value.toString() : metric.value.toFixed(3).replace(/\.?0+$/, '');
  console.log(`[measured] ${metric.group ? `${metric.group}: ` : ''}${metric.name} = ${v} ${metric.unit}`);
}
