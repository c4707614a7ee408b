/**
 * trigger-state of extend/03-cgroup-psi: psiwatch's trigger as the kernel
 * keeps it (the BPF iterator's lines), its firings and the events printed
 * for them. Pure: recorded lines, no kernel.
 */
import { describe, expect, it } from 'vitest';
import { firingsOf, matchEvents, parseTriggerLines, unreadEvents, type TriggerSample } from '../../../../labs/extend/03-cgroup-psi/trigger-state.js';

describe('trigger-state: psiwatch\'s trigger as the kernel keeps it (pure)', () => {
  const F = '/sys/fs/cgroup/unified/kl-x/leaf/memory.pressure';
  const line = (ev: number, last: number) => `4242 3 cgroup trigger ffff8881434c2080 some 50000000 2000000000 ${ev} ${last} 0`;
  const sample = (t: number, ev: number, last: number): TriggerSample =>
    ({ t, held: parseTriggerLines(line(ev, last)).map((h) => ({ ...h, target: F })) });
  const A = new Set(['ffff8881434c2080']);

  it('parses the iterator\'s lines: the trigger in µs, a file without one', () => {
    expect(parseTriggerLines(`${line(1, 77)}\n4242 4 cgroup none\n`)).toEqual([
      { pid: 4242, fd: 3, target: '', trigger: { addr: 'ffff8881434c2080', state: 'some', thresholdUs: 50000, windowUs: 2000000, event: 1, lastEventNs: 77n } },
      { pid: 4242, fd: 4, target: '' },
    ]);
  });

  it('a firing is a change of the last event time; each is paired with the event printed for it', () => {
    const samples = [sample(10.0, 0, 0), sample(10.2, 0, 0), sample(10.4, 0, 5_000), sample(10.6, 0, 5_000), sample(12.4, 1, 7_000), sample(12.6, 0, 7_000), sample(13.0, 0, 7_000)];
    const { firings, gaps } = firingsOf(samples, A, 9.9);
    expect(firings.map((f) => [f.after, f.by])).toEqual([[10.2, 10.4], [10.6, 12.4]]);
    expect(gaps).toEqual([[10.6, 12.4]]);
    expect(matchEvents(firings, [10.31, 12.41], 13.0, gaps)).toMatchObject({ missed: [], unexplained: [] });
    // Only the first event printed: the second firing is missed.
    expect(matchEvents(firings, [10.31], 13.0, gaps).missed.map((f) => f.by)).toEqual([12.4]);
    // An event made up outside any firing (not in the sample gap).
    expect(matchEvents(firings, [10.0, 10.31, 12.41], 13.0, gaps).unexplained).toEqual([10.0]);
    // A firing just before the trigger's last sample may still be printed after it: not held against the program.
    expect(matchEvents(firings, [10.31], 12.6, gaps).missed).toEqual([]);
  });

  it('an event flag set for more than a second is an event nobody read', () => {
    const read = [sample(1.0, 1, 5), sample(1.2, 0, 5), sample(3.0, 1, 9), sample(3.2, 0, 9)];
    const unread = [sample(1.0, 1, 5), sample(1.6, 1, 5), sample(2.4, 1, 5)];
    expect({ read: unreadEvents(read, A), unread: unreadEvents(unread, A).map((u) => [u.since, u.still]) }).toEqual({ read: [], unread: [[1.0, 2.4]] });
  });
});
