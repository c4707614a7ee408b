/** Lab 1's verdicts (labs/ebpf/01-bpftrace/judge.ts) on made-up script output. */
import { describe, expect, it } from 'vitest';
import { attachPoints, exitedPids, exits, opens, opensOf, READY, LAB_TRACEPOINTS, type Exits, type Opens } from '../../../../labs/ebpf/01-bpftrace/judge.js';

const RANDOM = '/tmp/kl-bt-1/kl-7-open-3.txt';
function opened(lines: string[], extra: Partial<Opens> = {}): Opens {
  return { random: RANDOM, catPid: 300, lsPid: 301, lines, lost: 0, ...extra };
}
function exited(lines: string[], extra: Partial<Exits> = {}): Exits {
  return { script: 'ebpf/01-bpftrace/exits_tracepoint.bt', probes: 1, pids: [400, 401, 403], lines, lost: 0, alivePid: 410, reportedAlive: false, ...extra };
}

describe('Lab 1 judge', () => {
  it('reads the scripts\' lines: the BEGIN line, "<pid> <comm> Opening file: <path>", "PID <pid> exited"', () => {
    expect(READY.test('Tracing open syscalls... Hit Ctrl-C to end.')).toBe(true);
    expect(READY.test('Attaching 2 probes...')).toBe(false);
    const lines = ['300 cat Opening file: /etc/ld.so.cache', '30 cat Opening file: /x', '300 cat Opening file: /path with spaces', 'garbage 300'];
    expect(opensOf(lines, 300)).toEqual([{ comm: 'cat', path: '/etc/ld.so.cache' }, { comm: 'cat', path: '/path with spaces' }]);
    expect([...exitedPids(['PID 400 exited (comm true)', 'PID 401 exited', 'pid 402 exited', 'PID x exited'])]).toEqual([400, 401]);
  });

  it('opens: cat\'s two files and ls\'s directory under their own PID and command name', () => {
    const good = opens(opened(['1 bash Opening file: /etc/hosts', '300 cat Opening file: /etc/hosts', `300 cat Opening file: ${RANDOM}`, '301 ls Opening file: /tmp']));
    expect(good.got).toEqual(good.want);
    expect(good.message).toMatch(new RegExp(`^your workspace file ebpf/01-bpftrace/opensnoop.bt; cat also opened ${RANDOM}\\nbpftrace printed 4 lines; those of cat \\(pid 300\\) and ls \\(pid 301\\):\\n300 cat`));
    // A path cut one byte short, and paths printed whatever openat(2) received: the random file is missing.
    const short = opens(opened(['300 cat Opening file: /etc/host', '300 cat Opening file: /etc/hosts', '301 ls Opening file: /tmp'], { lost: 12 }));
    expect(short.got).toEqual({ catOpenedHosts: 'cat', catOpenedRandom: undefined, lsOpenedTmp: 'ls' });
    expect(short.got).not.toEqual(short.want);
    expect(short.message).toMatch(/bpftrace printed 3 lines and lost 12 events \(perf buffer full\)/);
    // The right path under another command name (the parent's), and nothing at all.
    expect(opens(opened(['300 sh Opening file: /etc/hosts', `300 sh Opening file: ${RANDOM}`, '301 ls Opening file: /tmp'])).got).toMatchObject({ catOpenedHosts: 'sh' });
    const none = opens(opened([]));
    expect(none.got).toEqual({ catOpenedHosts: undefined, catOpenedRandom: undefined, lsOpenedTmp: undefined });
    expect(none.message).toMatch(/:\n\(none\)\nfirst lines:\n$/);
  });

  it('exits: every reaped child reported, the one still alive not', () => {
    const good = exits(exited(['PID 400 exited', 'PID 401 exited', 'PID 403 exited', 'PID 999 exited']));
    expect([good.alive.got, good.reaped.got]).toEqual([good.alive.want, good.reaped.want]);
    // Printed at exec: the subshell that never exec'd is missing, and the living sleep is reported.
    const atExec = exits(exited(['PID 400 exited', 'PID 401 exited', 'PID 410 exited'], { reportedAlive: true, lost: 2 }));
    expect(atExec.alive.got).not.toEqual(atExec.alive.want);
    expect(atExec.alive.message).toBe('your workspace file ebpf/01-bpftrace/exits_tracepoint.bt reported "PID 410 exited" while that process (sleep 30) was still running: print at exit, not at fork or exec');
    expect(atExec.reaped.got).toEqual([{ pid: 400, reported: true }, { pid: 401, reported: true }, { pid: 403, reported: false }]);
    expect(atExec.reaped.got).not.toEqual(atExec.reaped.want);
    expect(atExec.reaped.message).toMatch(/^your workspace file ebpf\/01-bpftrace\/exits_tracepoint.bt \(1 probe\) printed 3 lines and lost 2 events, e\.g\.:\nPID 400 exited\n[\s\S]*for the reaped children 400, 401, 403 \(the last one a forked subshell that never exec'd\)$/);
    expect(exits(exited([])).reaped.message).toMatch(/e\.g\.:\n\(none\)\n/);
  });

  it('attach points: the scripts\' tracepoints listed; kprobes many more and do_exit among them, or none at all', () => {
    const tracepoints = [...LAB_TRACEPOINTS, 'tracepoint:sched:sched_switch'];
    const many = Array.from({ length: 10 }, (_, i) => `kprobe:f${i}`);
    const withKprobes = attachPoints({ tracepoints, kprobes: [...many, 'kprobe:do_exit'], kprobesOk: true });
    expect(withKprobes.map((v) => v.got)).toEqual(withKprobes.map((v) => v.want));
    expect(withKprobes.map((v) => v.message)).toEqual(['bpftrace -l "tracepoint:*" listed 3', 'a kprobe can attach to any traceable kernel function: thousands more than tracepoints', 'kprobe:do_exit is what the seed attaches to']);
    const noDoExit = attachPoints({ tracepoints, kprobes: ['kprobe:a'], kprobesOk: true });
    expect(noDoExit.map((v) => v.got)).toEqual([LAB_TRACEPOINTS, false, false]);
    const without = attachPoints({ tracepoints: ['tracepoint:sched:sched_process_exit'], kprobes: [], kprobesOk: false });
    expect(without.map((v) => [v.got, v.want])).toEqual([[['tracepoint:sched:sched_process_exit'], LAB_TRACEPOINTS], [0, 0]]);
    expect(without[1]!.message).toBe('without CONFIG_KPROBES no kernel function can be kprobed');
    expect(attachPoints({ tracepoints, kprobes: ['kprobe:x'], kprobesOk: false })[1]!.got).toBe(1);
  });
});
