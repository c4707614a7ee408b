/**
 * What the kernel shows of a process's epoll instances: each is a file
 * `anon_inode:[eventpoll]` in /proc/<pid>/fd, and its /proc/<pid>/fdinfo
 * lists one `tfd:` line per watched file with the event mask registered
 * (EPOLLET is bit 31). Net Lab 1 reads it to see that a server watches every
 * connection through epoll, and in which mode.
 */
import { openFds } from '../../../helpers/kernel/procfs.js';

export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLET = 0x80000000;

export interface EpollWatch {
  /** The watched file descriptor (in the owner's table). */
  readonly fd: number;
  /** The registered event mask (EPOLLIN | EPOLLET…). */
  readonly events: number;
}

/** The `tfd:` lines of one eventpoll fdinfo. */
export function parseEpollFdinfo(text: string): EpollWatch[] {
  return [...text.matchAll(/^tfd:\s+(\d+)\s+events:\s+([0-9a-fA-F]+)/gm)].map((m) => ({ fd: Number(m[1]), events: parseInt(m[2]!, 16) }));
}

export interface EpollInstance {
  readonly fd: number;
  readonly watches: EpollWatch[];
}

/** The epoll instances a process holds, with what each watches (none once it is gone). */
export function epollInstances(pid: number): EpollInstance[] {
  return openFds(pid, (t) => t === 'anon_inode:[eventpoll]').map(({ fd, fdinfo }) => ({ fd, watches: parseEpollFdinfo(fdinfo) }));
}

/** "edge-triggered", "level-triggered" or "mixed" for a set of watches. */
export function triggerMode(watches: readonly EpollWatch[]): 'edge-triggered' | 'level-triggered' | 'mixed' | 'none' {
  if (!watches.length) return 'none';
  const et = watches.filter((w) => (w.events & EPOLLET) !== 0).length;
  return et === watches.length ? 'edge-triggered' : et === 0 ? 'level-triggered' : 'mixed';
}
