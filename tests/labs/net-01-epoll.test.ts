/**
 * Teeth of Net Lab 1 (labs/net/01-epoll): wrong servers fail the test that
 * names their mistake; a level-triggered server in another style passes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** The correctness tests (the scaling tests are gated on them): run them with the test under scrutiny. */
const CORRECTNESS = 'echoes every byte|keeps serving the other clients|holds back a client|echoes everything to clients that half-close|survives clients that leave';
const SCALING = ['watches every connection', 'compared with the same server on poll(2)'];

/** A wrong server fails `test` with a message matching `pattern`, and earns nothing for the figures after it. */
async function failsOn(fixture: string, test: string, pattern: RegExp): Promise<NestedResult> {
  const res = await runWith(fixture, `${CORRECTNESS}|watches every connection`);
  expect(statusOf(res, test), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(pattern) });
  expect(statusOf(res, 'watches every connection'), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/not run: .* must first pass/) });
  return res;
}

describe.skipIf(!root)('Net Lab 1 fixtures', { timeout: 8 * 60_000 }, () => {
  it('an edge-triggered server that reads once per event stalls: "echoes every byte" fails with stalled clients, and its CPU and syscall figures earn nothing (not run)', async () => {
    const res = await runWith('wrong-et-one-read.c');
    expect(statusOf(res, 'echoes every byte')?.status, summary(res)).toBe('failed');
    expect(statusOf(res, 'echoes every byte')?.message, summary(res)).toMatch(/stalled client=/);
    for (const scaling of SCALING) {
      expect(statusOf(res, scaling), summary(res)).toMatchObject({ status: 'failed', message: expect.stringMatching(/not run: .* must first pass "echoes every byte/) });
    }
  });

  it('a server that ignores short writes loses bytes: "echoes every byte" fails', async () => {
    const res = await runWith('wrong-short-write.c', 'echoes every byte');
    expect(statusOf(res, 'echoes every byte')?.status, summary(res)).toBe('failed');
  });

  it('a server whose write blocks until the client has taken everything serves nobody else while one client does not read', async () => {
    await failsOn('wrong-blocking-write.c', 'keeps serving the other clients', /another client got 0 of \d+ echoes/);
  });

  it('a server that retries write() on EAGAIN until all is sent spins and serves nobody else while one client does not read', async () => {
    const res = await failsOn('wrong-write-spin.c', 'keeps serving the other clients', /another client got 0 of \d+ echoes/);
    expect(statusOf(res, 'keeps serving the other clients')?.message).toMatch(/ms of CPU in \d+ ms/);
  });

  it('a server that reads everything into a growing buffer takes all a non-reading client sends: "holds back a client" fails', async () => {
    await failsOn('wrong-unbounded-buffer.c', 'holds back a client', /could send \d+ bytes/);
  });

  it('a server that closes on EPOLLRDHUP loses the echo of a client that half-closed', async () => {
    await failsOn('wrong-rdhup-close.c', 'echoes everything to clients that half-close', /client=\d+ sent=\d+ then shutdown\(SHUT_WR\) echoed=\d+/);
  });

  it('a server that closes as soon as read() returns 0, with part of the echo still in its buffer, loses the tail of a half-closing client', async () => {
    await failsOn('wrong-eof-drops-pending.c', 'echoes everything to clients that half-close', /client=\d+ sent=\d+ then shutdown\(SHUT_WR\) echoed=\d+/);
  });

  it('a server whose epoll_wait() never sleeps (timeout 0) burns the CPU while nobody needs it: "keeps serving the other clients" fails on its CPU', async () => {
    await failsOn('wrong-busy-poll.c', 'keeps serving the other clients', /used \d+ ms of CPU in \d+ ms while its only work was an echo the client would not take/);
  });

  it('a server without SIGPIPE ignored is killed when a client leaves before its echo: "survives clients that leave" fails', async () => {
    await failsOn('wrong-dies-on-sigpipe.c', 'survives clients that leave', /killed by SIGPIPE/);
  });

  it('a server that exits on a failed write or read ends with the first client that leaves: "survives clients that leave" fails', async () => {
    await failsOn('wrong-exits-on-error.c', 'survives clients that leave', /exited with status 1/);
  });

  it('a correct echo server on poll(2) instead of epoll passes the echo tests but fails the epoll test (no epoll instance, CPU grows with N)', async () => {
    // The shortcut is the lab's own given poll(2) server handed in as the student's epoll server, with SIGPIPE
    // ignored as a student handing it in would have to (c/net/poll_echo.c dies of the first client that leaves
    // before its echo, and would then fail the epoll test by its gate, not by its lack of epoll).
    const dir = mkdtempSync(join(tmpdir(), 'poll-echo-'));
    try {
      const src = readFileSync(join(REFERENCE_SRC, 'net', 'poll_echo.c'), 'utf8');
      const patched = /signal\(SIGPIPE/.test(src) ? src
        : `#include <signal.h>\n${src.replace(/^(int main\(int argc, char \*\*argv\)\n\{\n)/m, '$1\tsignal(SIGPIPE, SIG_IGN);\n')}`;
      expect(patched, 'poll_echo.c: no main() to add signal(SIGPIPE, SIG_IGN) to').toMatch(/signal\(SIGPIPE/);
      writeFileSync(join(dir, 'epoll_echo.c'), patched);
      const res = await runWithFile(join(dir, 'epoll_echo.c'), `${CORRECTNESS}|watches every connection`);
      for (const test of CORRECTNESS.split('|')) expect(statusOf(res, test)?.status, summary(res)).toBe('passed');
      expect(statusOf(res, 'watches every connection'), summary(res)).toMatchObject({ status: 'failed', message: expect.not.stringMatching(/not run:/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a server whose worker thread echoes with poll(2) behind an unused epoll instance (by a helper playing the clever student) fails the epoll test: the process\'s CPU and syscalls count, all threads', async () => {
    const res = await runWith('clever-poll-worker.c', `${CORRECTNESS}|watches every connection`);
    expect(statusOf(res, 'watches every connection')?.status, summary(res)).toBe('failed');
    expect(statusOf(res, 'watches every connection')?.message, summary(res)).not.toMatch(/not run:/);
  });

  it('the same with the worker in a process of its own (clone(CLONE_FILES), outside the thread group) fails the epoll test: the CPU and syscalls of every process the server starts count', async () => {
    const res = await runWith('clever-poll-child.c', `${CORRECTNESS}|watches every connection`);
    expect(statusOf(res, 'watches every connection')?.status, summary(res)).toBe('failed');
    expect(statusOf(res, 'watches every connection')?.message, summary(res)).not.toMatch(/not run:/);
  });

  it('a level-triggered server (one read per event, EPOLL_CTL_MOD to EPOLLOUT on a short write) passes every test', async () => {
    const res = await runWith('ok-level-triggered.c');
    expect([...res.tests.values()].map((v) => v.status), summary(res)).toEqual(Array(7).fill('passed'));
  });
});
