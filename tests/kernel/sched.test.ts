import { describe, expect, it } from 'vitest';
import { parseSwitch, switchesBetween } from '../../helpers/kernel/sched.js';
import type { TraceEvent } from '../../helpers/kernel/tracefs.js';

const sw = (ts: number, prev: number, state: string, next: number): TraceEvent =>
  ({ pid: prev, event: 'sched_switch', ts, body: `prev_comm=hog prev_pid=${prev} prev_prio=120 prev_state=${state} ==> next_comm=hog next_pid=${next} next_prio=120` });

describe('sched:sched_switch', () => {
  it('reads prev_pid, prev_state and next_pid (R+ as printed), nothing of other events', () => {
    expect(parseSwitch(sw(1.5, 5, 'R+', 7))).toMatchObject({ ts: 1.5, prevPid: 5, prevState: 'R+', nextPid: 7, line: expect.stringMatching(/^1\.500000 prev_comm=hog/) });
    expect(parseSwitch({ pid: 1, event: 'sched_wakeup', ts: 1, body: 'comm=x pid=5 prio=120 target_cpu=001' })).toBeUndefined();
    expect(parseSwitch({ pid: 1, event: 'sched_switch', ts: 1, body: 'garbage' })).toBeUndefined();
  });

  it('counts the switches between two tasks, either way, and no others', () => {
    expect(switchesBetween([sw(1, 5, 'R', 7), sw(2, 7, 'R+', 5), sw(3, 5, 'S', 0), sw(4, 0, 'R', 7), sw(5, 70, 'R', 5)], 5, 7)).toBe(2);
  });
});
