/** Lab 8.4's verdicts (labs/paths/04-tracers/judge.ts) and the trial script's parser (experiment.ts) on made-up trials. */
import { describe, expect, it } from 'vitest';
import { countLine, END_AFTER_EXIT_MS, LINGER_MS, PAUSE_MS, parseFtraceTrial, randomShape, recipeEnd, sections, type Trial } from '../../../../labs/paths/04-tracers/experiment.js';
import { bpftrace, endVerdict, ftrace, median, overheads, perf, recipeCount, workload } from '../../../../labs/paths/04-tracers/judge.js';

const base = (extra: Partial<Trial> = {}): Trial => ({
  tool: 'none', where: 'host', syscall: 'umask', n: 30000, m: 7000,
  tracee: { pid: 200, exit: 'exit 0', ns: 45_000_000 }, decoy: { pid: 201, exit: 'exit 0', ns: 10_000_000 },
  kernel: { tracee: 30000, decoy: 7000, lost: false },
  ...extra,
});
const ended = (stdout: string, afterExitMs = 140) => ({ ended: true, exit: 'exit 0', stdout, stderr: '', afterExitMs });

describe('Lab 8.4 judge', () => {
  it('reads the count as the last number of the last non-empty line', () => {
    expect(recipeCount('Attaching 2 probes...\n\n\n@calls: 30000\n\n')).toBe(30000);
    expect(recipeCount('30000\n')).toBe(30000);
    expect(recipeCount('calls of umask in 200: 30000\n')).toBe(30000);
    expect(recipeCount('__x64_sys_umask: 30000 calls\n')).toBe(30000);
    expect(recipeCount('Attaching 1 probe...\n')).toBeUndefined();
    expect(recipeCount('')).toBeUndefined();
    expect(recipeCount('no numbers here\n')).toBeUndefined();
  });

  it('control: the workload verdict follows the kernel\'s record of both tracees', () => {
    expect(workload([base()]).got).toEqual(workload([base()]).want);
    const short = workload([base({ kernel: { tracee: 29999, decoy: 7000, lost: false } })]);
    expect(short.got).not.toEqual(short.want);
    expect(short.message).toMatch(/tracee 29999, decoy 7000/);
  });

  it('perf: perf holding a perf event and printing N passes; a guess, the decoy counted, or bpftrace doing the work fail', () => {
    const procs = [{ pid: 300, ppid: 1, exe: 'dash', path: '/usr/bin/dash', exeId: '8:2585', perfFds: 0 }, { pid: 301, ppid: 300, exe: 'perf', path: '/usr/bin/perf', exeId: '8:1234', perfFds: 1 }];
    const good = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, procs, bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' }, counters: [{ pid: 301, fd: 3, value: 30000 }] }, recipe: ended('30000\n') }));
    expect(good.got).toEqual(good.want);
    // One event per CPU: their sum is N.
    const perCpu = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, procs, bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' }, counters: [{ pid: 301, fd: 3, value: 29000 }, { pid: 301, fd: 4, value: 1000 }, { pid: 301, fd: 5, value: 0 }] }, recipe: ended('30000\n') }));
    expect(perCpu.got).toEqual(perCpu.want);
    // A dummy event kept open while the count comes from elsewhere (a tracefs instance): perf's events never reached N.
    const dummy = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, procs, bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' }, counters: [{ pid: 301, fd: 3, value: 0 }] }, recipe: ended('30000\n') }));
    expect(dummy.got).toMatchObject({ perfEventOfPerfWhenReleased: true, perfsOwnEventsCountedN: false, count: 'N' });
    expect(dummy.message).toMatch(/301:3=0\b/);
    // Counters of a process that is not perf do not count as perf's.
    const notPerf = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, procs, bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' }, counters: [{ pid: 300, fd: 3, value: 30000 }, { pid: 301, fd: 3, value: 7 }] }, recipe: ended('30000\n') }));
    expect(notPerf.got.perfsOwnEventsCountedN).toBe(false);
    const guess = perf(base({ tool: 'perf', attach: { attached: false, waitedMs: 12000, procs: [procs[0]!], bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' } }, recipe: ended('30000\n') }));
    expect(guess.got).toMatchObject({ perfEventOfPerfWhenReleased: false, count: 'N' });
    expect(guess.message).toMatch(/no perf event fd seen within the bound/);
    const both = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, procs, bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' } }, recipe: ended('37000\n') }));
    expect(both.got.count).toMatch(/^N\+M/);
    const bt = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, installedPerf: { path: '/usr/bin/perf', id: '8:1234' }, procs: [procs[0]!, { pid: 302, ppid: 300, exe: 'bpftrace', path: '/usr/bin/bpftrace', exeId: '8:2623', perfFds: 2 }], bpf: [] }, recipe: ended('30000\n') }));
    expect(bt.got).toMatchObject({ perfEventOfPerfWhenReleased: false, otherTracers: ['bpftrace'] });
    expect(bt.message).toMatch(/302:bpftrace\(2 perf fds\)/);
    // A program of the recipe's own named perf (its own perf_event_open, counting right) is not perf.
    const fake = [procs[0]!, { pid: 303, ppid: 300, exe: 'perf', path: '/tmp/x/perf', exeId: '8:99', perfFds: 1 }];
    const own = perf(base({ tool: 'perf', attach: { attached: true, waitedMs: 60, procs: fake, bpf: [], installedPerf: { path: '/usr/bin/perf', id: '8:1234' }, counters: [{ pid: 303, fd: 3, value: 30000 }] }, recipe: ended('30000\n') }));
    expect(own.got).toMatchObject({ perfEventOfPerfWhenReleased: false, namedPerfButNotPerf: ['/tmp/x/perf'], perfsOwnEventsCountedN: false, count: 'N' });
    expect(own.message).toMatch(/\/tmp\/x\/perf is named perf but is another program/);
  });

  it('bpftrace: a program on sys_enter_/sys_exit_<syscall> or raw_syscalls passes; another tracepoint or no end fails', () => {
    const att = (tp: string) => ({ attached: true, waitedMs: 900, procs: [{ pid: 400, ppid: 1, exe: 'bpftrace', path: '/usr/bin/bpftrace', exeId: '8:2623', perfFds: 2 }], bpf: [{ pid: 400, fd: 8, prog_id: 7, fd_type: 'tracepoint', tracepoint: tp }] });
    for (const tp of ['sys_enter_umask', 'sys_exit_umask', 'sys_enter']) {
      const v = bpftrace(base({ tool: 'bpftrace', attach: att(tp), recipe: ended('@calls: 30000\n') }));
      expect(v.got, tp).toEqual(v.want);
    }
    const other = bpftrace(base({ tool: 'bpftrace', attach: att('sys_enter_getsid'), recipe: ended('@calls: 30000\n') }));
    expect(other.got.onTheSyscallsTracepoint).toBe(false);
    // The right tracepoint plus read(2)'s, whose buffer carries the tracee's N: another system call's tracepoint fails.
    const two = { ...att('sys_enter_umask'), bpf: [...att('sys_enter_umask').bpf, { pid: 400, fd: 9, prog_id: 8, fd_type: 'tracepoint', tracepoint: 'sys_exit_read' }, { pid: 400, fd: 10, prog_id: 9, fd_type: 'tracepoint', tracepoint: 'sched_process_exit' }] };
    const fifo = bpftrace(base({ tool: 'bpftrace', attach: two, recipe: ended('30000\n') }));
    expect(fifo.got).toMatchObject({ onTheSyscallsTracepoint: true, otherSyscallTracepoints: ['sys_exit_read'], count: 'N' });
    // raw_syscalls beside the syscall's own tracepoint: they watch the tracee's other calls (its exit_group), not a count.
    const raw = { ...att('sys_enter_umask'), bpf: [...att('sys_enter_umask').bpf, { pid: 400, fd: 9, prog_id: 8, fd_type: 'tracepoint', tracepoint: 'sys_enter' }] };
    expect(bpftrace(base({ tool: 'bpftrace', attach: raw, recipe: ended('30000\n') })).got.otherSyscallTracepoints).toEqual(['raw_syscalls:sys_enter beside sys_*_umask']);
    const late = bpftrace(base({ tool: 'bpftrace', attach: att('sys_enter_umask'), recipe: { ended: false, exit: 'signal SIGINT', stdout: '@calls: 30000\n', stderr: '' } }));
    expect(late.got.ended).toMatch(/^did not end within 10 s/);
    expect(bpftrace(undefined).got).toEqual({ ran: false });
  });

  it('ftrace: the function tracer on the entry function for the tracee passes; nop, no pid filter fail', () => {
    const f = (currentTracer: string, filter: string[], pids: string[]) => ({ attached: currentTracer !== 'nop', waitedMs: 200, procs: [], bpf: [], ftrace: { currentTracer, tracingOn: '1', filter, pids } });
    const good = ftrace(base({ tool: 'ftrace', where: 'guest', attach: f('function', ['__x64_sys_umask'], ['200']), recipe: ended('30000\n') }));
    expect(good.got).toEqual(good.want);
    const event = ftrace(base({ tool: 'ftrace', attach: f('nop', [], ['no', 'pid']), recipe: ended('30000\n') }));
    expect(event.got).toMatchObject({ tracerWhenReleased: 'nop', filterOnTheEntryFunction: false, onlyTheTracee: false });
    expect(event.message).toMatch(/current_tracer=nop/);
    const all = ftrace(base({ tool: 'ftrace', attach: f('function', ['__x64_sys_umask'], ['no', 'pid']), recipe: ended('37000\n') }));
    expect(all.got).toMatchObject({ onlyTheTracee: false, count: expect.stringMatching(/^N\+M/) });
    const wrongFn = ftrace(base({ tool: 'ftrace', attach: f('function', ['__x64_sys_getsid'], ['200']), recipe: ended('30000\n') }));
    expect(wrongFn.got.filterOnTheEntryFunction).toBe(false);
    // Set up right but not recording (tracing_on=0): the count came from somewhere else.
    const off = ftrace(base({ tool: 'ftrace', attach: { ...f('function', ['__x64_sys_umask'], ['200']), ftrace: { currentTracer: 'function', tracingOn: '0', filter: ['__x64_sys_umask'], pids: ['200'] } }, recipe: ended('30000\n') }));
    expect(off.got).toMatchObject({ recordingWhenReleased: false, count: 'N' });
    expect(off.message).toMatch(/tracing_on=0/);
  });

  it('the end: after the tracee\'s exit and soon after it, in the kernel\'s record; before it, long after it, or unrecorded fails', () => {
    const shape = { lingerMs: 400, pausesMs: [2700] };
    const at = (afterExitMs: number | undefined, extra: object = {}) => endVerdict(base({ tool: 'bpftrace', shape, recipe: { ...ended('30000\n'), afterExitMs, ...extra } as Trial['recipe'] }));
    expect(at(3)).toBe('when the tracee exited');
    expect(at(1_100)).toBe('when the tracee exited');
    expect(at(-250)).toMatch(/^ended 250 ms before the tracee exited/);
    expect(at(END_AFTER_EXIT_MS.host + 1)).toMatch(/more than 1800 ms/);
    expect(endVerdict(base({ tool: 'ftrace', where: 'guest', shape, recipe: ended('30000\n', 2_500) }))).toBe('when the tracee exited');
    expect(endVerdict(base({ tool: 'ftrace', where: 'guest', shape, recipe: ended('30000\n', END_AFTER_EXIT_MS.guest + 1) }))).toMatch(/more than 4500 ms in the guest/);
    expect(at(undefined, { endNote: 'no sched_process_exit of the recipe\'s process 9 in the kernel\'s record' })).toMatch(/^ended, but no sched_process_exit of the recipe/);
    const msg = bpftrace(base({ tool: 'bpftrace', shape, recipe: ended('30000\n', -250) })).message;
    expect(msg).toMatch(/in 2 bursts with pauses of 2700 ms, then lived on 400 ms/);
    expect(msg).toMatch(/250 ms before the tracee's exit/);
    // Whatever quiet time a recipe waits for, it ends inside a pause or more than the bound after the exit.
    for (const where of ['host', 'guest'] as const) expect(PAUSE_MS[where][0] - LINGER_MS[1]).toBeGreaterThan(END_AFTER_EXIT_MS[where] + 100);
    for (let i = 0; i < 50; i++) {
      const s = randomShape(i % 2 ? 'host' : 'guest');
      expect(s.pausesMs.length).toBeGreaterThanOrEqual(1);
      expect(countLine(7, s).split(' ').map(Number)).toEqual([7, s.lingerMs, ...s.pausesMs]);
    }
    expect(countLine(7)).toBe('7');
  });

  it('reads the two ends from sched_process_exit lines (one clock)', () => {
    const lines = [
      '          tracee-88      [001] ..... 5935.100000: sched_process_exit: comm=tracee pid=88 prio=120',
      '        bpftrace-90      [000] ..... 5935.250400: sched_process_exit: comm=bpftrace pid=90 prio=120',
    ];
    expect(recipeEnd(lines, 88, 90)).toEqual({ afterExitMs: 150 });
    expect(recipeEnd([...lines].reverse(), 90, 88)).toEqual({ afterExitMs: -150 });
    expect(recipeEnd(lines.slice(0, 1), 88, 90).endNote).toMatch(/no sched_process_exit of the recipe's process 90/);
    expect(recipeEnd(lines.slice(1), 88, 90).endNote).toMatch(/no sched_process_exit of the tracee 88/);
  });

  it('overheads: medians per call against the untraced runs of the same place', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([1, 2, 3, 4])).toBe(2.5);
    const t = (tool: Trial['tool'], ns: number, where: Trial['where'] = 'host') => base({ tool, where, tracee: { pid: 1, exit: 'exit 0', ns } });
    const o = overheads([t('none', 30_000_000), t('perf', 33_000_000), t('bpftrace', 39_000_000), t('none', 30_000_000), t('ftrace', 60_000_000, 'guest'), t('none', 45_000_000, 'guest')]);
    expect(o).toEqual([
      { tool: 'ftrace', where: 'guest', trials: 1, baseNs: 1500, tracedNs: 2000, percent: 33 },
      { tool: 'perf', where: 'host', trials: 1, baseNs: 1000, tracedNs: 1100, percent: 10 },
      { tool: 'bpftrace', where: 'host', trials: 1, baseNs: 1000, tracedNs: 1300, percent: 30 },
    ]);
  });

  it('parses the trial script\'s sections', () => {
    const out = [
      '== attach ==', 'waited_ds=3', 'current_tracer=function', 'tracing_on=1', 'set_ftrace_filter=__x64_sys_umask ', 'set_ftrace_pid=88 ', 'set_event_pid=', 'tracee=88 decoy=89',
      '== kernel ==', '12000 entries-in-buffer/entries-written: 12000/12000', '3000 entries-in-buffer/entries-written: 3000/3000',
      '== tracees ==', 'tracee exit 0 calls=12000 ns=60000000', 'decoy exit 0 calls=3000 ns=15000000',
      '== recipe ==', 'ended=exit 0', 'instance_entries=entries-in-buffer/entries-written: 12000/12000',
      '== exits ==', 'tracee=88 recipe=91',
      '          tracee-88      [000] ..... 120.500000: sched_process_exit: comm=tracee pid=88 prio=120',
      '              sh-91      [001] ..... 120.731000: sched_process_exit: comm=sh pid=91 prio=120',
      '== recipe stdout ==', '12000', '== recipe stderr ==', '== end ==',
    ].join('\n');
    expect([...sections(out).keys()]).toEqual(['attach', 'kernel', 'tracees', 'recipe', 'exits', 'recipe stdout', 'recipe stderr', 'end']);
    const t = parseFtraceTrial(out, 'ftrace', 'guest', 'umask', 12000, 3000);
    expect(t).toMatchObject({ tracee: { pid: 88, exit: 'exit 0', ns: 60000000 }, decoy: { pid: 89 }, kernel: { tracee: 12000, decoy: 3000, lost: false } });
    expect(t.attach?.ftrace).toEqual({ currentTracer: 'function', tracingOn: '1', filter: ['__x64_sys_umask'], pids: ['88'] });
    expect(t.recipe).toMatchObject({ ended: true, exit: 'exit 0', stdout: '12000\n', afterExitMs: 231 });
    expect(t.note).toBeUndefined();
    const cut = parseFtraceTrial(out.split('== recipe ==')[0]!, 'ftrace', 'guest', 'umask', 12000, 3000);
    expect(cut.note).toMatch(/did not finish/);
  });
});
