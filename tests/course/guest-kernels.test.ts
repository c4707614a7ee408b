/**
 * Guest kernels of other series (helpers/course/guest-kernels.ts) and the
 * module load order the guest pass derives from a kernel's modules.dep
 * (helpers/course/guest-pass.ts): pure parts, on text recorded from Debian's
 * 6.12.95 package (tests/fixtures/guest/) and lines made up after it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headerPackages, KERNEL_SERIES, pickImagePackage, privateAptOptions, sourcesList } from '../../helpers/course/guest-kernels.js';
import { missingLibraries, qemuDataArgs } from '../../helpers/course/guest-qemu.js';
import { headersCompiler, headersUnbuildable } from '../../helpers/harness/capabilities.js';
import { bootGroups, groupBoundS, GUEST_MODULE_NAMES, passBoundS, moduleLoadOrder, passInitScript } from '../../helpers/course/guest-pass.js';
import { failedPassJunit, mergeJunit } from '../../helpers/course/guest-report.js';
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

describe('guest kernels: their headers come with them', () => {
  it('takes the headers package, its -common package and the kbuild it depends on (Debian 6.12 and 5.10)', () => {
    // apt-cache show lines as Debian's archive printed them (2026-12-07).
    expect(headerPackages('6.12.95+deb12-amd64', 'Package: linux-headers-6.12.95+deb12-amd64\nDepends: linux-base (>= 4.12~), linux-headers-6.12.95+deb12-common (= 6.12.95-1~bpo12+1), linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1) | linux-image-6.12.95+deb12-amd64-unsigned (= 6.12.95-1~bpo12+1), linux-kbuild-6.12.95+deb12, gcc-12\n'))
      .toEqual(['linux-headers-6.12.95+deb12-amd64', 'linux-headers-6.12.95+deb12-common', 'linux-kbuild-6.12.95+deb12']);
    expect(headerPackages('5.10.0-46-amd64', 'Depends: linux-headers-5.10.0-46-common (= 5.10.262-1), linux-kbuild-5.10 (>= 5.10.262-1), linux-compiler-gcc-10-x86\n'))
      .toEqual(['linux-headers-5.10.0-46-amd64', 'linux-headers-5.10.0-46-common', 'linux-kbuild-5.10']);
  });

  it('reads the compiler Debian pins in .kernelvariables, and says a tree cannot build when it is not on PATH', () => {
    const vars = 'override ARCH = x86\nCCACHE = ccache\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-10\n';
    expect(headersCompiler(vars)).toBe('gcc-10');
    expect(headersCompiler('override ARCH = x86\n')).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'kl-test-headers-'));
    try {
      writeFileSync(join(dir, '.kernelvariables'), vars);
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      expect(headersUnbuildable(dir, bin)).toMatch(/build modules with gcc-10 .* fix: apt-get install gcc-10/);
      writeFileSync(join(bin, 'gcc-10'), '');
      expect(headersUnbuildable(dir, `/nonexistent:${bin}`)).toBeUndefined();
      expect(headersUnbuildable(join(dir, 'bin'), '')).toBeUndefined(); // no .kernelvariables: the default gcc
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('guest QEMU: a newer build fetched into the cache', () => {
  it('reads its firmware from its own directories, in order', () => {
    expect(qemuDataArgs({ dataDirs: ['/c/q/usr/share/qemu', '/c/q/usr/share/seabios'] })).toEqual(['-L', '/c/q/usr/share/qemu', '-L', '/c/q/usr/share/seabios']);
  });

  it('names the libraries ldd could not find', () => {
    const ldd = '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibslirp.so.0 => not found\n\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)\n\tlibfdt.so.1 => not found\n';
    expect(missingLibraries(ldd)).toEqual(['libslirp.so.0', 'libfdt.so.1']);
    expect(missingLibraries('\tlibz.so.1 => /lib/libz.so.1 (0x1)\n')).toEqual([]);
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

describe('guest pass: one boot per group of labs, each with its own bound', () => {
  const lab = (id: string, seconds?: number) => ({ id, spec: `labs/${id}/x.spec.ts`, requires: [], ...(seconds !== undefined ? { seconds } : {}) });

  it('keeps course order, at most perBoot labs and about a minute of host time per boot; a long lab boots alone', () => {
    const labs = [lab('a', 3), lab('b', 30), lab('c', 25), lab('d', 12), lab('e', 90), lab('f'), lab('g', 1)];
    expect(bootGroups(labs, 4).map((g) => g.map((l) => l.id))).toEqual([['a', 'b', 'c'], ['d'], ['e'], ['f', 'g']]);
    expect(bootGroups(labs, 2).map((g) => g.map((l) => l.id))).toEqual([['a', 'b'], ['c', 'd'], ['e'], ['f', 'g']]);
    expect(bootGroups([], 4)).toEqual([]);
  });

  it('bounds a boot by its labs\' host seconds (15 each, 10 s assumed where lab.json gives none) plus 240 s', () => {
    expect(groupBoundS([lab('a', 3), lab('b')])).toBe(240 + 2 * 60 + 15 * 13);
    expect(passBoundS([[lab('a', 3)], [lab('b'), lab('c', 1)]])).toBe((240 + 60 + 45) + (240 + 120 + 165) + (240 + 120 + 165) + 120);
  });

  it('merges the boots\' JUnit files into one, totals summed', () => {
    const one = '<?xml version="1.0"?>\n<testsuites name="vitest tests" tests="3" failures="1">\n<testsuite name="[guest 6.12] a" tests="3" failures="1" errors="0" skipped="0">\n<testcase name="x"/>\n</testsuite>\n</testsuites>';
    const two = failedPassJunit('guest 6.12: b, c', 'the guest never reported an exit status (its bound (300 s))', 'tail');
    const m = mergeJunit([one, two]);
    expect(m).toMatch(/<testsuites name="guest pass" tests="4" failures="2" errors="0">/);
    expect(m.match(/<testsuite\b/g)).toHaveLength(2);
    expect(m).toContain('[guest 6.12: b, c] guest pass');
  });
});
