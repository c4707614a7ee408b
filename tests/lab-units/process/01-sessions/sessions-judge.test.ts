/** Process Lab 1's orphaned-group verdict (labs/process/01-sessions/judge.ts) on recorded signal_generate lines. */
import { describe, expect, it } from 'vitest';
import { judgeOrphanedGroup } from '../../../../labs/process/01-sessions/judge.js';
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
