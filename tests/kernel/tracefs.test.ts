import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildProgram } from '../../helpers/harness/compile.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { describe, expect, it } from 'vitest';
import { run } from '../../helpers/harness/exec.js';
import { makeTraceInstance, parseTraceLine, tracepointExists } from '../../helpers/kernel/tracefs.js';
import { recordFields } from '../../helpers/kernel/ring-buffer.js';

describe('tracefs', () => {
  it('parses a line of a trace file (recorded from kvm_pio on this host)', () => {
    expect(parseTraceLine('          kvm_io-9646    [000] .....   542.775749: kvm_pio: pio_write at 0xe9 size 1 count 1 val 0x48 '))
      .toEqual({ pid: 9646, cpu: 0, ts: 542.775749, event: 'kvm_pio', body: 'pio_write at 0xe9 size 1 count 1 val 0x48 ' });
    expect(parseTraceLine('            five-16120   [001] .....  5935.441506: sys_getppid()'))
      .toEqual({ pid: 16120, cpu: 1, ts: 5935.441506, event: 'sys_getppid', body: '()' });
    expect(parseTraceLine('        udp_peer-3126    [001] b....    4711: net_dev_queue: dev= skbaddr=ff11000100882900 len=98'))
      .toMatchObject({ pid: 3126, cpu: 1, ts: 4711, event: 'net_dev_queue' }); // trace_clock "counter"
    expect(parseTraceLine('# tracer: nop')).toBeUndefined();
    // options/record-tgid adds the thread group after the task (recorded on this host); "-------" when unknown.
    expect(parseTraceLine('           sleep-22177   (  22177) [001] .....  5562.024436: sched_process_exit: comm=sleep pid=22177 prio=120 group_dead=true'))
      .toEqual({ pid: 22177, tgid: 22177, cpu: 1, ts: 5562.024436, event: 'sched_process_exit', body: 'comm=sleep pid=22177 prio=120 group_dead=true' });
    expect(parseTraceLine('      kvm_io-9650   (-------) [000] .....  542.775749: kvm_pio: pio_write at 0xe9 size 1 count 1 val 0x48 '))
      .toMatchObject({ pid: 9650, ts: 542.775749, event: 'kvm_pio' });
    expect(parseTraceLine('      kvm_io-9650   (-------) [000] .....  542.775749: kvm_pio: x')?.tgid).toBeUndefined();
  });

  it('answers undefined for a tracepoint the kernel lacks', () => {
    expect(tracepointExists('nosuchgroup/nosuchevent')).toBe(false);
    expect(makeTraceInstance(['nosuchgroup/nosuchevent'])).toBeUndefined();
  });

  it("records only the traced program's events in a private instance, then removes the instance", async (ctx) => {
    if (process.getuid?.() !== 0 || !tracepointExists('syscalls/sys_enter_getppid')) return ctx.skip('needs root and the syscalls tracepoints');
    const dir = await makeTempDir('unit-tr');
    const src = join(dir, 'five.c');
    await writeFile(src, '#include <unistd.h>\nint main(void) { for (int i = 0; i < 5; i++) getppid(); return 0; }\n');
    const prog = await buildProgram({ src });
    const inst = makeTraceInstance(['syscalls/sys_enter_getppid'], { tag: 'ut', enable: false })!;
    // The shell writes its pid, enables the event, then becomes the program (same pid).
    const script = `echo $$ > ${inst.pidFile} && echo 1 > ${inst.enableFile('syscalls/sys_enter_getppid')} && exec "$0"`;
    const r = await run('sh', ['-c', script, prog.path]);
    inst.setEnabled(false);
    const { events, lost } = inst.read();
    expect({ lost, pids: [...new Set(events.map((e) => e.pid))], names: [...new Set(events.map((e) => e.event))], count: events.length })
      .toEqual({ lost: false, pids: [r.pid], names: ['sys_getppid'], count: 5 });
    await inst.release();
    expect(existsSync(inst.dir)).toBe(false);
  });

  it('take() consumes: each recorded event comes back in exactly one take, including those recorded between takes', async (ctx) => {
    if (process.getuid?.() !== 0 || !tracepointExists('syscalls/sys_enter_getppid')) return ctx.skip('needs root and the syscalls tracepoints');
    const dir = await makeTempDir('unit-tk');
    const src = join(dir, 'n.c');
    await writeFile(src, '#include <stdlib.h>\n#include <unistd.h>\nint main(int c, char **v) { for (int i = 0; i < atoi(v[1]); i++) getppid(); return 0; }\n');
    const prog = await buildProgram({ src });
    const inst = makeTraceInstance(['syscalls/sys_enter_getppid'], { tag: 'ut', enable: false })!;
    // The shell writes its pid (and enables the event), then becomes the program: only the program's calls are recorded.
    const batch = async (n: number) => (await run('sh', ['-c', `echo $$ > ${inst.pidFile} && echo 1 > ${inst.enableFile('syscalls/sys_enter_getppid')} && exec "$0" ${n}`, prog.path])).pid;
    const a = await batch(3000);
    const first = inst.take();
    const b = await batch(7);
    const second = inst.take();
    const third = inst.take();
    inst.setEnabled(false);
    const count = (t: ReturnType<typeof inst.take>, pid: number) => t.events.filter((e) => e.pid === pid && e.event === 'sys_getppid').length;
    expect({ first: count(first, a), second: [count(second, a), count(second, b)], third: third.events.length, lost: first.lost || second.lost })
      .toEqual({ first: 3000, second: [0, 7], third: 0, lost: false });
    await inst.release();
  });

  it('takeRaw() reads the binary ring buffer: every field of an event, consumed, from each CPU\'s trace_pipe_raw', async (ctx) => {
    if (process.getuid?.() !== 0 || !tracepointExists('sched/sched_process_exit')) return ctx.skip('needs root and sched:sched_process_exit');
    const inst = makeTraceInstance(['sched/sched_process_exit'], { tag: 'ut', enable: false })!;
    const why = inst.rawUnavailable('sched/sched_process_exit', ['pid', 'prio']);
    if (why) return ctx.skip(`no binary ring buffer here: ${why}`);
    expect(inst.rawUnavailable('sched/sched_process_exit', ['no_such_field'])).toMatch(/no no_such_field field in .*sched_process_exit\/format/);
    inst.setEnabled(true);
    const pids = [];
    for (let i = 0; i < 3; i++) pids.push((await run('true', [])).pid);
    inst.setEnabled(false);
    const first = inst.takeRaw('sched/sched_process_exit');
    const exits = first.records.map((r) => recordFields(r, first.format, ['pid', 'prio'])).filter((f) => f !== undefined);
    expect(exits).toHaveLength(first.records.length);
    expect(pids.map((p) => exits.filter((f) => f.pid === BigInt(p!)).length)).toEqual([1, 1, 1]);
    expect(inst.takeRaw('sched/sched_process_exit').records).toHaveLength(0);
    await inst.release();
  });
});

describe('pairSyscalls', () => {
  it('pairs each sys_enter line with the same task\'s next exit of that call, signed, and keeps only the names asked for', async () => {
    const { pairSyscalls } = await import('../../helpers/kernel/tracefs.js');
    const lines = [
      '         mytrace-1234    (   1234) [001] .....   100.000100: sys_ptrace(request: 18, pid: 4d2, addr: 0, data: 0)',
      '             cat-1234    (   1234) [000] .....   100.000105: sys_openat(dfd: ffffff9c, filename: 7ffd, flags: 0, mode: 0)',
      '         mytrace-1234    (   1234) [001] .....   100.000150: sys_ptrace -> 0xfffffffffffffffd',
      '         mytrace-1234    (   1234) [001] .....   100.000200: sys_ptrace(request: 18, pid: 4d3, addr: 0, data: 0)',
    ];
    const calls = pairSyscalls(lines, ['ptrace']);
    expect(calls.map((c) => [c.name, c.args.get('pid'), c.ret, c.tgid])).toEqual([
      ['ptrace', 0x4d2n, -3n, 1234],
      ['ptrace', 0x4d3n, undefined, 1234],
    ]);
  });
});
