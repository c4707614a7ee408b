/**
 * The guest pass's pure parts: QEMU's command line, the initramfs /init, the
 * console markers, which labs run in the guest, and the rule that forbids the
 * kprobe and cgroup v1 fallbacks there (checked against the specs' own messages).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUEST_MODULES, guestKernelLine, lastLines, parseConsole, passInitScript, passQemuArgs, selectGuestLabs, shq } from '../../helpers/course/guest-pass.js';
import { forbiddenAdaptation } from '../../helpers/harness/requires.js';
import { scaledTimeout } from '../../helpers/harness/exec.js';
import { listLabs } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const shares = [
  { tag: 'klreports', hostPath: '/work/p/reports/guest', readonly: false },
  { tag: 'klcache', hostPath: '/work/p/.cache/guest', readonly: false },
];

describe('guest pass: the QEMU command line', () => {
  const args = passQemuArgs({ kernel: '/boot/vmlinuz-6.1.0-56-amd64', initrd: '/tmp/kl-x/i.gz', memoryMb: 3584, cpus: 2, shares });
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);

  it('boots Debian\'s kernel under multi-threaded TCG with the given CPUs and memory, reboot ends QEMU', () => {
    expect(after('-accel')).toEqual(['tcg,thread=multi']);
    expect(after('-smp')).toEqual(['2']);
    expect(after('-m')).toEqual(['3584M']);
    expect(args).toContain('-no-reboot');
    expect(after('-kernel')).toEqual(['/boot/vmlinuz-6.1.0-56-amd64']);
    expect(after('-append')[0]).toMatch(/console=ttyS0 .*panic=-1/);
    // The TSC as clocksource (vDSO clock_gettime, as on KVM), and a lockup ends the guest instead of hanging the pass.
    expect(after('-append')[0]!.split(' ')).toEqual(expect.arrayContaining(['tsc=reliable', 'softlockup_panic=1', 'watchdog_thresh=30']));
    expect(after('-cpu')).toEqual(['max']);
    expect(passQemuArgs({ kernel: 'k', initrd: 'i', memoryMb: 1, cpus: 1, shares, cpu: 'max,la57=off' })).toEqual(expect.arrayContaining(['-cpu', 'max,la57=off']));
  });

  it('shares / read-only and only the report and cache directories read-write', () => {
    const virtfs = after('-virtfs');
    expect(virtfs[0]).toBe('local,path=/,mount_tag=host,security_model=none,multidevs=remap,readonly=on');
    expect(virtfs.slice(1)).toEqual([
      'local,path=/work/p/reports/guest,mount_tag=klreports,security_model=none,multidevs=remap',
      'local,path=/work/p/.cache/guest,mount_tag=klcache,security_model=none,multidevs=remap',
    ]);
  });
});

describe('guest pass: the initramfs /init', () => {
  const init = passInitScript({
    modules: GUEST_MODULES.map((m) => `/modules/${m.split('/').pop()}`), shares, cwd: '/work/p',
    env: { PATH: '/usr/bin:/bin', LABS_FORBID_ADAPTED: 'kprobes,cgroup-v1', X: "it's" }, command: ['node', 'vitest.mjs', 'run', 'labs/a b.spec.ts'],
    warm: ['bpftrace --version', 'python3 -c "import bcc"'],
  });
  const lines = init.split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));

  it('loads virtio before 9p and 9p before the mounts that need it, failing loudly', () => {
    expect(at(/insmod \/modules\/virtio_ring\.ko/)).toBeLessThan(at(/insmod \/modules\/virtio\.ko/));
    expect(at(/insmod \/modules\/virtio_pci\.ko/)).toBeLessThan(at(/insmod \/modules\/9pnet_virtio\.ko/));
    expect(at(/insmod \/modules\/overlay\.ko/)).toBeLessThan(at(/mount -t overlay/));
    expect(lines.find((l) => l.startsWith('insmod /modules/9p.ko'))).toMatch(/KL_PASS_FAIL insmod .*KL_PASS_EXIT=125.*reboot -f/);
  });

  it('mounts the host root read-only under a tmpfs overlay, then the read-write shares at their host paths', () => {
    expect(init).toContain('mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose host /host');
    expect(init).toContain('mount -t overlay -o lowerdir=/host,upperdir=/upper/data,workdir=/upper/work overlay /newroot');
    expect(at(/mount -t tmpfs -o mode=755 tmpfs \/upper/)).toBeLessThan(at(/mount -t overlay/));
    expect(init).toContain('mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none klreports /newroot/work/p/reports/guest');
    expect(at(/klcache/)).toBeGreaterThan(at(/mount -t overlay/));
  });

  it('gives the guest its own /proc, /sys, /dev, /tmp, tracefs, cgroup2 and bpffs, then switch_roots', () => {
    for (const d of ['proc', 'sys', 'dev']) expect(init).toContain(`mount --move /${d} /newroot/${d}`);
    for (const m of ['tmpfs -o mode=1777 tmpfs /tmp', 'tracefs tracefs /sys/kernel/tracing', 'cgroup2 cgroup2 /sys/fs/cgroup', 'bpf bpf /sys/fs/bpf']) {
      expect(init).toContain(`mount -t ${m}`);
    }
    expect(lines.at(-2)).toBe('exec switch_root /newroot /bin/busybox sh /run-kl-guest.sh');
  });

  it('runs the command in the project with only the given environment, quoted, and reports its status', () => {
    expect(init).toContain('cd /work/p');
    expect(init).toContain(`env -i PATH=/usr/bin:/bin LABS_FORBID_ADAPTED=kprobes,cgroup-v1 X='it'\\''s' node vitest.mjs run 'labs/a b.spec.ts' </dev/null 2>&1 | cat`);
    expect(at(/set -o pipefail/)).toBeLessThan(at(/env -i/));
    // The slow first starts over 9p happen one at a time before the specs, not inside their probes' bounds.
    expect(at(/^bpftrace --version >\/dev\/null 2>&1$/)).toBeGreaterThan(at(/root-ready/));
    expect(at(/^python3 -c "import bcc" >\/dev\/null 2>&1$/)).toBeLessThan(at(/KL_PASS_STAGE warm/));
    expect(at(/KL_PASS_STAGE warm/)).toBeLessThan(at(/env -i/));
    expect(init).toContain('echo "KL_PASS_EXIT=$status"');
    expect(shq("a'b")).toBe(`'a'\\''b'`);
  });
});

describe('guest pass: the console', () => {
  it('reads the stages with their uptime, the exit status after terminal escapes, and an /init failure', () => {
    const text = 'SeaBIOS\r\nKL_PASS_STAGE init 3.11\r\nKL_PASS_STAGE modules 3.60\r\n[   4.1] 9p: noise\r\nKL_PASS_STAGE root-ready 11.49\r\n ✓ lab\r\n\x1b[?25hKL_PASS_EXIT=3\r\n';
    expect(parseConsole(text)).toEqual({
      stages: [{ name: 'init', uptime: 3.11 }, { name: 'modules', uptime: 3.6 }, { name: 'root-ready', uptime: 11.49 }], exitCode: 3,
    });
    expect(parseConsole('KL_PASS_STAGE init 1\nKL_PASS_FAIL insmod /modules/9p.ko\nKL_PASS_EXIT=125\n')).toMatchObject({ exitCode: 125, failure: 'insmod /modules/9p.ko' });
    expect(parseConsole('Booting from ROM..\n')).toEqual({ stages: [] });
  });

  it('names the guest kernel\'s soft lockup (the line seen on 2026-11-23)', () => {
    const text = 'KL_PASS_STAGE root-ready 3.4\n RUN  v4.1.12 /work/main\n[   45.015703] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [node:156]\n[   64.9] watchdog: BUG: soft lockup - CPU#0 stuck for 45s! [node:176]\n';
    expect(parseConsole(text)).toMatchObject({ lockup: 'BUG: soft lockup - CPU#1 stuck for 26s! [node:156]' });
    expect(parseConsole(text).exitCode).toBeUndefined();
  });

  it('keeps the last lines of a hung guest for the failure message', () => {
    expect(lastLines('a\nb\nc\nd\n\n', 2)).toBe('c\nd');
  });
});

describe('guest pass: which labs run in the guest', () => {
  const labs = [
    { id: '00-environment', spec: 'labs/00-environment/environment.spec.ts', requires: ['root', 'cc'] },
    { id: 'ebpf/01-bpftrace', spec: 'labs/ebpf/01-bpftrace/bpftrace.spec.ts', requires: ['root', 'bpftrace'] },
    { id: 'cloud/03-kvm', spec: 'labs/cloud/03-kvm/kvm.spec.ts', requires: ['root', 'cc', 'kvm'] },
    { id: 'kernel/K1-boot', spec: 'labs/kernel/K1-boot/boot.spec.ts', requires: ['qemu', 'busybox'] },
  ];

  it('skips labs that need KVM or start QEMU, each with its reason, and runs the rest', () => {
    const s = selectGuestLabs(labs, []);
    expect(s.run.map((l) => l.id)).toEqual(['00-environment', 'ebpf/01-bpftrace']);
    expect(s.skip.map((x) => [x.lab.id, x.reason])).toEqual([
      ['cloud/03-kvm', expect.stringMatching(/\/dev\/kvm/)],
      ['kernel/K1-boot', expect.stringMatching(/own QEMU/)],
    ]);
  });

  it('filters like vitest: by a part of the lab id or spec path', () => {
    expect(selectGuestLabs(labs, ['bpftrace']).run.map((l) => l.id)).toEqual(['ebpf/01-bpftrace']);
    expect(selectGuestLabs(labs, ['kernel/']).run).toEqual([]);
    expect(selectGuestLabs(labs, ['kernel/']).skip).toHaveLength(1);
  });

  it('on this repository: 3.3, 5.6 and 6.1 (they boot their own guest), K1–K3 and 7.2 are skipped, every other lab runs', () => {
    const s = selectGuestLabs(listLabs(), []);
    expect(s.skip.map((x) => x.lab.id).sort()).toEqual(['cloud/03-kvm', 'extend/01-module', 'kernel/K1-boot', 'kernel/K2-gdb', 'kernel/K3-syscall', 'net/06-vfs-write', 'system/02-boot']);
    expect(s.run.map((l) => l.id)).toContain('cloud/02-cgroup');
  });
});

describe('guest pass: forbidden adaptations (LABS_FORBID_ADAPTED)', () => {
  it('matches the kprobe and cgroup v1 fallbacks only when forbidden', () => {
    const forbid = 'kprobes,cgroup-v1';
    expect(forbiddenAdaptation('kprobes absent (no kprobe_events): kprobe:do_exit replaced by …', forbid)).toBe('kprobes');
    expect(forbiddenAdaptation('cgroup v1: cpu.cfs_quota_us/cpu.cfs_period_us, …', forbid)).toBe('cgroup-v1');
    expect(forbiddenAdaptation('using alpine minirootfs', forbid)).toBeUndefined();
    expect(forbiddenAdaptation('kprobes absent: …', '')).toBeUndefined();
    expect(forbiddenAdaptation('cgroup v1: …', 'kprobes')).toBeUndefined();
  });

  it('covers every kprobe and cgroup v1 adaptation the lab specs can make', () => {
    // A lab in the anatomy may say its adaptation from experiment.ts or judge.ts too: every .ts of the lab's folder.
    const labs = ['labs/ebpf/01-bpftrace', 'labs/ebpf/02-bcc', 'labs/cloud/02-cgroup'];
    const specs = labs.flatMap((l) => readdirSync(join(REPO_ROOT, l)).filter((f) => f.endsWith('.ts')).map((f) => join(l, f)));
    const messages = specs.flatMap((s) => [...readFileSync(join(REPO_ROOT, s), 'utf8').matchAll(/(?:adapted\(ctx, |adapt\()[`'](kprobes absent[^`']*|cgroup v1[^`']*)/g)].map((m) => m[1]!));
    expect(messages.length).toBeGreaterThanOrEqual(4);
    for (const m of messages) expect(forbiddenAdaptation(m, 'kprobes,cgroup-v1'), m).toBeDefined();
  });
});

describe('guest pass: the doctor\'s line', () => {
  const kernel = { path: '/boot/vmlinuz-6.1.0-56-amd64', release: '6.1.0-56-amd64' };
  it('says found with the release, or what is missing and the fix', () => {
    expect(guestKernelLine({ kernel, missingModules: [], headers: true, qemu: true })).toEqual({ ok: true, text: expect.stringContaining('6.1.0-56-amd64 (/boot/vmlinuz-6.1.0-56-amd64)') });
    const none = guestKernelLine({ missingModules: [], headers: false, qemu: true });
    expect(none.ok).toBe(false);
    expect(none.text).toMatch(/no \/boot\/vmlinuz-\*-amd64\n  fix: sudo apt-get install linux-image-amd64/);
    const partial = guestKernelLine({ kernel, missingModules: ['/lib/modules/6.1.0-56-amd64/kernel/fs/9p/9p.ko'], headers: false, qemu: false });
    expect(partial.text).toMatch(/qemu-system-x86_64 not found; modules missing: 9p.ko; no \/lib\/modules\/6.1.0-56-amd64\/build/);
  });
});

describe('guest pass: LABS_TIMEOUT_SCALE stretches the harness bounds under TCG', () => {
  it('multiplies by k > 1 and leaves bounds alone otherwise', () => {
    const before = process.env.LABS_TIMEOUT_SCALE;
    try {
      delete process.env.LABS_TIMEOUT_SCALE;
      expect(scaledTimeout(15_000)).toBe(15_000);
      process.env.LABS_TIMEOUT_SCALE = '4';
      expect(scaledTimeout(15_000)).toBe(60_000);
      process.env.LABS_TIMEOUT_SCALE = '0.5';
      expect(scaledTimeout(15_000)).toBe(15_000);
      process.env.LABS_TIMEOUT_SCALE = 'x';
      expect(scaledTimeout(15_000)).toBe(15_000);
    } finally {
      if (before === undefined) delete process.env.LABS_TIMEOUT_SCALE; else process.env.LABS_TIMEOUT_SCALE = before;
    }
  });
});
