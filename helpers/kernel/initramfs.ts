/**
 * Initramfs images for QEMU guests (labs K1–K3): static busybox, the lab's
 * own static programs and an /init script, packed as a gzip'd newc cpio
 * archive by a small writer (no cpio tool, no root, no device nodes on disk:
 * /dev/console is written into the archive as a character device).
 *
 * The default /init (initScript) mounts proc/sys/devtmpfs, prints
 * `KL_BOOT release=<uname -r>`, runs the lab's commands, prints `KL_DONE`
 * and reboots, which with QEMU's -no-reboot ends QEMU.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { LabError } from '../harness/errors.js';
import { makeTempDir } from '../harness/resources.js';

export const BUSYBOX = process.env.LABS_BUSYBOX ?? '/bin/busybox';

export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'file'; readonly path: string; readonly data: Buffer | string; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | { readonly kind: 'chardev'; readonly path: string; readonly major: number; readonly minor: number; readonly mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4);
}

/** One newc header + name + data (both padded to 4 bytes). */
function newcRecord(ino: number, name: string, mode: number, data: Buffer, rdev: { major: number; minor: number } = { major: 0, minor: 0 }, nlink = 1): Buffer {
  const nameBuf = Buffer.from(`${name}\0`);
  const header = '070701' + [
    ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev.major, rdev.minor, nameBuf.length, 0,
  ].map(hex8).join('');
  const head = Buffer.concat([Buffer.from(header, 'ascii'), nameBuf]);
  return Buffer.concat([head, pad4(head.length), data, pad4(data.length)]);
}

/** A newc ("070701") cpio archive of the entries, with the TRAILER!!! record. Paths are relative ("bin/sh"). */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    switch (e.kind) {
      case 'dir': parts.push(newcRecord(ino++, name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), undefined, 2)); break;
      case 'file': parts.push(newcRecord(ino++, name, S_IFREG | (e.mode ?? 0o644), Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data))); break;
      case 'symlink': parts.push(newcRecord(ino++, name, S_IFLNK | 0o777, Buffer.from(e.target))); break;
      case 'chardev': parts.push(newcRecord(ino++, name, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), { major: e.major, minor: e.minor })); break;
    }
  }
  parts.push(newcRecord(0, 'TRAILER!!!', 0, Buffer.alloc(0), undefined, 1));
  return Buffer.concat(parts);
}

/** Parse a newc archive back (for tests and for `cpio -t`-like checks). */
export function readNewc(archive: Buffer): { path: string; mode: number; size: number; data: Buffer; rdevmajor: number; rdevminor: number }[] {
  const out = [];
  let off = 0;
  for (;;) {
    const magic = archive.toString('ascii', off, off + 6);
    if (magic !== '070701') throw new Error(`bad newc magic at ${off}: ${magic}`);
    const field = (i: number) => parseInt(archive.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1), size = field(6), rdevmajor = field(9), rdevminor = field(10), namesize = field(11);
    const nameStart = off + 110;
    const path = archive.toString('utf8', nameStart, nameStart + namesize - 1);
    let dataStart = nameStart + namesize;
    dataStart += (4 - (dataStart % 4)) % 4;
    const data = archive.subarray(dataStart, dataStart + size);
    off = dataStart + size;
    off += (4 - (off % 4)) % 4;
    if (path === 'TRAILER!!!') return out;
    out.push({ path, mode, size, data, rdevmajor, rdevminor });
  }
}

export interface InitOptions {
  /** Shell lines run after the boot marker, before KL_DONE. */
  readonly commands?: readonly string[];
  /** Print /proc/kallsyms lines of these symbols as `KL_SYM <addr> <type> <name>`. */
  readonly symbols?: readonly string[];
}

/** The default /init: mounts, `KL_BOOT release=…`, the lab's commands, `KL_DONE`, reboot. */
export function initScript(opts: InitOptions = {}): string {
  const lines = [
    '#!/bin/busybox sh',
    '# /init written by kernel-labs helpers/kernel/initramfs.ts',
    '/bin/busybox --install -s /bin',
    'export PATH=/bin:/sbin',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev 2>/dev/null',
    'echo "KL_BOOT release=$(uname -r)"',
  ];
  if (opts.symbols?.length) {
    const alternation = opts.symbols.map((s) => s.replace(/[^A-Za-z0-9_.]/g, '')).join('|');
    lines.push(`grep -E ' (${alternation})$' /proc/kallsyms | sed 's/^/KL_SYM /'`);
  }
  for (const c of opts.commands ?? []) lines.push(c);
  lines.push('echo KL_DONE', 'reboot -f', 'sleep 5', 'echo KL_REBOOT_FAILED');
  return `${lines.join('\n')}\n`;
}

export interface InitramfsOptions {
  /** The /init script (default: initScript()). */
  readonly init?: string;
  /** Static programs to put in /lab/<name> (the host path is read now). */
  readonly programs?: readonly { readonly name: string; readonly path: string }[];
  /** Extra files (relative paths). */
  readonly files?: readonly { readonly path: string; readonly data: Buffer | string; readonly mode?: number }[];
}

/** The archive entries of an initramfs (pure except for reading busybox and the programs). */
export function initramfsEntries(opts: InitramfsOptions = {}): CpioEntry[] {
  if (!existsSync(BUSYBOX)) throw new LabError(`${BUSYBOX} is missing — fix: apt-get install busybox-static`, { code: 'E_SOURCE' });
  const entries: CpioEntry[] = [
    ...['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'lab', 'etc', 'root'].map((d): CpioEntry => ({ kind: 'dir', path: d })),
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { kind: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: opts.init ?? initScript(), mode: 0o755 },
  ];
  for (const p of opts.programs ?? []) entries.push({ kind: 'file', path: `lab/${p.name}`, data: readFileSync(p.path), mode: 0o755 });
  const dirs = new Set(entries.filter((e) => e.kind === 'dir').map((e) => e.path));
  for (const f of opts.files ?? []) {
    // Parent directories first: the kernel's unpacker does not make them.
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) { dirs.add(d); entries.push({ kind: 'dir', path: d }); }
    }
    entries.push({ kind: 'file', path: f.path, data: f.data, mode: f.mode });
  }
  return entries;
}

/**
 * The shared libraries a dynamic program needs (`ldd` lines `name => /path (addr)`
 * and the interpreter `/lib64/ld-linux-x86-64.so.2 (addr)`), as absolute host
 * paths (pure). Put them into the initramfs at the same paths with the
 * program, and the guest runs it without a libc of its own.
 */
export function parseLdd(text: string): string[] {
  const paths = new Set<string>();
  for (const line of text.split('\n')) {
    const m = line.match(/=>\s*(\/\S+)\s+\(0x/) ?? line.match(/^\s*(\/\S+)\s+\(0x/);
    if (m) paths.add(m[1]!);
  }
  return [...paths];
}

/** Initramfs files for a dynamic host program at /lab/<name>, with its libraries at their host paths. */
export function dynamicProgramFiles(path: string, name: string, lddOutput: string): { path: string; data: Buffer; mode: number }[] {
  return [
    { path: `lab/${name}`, data: readFileSync(path), mode: 0o755 },
    ...parseLdd(lddOutput).map((lib) => ({ path: lib.replace(/^\/+/, ''), data: readFileSync(lib), mode: 0o755 })),
  ];
}

/** True when a program is statically linked (no PT_INTERP): the guest has no libc. */
export function isStaticElf(path: string): boolean {
  const b = readFileSync(path);
  if (b.toString('latin1', 1, 4) !== 'ELF') return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  return true;
}

/** Write `initramfs.cpio.gz` into a temp dir of the test (removed when it ends); returns its path. */
export async function buildInitramfs(opts: InitramfsOptions = {}): Promise<string> {
  for (const p of opts.programs ?? []) {
    if (!isStaticElf(p.path)) throw new LabError(`${p.path} is dynamically linked; the guest has no libc: build it with static: true`, { code: 'E_SOURCE' });
  }
  const dir = await makeTempDir('initramfs');
  const path = join(dir, 'initramfs.cpio.gz');
  await writeFile(path, gzipSync(newcArchive(initramfsEntries(opts)), { level: 6 }));
  return path;
}
