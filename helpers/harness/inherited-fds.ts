/**
 * Descriptors the run inherited from whatever started it (a CI runner's log pipe, a terminal multiplexer's
 * socket) pass, unless marked close-on-exec, through vitest and every wrapper down to the student's program:
 * a contained program could write into the job's log. Node opens its own descriptors close-on-exec, so at the
 * start of the run's main process every descriptor above 2 without that flag is inherited, and closed here.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** The descriptors above 2 of this process that an exec would pass on (no O_CLOEXEC in /proc/self/fdinfo). */
export function inheritableDescriptors(): number[] {
  const out: number[] = [];
  let fds: string[];
  try { fds = readdirSync('/proc/self/fd'); } catch { return out; }
  const channel = Number(process.env.NODE_CHANNEL_FD ?? -1); // a forked worker's IPC channel: never ours to close
  for (const name of fds) {
    const fd = Number(name);
    if (!(fd > 2) || fd === channel) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch { /* gone meanwhile (the readdir's own descriptor) */ }
  }
  return out;
}

/** Close them (only in a process without an IPC channel: the run's main process). Returns what was closed. */
export function closeInheritedDescriptors(): number[] {
  if (process.send !== undefined || process.env.NODE_CHANNEL_FD) return [];
  const fds = inheritableDescriptors();
  for (const fd of fds) {
    try { closeSync(fd); } catch { /* already closed */ }
  }
  return fds;
}
