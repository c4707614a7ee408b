/**
 * /proc/<pid>/mountinfo, parsed: the one reader of the mount table (the
 * host guard, the destroy routines, the cgroup mount finder, cgroup-BPF and
 * the labs use it). Format: Documentation/filesystems/proc.rst, 3.5:
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
 *
 * The optional fields (7) are zero or more, ended by " - ". The kernel
 * escapes space, tab, newline and backslash in paths as \NNN octal
 * (/tmp/a b → /tmp/a\040b): root, mount point and source are decoded here.
 */
import { readFileSync } from 'node:fs';

/** One line of /proc/<pid>/mountinfo. */
export interface MountInfoEntry {
  /** (1) Unique id of the mount (may be reused after umount). */
  readonly mountId: number;
  /** (2) Id of the parent mount (of itself for the root of the namespace's tree). */
  readonly parentId: number;
  /** (3) "major:minor" of the device (st_dev of files on it), e.g. "0:26". */
  readonly majorMinor: string;
  /** (4) The directory of the file system that is the root of this mount ("/" for the whole file system); decoded. */
  readonly root: string;
  /** (5) Where it is mounted, relative to the process's root; decoded. */
  readonly mountPoint: string;
  /** (6) Per-mount options, as printed ("rw,nosuid,relatime"). */
  readonly options: string;
  /** (7) Optional fields: "shared:N", "master:N", "propagate_from:N", "unbindable"; empty for a private mount. */
  readonly optionalFields: readonly string[];
  /** (9) File system type ("cgroup2", "overlay", "fuse.sshfs"). */
  readonly fsType: string;
  /** (10) Mount source ("/dev/vda", "none", "cgroup"); decoded. */
  readonly source: string;
  /** (11) Per-superblock options, as printed (not decoded: an escaped comma must not split them). */
  readonly superOptions: string;
}

/** Decode the kernel's \NNN octal escapes (mangle_path, seq_escape): "/tmp/a\040b" → "/tmp/a b". */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse a mountinfo text (pure). Lines without the " - " separator are skipped. */
export function parseMountinfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const [fsType = '', source = '', superOptions = ''] = line.slice(sep + 3).split(' ');
    out.push({
      mountId: Number(pre[0]), parentId: Number(pre[1]), majorMinor: pre[2] ?? '',
      root: unescapeMountField(pre[3] ?? ''), mountPoint: unescapeMountField(pre[4] ?? ''), options: pre[5] ?? '',
      optionalFields: pre.slice(6).filter(Boolean),
      fsType, source: unescapeMountField(source), superOptions,
    });
  }
  return out;
}

/** The mount table of `pid` (default: this process); empty when it cannot be read. */
export function readMountinfo(pid: number | 'self' = 'self'): MountInfoEntry[] {
  try { return parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')); } catch { return []; }
}
