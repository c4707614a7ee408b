/** Lab K3's verdicts (labs/kernel/K3-syscall/judge.ts) on made-up builds and consoles. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { K3Run } from '../../../../labs/kernel/K3-syscall/experiment.js';
import { builtAndBooted, efaultNoCrash, parseResult, rejectsLengths, saysHello } from '../../../../labs/kernel/K3-syscall/judge.js';
import type { KernelBuild } from '../../../../helpers/kernel/kbuild.js';
import type { BootResult } from '../../../../helpers/kernel/qemu.js';

const RESULT = 'sayhello nr=451 ok=5/0 oversized=-1/22 negative=-1/22 edge=-1/22 badptr=-1/14';
const run = (lines: string[], over: Partial<K3Run> = {}): K3Run => ({
  build: { release: '6.1.99-kl', systemMap: '/c/System.map', bzImage: '/c/bzImage', cached: true, seconds: 1, key: 'k', syscalls: [] } as unknown as KernelBuild,
  entry: { nr: 451, abi: 'common', name: 'sayhelloworld', entry: 'sys_sayhelloworld' },
  systemMap: 'ffffffff81001230 T __x64_sys_sayhelloworld\n', nr: 451,
  boot: { accel: 'tcg', accelNote: '', lines, output: lines.join('\n'), exitedByItself: true, exitCode: 0, seconds: 3, command: '' } as BootResult,
  ...over,
});
const GOOD = ['[    0.000000] Linux version 6.1.99-kl (root@h)', '[    0.900000] User Mode says hello to the Kernel Mode!', RESULT, 'KL_DONE'];

describe('Lab K3 judge', () => {
  it('reads the result line', () => {
    expect(parseResult(RESULT)).toMatchObject({ ok: [5, 0], edge: [-1, 22], badptr: [-1, 14] });
    expect(parseResult('nothing')).toBeUndefined();
  });

  it('accepts a syscall that does everything', () => {
    for (const v of [builtAndBooted(run(GOOD)), saysHello(run(GOOD)), rejectsLengths(run(GOOD)), efaultNoCrash(run(GOOD))]) expect(v.got, v.message).toEqual(v.want);
  });

  it('refuses ENOSYS, a line printed twice, 512 accepted, and an oops', () => {
    expect(holds(saysHello(run(GOOD.map((l) => l.replace('ok=5/0', 'ok=-1/38')))))).toBe(false);
    expect(holds(saysHello(run([GOOD[0]!, GOOD[1]!, GOOD[1]!, RESULT, 'KL_DONE'])))).toBe(false);
    expect(rejectsLengths(run(GOOD.map((l) => l.replace('edge=-1/22', 'edge=512/0')))).got.edge).toEqual([512, 0]);
    expect(efaultNoCrash(run([...GOOD, '[    1.0] BUG: unable to handle page fault for address: ffffffff81000000'])).got.faults).toHaveLength(1);
  });

  it('wants the entry point in System.map and the booted kernel to be the one built', () => {
    expect(builtAndBooted(run(GOOD, { systemMap: '' })).got.entryPoint).toBe(false);
    expect(holds(builtAndBooted(run(GOOD, { entry: undefined })))).toBe(false);
  });
});
