/**
 * Guest kernels of other series than the one installed (issue #31): the
 * kernels students have (Debian's 5.10 of bullseye, 6.12 of
 * bookworm-backports), fetched into the project's cache without touching the
 * host's apt sources, package lists or installed packages — a private apt
 * configuration (its own sources list, state and cache directories under
 * `.cache/guest-kernels/apt`), `apt-get download` and `dpkg-deb -x` — then
 * `depmod -b` on the extracted tree, so the guest's modprobe finds its
 * modules. Its headers come too (linux-headers-<release>, the -common
 * package and linux-kbuild it depends on), extracted into the same tree,
 * so BCC and the module labs can build in the guest; the compiler they
 * name (`CC` in the headers' .kernelvariables: gcc-12 for 6.12, gcc-10
 * for 5.10) must exist in this machine's userland, which the guest uses.
 * `npm run test:guest -- --kernel 6.12` boots one of them; 6.1 is the one
 * `npm run setup` installs in /boot.
 *
 * Pure parts (the apt options, the choice of package, the metadata) are
 * exported for the unit test; fetchGuestKernel() runs the tools.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../harness/exec.js';
import { CACHE_DIR } from '../harness/paths.js';

/** The Debian suites that serve each series (amd64, main). */
export const KERNEL_SERIES: Readonly<Record<string, { readonly suites: readonly string[]; readonly note: string }>> = {
  '5.10': { suites: ['bullseye', 'bullseye-security'], note: "Debian 11's LTS kernel, the oldest a student may still run" },
  '6.12': { suites: ['bookworm-backports'], note: "the LTS kernel of Debian 13, from Debian 12's backports" },
};

export interface GuestKernel {
  /** The series asked for ("6.12"). */
  readonly series: string;
  /** `uname -r` of the kernel ("6.12.95+deb12-amd64"). */
  readonly release: string;
  /** The package it came from, with its version. */
  readonly pkg: string;
  readonly version: string;
  /** The bzImage. */
  readonly path: string;
  /** The extracted tree's /lib/modules (the guest mounts <modulesRoot>/<release> at /lib/modules/<release>). */
  readonly modulesRoot: string;
  /** The extracted tree's /boot (its config-<release>, System.map). */
  readonly bootDir: string;
  /**
   * The extracted headers: the guest mounts `usrSrc` at /usr/src (where
   * /lib/modules/<release>/build points) and `kbuild` at its own path
   * (/usr/lib/linux-kbuild-<x>, where the headers' scripts/ and tools/ point).
   */
  readonly headers?: { readonly package: string; readonly usrSrc: string; readonly kbuild: string; readonly kbuildGuestPath: string };
}

/**
 * The packages that make up a release's headers, from `apt-cache show
 * linux-headers-<release>`: the package itself, its -common package and
 * the linux-kbuild package it depends on.
 */
export function headerPackages(release: string, showOutput: string): string[] {
  const depends = showOutput.match(/^Depends: (.*)$/m)?.[1] ?? '';
  const names = depends.split(',').map((d) => d.trim().split(/[\s|(]/)[0]!);
  const common = names.find((n) => /^linux-headers-.*-common$/.test(n));
  const kbuild = names.find((n) => n.startsWith('linux-kbuild-'));
  return [`linux-headers-${release}`, ...(common ? [common] : []), ...(kbuild ? [kbuild] : [])];
}

export const GUEST_KERNELS_DIR = join(CACHE_DIR, 'guest-kernels');

/** apt options that use only files under `dir`: the host's sources, lists, status and lock stay untouched. */
export function privateAptOptions(dir: string): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::sourcelist', join(dir, 'sources.list')),
    ...o('Dir::Etc::sourceparts', join(dir, 'sources.list.d')),
    ...o('Dir::Etc::preferencesparts', join(dir, 'preferences.d')),
    ...o('Dir::State::lists', join(dir, 'lists')),
    ...o('Dir::State::status', join(dir, 'status')),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('APT::Sandbox::User', 'root'),
    ...o('Debug::NoLocking', '1'),
    ...o('Acquire::Languages', 'none'),
  ];
}

/**
 * Make the private apt directory `dir` (its lists, cache, empty status and
 * this sources list) and return the options that make apt use only it.
 */
export function preparePrivateApt(dir: string, sources: string): string[] {
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d', 'preferences.d']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'sources.list'), sources);
  if (!existsSync(join(dir, 'status'))) writeFileSync(join(dir, 'status'), '');
  return privateAptOptions(dir);
}

/** The private sources list: Debian's archive and security archive, every suite of every series. */
export function sourcesList(mirror = 'http://deb.debian.org'): string {
  const suites = [...new Set(Object.values(KERNEL_SERIES).flatMap((s) => s.suites))];
  return suites.map((s) => `deb ${mirror}/${s.endsWith('-security') ? 'debian-security' : 'debian'} ${s} main`).join('\n') + '\n';
}

/**
 * The generic amd64 image package of a series with the highest ABI, from
 * `apt-cache search --names-only` lines ("linux-image-6.12.95+deb12-amd64 - …"):
 * not -cloud, -rt, -dbg or -unsigned.
 */
export function pickImagePackage(series: string, searchOutput: string): string | undefined {
  const esc = series.replace(/\./g, '\\.');
  const re = new RegExp(`^linux-image-(${esc}[.+-][^\\s]*)-amd64$`);
  const names = searchOutput.split('\n').map((l) => l.split(' - ')[0]!.trim())
    .filter((n) => re.test(n) && !/-(cloud|rt)-amd64$/.test(n));
  return names.sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).pop();
}

/** The kernel a cache directory holds (its kernel.json), if complete. */
export function cachedGuestKernel(series: string, root = GUEST_KERNELS_DIR): GuestKernel | undefined {
  try {
    const k = JSON.parse(readFileSync(join(root, series, 'kernel.json'), 'utf8')) as GuestKernel;
    return existsSync(k.path) && existsSync(join(k.modulesRoot, k.release, 'modules.dep'))
      && !!k.headers && existsSync(join(k.headers.usrSrc, `linux-headers-${k.release}`, 'Makefile')) ? k : undefined;
  } catch { return undefined; }
}

/**
 * Fetch (once) the newest Debian kernel of `series` into the cache; `say`
 * gets one progress line per step. Idempotent: a complete cache entry is
 * returned as it is.
 */
export async function fetchGuestKernel(series: string, say: (line: string) => void = () => {}, root = GUEST_KERNELS_DIR): Promise<GuestKernel> {
  const known = KERNEL_SERIES[series];
  if (!known) throw new Error(`no guest kernel series ${series}: choose one of ${Object.keys(KERNEL_SERIES).join(', ')} (6.1 is the one in /boot)`);
  const have = cachedGuestKernel(series, root);
  if (have) return have;
  const apt = join(root, 'apt');
  const opts = preparePrivateApt(apt, sourcesList());
  say(`guest kernel ${series}: reading Debian's package lists (${known.suites.join(', ')}) into ${apt}`);
  await run('apt-get', [...opts, '-q', 'update'], { timeoutMs: 300_000, limits: false });
  const search = await run('apt-cache', [...opts, 'search', '--names-only', `^linux-image-${series.replace(/\./g, '\\.')}`], { timeoutMs: 60_000, limits: false });
  const pkg = pickImagePackage(series, search.stdout);
  if (!pkg) throw new Error(`no linux-image-${series}…-amd64 package in ${known.suites.join(', ')}`);
  const version = (await run('apt-cache', [...opts, 'show', '--no-all-versions', pkg], { timeoutMs: 60_000, limits: false })).stdout.match(/^Version: (\S+)/m)?.[1] ?? '?';
  const release = pkg.replace(/^linux-image-/, '');
  const dir = join(root, series);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'deb'), { recursive: true });
  const headersShow = await run('apt-cache', [...opts, 'show', '--no-all-versions', `linux-headers-${release}`], { timeoutMs: 60_000, limits: false });
  const headers = headerPackages(release, headersShow.stdout);
  say(`guest kernel ${series}: downloading ${pkg} ${version} and its headers (${headers.join(', ')})`);
  await run('apt-get', [...opts, '-q', 'download', pkg, ...headers], { cwd: join(tmp, 'deb'), timeoutMs: 900_000, limits: false });
  const debs = readdirSync(join(tmp, 'deb')).filter((f) => f.endsWith('.deb'));
  if (debs.length !== 1 + headers.length) throw new Error(`apt-get download left ${debs.length} of ${1 + headers.length} packages: ${debs.join(', ')}`);
  say(`guest kernel ${series}: extracting ${debs.length} packages and running depmod on the extracted tree`);
  for (const d of debs) await run('dpkg-deb', ['-x', join(tmp, 'deb', d), join(tmp, 'root')], { timeoutMs: 300_000, limits: false });
  await run('depmod', ['-b', join(tmp, 'root'), release], { timeoutMs: 300_000, limits: false });
  const kbuildName = readdirSync(join(tmp, 'root', 'usr', 'lib')).find((d) => d.startsWith('linux-kbuild-'));
  if (!kbuildName) throw new Error(`${headers.join(', ')} left no /usr/lib/linux-kbuild-*`);
  rmSync(join(tmp, 'deb'), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  const k: GuestKernel = {
    series, release, pkg, version,
    path: join(dir, 'root', 'boot', `vmlinuz-${release}`),
    modulesRoot: join(dir, 'root', 'lib', 'modules'),
    bootDir: join(dir, 'root', 'boot'),
    headers: {
      package: headers[0]!,
      usrSrc: join(dir, 'root', 'usr', 'src'),
      kbuild: join(dir, 'root', 'usr', 'lib', kbuildName),
      kbuildGuestPath: join('/usr/lib', kbuildName),
    },
  };
  writeFileSync(join(dir, 'kernel.json'), JSON.stringify(k, null, 2) + '\n');
  say(`guest kernel ${series}: ${release} ready (${k.path})`);
  return k;
}
