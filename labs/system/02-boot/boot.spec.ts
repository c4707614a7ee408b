/**
 * System Lab 2 — kernel的启动流程 (seed 003): from power-on to PID 1, with GDB.
 * One boot of Debian's kernel under QEMU, stopped at the reset vector; the
 * student's gdb script stops it at start_kernel, rest_init, kernel_init and
 * kthreadd and records `current` at each stop. QEMU's own record of its
 * gdbstub (every packet, out of gdb's reach) says where the kernel really
 * stopped and what the script read there: current, pid, comm and a random
 * boot parameter at start_kernel must be bytes QEMU answered to the script's
 * reads at that stop; /proc/1 and /proc/2 of the booted guest say who pid 1
 * and 2 became.
 *
 * The lab's anatomy: experiment.ts boots and drives gdb (`BootRun`), judge.ts
 * turns the evidence into facts and messages, this file says what must hold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires } from '../../../helpers/harness/requires.js';
import { qemuProcesses } from '../../../helpers/kernel/qemu.js';
import { bootTarget, MAGIC, runBootTrail, type BootRun } from './experiment.js';
import * as judge from './judge.js';
import { holds } from '../../../helpers/harness/verdict.js';

describe('System Lab 2 — the kernel boot, from start_kernel to PID 1 and 2 (kernel的启动流程)', () => {
  requires(...labRequires(import.meta.url));

  let b: BootRun;

  beforeAll(async () => {
    b = await runBootTrail(await bootTarget());
  }, 400_000);

  it('gdb stops at start_kernel, then rest_init, then at kernel_init and kthreadd in the order the kernel runs them, each on a breakpoint at the symbol’s address, and the script records each stop', async (ctx) => {
    console.log(`[7.2] kernel: ${b.target.kernel}; ${b.target.source}`);
    await adapted(ctx, `Debian's System.map is a stub: breakpoint addresses from /proc/kallsyms of a nokaslr guest`);
    if (b.result.accel === 'tcg') await adapted(ctx, `QEMU accelerator: ${b.result.accelNote}`);
    recordMetric(ctx, { name: 'boot + gdb session', value: b.seconds, unit: 's', group: 'boot trail' });
    const v = judge.order(b, b.target.symbols);
    holds(v);
  });

  it('at start_kernel the script reads the kernel command line from boot_command_line: this run’s random boot parameter', () => {
    const v = judge.commandLine(b, b.target.symbols, MAGIC);
    holds(v);
  });

  it('each record names current — the task the CPU runs at that stop: its task_struct address, pid and comm as the kernel holds them', () => {
    const v = judge.current(b, b.target.symbols);
    holds(v);
  });

  it('start_kernel and rest_init run as pid 0 (the boot task), kernel_init as pid 1 and kthreadd as pid 2 — the /proc/1 (init) and /proc/2 (kthreadd) of the booted guest', () => {
    const v = judge.pids(b, b.target.symbols);
    holds(v);
  });

  it('control: lets the guest finish its boot after the script: /init ran as pid 1 and QEMU ended by itself', () => {
    expect(b.result.output, `console tail:\n${b.result.lines.slice(-12).join('\n')}\ngdb output tail:\n${b.gdbOut.slice(-1500)}`).toMatch(/^KL_DONE$/m);
    expect(b.result.exitedByItself, 'QEMU was killed at the time bound').toBe(true);
  });

  it('control: leaves no QEMU or gdb process behind', () => {
    expect(qemuProcesses().filter((p) => p.cmdline.includes(b.socket))).toEqual([]);
  });
});
