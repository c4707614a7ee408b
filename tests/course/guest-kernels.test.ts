/**
 * Guest kernels of other series (helpers/course/guest-kernels.ts) and the
 * module load order the guest pass derives from a kernel's modules.dep
 * (helpers/course/guest-pass.ts): pure parts, on text recorded from Debian's
 * 6.12.95 package (tests/fixtures/guest/) and lines made up after it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KERNEL_SERIES, pickImagePackage, privateAptOptions, sourcesList } from '../../helpers/course/guest-kernels.js';
import { GUEST_MODULE_NAMES, moduleLoadOrder, passInitScript } from '../../helpers/course/guest-pass.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const fixture = (f: string) => readFileSync(join(REPO_ROOT, 'tests', 'fixtures', 'guest', f), 'utf8');

describe('guest kernels: fetched with a private apt configuration', () => {
  it('points every apt directory the host uses (sources, lists, status, cache, lock) into the cache', () => {
    const o = privateAptOptions('/c/apt');
    const set = Object.fromEntries(o.filter((_, i) => o[i - 1] === '-o').map((kv) => kv.split('=') as [string, string]));
    expect(set).toMatchObject({
      'Dir::Etc::sourcelist': '/c/apt/sources.list', 'Dir::Etc::sourceparts': '/c/apt/sources.list.d',
      'Dir::State::lists': '/c/apt/lists', 'Dir::State::status': '/c/apt/status', 'Dir::Cache': '/c/apt/cache', 'Debug::NoLocking': '1',
    });
    expect(Object.values(set).filter((v) => v.startsWith('/')).every((v) => v.startsWith('/c/apt/'))).toBe(true);
  });

  it('lists the suites of every series, the security suite from the security archive', () => {
    const text = sourcesList('http://m');
    expect(text).toContain('deb http://m/debian bookworm-backports main');
    expect(text).toContain('deb http://m/debian-security bullseye-security main');
    for (const s of Object.values(KERNEL_SERIES).flatMap((k) => k.suites)) expect(text).toContain(` ${s} main`);
  });

  it('picks the generic image with the highest ABI of the series, never cloud, rt, dbg or unsigned, nor another series', () => {
    const search = [
      'linux-image-6.12.95+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs',
      'linux-image-6.12.9+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)',
      'linux-image-6.12.95+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)',
      'linux-image-6.12.95+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)',
      'linux-image-6.12.95+deb12-rt-amd64 - Linux 6.12 for 64-bit PCs (signed), PREEMPT_RT',
      'linux-image-6.12.95+deb12-amd64-dbg - Debug symbols',
      'linux-image-6.1.0-57-amd64 - Linux 6.1 for 64-bit PCs (signed)',
    ].join('\n');
    expect(pickImagePackage('6.12', search)).toBe('linux-image-6.12.95+deb12-amd64');
    expect(pickImagePackage('6.1', search)).toBe('linux-image-6.1.0-57-amd64');
    expect(pickImagePackage('5.10', 'linux-image-5.10.0-9-amd64 - x\nlinux-image-5.10.0-46-amd64 - x\n')).toBe('linux-image-5.10.0-46-amd64');
    expect(pickImagePackage('5.10', search)).toBeUndefined();
  });
});

describe('guest pass: the modules the initramfs loads come from the kernel\'s own modules.dep', () => {
  it('Debian 6.12: virtio built in, netfs and 9pnet before 9p, compressed files as they are', () => {
    const r = moduleLoadOrder(fixture('modules.dep-6.12.txt'), fixture('modules.builtin-6.12.txt'), GUEST_MODULE_NAMES);
    expect(r.missing).toEqual([]);
    expect(r.files.some((f) => /virtio/.test(f) && !/9pnet_virtio/.test(f))).toBe(false);
    const at = (name: string) => r.files.findIndex((f) => f.endsWith(`/${name}.ko.xz`));
    expect(at('9pnet')).toBeLessThan(at('9pnet_virtio'));
    expect(at('netfs')).toBeLessThan(at('9p'));
    expect(at('9pnet')).toBeLessThan(at('9p'));
    expect(at('overlay')).toBeGreaterThanOrEqual(0);
  });

  it('every module after all of its dependencies, each once; what is neither a file nor built in is missing', () => {
    const dep = ['kernel/a/x.ko: kernel/a/y.ko kernel/a/z-w.ko', 'kernel/a/y.ko: kernel/a/z-w.ko', 'kernel/a/z-w.ko:', 'kernel/a/v.ko: kernel/a/y.ko kernel/a/z-w.ko'].join('\n');
    const r = moduleLoadOrder(dep, 'kernel/b/built.ko\n', ['x', 'v', 'built', 'nowhere']);
    expect(r.files).toEqual(['kernel/a/z-w.ko', 'kernel/a/y.ko', 'kernel/a/x.ko', 'kernel/a/v.ko']);
    expect(r.missing).toEqual(['nowhere']);
  });

  it('a share with a guest path of its own is mounted there, the directory made first', () => {
    const init = passInitScript({
      modules: [], cwd: '/w', env: {}, command: ['true'],
      shares: [{ tag: 'klmodules', hostPath: '/c/6.12/root/lib/modules/6.12.95+deb12-amd64', guestPath: '/lib/modules/6.12.95+deb12-amd64', readonly: true }],
    }).split('\n');
    const mk = init.findIndex((l) => l === 'mkdir -p /newroot/lib/modules/6.12.95+deb12-amd64');
    const mount = init.findIndex((l) => /^mount -t 9p -o [^ ]*\bro\b[^ ]* klmodules \/newroot\/lib\/modules\/6\.12\.95\+deb12-amd64 /.test(l));
    expect(mk).toBeGreaterThan(0);
    expect(mount).toBeGreaterThan(mk);
  });
});
