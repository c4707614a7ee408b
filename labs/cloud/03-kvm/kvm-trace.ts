/**
 * Kernel-side evidence for Lab 3: a private tracefs instance
 * (/sys/kernel/tracing/instances/kl-…) with some kvm:* tracepoints enabled,
 * so the lab reads its own ring buffer and never touches the global one
 * other tools may be using. Removed (rmdir) when the test ends.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defer } from '../../../helpers/resources.js';
import { uniqueName } from '../../../helpers/run-state.js';

export const TRACEFS = '/sys/kernel/tracing';

export interface TraceEvent {
  readonly pid: number;
  readonly event: string;
  readonly body: string;
}

export interface KvmTrace {
  readonly dir: string;
  /** Events recorded so far; `lost` is true when the ring buffer overwrote some. */
  read(): { events: TraceEvent[]; lost: boolean };
}

/** Which of the given kvm tracepoints this kernel has. */
export function kvmTracepoints(names: readonly string[]): string[] {
  return names.filter((n) => existsSync(join(TRACEFS, 'events', 'kvm', n, 'enable')));
}

/** One line of the `trace` file: `  kvm_io-9646  [000] .....  542.775749: kvm_pio: pio_write at 0xe9 …`. */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = line.match(/^\s*(.+)-(\d+)\s+\[\d+\]\s+\S+\s+[\d.]+:\s+(\w+):\s?(.*)$/);
  return m ? { pid: Number(m[2]), event: m[3]!, body: m[4]! } : undefined;
}

/** Make an instance with `events` (kvm group) enabled; undefined when tracefs or the events are absent. */
export function startKvmTrace(events: readonly string[], bufferKb = 4096): KvmTrace | undefined {
  if (!existsSync(join(TRACEFS, 'instances')) || kvmTracepoints(events).length !== events.length) return undefined;
  const dir = join(TRACEFS, 'instances', uniqueName('kvm'));
  mkdirSync(dir);
  defer(`tracefs instance ${dir}`, () => {
    for (let i = 0; i < 20 && existsSync(dir); i++) {
      try { rmdirSync(dir); } catch { /* EBUSY while a reader closes: retry */ }
    }
  });
  writeFileSync(join(dir, 'buffer_size_kb'), String(bufferKb));
  for (const e of events) writeFileSync(join(dir, 'events', 'kvm', e, 'enable'), '1');
  return {
    dir,
    read() {
      const text = readFileSync(join(dir, 'trace'), 'utf8');
      const counts = text.match(/entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/);
      const lost = counts ? counts[1] !== counts[2] : false;
      const parsed = text.split('\n').filter((l) => !l.startsWith('#')).map(parseTraceLine).filter((e): e is TraceEvent => Boolean(e));
      return { events: parsed, lost };
    },
  };
}
