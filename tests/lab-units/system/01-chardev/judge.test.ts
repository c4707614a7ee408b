/** System Lab 1's device model and verdicts (labs/system/01-chardev/device-model.ts, judge.ts) on made-up evidence. */
import { describe, expect, it } from 'vitest';
import { CAPACITY, ERRNO, expectedOutcomes, GET_SIZE, parseProbe, RESET, sameOutcome, type Op, type Outcome } from '../../../../labs/system/01-chardev/device-model.js';
import { LEAK_CYCLES, makePlan, script } from '../../../../labs/system/01-chardev/experiment.js';
import { calls, charMajors, cleanLog, leak, nodeDev, registered, removal, sysfsDevs, type Evidence } from '../../../../labs/system/01-chardev/judge.js';

const ops = (...texts: string[]): Op[] => texts.map((text) => ({ group: 'offsets', text }));
/** The probe's lines for these outcomes, as chardev_probe prints them. */
const probeLines = (list: readonly Op[], outs: readonly Outcome[]) =>
  outs.map((o, i) => `${i} ${list[i]!.text.split(':')[0]} ret=${o.anyFd ? 3 : o.ret} errno=${o.errno}${o.val !== undefined ? ` val=${o.val}` : ''}${o.data ? ` data=${o.data}` : ''}`).join('\n');

const PROC_DEVICES = 'Character devices:\n  1 mem\n 10 misc\n240 labchar\n\nBlock devices:\n  8 sd\n';
const evidence = (sections: Record<string, string>, console_ = ''): Evidence => ({ sections, console: console_, where: 'guest', note: 'test' });

describe('the device model', () => {
  it('keeps a buffer per open: bytes at an offset, a zero hole, the end of the data, the size', () => {
    const out = expectedOutcomes(ops('open:A', 'seek:A:3:S', 'write:A:aabb', 'read:A:4', 'seek:A:0:S', 'read:A:10', 'open:B', 'read:B:4', `ioctl:A:${GET_SIZE.toString(16)}`, `ioctl:B:${GET_SIZE.toString(16)}`));
    expect(out.map((o) => [o.ret, o.data ?? '', o.val ?? null])).toEqual([
      [0, '', null], [3, '', null], [2, '', null], [0, '', null], [0, '', null], [5, '000000aabb', null], [0, '', null], [0, '', null], [0, '', 5], [0, '', 0],
    ]);
  });

  it('refuses past the capacity, shortens across it, rejects positions outside 0..capacity, ENOTTY for unknown commands, EFAULT without a change', () => {
    const out = expectedOutcomes(ops('open:C', `seek:C:${CAPACITY}:S`, 'write:C:01', `seek:C:${CAPACITY - 1}:S`, 'write:C:0102', 'seek:C:-1:S', `seek:C:${CAPACITY + 1}:S`, 'seek:C:0:C',
      'ioctl:C:6b07', 'readbad:C:4', `ioctl:C:${RESET.toString(16)}`, `ioctl:C:${GET_SIZE.toString(16)}`));
    expect(out.map((o) => [o.ret, o.errno])).toEqual([
      [0, 0], [CAPACITY, 0], [-1, ERRNO.ENOSPC], [CAPACITY - 1, 0], [1, 0], [-1, ERRNO.EINVAL], [-1, ERRNO.EINVAL], [CAPACITY, 0],
      [-1, ERRNO.ENOTTY], [-1, ERRNO.EFAULT], [0, 0], [0, 0],
    ]);
  });

  it('pread and pwrite use their offset and leave the position; pwrite grows the size and refuses at the capacity', () => {
    const out = expectedOutcomes(ops('open:A', 'seek:A:2:S', 'write:A:aabbcc', 'seek:A:1:S', 'pread:A:2:3', 'seek:A:0:C', 'pwrite:A:dd:4', 'seek:A:0:C', 'pread:A:9:0',
      'pwrite:A:ee:6', `ioctl:A:${GET_SIZE.toString(16)}`, `pwrite:A:01:${CAPACITY}`, 'pread:A:4:9'));
    expect(out.map((o) => [o.ret, o.errno, o.data ?? '', o.val ?? null])).toEqual([
      [0, 0, '', null], [2, 0, '', null], [3, 0, '', null], [1, 0, '', null], [2, 0, 'bbcc', null], [1, 0, '', null], [1, 0, '', null], [1, 0, '', null],
      [5, 0, '0000aabbdd', null], [1, 0, '', null], [0, 0, '', 7], [-1, ERRNO.ENOSPC, '', null], [0, 0, '', null],
    ]);
  });

  it('parses the probe lines and compares outcomes (any descriptor for open, the int only for GET_SIZE)', () => {
    const got = parseProbe('0 open ret=3 errno=0\n1 ioctl ret=0 errno=0 val=12\n2 read ret=2 errno=0 data=0a0b\n3 ioctl ret=-1 errno=25 val=-1\nnoise');
    expect(got.get(2)).toEqual({ ret: 2, errno: 0, data: '0a0b' });
    expect(sameOutcome({ ret: 0, errno: 0, anyFd: true }, got.get(0))).toBe(true);
    expect(sameOutcome({ ret: 0, errno: 0, val: 12 }, got.get(1))).toBe(true);
    expect(sameOutcome({ ret: 0, errno: 0, val: 13 }, got.get(1))).toBe(false);
    expect(sameOutcome({ ret: -1, errno: ERRNO.ENOTTY, val: -1 }, got.get(3))).toBe(true);
    expect(sameOutcome({ ret: 2, errno: 0 }, undefined)).toBe(false);
  });
});

describe('the plan', () => {
  it('has every group, overlapping ranges, a reset inside the second range, and a script that runs both probes', () => {
    for (let i = 0; i < 50; i++) {
      const p = makePlan();
      expect(new Set(p.ops.map((o) => o.group))).toEqual(new Set(['offsets', 'lseek', 'perOpen', 'ioctl', 'efault']));
      expect(p.o2).toBeLessThan(p.o1 + p.d1.length / 2);
      expect(p.o2 + p.d2.length / 2).toBeGreaterThan(p.o1);
      expect(p.o3).toBeGreaterThan(p.o2);
      expect(p.o3).toBeLessThan(p.o2 + p.d2.length / 2);
      expect(p.unknown.every((c) => c !== GET_SIZE && c !== RESET)).toBe(true);
    }
    expect(script(makePlan()).match(/chardev_probe \/dev\/labchar/g)).toHaveLength(4);
    const p = makePlan();
    expect(p.many).toBeGreaterThanOrEqual(6);
    expect(p.ops.filter((o) => o.group === 'offsets' && /^p(read|write):/.test(o.text))).toHaveLength(3);
  });
});

describe('the verdicts', () => {
  it('a registered misc device: sysfs, /proc/devices and the node agree', () => {
    expect(sysfsDevs('/sys/class/misc/labchar/dev 10:123')).toEqual([{ cls: 'misc', dev: '10:123' }]);
    expect(charMajors(PROC_DEVICES).get(240)).toEqual(['labchar']);
    expect(charMajors(PROC_DEVICES).get(8)).toBeUndefined();
    expect(nodeDev('character special file a 7b').dev).toBe('10:123');
    const ok = registered(evidence({ insmod: 'exit=0', loaded_sysfs: '/sys/class/misc/labchar/dev 10:123', loaded_devices: PROC_DEVICES, loaded_node: 'character special file a 7b' }));
    expect(ok.facts).toEqual(ok.expected);
    const wrongNode = registered(evidence({ insmod: 'exit=0', loaded_sysfs: '/sys/class/misc/labchar/dev 10:123', loaded_devices: PROC_DEVICES, loaded_node: 'character special file a 7c' }));
    expect(wrongNode.facts.nodeIsThatDevice).toBe(false);
    expect(wrongNode.message).toContain('sysfs says 10:123');
    const none = registered(evidence({ insmod: 'exit=0', loaded_devices: PROC_DEVICES }));
    expect(none.facts).toMatchObject({ sysfsDev: false, nodeIsThatDevice: false });
  });

  it('a call that differs from the model is named with both results; a probe that died leaves "no result" with the console', () => {
    const plan = makePlan();
    const main = plan.ops.filter((o) => o.group !== 'efault');
    const efault = plan.ops.filter((o) => o.group === 'efault');
    const lines = probeLines(main, expectedOutcomes(main));
    const good = calls(evidence({ probe: lines, probe_efault: probeLines(efault, expectedOutcomes(efault)) }), plan, 'ioctl');
    expect(good.facts).toEqual({ differing: 0 });
    const unknownAt = main.findIndex((o) => o.text === `ioctl:B:${plan.unknown[0]!.toString(16)}`);
    const einval = lines.replace(new RegExp(`^${unknownAt} ioctl ret=-1 errno=25`, 'm'), `${unknownAt} ioctl ret=-1 errno=22`);
    const bad = calls(evidence({ probe: einval }), plan, 'ioctl');
    expect(bad.facts).toEqual({ differing: 1 });
    expect(bad.message).toMatch(/want -1 ENOTTY, kernel gave -1 EINVAL/);
    const died = calls(evidence({ probe: lines, probe_efault: '0 open ret=3 errno=0' }, 'BUG: unable to handle page fault for address: 00007f0000000000\nRIP: 0010:labchar_read'), plan, 'efault');
    expect(died.facts.differing).toBeGreaterThan(0);
    expect(died.message).toMatch(/no result[\s\S]*unable to handle page fault/);
  });

  it('rmmod: a node, a sysfs entry or a named major left behind fails, and so does a second load', () => {
    const clean = removal(evidence({ rmmod: 'exit=0', removed_sysfs: '', removed_devices: 'Character devices:\n 10 misc\n', removed_node: '', removed_modules: '', reload: 'exit=0\nnode present\nexit=0' }));
    expect(clean.facts).toEqual(clean.expected);
    const leaked = removal(evidence({ rmmod: 'exit=0', removed_sysfs: '/sys/class/misc/labchar/dev 10:123', removed_devices: PROC_DEVICES, removed_node: 'character special file a 7b', removed_modules: '', reload: 'insmod: ERROR: could not insert module\nexit=1\nexit=1\nnode left' }));
    expect(leaked.facts).toMatchObject({ nodeGone: false, sysfsGone: false, numberFreed: false, loadsAgain: false, unloadsAgain: false });
  });

  it('close frees: memory kept by the opens fails, noise passes, a short run fails', () => {
    const sec = (free: number, slab: number, done = LEAK_CYCLES) => `0 cycles ret=50 errno=0\nbefore MemFree: 400000 kB Slab: 20000 kB \n0 cycles ret=${done} errno=0\nafter MemFree: ${free} kB Slab: ${slab} kB `;
    const ok = leak(evidence({ leak: sec(399900, 20040) }), LEAK_CYCLES);
    expect(ok.facts).toEqual(ok.expected);
    const kept = leak(evidence({ leak: sec(384000, 36000) }), LEAK_CYCLES);
    expect(kept.facts.memoryKept).toBe(true);
    expect(kept.message).toMatch(/16000 kB kept \(8\.0 kB per open/);
    expect(leak(evidence({ leak: sec(399900, 20040, 3) }), LEAK_CYCLES).facts.cyclesDone).toBe(3);
    expect(leak(evidence({}), LEAK_CYCLES).facts.measured).toBe(false);
  });

  it('the log: a WARNING or an unfinished run fails', () => {
    expect(cleanLog(evidence({ log: 'labchar: hello', done: '' })).facts).toEqual({ finished: true, badLines: [] });
    const warned = cleanLog(evidence({ log: 'WARNING: CPU: 0 PID: 7 at lib/list_debug.c:59', done: '' }));
    expect(warned.facts.badLines).toHaveLength(1);
    expect(cleanLog(evidence({ log: '' })).facts.finished).toBe(false);
  });
});
