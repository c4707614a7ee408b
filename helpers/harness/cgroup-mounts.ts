/**
 * Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo
 * (one place, used by the capabilities, the cgroup backend and the sandbox).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountinfo } from './mountinfo.js';

/** One cgroup mount from /proc/self/mountinfo: v1 (with its controllers) or v2. */
export interface CgroupMount {
  readonly mountPoint: string;
  readonly version: 1 | 2;
  /** v1: the controllers bound to the hierarchy (cpu, cpuacct, memory, pids, freezer…; name=… excluded). */
  readonly controllers: readonly string[];
  /** v1 named hierarchy without controllers (`name=systemd` → "systemd"). */
  readonly name?: string;
  /** The cgroup of the hierarchy this mount shows at its mount point ("/" for the whole hierarchy). */
  readonly root: string;
}

/**
 * The cgroup mounts in a mountinfo text (as runc and the kernel selftests
 * find them, from parseMountinfo): v1 super options list the controllers.
 */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const { fsType, superOptions, mountPoint, root } of parseMountinfo(mountinfo)) {
    if (fsType === 'cgroup2') out.push({ mountPoint, version: 2, controllers: [], root });
    else if (fsType === 'cgroup') {
      const opts = superOptions.split(',');
      const controllers = opts.filter((o) => o !== 'rw' && o !== 'ro' && !o.includes('='));
      const name = opts.find((o) => o.startsWith('name='))?.slice('name='.length);
      out.push({ mountPoint, version: 1, controllers, ...(name ? { name } : {}), root });
    }
  }
  return out;
}

/** The mount point of each cgroup v1 controller (`memory` → /sys/fs/cgroup/memory), from /proc/self/mountinfo. */
export function cgroupV1Controllers(mountinfo?: string): Map<string, string> {
  let text = mountinfo;
  if (text === undefined) { try { text = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { text = ''; } }
  const map = new Map<string, string>();
  for (const m of parseCgroupMounts(text)) if (m.version === 1) for (const c of m.controllers) if (!map.has(c)) map.set(c, m.mountPoint);
  return map;
}

/**
 * The v1 hierarchy of a controller under `base`: from the mount table when
 * `base` is the real cgroup root, else (a fake tree in a test) the
 * directory `base/<name>` or a merged `base/a,b` that holds `probeFile`.
 */
export function v1ControllerDir(controller: string, base = '/sys/fs/cgroup', probeFile?: string, mountinfo?: string): string | undefined {
  const fromMounts = cgroupV1Controllers(mountinfo).get(controller);
  if (fromMounts && (fromMounts === base || fromMounts.startsWith(`${base}/`))) return fromMounts;
  let names: string[] = [];
  try { names = readdirSync(base); } catch { return undefined; }
  const dir = names.filter((n) => n.split(',').includes(controller)).sort((a, b) => a.length - b.length)
    .map((n) => join(base, n)).find((d) => !probeFile || existsSync(join(d, probeFile)));
  return dir;
}

