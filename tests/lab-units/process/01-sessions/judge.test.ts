/**
 * Process Lab 1's verdicts (labs/process/01-sessions/judge.ts): the orphaned-group verdict on recorded
 * signal_generate lines, and the other tests' facts and messages on made-up trees.
 */
import { describe, expect, it } from 'vitest';
import * as judge from '../../../../labs/process/01-sessions/judge.js';
import { judgeOrphanedGroup } from '../../../../labs/process/01-sessions/judge.js';
import type { Tree } from '../../../../labs/process/01-sessions/experiment.js';
import { parseStat, type ProcStat } from '../../../../helpers/kernel/procfs.js';
import { parseSignalGenerate, type GeneratedSignal } from '../../../../helpers/kernel/signals.js';
import { parseTraceLine } from '../../../../helpers/kernel/tracefs.js';

/** Recorded on this host (6.18): leader 31109 exits; J = 31110, M = 31111 (stopped). */
const RECORDED = `
        bash-31104   [001] d..1.  1541.138829: signal_generate: sig=19 errno=0 code=0 comm=sessions pid=31111 grp=1 res=0
    sessions-31109   [000] dN.2.  1541.441349: signal_generate: sig=1 errno=0 code=128 comm=sessions pid=31111 grp=1 res=0
    sessions-31109   [000] dN.2.  1541.441372: signal_generate: sig=1 errno=0 code=128 comm=sessions pid=31110 grp=1 res=0
    sessions-31109   [000] dN.2.  1541.441394: signal_generate: sig=18 errno=0 code=128 comm=sessions pid=31111 grp=1 res=1
    sessions-31109   [000] dN.2.  1541.441395: signal_generate: sig=18 errno=0 code=128 comm=sessions pid=31110 grp=1 res=1`;

const signals = (text: string): GeneratedSignal[] =>
  text.split('\n').map(parseTraceLine).filter((e) => e !== undefined).map(parseSignalGenerate).filter((s): s is GeneratedSignal => Boolean(s));
const both = new Map([[31110, 'signal=1'], [31111, 'signal=1']]);

describe('Process Lab 1 judge: the orphaned, stopped group', () => {
  it('parses signal_generate: sender, target, code, result', () => {
    expect(signals(RECORDED)[1]).toMatchObject({ sender: 31109, sig: 1, code: 128, pid: 31111, group: true, result: 'delivered' });
    expect(signals(RECORDED)[3]).toMatchObject({ sig: 18, result: 'ignored' });
  });

  it('holds when the kernel sent SIGHUP then SIGCONT to every member and each died of SIGHUP', () => {
    const v = judgeOrphanedGroup({ members: [31110, 31111], stopped: 31111, signals: signals(RECORDED), reaped: both });
    expect(v).toMatchObject({ problems: [], unsignalled: [] });
    expect(v.record).toHaveLength(4);
  });

  it('fails when the kernel sent nothing: the group was never orphaned', () => {
    const v = judgeOrphanedGroup({ members: [31110, 31111], stopped: 31111, signals: signals(RECORDED.split('\n').slice(0, 2).join('\n')), reaped: new Map() });
    expect(v.problems.join('\n')).toMatch(/generated no SIGHUP .* for the stopped member 31111/);
  });

  it('fails a member that got SIGHUP and lived (a handler), or found it ignored', () => {
    const handled = judgeOrphanedGroup({ members: [31110, 31111], stopped: 31111, signals: signals(RECORDED), reaped: new Map([[31111, 'signal=1']]) });
    expect(handled.problems).toEqual([expect.stringMatching(/^31110: the kernel generated SIGHUP \(delivered\), but waitpid\(2\) says not reaped/)]);
    const ignored = judgeOrphanedGroup({ members: [31110, 31111], stopped: 31111, signals: signals(RECORDED.replace('pid=31110 grp=1 res=0', 'pid=31110 grp=1 res=1')), reaped: new Map([[31111, 'signal=1']]) });
    expect(ignored.problems).toEqual([expect.stringMatching(/^31110: .*ignored \(SIG_IGN\)/)]);
  });

  it('names a member the kernel did not signal (a kernel that hangs up only the stopped member) instead of failing the program', () => {
    const onlyStopped = RECORDED.split('\n').filter((l) => !l.includes('pid=31110')).join('\n');
    const v = judgeOrphanedGroup({ members: [31110, 31111], stopped: 31111, signals: signals(onlyStopped), reaped: new Map([[31111, 'signal=1']]) });
    expect(v).toMatchObject({ problems: [], unsignalled: [31110] });
  });
});

/** A made-up /proc/<pid>/stat line (fields 1-22). */
const stat = (pid: number, state: string, ppid: number, pgrp: number, sid: number, threads = 1, tty = 0, tpgid = -1): ProcStat =>
  parseStat(`${pid} (sessions) ${state} ${ppid} ${pgrp} ${sid} ${tty} ${tpgid} 4194560 90 0 0 0 0 0 0 0 20 0 ${threads} 0 1000`);

/** The reference's tree below subreaper 100: L 101 (sid 101), J 102 with 3 threads, M 103, Z 104. */
function tree(over: Partial<Tree> = {}): Tree {
  const all = [stat(101, 'S', 100, 101, 101), stat(102, 'S', 101, 102, 101, 4), stat(103, 'S', 101, 102, 101), stat(104, 'Z', 101, 101, 101)];
  return { subreaper: 100, all, leader: all[0], job: all[1], members: [all[1]!, all[2]!], zombies: [all[3]!], output: 'sessions: L=101\n', ...over };
}

describe('Process Lab 1 judge: the tree and the other tests', () => {
  it('shows every process below the subreaper and the output, or says there is none', () => {
    expect(judge.show(tree())).toBe('/proc/<pid>/stat below the subreaper (pid 100):\n  101 (sessions) S ppid=100 pgrp=101 sid=101 tty_nr=0 threads=1\n' +
      '  102 (sessions) S ppid=101 pgrp=102 sid=101 tty_nr=0 threads=4\n  103 (sessions) S ppid=101 pgrp=102 sid=101 tty_nr=0 threads=1\n' +
      '  104 (sessions) Z ppid=101 pgrp=101 sid=101 tty_nr=0 threads=1\nsubreaper and program output:\n  sessions: L=101');
    const empty = tree({ all: [], leader: undefined, job: undefined, members: [], zombies: [] });
    expect(judge.show(empty)).toContain('(pid 100):\n  (no processes)\n');
    expect(judge.sessionSize(tree())).toBe(4);
    expect(judge.sessionSize(empty)).toBe(0);
    expect(judge.leaderMissing(empty)).toMatch(/whose session id is its own pid \(setsid\); found none within 5000 ms/);
    expect(judge.zombieMissing(tree({ zombies: [] }))).toMatch(/child of the session leader 101 in state Z \(exited, not yet reaped\); found 0/);
  });

  it('the leader: its ids against sid = pgrp = pid without a terminal, and its parent in another session', () => {
    const ok = judge.leader({ tree: tree(), parent: stat(100, 'S', 1, 100, 50) });
    expect(ok.ids).toEqual(ok.want);
    expect(ok.parentLeft).toBe(true);
    const grouped = stat(101, 'S', 100, 101, 50, 1, 34816, 101);
    const bad = judge.leader({ tree: tree({ leader: grouped }), parent: stat(100, 'S', 1, 100, 50) });
    expect(bad.ids).not.toEqual(bad.want);
    expect(bad.parentLeft).toBe(true);
    expect(judge.leader({ tree: tree() }).parentLeft).toBeUndefined();
  });

  it('the group: a member left in the leader\'s group is named', () => {
    const g = judge.group(tree());
    expect(g.members.map((m) => m.fact)).toEqual(g.members.map((m) => m.want));
    const stray = stat(103, 'S', 101, 101, 101);
    const h = judge.group(tree({ members: [tree().job!, stray] }));
    expect(h.members[1]!.fact).not.toEqual(h.members[1]!.want);
    expect(h.members[1]!.message).toMatch(/^\/proc\/103\/stat: 103 \(sessions\) S ppid=101 pgrp=101/);
  });

  it('the threads: tasks counted, Tgid and Pid per task, only the main thread listed', () => {
    const t = judge.threads({ process: tree().job!, tasks: [102, 105, 106, 107], ids: [102, 105, 106, 107].map((pid) => ({ tgid: 102, pid })), listed: [true, false, false, false] }, tree());
    expect(t.tasks).toBe(4);
    expect(t.numThreads).toBe(4);
    expect(t.each.map((x) => x.ids)).toEqual(t.each.map((x) => x.want));
    expect(t.each.map((x) => x.listed)).toEqual([undefined, false, false, false]);
    const short = judge.threads({ process: stat(102, 'S', 101, 102, 101, 3), tasks: [102, 105, 106], ids: [undefined, undefined, undefined], listed: [true, true, false] }, tree());
    expect(short.tasksMessage).toMatch(/expected ≥ 4 tasks .*ls \/proc\/102\/task: 102 105 106;/);
    expect(short.each[0]!.ids).toBeUndefined();
    expect(short.each[1]!.listed).toBe(true);
  });

  it('SIGUSR1: Z held, then gone, L alive, not reaped by the subreaper; or each of those named', () => {
    const t = tree();
    const after = tree({ zombies: [] });
    expect(judge.held({ tree: t, held: { stat: t.zombies[0] } }).state).toBe('Z');
    expect(judge.held({ tree: t, held: {} }).message).toBe('104 must still be a zombie 500 ms later: /proc/104/stat: (gone)');
    const ok = judge.reapedOnSigusr1({ tree: t, held: { stat: t.zombies[0] }, signalled: { gone: true, ms: 3, after, leaderNow: t.leader, reaped: new Map() } });
    expect(ok).toMatchObject({ gone: true, bySubreaper: undefined });
    expect(ok.leaderNow).toMatch(ok.leaderPattern);
    const killed = judge.reapedOnSigusr1({ tree: t, held: { stat: t.zombies[0] }, signalled: { gone: true, ms: 3, after, reaped: new Map([[104, 'exit=0']]) } });
    expect(killed.leaderNow).toBe('101 gone or a zombie (no /proc entry)');
    expect(killed.leaderNow).not.toMatch(killed.leaderPattern);
    expect(killed.bySubreaper).toBe('exit=0');
  });

  it('no SIGUSR1: Z left alone stays Z; one reaped on a timer is named with L\'s masks', () => {
    const t = tree();
    const masks: [string, string][] = [['ShdPnd', '0000000000000000'], ['SigBlk', '0000000000000200']];
    expect(judge.unreaped({ tree: t, watched: { last: t.zombies[0], ms: 2500, leaderMasks: masks, reaped: new Map(), after: t } }).state).toBe('Z');
    const timed = judge.unreaped({ tree: t, watched: { ms: 1210, leaderMasks: masks, reaped: new Map(), after: t } });
    expect(timed.state).toBe('gone (reaped by its parent)');
    expect(timed.message).toMatch(/^no SIGUSR1 was sent, yet zombie 104 left state Z 1210 ms after the tree appeared: L reaped it on its own/);
    expect(timed.message).toContain('/proc/101/status: ShdPnd:\t0000000000000000, SigBlk:\t0000000000000200 (bit 10');
    expect(judge.unreaped({ tree: t, watched: { ms: 10, reaped: new Map([[104, 'exit=0']]), after: t } }).state).toBe('gone (reaped by the subreaper: exit=0)');
  });

  it('the leader exits: members reparented to the subreaper in the same group and session, or named', () => {
    const t = tree();
    const orphan = (p: ProcStat) => stat(p.pid, 'S', 100, p.pgrp, p.session);
    const ok = judge.livesOn({ tree: t, exited: { after: t, leaderThere: false, reaped: new Map(), members: t.members.map(orphan) } });
    expect(ok.leaderThere).toBe(false);
    expect(ok.members.map((m) => m.fact)).toEqual(ok.members.map((m) => m.want));
    const hung = judge.livesOn({ tree: t, exited: { after: t, leaderThere: false, reaped: new Map([[102, 'signal=1']]), members: [undefined, stat(103, 'S', 102, 102, 101)] } });
    expect(hung.members.map((m) => m.fact)).toEqual(['102 gone: signal=1', { ppid: 102, pgrp: 102, sid: 101, alive: true }]);
    expect(hung.members[1]!.message).toMatch(/^500 ms after the leader exited, 103 must live on, reparented to the subreaper 100, in the same group and session/);
  });

  it('a stopped member: its threads\' states and the group before the exit, then the orphaned group\'s verdict and the adaptation note', () => {
    const t = tree();
    const before = judge.stoppedBefore({ tree: t, stopped: 103, states: 'TT', before: t.members });
    expect(before.states).toMatch(/^T+$/);
    expect(before.members.map((m) => m.fact)).toEqual(before.members.map((m) => m.want));
    expect(judge.stoppedBefore({ tree: t, stopped: 103, states: 'TS' }).members[0]!.fact).toBeUndefined();
    const line = (sig: number, pid: number) => `sessions-101 [000] d..2. 10.000${pid}: signal_generate: sig=${sig} errno=0 code=128 comm=sessions pid=${pid} grp=1 res=0`;
    const onlyStopped = signals([line(1, 103), line(18, 103)].join('\n'));
    const o = judge.orphaned({ tree: t, stopped: 103, states: 'T', before: t.members,
      exited: { signals: onlyStopped, reaped: new Map([[102, 'signal=1'], [103, 'signal=1']]), after: t, kernel: '6.18.0' } });
    expect(o).toMatchObject({ problems: 0, unsignalled: [102] });
    expect(o.adaptation).toMatch(/^this kernel \(6\.18\.0\) sent the orphaned group's SIGHUP and SIGCONT only to the stopped member 103, not to 102/);
    const none = judge.orphaned({ tree: t, stopped: 103, states: 'T', before: t.members, exited: { signals: [], reaped: new Map(), after: t, kernel: '6.18.0' } });
    expect(none.problems).toBeGreaterThan(0);
    expect(none.message).toMatch(/^103 was stopped when leader 101 exited:\n  the kernel generated no SIGHUP \(si_code 128\) for the stopped member 103/);
    expect(none.message).toContain('the subreaper\'s waitpid(2) statuses: 102 not reaped, 103 not reaped');
  });
});
