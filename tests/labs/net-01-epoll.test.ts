/**
 * Teeth of Net Lab 1 (labs/net/01-epoll): three wrong servers fail the test
 * that names their mistake; a level-triggered server in another style passes.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REFERENCE_SRC } from '../../helpers/harness/paths.js';
import { runSpecWith, summary, type NestedResult } from './fixture-workspace.js';

const SPEC = 'labs/net/01-epoll/epoll.spec.ts';
const FIXTURES = join(import.meta.dirname, '../fixtures/net/01-epoll');
const runWithFile = (file: string, testNamePattern?: string) =>
  runSpecWith(SPEC, 'net/01-epoll', 'net/01-epoll/epoll_echo.c', file, { testNamePattern });
const runWith = (name: string, testNamePattern?: string) => runWithFile(join(FIXTURES, name), testNamePattern);
const statusOf = (res: NestedResult, prefix: string) => [...res.tests].find(([t]) => t.startsWith(prefix))?.[1];
const root = process.getuid?.() === 0;

describe.skipIf(!root)('Net Lab 1 fixtures', { timeout: 8 * 60_000 }, () => {
  it('an edge-triggered server that reads once per event stalls: "echoes every byte" fails with stalled clients, and its CPU and syscall figures earn nothing (not run)', async () => {
    const res = await runWith('wrong-et-one-read.c');
    expect(statusOf(res, 'echoes every byte')?.status, summary(res)).toBe('failed');
    expect(statusOf(res, 'echoes every byte')?.message, summary(res)).toMatch(/stalled client=/);
    for (const scaling of ['watches every connection', 'compared with the same server on poll(2)']) {
      expect(statusOf(res, scaling), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/not run: .* must first pass "echoes every byte/) });
    }
  });

  it('a server that ignores short writes loses bytes: "echoes every byte" fails', async () => {
    const res = await runWith('wrong-short-write.c', 'echoes every byte');
    expect(statusOf(res, 'echoes every byte')?.status, summary(res)).toBe('failed');
  });

  it('a correct echo server on poll(2) instead of epoll passes the echo test but fails the epoll test (no epoll instance, CPU grows with N)', async () => {
    // The shortcut is the lab's own given poll(2) server handed in as the student's epoll server.
    const res = await runWithFile(join(REFERENCE_SRC, 'net', 'poll_echo.c'), 'echoes every byte|watches every connection');
    expect(statusOf(res, 'echoes every byte')?.status, summary(res)).toBe('passed');
    expect(statusOf(res, 'watches every connection')?.status, summary(res)).toBe('failed');
  });

  it('a server whose worker thread echoes with poll(2) behind an unused epoll instance (by a helper playing the clever student) fails the epoll test: the process\'s CPU and syscalls count, all threads', async () => {
    const res = await runWith('clever-poll-worker.c', 'echoes every byte|watches every connection');
    expect(statusOf(res, 'watches every connection')?.status, summary(res)).toBe('failed');
  });

  it('a level-triggered server (one read per event, EPOLL_CTL_MOD to EPOLLOUT on a short write) passes every test', async () => {
    const res = await runWith('ok-level-triggered.c');
    expect([...res.tests.values()].map((v) => v.status), summary(res)).toEqual(['passed', 'passed', 'passed']);
  });
});
