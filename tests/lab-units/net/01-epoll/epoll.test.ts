import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EPOLLET, EPOLLIN, epollInstances, parseEpollFdinfo, triggerMode } from '../../../../labs/net/01-epoll/epoll.js';

describe('epoll fdinfo', () => {
  it('parses the watched fds and masks of a recorded edge-triggered server (3 connections and the listener)', () => {
    const w = parseEpollFdinfo(readFileSync(join(import.meta.dirname, '../../../fixtures/net/epoll-fdinfo-et.txt'), 'utf8'));
    expect(w.map((x) => x.fd).sort()).toEqual([3, 5, 6, 7]);
    expect(w.every((x) => (x.events & EPOLLET) !== 0 && (x.events & EPOLLIN) !== 0)).toBe(true);
    expect(triggerMode(w)).toBe('edge-triggered');
    expect(triggerMode(w.map((x) => ({ ...x, events: x.events & ~EPOLLET })))).toBe('level-triggered');
  });

  it('finds no epoll instance in a process without one (this test runner may have some; a fresh `sleep` has none)', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn('sleep', ['5']);
    try {
      await new Promise((r) => setTimeout(r, 100));
      expect(epollInstances(child.pid!)).toEqual([]);
    } finally { child.kill(); }
  });
});
