import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { followRequests } from '../helpers/io-uring-trace.js';

// Recorded on this host (6.18): uring_cp_pipelined built with NJOBS=4 copying 300000 bytes (pid 28239)
// and the naive uring_cp copying 70000 bytes (pid 28240), at the same time, cold source, global clock.
const lines = readFileSync(join(import.meta.dirname, 'fixtures/io_uring/trace-pipelined-and-naive.txt'), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#'));

describe('io_uring request tracing', () => {
  it('follows the pipelined copy: 5 reads and 5 writes, 4 requests in flight after the first submit, completions out of order', () => {
    const t = followRequests(lines, 28239);
    expect(t).toMatchObject({ rings: ['00000000902324d7'], submits: 10, completes: 10, maxInFlight: 4 });
    expect(t.outOfOrder).toBeGreaterThan(0);
    expect(t.sample.split('\n')[0]).toContain('user_data 0x0, opcode READ');
  });

  it('follows the naive copy on its own ring, completions posted by its io-wq worker included: one request at a time, in order', () => {
    expect(followRequests(lines, 28240)).toMatchObject({ rings: ['000000009ca22e51'], submits: 7, completes: 7, maxInFlight: 1, outOfOrder: 0 });
  });

  it('sees nothing for a pid that created no ring', () => {
    expect(followRequests(lines, 1)).toMatchObject({ rings: [], submits: 0, completes: 0, maxInFlight: 0 });
  });
});
