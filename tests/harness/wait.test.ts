import { describe, expect, it } from 'vitest';
import { waitUntilStill } from '../../helpers/harness/exec.js';

describe('waitUntilStill', () => {
  it('returns once the count has not changed for quietMs', async () => {
    let n = 0;
    const grow = setInterval(() => { if (n < 5) n++; }, 10);
    const t0 = Date.now();
    const got = await waitUntilStill('a growing count', () => n, 80, { timeoutMs: 2_000, intervalMs: 5 });
    clearInterval(grow);
    expect(got).toBe(5);
    expect(Date.now() - t0).toBeLessThan(1_500);
  });

  it('never throws: a count that keeps changing returns its last value at the bound', async () => {
    let n = 0;
    const grow = setInterval(() => { n++; }, 5);
    const got = await waitUntilStill('an endless count', () => n, 200, { timeoutMs: 150, intervalMs: 5 });
    clearInterval(grow);
    expect(got).toBeGreaterThan(0);
  });
});
