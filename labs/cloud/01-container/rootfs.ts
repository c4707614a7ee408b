/**
 * A root filesystem for the container lab, in a temp dir removed when the
 * test (or spec file) ends. By default one static busybox with a symlink per
 * applet (no download needed); when LABS_ALPINE_TARBALL names an Alpine
 * mini root filesystem tarball (alpine-minirootfs-*.tar.gz, as the seed
 * uses), that is unpacked instead. Either way it has /proc (for the
 * container's own procfs), a world-writable /scratch and /bin/sh.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readSync, closeSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../../../helpers/harness/errors.js';
import { run } from '../../../helpers/harness/exec.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';

export const ALPINE_TARBALL_ENV = 'LABS_ALPINE_TARBALL';
export const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/lib/initramfs-tools/bin/busybox'] as const;

export interface RootfsOptions {
  /** An Alpine minirootfs tarball; default: $LABS_ALPINE_TARBALL, else busybox. */
  readonly tarball?: string;
  /** A static busybox binary; default: the first static one of BUSYBOX_CANDIDATES. */
  readonly busybox?: string;
}

export interface Rootfs {
  readonly dir: string;
  readonly kind: 'busybox' | 'alpine';
  /** What it was made from, for messages. */
  readonly detail: string;
}

const PT_INTERP = 3;

/**
 * True when an ELF image has no PT_INTERP program header, i.e. it needs no
 * dynamic loader and runs inside a chroot that lacks /lib. Reads the header
 * only (64-bit little-endian ELF; anything else is "not static").
 */
export function isStaticElf(header: Buffer): boolean {
  if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return false;
  const phoff = Number(header.readBigUInt64LE(32));
  const phentsize = header.readUInt16LE(54);
  const phnum = header.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > header.length) return false;
    if (header.readUInt32LE(at) === PT_INTERP) return false;
  }
  return true;
}

function readHead(path: string, bytes = 4096): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The first static busybox on this host, or undefined. */
export function findStaticBusybox(candidates: readonly string[] = BUSYBOX_CANDIDATES): string | undefined {
  return candidates.find((p) => { try { return existsSync(p) && isStaticElf(readHead(p)); } catch { return false; } });
}

/** The links a busybox rootfs gets: every applet but busybox itself, as bin/<applet> -> busybox. */
export function appletLinks(list: string): string[] {
  return [...new Set(list.split(/\s+/).filter((a) => a && a !== 'busybox' && !a.includes('/')))];
}

const SKELETON_DIRS = ['bin', 'dev', 'etc', 'proc', 'root', 'sys', 'tmp', 'scratch'] as const;

/** Make the rootfs (see the module comment). */
export async function makeRootfs(options: RootfsOptions = {}): Promise<Rootfs> {
  const tarball = options.tarball ?? process.env[ALPINE_TARBALL_ENV];
  const dir = await makeTempDir('rootfs');
  chmodSync(dir, 0o755); // the user-namespace experiment runs as an unprivileged uid
  let rootfs: Rootfs;
  if (tarball) {
    if (!existsSync(tarball)) throw new LabError(`${ALPINE_TARBALL_ENV}=${tarball}: no such file`, { code: 'E_SOURCE' });
    await run('tar', ['-xzf', tarball, '-C', dir], { timeoutMs: 60_000 });
    rootfs = { dir, kind: 'alpine', detail: `Alpine minirootfs from ${tarball}` };
  } else {
    const busybox = options.busybox ?? findStaticBusybox();
    if (!busybox) throw new LabError(`no static busybox in ${BUSYBOX_CANDIDATES.join(', ')}. Fix: sudo apt install -y busybox-static`, { code: 'E_CAPABILITY' });
    for (const d of SKELETON_DIRS) mkdirSync(join(dir, d), { recursive: true });
    copyFileSync(busybox, join(dir, 'bin', 'busybox'));
    chmodSync(join(dir, 'bin', 'busybox'), 0o755);
    const list = await run(busybox, ['--list'], { timeoutMs: 10_000 });
    for (const applet of appletLinks(list.stdout)) symlinkSync('busybox', join(dir, 'bin', applet));
    writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    rootfs = { dir, kind: 'busybox', detail: `busybox rootfs from ${busybox}` };
  }
  for (const d of SKELETON_DIRS) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'scratch'), 0o1777);
  if (!existsSync(join(dir, 'bin', 'sh'))) throw new LabError(`${rootfs.detail} has no /bin/sh`, { code: 'E_SOURCE' });
  return rootfs;
}
