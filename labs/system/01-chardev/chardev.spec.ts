/**
 * System Lab 1 — 设备驱动: a character device driver (seed 001 §5 设备驱动程序).
 * The student's `labchar.ko` registers /dev/labchar, whose every open keeps a
 * buffer of its own (read, write, llseek, ioctl). Modules load into the kernel
 * they were built for: this host's kernel has none, so the module is built
 * against Debian's 6.1 headers and loaded in a QEMU guest of that kernel, one
 * boot for every step (natively where the kernel loads modules). The harness's
 * probe makes the system calls with offsets, lengths and bytes picked at
 * random by the spec; the kernel's answers (sysfs, /proc/devices, the node,
 * each call's result, the log) are compared with the device the README
 * documents — nothing the module prints counts.
 *
 * The lab's anatomy: experiment.ts builds and runs the steps (`Run`),
 * device-model.ts is the documented device, judge.ts turns the evidence into
 * facts and messages, this file says what must hold.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { capabilities } from '../../../helpers/harness/capabilities.js';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, skipOrFail, unmet } from '../../../helpers/harness/requires.js';
import { buildAndRun, LEAK_CYCLES, PLAN, type Run } from './experiment.js';
import * as judge from './judge.js';

let run: Run;
let ev: judge.Evidence;

describe('System Lab 1 — a character device driver (设备驱动)', () => {
  requires(...labRequires(import.meta.url));
  /** A kernel that loads modules runs the steps itself; any other needs QEMU and busybox for a guest of Debian's (so the lab also runs inside npm run test:guest). */
  const guestNeeds = async () => ((await capabilities()).modules.ok ? undefined : unmet(['qemu', 'busybox']));
  beforeEach(async (ctx) => {
    const reason = await guestNeeds();
    if (reason) skipOrFail(ctx, reason);
  });

  beforeAll(async () => {
    if ((await unmet(labRequires(import.meta.url))) || (await guestNeeds())) return;
    run = await buildAndRun(PLAN);
    ev = { sections: run.result.sections, console: run.console, where: run.target.where, note: run.target.note };
  }, 400_000);

  it('builds labchar.ko against the headers of the kernel it loads into, and that kernel runs the steps', async (ctx) => {
    if (run.target.where === 'guest') await adapted(ctx, run.target.note);
    if (run.result.guest) recordMetric(ctx, { name: `guest boot and device steps (${run.result.guest.boot.accel})`, value: run.result.guest.boot.seconds, unit: 's', group: 'chardev lab' });
    expect({ release: ev.sections.release, vermagic: run.vermagic.split(' ')[0], reachedTheEnd: ev.sections.done !== undefined },
      `vermagic "${run.vermagic}"\nscript output:\n${run.result.output.split('\n').slice(-40).join('\n')}\n(${ev.where}: ${ev.note})`)
      .toEqual({ release: run.target.release, vermagic: run.target.release, reachedTheEnd: true });
  });

  it('insmod registers a character device: /sys/class/<class>/labchar/dev gives major:minor, /proc/devices lists the major, /dev/labchar is a character node of that number', () => {
    const r = judge.registered(ev);
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('bytes written at a random offset read back at that offset, in reads that go on where the last ended; the hole reads as zeros and reads stop at the end of the data; pread/pwrite use their own offset (*ppos used and moved)', () => {
    const r = judge.calls(ev, PLAN, 'offsets');
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('lseek from SEEK_SET, SEEK_CUR and SEEK_END (the end of the data) lands where asked, EINVAL outside 0..4096; a write at 4096 fails with ENOSPC, one across it is shortened', () => {
    const r = judge.calls(ev, PLAN, 'lseek');
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('two opens do not share state: a new open is empty, each reads back only what it wrote over the same range, an open after close starts empty again, many opens at once each have their own', () => {
    const r = judge.calls(ev, PLAN, 'perOpen');
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('ioctl: LABCHAR_GET_SIZE gives the end of the data, LABCHAR_RESET empties only this open (zeros, size 0, position kept), an unknown command fails with ENOTTY', () => {
    const r = judge.calls(ev, PLAN, 'ioctl');
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('a read, write or ioctl with a bad user pointer fails with EFAULT and changes neither the bytes nor the position (copies checked)', () => {
    const r = judge.calls(ev, PLAN, 'efault');
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('every close frees its buffer: 2000 opens, each writing a byte and closing, leave the kernel\'s free memory where it was (/proc/meminfo MemFree, Slab)', (ctx) => {
    const r = judge.leak(ev, LEAK_CYCLES);
    if (Number.isFinite(r.keptKiB)) recordMetric(ctx, { name: `memory kept after ${LEAK_CYCLES} opens and closes`, value: r.keptKiB, unit: 'kB', group: 'chardev lab' });
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('rmmod removes /dev/labchar, its sysfs entry and its number, and the module loads and unloads again', (ctx) => {
    afterCorrectness(ctx, ['insmod registers'], 'the removal');
    const r = judge.removal(ev);
    expect(r.facts, r.message).toEqual(r.expected);
  });

  it('the kernel log of the steps shows no oops, BUG or WARNING', (ctx) => {
    afterCorrectness(ctx, ['insmod registers'], 'a clean kernel log');
    const r = judge.cleanLog(ev);
    expect(r.facts, r.message).toEqual(r.expected);
  });
});
