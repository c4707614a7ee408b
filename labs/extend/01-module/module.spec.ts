/**
 * Lab 1 — 内核模块: a loadable module with parameters and a /proc file.
 *
 * Modules load into the kernel they were built for. This host's kernel has
 * no module support, so the module is built against Debian's 6.1 headers and
 * loaded in a QEMU guest of that kernel (one boot runs every step below); on
 * a VM whose kernel loads modules and has its headers, the same script runs
 * natively. Each step prints a section the assertions read: the loader's exit
 * status and message, the kernel log lines the step added, /proc/labmod,
 * /sys/module/labmod/parameters/, /proc/modules.
 *
 * The lab's anatomy: experiment.ts builds the modules and runs the steps,
 * judge.ts turns their sections into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { NAME, runModuleSteps, type ModuleRun } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

describe('Lab 1 — a loadable kernel module with a parameter and a /proc file (内核模块)', () => {
  requires(...labRequires(import.meta.url));
  let x: ModuleRun;

  beforeAll(async () => {
    if (await unmet(['qemu', 'busybox'])) return;
    x = await runModuleSteps();
  }, 400_000);

  it('builds labmod.ko against the headers of the kernel it loads into, and that kernel runs the steps', async (ctx) => {
    if (x.target.where === 'guest') await adapted(ctx, x.target.note);
    if (x.result.guest) recordMetric(ctx, { name: `guest boot and module steps (${x.result.guest.boot.accel})`, value: x.result.guest.boot.seconds, unit: 's', group: 'module lab' });
    holds(judge.builtForItsKernel(x));
  });

  it(`insmod ${NAME}.ko who=<random> times=<random> succeeds and init logs a line naming both values`, () => {
    holds(judge.insmodLogs(x));
  });

  it(`/proc/${NAME} reflects the parameters: ${'`times`'} lines, each greeting ${'`who`'}, the same in small reads, readable by everyone`, () => {
    holds(judge.procReflects(x));
  });

  it(`/sys/module/${NAME}/parameters/ shows who and times, and /proc/modules (lsmod) lists the module as Live`, () => {
    holds(judge.parametersAndLsmod(x));
  });

  it(`rmmod ${NAME} succeeds, exit logs a line, and /proc/${NAME} and /sys/module/${NAME} are gone`, (ctx) => {
    afterCorrectness(ctx, ['insmod ', `/proc/${NAME} reflects`], 'the removal');
    holds(judge.removed(x));
  });

  it('a module calling an unexported function is refused with the loader\'s "Unknown symbol" message', () => {
    holds(judge.unknownSymbolRefused(x));
  });

  it('the same module with another kernel\'s vermagic is refused with the loader\'s "version magic" message', () => {
    holds(judge.versionMagicRefused(x));
  });

  it('leaves no module loaded', (ctx) => {
    afterCorrectness(ctx, ['insmod ', 'rmmod '], 'leaving no module loaded');
    holds(judge.noneLeft(x));
  });
});
