/** Lab K1's verdicts (labs/kernel/K1-boot/judge.ts) on made-up consoles. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { K1Boot } from '../../../../labs/kernel/K1-boot/experiment.js';
import { endsByItself, initIsPid1, ranTheProgram, reportsRelease } from '../../../../labs/kernel/K1-boot/judge.js';
import type { BootResult } from '../../../../helpers/kernel/qemu.js';

const GOOD = [
  '[    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org)', '[    1.234567] Run /init as init process',
  'KL_INIT pid=1', 'KL_RELEASE=6.1.0-57-amd64', 'getcpu_trigger nr=309 ret=0 cpu=0 magic=0x0', 'KL_DONE', '[    2.000000] reboot: Restarting system',
];
const k1 = (lines: string[], exitedByItself = true): K1Boot => ({
  release: '6.1.0-57-amd64', qemuLeft: [],
  boot: { accel: 'tcg', accelNote: '', lines, output: lines.join('\n'), exitedByItself, exitCode: exitedByItself ? 0 : -1, seconds: 11, command: '' } as BootResult,
});

describe('Lab K1 judge', () => {
  it('accepts a console where /init did everything', () => {
    for (const v of [initIsPid1(k1(GOOD)), reportsRelease(k1(GOOD)), ranTheProgram(k1(GOOD)), endsByItself(k1(GOOD))]) expect(v.got, v.message).toEqual(v.want);
  });

  it('refuses a release that is not the booted kernel\'s', () => {
    expect(holds(reportsRelease(k1(GOOD.map((l) => l.replace('KL_RELEASE=6.1.0-57-amd64', 'KL_RELEASE=6.1.0-18-amd64')))))).toBe(false);
  });

  it('refuses a PID 1 that exits (the kernel panics) and a QEMU killed at the bound', () => {
    const exits = [...GOOD.slice(0, 6), '[    2.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000'];
    expect(endsByItself(k1(exits, false)).got).toMatchObject({ initExited: true, rebooted: false, exitedByItself: false });
    expect(holds(initIsPid1(k1(GOOD.map((l) => l.replace('pid=1', 'pid=42')))))).toBe(false);
  });
});
