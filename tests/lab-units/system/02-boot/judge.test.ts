import { describe, expect, it } from 'vitest';
import { commandLine, current, kallsymsValue, order, parseBoot, parseGdbstubTrace, pids, taskOffsets } from '../../../../labs/system/02-boot/judge.js';

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
    for (const v of [order(t, SYM), commandLine(t, SYM, MAGIC), current(t, SYM), pids(t, SYM)]) expect(v.got, v.message).toEqual(v.want);
  });

  it('fails a script that prints records without a stop, and says the kernel never stopped', () => {
    const t = parseBoot([rec(SYM.start_kernel, INIT, 0, 'swapper'), `KL_CMDLINE ${MAGIC}`].join('\n'), TAG, CONSOLE);
    const o = order(t, SYM);
    expect(o.got).not.toEqual(o.want);
    expect(o.message).toMatch(/never stopped the kernel/);
    expect(o.message).toMatch(/printed before the kernel ever stopped/);
    expect(commandLine(t, SYM, MAGIC).got.readAtStartKernel).toBe(false);
  });

  it('names the missing stop', () => {
    const t = parseBoot(GOOD.split('\n').slice(0, 9).join('\n'), TAG, CONSOLE);
    const o = order(t, SYM);
    expect(o.got).not.toEqual(o.want);
    expect(o.message).toMatch(/no stop at kernel_init/);
  });

  it('catches a fixed task: kernel_init with init_task and pid 0', () => {
    const bad = GOOD.replace(rec(SYM.kernel_init, '0xffff888004a00000', 1, 'swapper/0'), rec(SYM.kernel_init, INIT, 0, 'swapper/0'));
    const t = parseBoot(bad, TAG, CONSOLE);
    const c = current(t, SYM);
    expect(c.got).not.toEqual(c.want);
    expect(c.message).toMatch(/you read a fixed task \(init_task=0xffffffff82a1aa40\)/);
    const p = pids(t, SYM);
    expect(p.got.kernel_init).toBe('0');
    expect(p.message).toMatch(/kernel_init recorded as pid 0/);
  });

  it('wants the magic at the start_kernel stop, not later or before', () => {
    const later = GOOD.replace(`KL_CMDLINE console=ttyS0 panic=-1 nokaslr ${MAGIC}\n`, '').concat(`\nKL_CMDLINE ${MAGIC}`);
    expect(commandLine(parseBoot(later, TAG, CONSOLE), SYM, MAGIC).got.readAtStartKernel).toBe(false);
    expect(commandLine(parseBoot(GOOD, TAG, CONSOLE), SYM, 'kl_boot=1a2b3c4').got.readAtStartKernel).toBe(false);
  });

  it('checks /proc/1 and /proc/2 of the booted guest', () => {
    const p = pids(parseBoot(GOOD, TAG, ['KL_PROC pid=1 comm=init ppid=0']), SYM);
    expect(p.got.proc2).toBe('not read');
  });

  describe("against QEMU's record of the gdbstub", () => {
    const ALL = { ...SYM, current_task: 0x1fb80n, boot_command_line: 0xffffffff8312e920n };
    const OFF = { pid: 2416, comm: 2976 };
    const le = (v: bigint, n: number) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn); return b.toString('hex'); };
    const cmd = (c: string) => `gdbstub_io_command Received: ${c}`;
    const rep = (r: string) => `gdbstub_io_reply Sent: ${r}`;
    /** g reply: rip at byte 128, gs_base at 172. */
    const g = (pc: bigint, gs: bigint) => { const b = Buffer.alloc(560); b.write(le(pc, 8), 128, 'hex'); b.write(le(gs, 8), 172, 'hex'); return b.toString('hex'); };
    const mread = (a: bigint, hexBytes: string) => [cmd(`m${a.toString(16)},${(hexBytes.length / 2).toString(16)}`), rep(hexBytes)];
    const GS0 = 0xffffffff83044000n;
    const GS = 0xffff88800f800000n;
    /** One breakpoint stop and the script's reads of current (pid and comm unless `short`). */
    function stop(pc: bigint, gs: bigint, task: bigint, pid: number, comm: string, short = false, more: string[] = []): string[] {
      return [
        ...[SYM.start_kernel, SYM.rest_init, SYM.kernel_init, SYM.kthreadd].flatMap((a) => [cmd(`Z1,${a.toString(16)},1`), rep('OK')]),
        cmd('vCont;c:p1.-1'), rep('T05thread:p01.01;'), cmd('g'), rep(g(pc, gs)),
        ...[SYM.start_kernel, SYM.rest_init, SYM.kernel_init, SYM.kthreadd].flatMap((a) => [cmd(`z1,${a.toString(16)},1`), rep('OK')]),
        ...mread(gs + 0x1fb80n, le(task, 8)),
        ...(short ? [] : [...mread(task + 2416n, le(BigInt(pid), 4)), ...mread(task + 2976n, Buffer.from(`${comm}\0`).toString('hex'))]),
        ...more,
        cmd('vCont;s:p1.1'), rep('T05thread:p01.01;'), cmd('g'), rep(g(pc + 5n, gs)),
      ];
    }
    const I = BigInt(INIT);
    const traceOf = (short = false, cmdline = `console=ttyS0 ${MAGIC}`) => [
      cmd('?'), rep('T05thread:p01.01;'), cmd('g'), rep(g(0xfff0n, 0n)),
      ...stop(SYM.start_kernel, GS0, I, 0, 'swapper', short, mread(ALL.boot_command_line, Buffer.from(`${cmdline}\0`).toString('hex'))),
      ...stop(SYM.rest_init, GS, I, 0, 'swapper/0', short),
      ...stop(SYM.kthreadd, GS, 0xffff888004a048c0n, 2, 'swapper/0', short),
      ...stop(SYM.kernel_init, GS, 0xffff888004a00000n, 1, 'swapper/0', short),
    ].join('\n');
    /** The observer's marks now carry pc and breakpoint only. */
    const marksOnly = GOOD.split('\n').map((l) => (l.startsWith(TAG) ? l.replace(/,"task".*\}$/, '}') : l)).join('\n');
    const wire = (log: string) => ({ stops: parseGdbstubTrace(log), symbols: ALL, offsets: OFF });

    it('reads stops, pc, gs_base, breakpoints and the bytes of each read out of the trace; steps are marked', () => {
      const w = parseGdbstubTrace(traceOf());
      expect(w.map((s) => [s.pc, s.step, s.bp])).toEqual([
        [SYM.start_kernel, false, 'hw'], [SYM.start_kernel + 5n, true, undefined], [SYM.rest_init, false, 'hw'], [SYM.rest_init + 5n, true, undefined],
        [SYM.kthreadd, false, 'hw'], [SYM.kthreadd + 5n, true, undefined], [SYM.kernel_init, false, 'hw'], [SYM.kernel_init + 5n, true, undefined]]);
      expect(w[0]!.gsBase).toBe(GS0);
    });

    it('passes a correct session: current, pid, comm and the command line are what QEMU answered at each stop', () => {
      const t = parseBoot(marksOnly, TAG, CONSOLE, wire(traceOf()));
      for (const v of [order(t, SYM), commandLine(t, ALL, MAGIC), current(t, SYM), pids(t, SYM)]) expect(v.got, v.message).toEqual(v.want);
    });

    it('fails tagged lines printed by the script with no stop in QEMU\'s record (a silenced, impersonated observer)', () => {
      const t = parseBoot(marksOnly, TAG, CONSOLE, wire([cmd('?'), rep('T05thread:p01.01;'), cmd('vCont;c:p1.-1'), rep('W00')].join('\n')));
      const o = order(t, SYM);
      expect(o.got).not.toEqual(o.want);
      expect(o.message).toMatch(/4 line\(s\) with the harness's stop tag .* match no stop in QEMU's own record/);
    });

    it('fails a stop at one of the four the observer never reported', () => {
      const t = parseBoot(marksOnly.split('\n').filter((l) => !l.includes('"pc": "0xffffffff810cd560"') && !l.includes('"pc":"0xffffffff810cd560"')).join('\n'), TAG, CONSOLE, wire(traceOf()));
      const o = order(t, SYM);
      expect(o.got.harnessRecord).not.toBe('intact');
      expect(o.message).toMatch(/stop\(s\) at kthreadd that the harness's stop observer never reported/);
    });

    it('fails pid and comm the script did not read at the stop, and a command line it did not read there', () => {
      const t = parseBoot(marksOnly, TAG, CONSOLE, wire(traceOf(true, 'console=ttyS0')));
      const c = current(t, SYM);
      expect(c.got).not.toEqual(c.want);
      expect(c.message).toMatch(/kernel_init: yours task=0xffff888004a00000 pid=1 comm=swapper\/0 — kernel not read at this stop: pid/);
      expect(c.message).not.toMatch(/fixed task/);
      const l = commandLine(t, ALL, MAGIC);
      expect(l.got.readAtStartKernel).toBe(false);
      expect(l.message).toMatch(/it read only "console=ttyS0"/);
    });

    it('does not count bytes the script wrote itself as read', () => {
      const log = traceOf(false, 'console=ttyS0').replace(cmd('vCont;c:p1.-1'), [cmd(`M${ALL.boot_command_line.toString(16)},19:${Buffer.from(MAGIC).toString('hex')}`), rep('OK'), cmd('vCont;c:p1.-1')].join('\n'));
      const t = parseBoot(marksOnly, TAG, CONSOLE, wire(log.replace(Buffer.from('console=ttyS0\0').toString('hex'), Buffer.from(`${MAGIC}\0`).toString('hex'))));
      expect(commandLine(t, ALL, MAGIC).got.readAtStartKernel).toBe(false);
    });
  });
});
