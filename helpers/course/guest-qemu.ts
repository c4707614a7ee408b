/**
 * A newer QEMU for the guest pass (issue #31): Debian 12 ships QEMU 7.2,
 * under whose multi-threaded TCG guest kernels hit `Oops: int3` and lockups
 * (README, "The guest pass"). bookworm-backports serves QEMU 10.0 built for
 * Debian 12. It is fetched into the project's cache the way the guest
 * kernels are (helpers/course/guest-kernels.ts: a private apt configuration,
 * `apt-get download`, `dpkg-deb -x`): the host's apt sources, package lists
 * and installed QEMU stay as they are. The binary runs from the cache with
 * its own firmware and option ROMs (`-L`), never the host's 7.2 files.
 *
 * `npm run test:guest -- --qemu 10.0` uses it; `--qemu host` the installed one.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../harness/exec.js';
import { CACHE_DIR } from '../harness/paths.js';
import { preparePrivateApt } from './guest-kernels.js';

/** QEMU builds the pass can fetch, with the suite that serves each and the packages that make it run. */
export const QEMU_SERIES: Readonly<Record<string, { readonly suites: readonly string[]; readonly packages: readonly string[] }>> = {
  // qemu-system-data: option ROMs (linuxboot_dma.bin, kvmvapic.bin); seabios: the BIOS QEMU 10 expects.
  '10.0': { suites: ['bookworm-backports'], packages: ['qemu-system-x86', 'qemu-system-common', 'qemu-system-data', 'seabios'] },
};

export interface GuestQemu {
  readonly series: string;
  /** qemu-system-x86's Debian version ("1:10.0.2+ds-2+deb13u1~bpo12+1"). */
  readonly version: string;
  /** The qemu-system-x86_64 binary in the cache. */
  readonly binary: string;
  /** Directories given to QEMU with -L, searched in order for firmware and option ROMs. */
  readonly dataDirs: readonly string[];
}

export const GUEST_QEMU_DIR = join(CACHE_DIR, 'guest-qemu');

/** The arguments that make a fetched QEMU read its own firmware (prepended to the pass's arguments). */
export function qemuDataArgs(q: Pick<GuestQemu, 'dataDirs'>): string[] {
  return q.dataDirs.flatMap((d) => ['-L', d]);
}

/** Shared libraries `ldd` could not find (lines "libfoo.so.1 => not found"). */
export function missingLibraries(lddOutput: string): string[] {
  return [...lddOutput.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]!);
}

/** The QEMU a cache directory holds (its qemu.json), if complete. */
export function cachedGuestQemu(series: string, root = GUEST_QEMU_DIR): GuestQemu | undefined {
  try {
    const q = JSON.parse(readFileSync(join(root, series, 'qemu.json'), 'utf8')) as GuestQemu;
    return existsSync(q.binary) && q.dataDirs.every((d) => existsSync(d)) ? q : undefined;
  } catch { return undefined; }
}

/**
 * Fetch (once) QEMU of `series` into the cache; `say` gets one progress line
 * per step. Fails, naming them, when this machine lacks a library the binary
 * needs (the cache entry is then not kept).
 */
export async function fetchGuestQemu(series: string, say: (line: string) => void = () => {}, root = GUEST_QEMU_DIR): Promise<GuestQemu> {
  const known = QEMU_SERIES[series];
  if (!known) throw new Error(`no QEMU ${series} to fetch: choose one of ${Object.keys(QEMU_SERIES).join(', ')}, or host (the installed one)`);
  const have = cachedGuestQemu(series, root);
  if (have) return have;
  const apt = join(root, 'apt');
  const opts = preparePrivateApt(apt, known.suites.map((s) => `deb http://deb.debian.org/debian ${s} main`).join('\n') + '\n');
  say(`QEMU ${series}: reading Debian's package lists (${known.suites.join(', ')}) into ${apt}`);
  await run('apt-get', [...opts, '-q', 'update'], { timeoutMs: 300_000, limits: false });
  const show = await run('apt-cache', [...opts, 'show', '--no-all-versions', 'qemu-system-x86'], { timeoutMs: 60_000, limits: false });
  const version = show.stdout.match(/^Version: (\S+)/m)?.[1];
  if (!version || !version.replace(/^\d+:/, '').startsWith(series)) throw new Error(`${known.suites.join(', ')} serves qemu-system-x86 ${version ?? '(none)'}, not ${series}`);
  const dir = join(root, series);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'deb'), { recursive: true });
  say(`QEMU ${series}: downloading ${known.packages.join(', ')} (qemu-system-x86 ${version})`);
  await run('apt-get', [...opts, '-q', 'download', ...known.packages], { cwd: join(tmp, 'deb'), timeoutMs: 900_000, limits: false });
  const debs = readdirSync(join(tmp, 'deb')).filter((f) => f.endsWith('.deb'));
  if (debs.length !== known.packages.length) throw new Error(`apt-get download left ${debs.length} of ${known.packages.length} packages: ${debs.join(', ')}`);
  say(`QEMU ${series}: extracting ${debs.length} packages`);
  for (const d of debs) await run('dpkg-deb', ['-x', join(tmp, 'deb', d), join(tmp, 'root')], { timeoutMs: 300_000, limits: false });
  rmSync(join(tmp, 'deb'), { recursive: true, force: true });
  const binaryIn = (base: string) => join(base, 'root', 'usr', 'bin', 'qemu-system-x86_64');
  const missing = missingLibraries((await run('ldd', [binaryIn(tmp)], { timeoutMs: 60_000, limits: false, reject: false })).stdout);
  if (missing.length) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`QEMU ${series} needs libraries this machine lacks: ${missing.join(', ')} (the guest pass can still use the installed QEMU: --qemu host)`);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  const q: GuestQemu = {
    series, version,
    binary: binaryIn(dir),
    dataDirs: [join(dir, 'root', 'usr', 'share', 'qemu'), join(dir, 'root', 'usr', 'share', 'seabios')],
  };
  const v = await run(q.binary, ['--version'], { timeoutMs: 60_000, limits: false });
  writeFileSync(join(dir, 'qemu.json'), JSON.stringify(q, null, 2) + '\n');
  say(`QEMU ${series}: ${v.stdout.split('\n')[0]} ready (${q.binary})`);
  return q;
}

/** The emulator the guest pass uses unless told otherwise (--qemu, LABS_GUEST_QEMU). */
export const DEFAULT_GUEST_QEMU = 'host';
