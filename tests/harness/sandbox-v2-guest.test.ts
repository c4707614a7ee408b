/**
 * The sandbox on a real cgroup v2 (this host has v1): Debian's 6.1 kernel in
 * a QEMU guest runs the sandbox's own join script (from makeSandbox().wrap())
 * with the limit files makeSandbox writes, against the wrong-program fixtures;
 * the files the guest kernel wrote back are then read by limitHit().
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../helpers/harness/compile.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { makeSandbox } from '../../helpers/harness/sandbox.js';
import { runInGuest } from '../../helpers/kernel/guest.js';
import { debianKernel } from '../../helpers/kernel/qemu.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'harness');
const haveGuest = Boolean(debianKernel()) && existsSync('/usr/bin/qemu-system-x86_64') && process.getuid?.() === 0;

describe.runIf(haveGuest)('sandbox on cgroup v2 (Debian 6.1 guest)', () => {
  it('contains a setsid fork loop (pids.max, cgroup.kill) and a memory hog (memory.max, OOM), and names both limits', async () => {
    const fake = await makeTempDir('unit-v2g');
    writeFileSync(join(fake, 'cgroup.subtree_control'), 'memory pids\n');
    const pidsBox = makeSandbox({ memoryMiB: 256, pids: 64 }, { base: fake, version: 2, pdeathsig: false });
    const memBox = makeSandbox({ memoryMiB: 64, pids: 64 }, { base: fake, version: 2, pdeathsig: false });
    const joinScript = pidsBox.wrap('/x', []).args[1]!;
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const progs = await Promise.all(['fork_bomb', 'mem_hog'].map(async (n) => ({ name: n, path: (await buildProgram({ src: join(FIX, `${n}.c`), static: true })).path })));
    const box = (sb: typeof pidsBox, file: string) => `/sys/fs/cgroup/${sb.name}/${file}`;
    const setup = (sb: typeof pidsBox) => [
      `mkdir /sys/fs/cgroup/${sb.name}`,
      // The values makeSandbox wrote into its (fake) v2 directory.
      ...['memory.max', 'memory.swap.max', 'pids.max'].map((f) => `echo ${q(readFileSync(join(sb.dirs[0]!, f), 'utf8'))} > ${box(sb, f)}`),
    ];
    const script = [
      ...setup(pidsBox),
      `sh -c ${q(joinScript)} kl-sandbox ${box(pidsBox, 'cgroup.procs')} -- /lab/fork_bomb --setsid &`,
      'sleep 2',
      `echo "P_EVENTS=$(cat ${box(pidsBox, 'pids.events')})"`,
      `echo "P_CURRENT=$(cat ${box(pidsBox, 'pids.current')})"`,
      `echo 1 > ${box(pidsBox, 'cgroup.kill')}`,
      `for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(cat ${box(pidsBox, 'pids.current')})" = 0 ] && break; sleep 0.2; done`,
      `echo "P_AFTER_KILL=$(cat ${box(pidsBox, 'pids.current')})"`,
      `rmdir /sys/fs/cgroup/${pidsBox.name} && echo P_REMOVED`,
      ...setup(memBox),
      `sh -c ${q(joinScript)} kl-sandbox ${box(memBox, 'cgroup.procs')} -- /lab/mem_hog; echo "M_EXIT=$?"`,
      `echo "M_OOM_KILL=$(grep oom_kill ${box(memBox, 'memory.events')} | head -1 | cut -d' ' -f2)"`,
      `echo "M_PEAK=$(cat ${box(memBox, 'memory.peak')})"`,
    ].join('\n');
    const g = await runInGuest({ script, programs: progs, cgroup2: true, timeoutMs: 150_000 });
    const val = (k: string) => g.output.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1] ?? '';
    expect(g.exitCode, g.output).toBeDefined();
    expect(val('P_CURRENT'), g.output).toBe('64');
    expect(val('P_AFTER_KILL'), g.output).toBe('0');
    expect(g.output).toContain('P_REMOVED');
    expect(Number(val('M_EXIT')), g.output).toBe(137); // SIGKILL from the OOM killer
    // The guest kernel's own files, read back by the sandbox's parser.
    writeFileSync(join(pidsBox.dirs[0]!, 'pids.events'), `${val('P_EVENTS')}\n`);
    expect(pidsBox.limitHit()).toMatch(/^pids: 64 reached \(\d+ forks? refused\)$/);
    writeFileSync(join(memBox.dirs[0]!, 'memory.events'), `oom_kill ${val('M_OOM_KILL')}\n`);
    writeFileSync(join(memBox.dirs[0]!, 'memory.peak'), `${val('M_PEAK')}\n`);
    expect(memBox.limitHit()).toMatch(/^memory: killed at (63|64) MiB \(limit 64 MiB; 1 process killed by the OOM killer\)$/);
  }, 200_000);
});
