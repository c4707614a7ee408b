import { describe, expect, it } from 'vitest';
import { commandLine, current, kallsymsValue, order, parseBoot, pids, taskOffsets } from '../../../../labs/system/02-boot/judge.js';

const SYM = { start_kernel: 0xffffffff83079e46n, rest_init: 0xffffffff81a49040n, kernel_init: 0xffffffff81a49110n, kthreadd: 0xffffffff810cd560n };
const TAG = 'KL_KERNEL_abc123';
const INIT = '0xffffffff82a1aa40';

function truth(n: number, pc: bigint, task: string, pid: number, comm: string): string {
  return `${TAG} ${JSON.stringify({ n, pc: `0x${pc.toString(16)}`, bp: [{ n, hw: true }], task, pid, comm })}`;
}
function rec(pc: bigint, task: string, pid: number, comm: string): string {
  return `KL_STOP pc=0x${pc.toString(16)} task=${task} pid=${pid} comm=${comm}`;
}
const CONSOLE = ['KL_BOOT release=6.1.0', 'KL_PROC pid=1 comm=init ppid=0', 'KL_PROC pid=2 comm=kthreadd ppid=0', 'KL_DONE'];
const MAGIC = 'kl_boot=1a2b3c4d';

/** A correct session: kthreadd runs before kernel_init, as on Debian's 6.1 under TCG. */
const GOOD = [
  'Hardware assisted breakpoint 1 at 0xffffffff83079e46',
  truth(1, SYM.start_kernel, INIT, 0, 'swapper'), '', 'Breakpoint 1, 0xffffffff83079e46 in ?? ()',
  rec(SYM.start_kernel, INIT, 0, 'swapper'), `KL_CMDLINE console=ttyS0 panic=-1 nokaslr ${MAGIC}`,
  truth(2, SYM.rest_init, INIT, 0, 'swapper/0'), rec(SYM.rest_init, INIT, 0, 'swapper/0'),
  truth(3, SYM.kthreadd, '0xffff888004a048c0', 2, 'swapper/0'), rec(SYM.kthreadd, '0xffff888004a048c0', 2, 'swapper/0'),
  truth(4, SYM.kernel_init, '0xffff888004a00000', 1, 'swapper/0'), rec(SYM.kernel_init, '0xffff888004a00000', 1, 'swapper/0'),
].join('\n');

describe('system/02-boot judge', () => {
  it('reads pid and comm offsets of task_struct from a raw BTF dump', () => {
    const raw = "[192] PTR '(anon)' type_id=193\n[193] STRUCT 'task_struct' size=9792 vlen=252\n\t'thread_info' type_id=1 bits_offset=0\n\t'pid' type_id=74 bits_offset=19328\n\t'comm' type_id=249 bits_offset=23808\n[194] STRUCT 'other' size=8 vlen=1\n\t'pid' type_id=1 bits_offset=0\n";
    expect(taskOffsets(raw)).toEqual({ pid: 2416, comm: 2976 });
    expect(() => taskOffsets("[1] STRUCT 'task_struct' size=8 vlen=1\n\t'state' type_id=1 bits_offset=0\n")).toThrow(/lacks pid or comm/);
  });

  it('reads any kallsyms symbol, per-CPU ones too', () => {
    const k = '000000000001fb80 A current_task\nffffffff8312e920 D boot_command_line\nffffffff810cd560 T kthreadd\n';
    expect(kallsymsValue(k, 'current_task')).toBe(0x1fb80n);
    expect(kallsymsValue(k, 'boot_command_line')).toBe(0xffffffff8312e920n);
    expect(kallsymsValue(k, 'kthread')).toBeUndefined();
  });

  it('passes a correct session whichever of kernel_init and kthreadd ran first', () => {
    const t = parseBoot(GOOD, TAG, CONSOLE);
    for (const v of [order(t, SYM), commandLine(t, SYM, MAGIC), current(t, SYM), pids(t, SYM)]) expect(v.facts, v.message).toEqual(v.expected);
  });

  it('fails a script that prints records without a stop, and says the kernel never stopped', () => {
    const t = parseBoot([rec(SYM.start_kernel, INIT, 0, 'swapper'), `KL_CMDLINE ${MAGIC}`].join('\n'), TAG, CONSOLE);
    const o = order(t, SYM);
    expect(o.facts).not.toEqual(o.expected);
    expect(o.message).toMatch(/never stopped the kernel/);
    expect(o.message).toMatch(/printed before the kernel ever stopped/);
    expect(commandLine(t, SYM, MAGIC).facts.readAtStartKernel).toBe(false);
  });

  it('names the missing stop', () => {
    const t = parseBoot(GOOD.split('\n').slice(0, 9).join('\n'), TAG, CONSOLE);
    const o = order(t, SYM);
    expect(o.facts).not.toEqual(o.expected);
    expect(o.message).toMatch(/no stop at kernel_init/);
  });

  it('catches a fixed task: kernel_init with init_task and pid 0', () => {
    const bad = GOOD.replace(rec(SYM.kernel_init, '0xffff888004a00000', 1, 'swapper/0'), rec(SYM.kernel_init, INIT, 0, 'swapper/0'));
    const t = parseBoot(bad, TAG, CONSOLE);
    const c = current(t, SYM);
    expect(c.facts).not.toEqual(c.expected);
    expect(c.message).toMatch(/you read a fixed task \(init_task=0xffffffff82a1aa40\)/);
    const p = pids(t, SYM);
    expect(p.facts.kernel_init).toBe('0');
    expect(p.message).toMatch(/kernel_init recorded as pid 0/);
  });

  it('wants the magic at the start_kernel stop, not later or before', () => {
    const later = GOOD.replace(`KL_CMDLINE console=ttyS0 panic=-1 nokaslr ${MAGIC}\n`, '').concat(`\nKL_CMDLINE ${MAGIC}`);
    expect(commandLine(parseBoot(later, TAG, CONSOLE), SYM, MAGIC).facts.readAtStartKernel).toBe(false);
    expect(commandLine(parseBoot(GOOD, TAG, CONSOLE), SYM, 'kl_boot=1a2b3c4').facts.readAtStartKernel).toBe(false);
  });

  it('checks /proc/1 and /proc/2 of the booted guest', () => {
    const p = pids(parseBoot(GOOD, TAG, ['KL_PROC pid=1 comm=init ppid=0']), SYM);
    expect(p.facts.proc2).toBe('not read');
  });
});
