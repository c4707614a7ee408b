/** Waiting on a condition instead of sleeping. */
import { WaitTimeoutError } from './errors.js';
import { scaledTimeout } from './timeouts.js';

/**
 * Poll `probe` until `accept` holds, or throw a WaitTimeoutError that shows the
 * last value seen. No fixed sleeps in specs: wait on a condition.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T> | T,
  accept: (value: T) => boolean,
  { timeoutMs: givenMs = 10_000, intervalMs = 50 }: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = scaledTimeout(givenMs);
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      if (accept(last)) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastError && last === undefined ? String(lastError) : typeof last === 'string' ? last : JSON.stringify(last);
      throw new WaitTimeoutError(what, timeoutMs, seen ?? '(nothing)');
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Wait until `count` (lines of a tracer, events of a record) stops changing for `quietMs`, at most `timeoutMs`;
 * never throws: returns the last count (what arrived is what there is).
 */
export async function waitUntilStill(
  what: string, count: () => number, quietMs: number,
  { timeoutMs, intervalMs = 25 }: { readonly timeoutMs: number; readonly intervalMs?: number },
): Promise<number> {
  let seen = -1;
  let since = Date.now();
  const still = (n: number) => {
    if (n !== seen) { seen = n; since = Date.now(); return false; }
    return Date.now() - since >= quietMs;
  };
  return waitUntil(what, count, still, { timeoutMs, intervalMs }).catch(() => count());
}
