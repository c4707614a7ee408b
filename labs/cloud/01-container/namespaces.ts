/**
 * Namespaces as the kernel names them: `readlink /proc/<pid>/ns/<type>`
 * gives `<type>:[<inode>]`, and two processes share a namespace exactly when
 * the inodes are equal (runc's integration tests compare them the same way).
 */
import { readlinkSync } from 'node:fs';
import { LabError } from '../../../helpers/harness/errors.js';

export const NAMESPACE_TYPES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

/** Parse `net:[4026531840]` into its type and inode; undefined when the text is not a namespace link. */
export function parseNsLink(link: string): { type: string; inode: number } | undefined {
  const m = link.trim().match(/^(\w+):\[(\d+)\]$/);
  return m ? { type: m[1]!, inode: Number(m[2]) } : undefined;
}

/** The namespace inode of a process (default: this one). */
export function nsInode(type: NamespaceType, pid: number | 'self' = 'self'): number {
  const path = `/proc/${pid}/ns/${type}`;
  let link: string;
  try {
    link = readlinkSync(path);
  } catch (e) {
    throw new LabError(`readlink ${path} failed: ${(e as Error).message}`, { code: 'E_RESOURCE', cause: e });
  }
  const parsed = parseNsLink(link);
  if (!parsed || parsed.type !== type) throw new LabError(`${path} points to "${link}", not a ${type} namespace`, { code: 'E_RESOURCE' });
  return parsed.inode;
}

/** Every `<type>:[<inode>]` printed in a program's output (e.g. `readlink /proc/1/ns/pid` run inside a container). */
export function nsLinksIn(text: string): { type: string; inode: number }[] {
  return [...text.matchAll(/\b(\w+):\[(\d+)\]/g)].map((m) => ({ type: m[1]!, inode: Number(m[2]) }));
}
