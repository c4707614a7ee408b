/** Net Lab 5.3's verdicts (labs/net/03-softirqs/judge.ts) on made-up windows: each test's facts and the messages that explain them. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { Softirqs, Window } from '../../../../labs/net/03-softirqs/experiment.js';
import { agreement, bounds, hooks, netRxRise, rareVectorsRan, someVectorRan } from '../../../../labs/net/03-softirqs/judge.js';


/** A window where TIMER, NET_RX and RCU ran; the outer delta a little above the inner one; a correct script's counts in between. */
function win(over: Partial<Window> = {}): Window {
  const inner = { HI: 0, TIMER: 400, NET_TX: 0, NET_RX: 6000, BLOCK: 2, IRQ_POLL: 0, TASKLET: 3, SCHED: 150, HRTIMER: 0, RCU: 300 };
  const outer = Object.fromEntries(Object.entries(inner).map(([k, v]) => [k, v + 10]));
  const script = Object.fromEntries(Object.entries(inner).filter(([, v]) => v > 0).map(([k, v]) => [k, v + 4]));
  return { inner, outer, script, seconds: 1, output: 'Counting softirqs\n', hooks: ['tracepoint softirq_entry'], misses: 0, unseen: 0, observer: { total: 7000, counted: 7000, misses: 0 }, ...over };
}

const x = (over: Partial<Softirqs> = {}): Softirqs => ({
  pings: 4000, flood: win(), idle: win({ inner: { ...win().inner, NET_RX: 100 } }),
  shaped: win({ inner: { ...win().inner, HRTIMER: 200, NET_TX: 300, TASKLET: 80 } }),
  plan: { tbf: true, ifb: true, bytes: 3_000_000, ios: 60, notes: [] }, ...over,
});

describe('Net Lab 5.3 judge', () => {
  it('accepts a count between the inner delta (less 8 % and the skipped runs) and the outer one', () => {
    expect(holds(agreement('flood', win()))).toBe(true);
    const w = win({ misses: 7 });
    expect(bounds(w, 'NET_RX')).toEqual({ low: 6000 - 5 - 7 - 480, high: 6015 });
  });

  it('allows what the kernel gave no BPF program (our observer\'s shortfall) on top, and says so', () => {
    const short = { ...win().script, NET_RX: 5000 };
    expect(agreement('shaped', win({ script: short })).got.outsideBounds).toEqual(['NET_RX']);
    // NET_RX is 6010 of the window's 6955 runs: it may be short by twice its share of the 600 unseen, at most all 600.
    const lossy = win({ script: short, unseen: 600, observer: { total: 6955, counted: 6335, misses: 20 } });
    expect(bounds(lossy, 'NET_RX').low).toBe(6000 - 5 - 600 - 480);
    const v = agreement('shaped', lossy);
    expect(v.got.outsideBounds).toEqual([]);
    expect(v.message).toMatch(/600 softirq runs reached no BPF program: our observer on irq:softirq_entry counted 6335 and was told of 20 skipped, of 6955/);
    // The allowance is the observer's measured loss, no more: half the runs stay refused.
    expect(agreement('shaped', win({ script: { ...short, NET_RX: 3000 }, unseen: 600 })).got.outsideBounds).toEqual(['NET_RX']);
    // A vector that ran little gets its share, not the whole loss: RCU (310 of 6955 runs) missing stays refused.
    const { RCU: _rcu, ...noRcu } = win().script;
    expect(agreement('shaped', win({ script: noRcu, unseen: 600 })).got.outsideBounds).toEqual(['RCU']);
    expect(bounds(win({ unseen: 600 }), 'RCU').low).toBe(300 - 5 - Math.ceil((2 * 600 * 310) / 6955) - 24);
  });

  it('refuses a vector that ran but is missing, and a count given to the wrong name', () => {
    const missing = win();
    delete (missing.script as Record<string, number>).RCU;
    expect(agreement('idle', missing).got).toEqual({ outsideBounds: ['RCU'], moreThanRan: [] });
    // NET_RX's runs under HRTIMER (an off-by-one table): NET_RX missing, HRTIMER more than ran.
    const { NET_RX: _moved, ...others } = win().script;
    const shifted = win({ script: { ...others, HRTIMER: 6004 } });
    const v = agreement('flood', shifted);
    expect(v.got).toEqual({ outsideBounds: ['NET_RX'], moreThanRan: ['HRTIMER'] });
    expect(v.message).toMatch(/name must be the one of its index/);
    expect(v.message).toMatch(/NET_RX {3}script \(missing\), \/proc inner delta 6000/);
  });

  it('refuses any hook but irq:softirq_entry, whatever else it also hooks', () => {
    expect(holds(hooks('flood', win()))).toBe(true);
    expect(holds(hooks('flood', win({ hooks: ['tracepoint softirq_entry', 'tracepoint softirq_raise'] })))).toBe(false);
    expect(holds(hooks('flood', win({ hooks: ['kprobe __do_softirq'] })))).toBe(false);
  });

  it('says a window where nothing ran proves nothing', () => {
    const none = win({ inner: Object.fromEntries(Object.keys(win().inner).map((k) => [k, 3])) });
    expect(holds(someVectorRan('idle', none))).toBe(false);
    expect(holds(someVectorRan('idle', win()))).toBe(true);
  });

  it('wants HRTIMER always, NET_TX and TASKLET only where tbf and ifb were usable', () => {
    expect(holds(rareVectorsRan(x()))).toBe(true);
    const quiet = win();
    expect(rareVectorsRan(x({ shaped: quiet })).got).toEqual(['HRTIMER', 'NET_TX', 'TASKLET']);
    expect(rareVectorsRan(x({ shaped: quiet, plan: { tbf: false, ifb: false, bytes: 1, ios: 1, notes: [] } })).got).toEqual(['HRTIMER']);
  });

  it('wants the flood counted above a quarter of the pings and the idle rate under half the flood\'s', () => {
    expect(holds(netRxRise(x()))).toBe(true);
    expect(netRxRise(x({ flood: win({ script: { NET_RX: 900 } }) })).got.floodCountedOverQuarterOfPings).toBe(false);
    expect(netRxRise(x({ idle: win({ inner: { NET_RX: 4000 }, seconds: 1 }) })).got.idleRateUnderHalfOfFlood).toBe(false);
  });
});
