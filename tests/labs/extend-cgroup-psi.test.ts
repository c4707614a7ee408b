/**
 * Teeth of extend/03-cgroup-psi: three wrong programs a student might write
 * each fail the spec on the assertion that names their mistake; correct
 * programs in another style (key=value output, epoll) pass every test.
 * Runs the lab's spec (root, cgroups, PSI).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { firingsOf, matchEvents, parseTriggerLines, unreadEvents, type TriggerSample } from '../../labs/extend/03-cgroup-psi/trigger-state.js';
import { HARNESS_FAILURE, runLabWith, type NestedTest } from './nested-lab.js';

const SPEC = 'labs/extend/03-cgroup-psi/cgroup-psi.spec.ts';
const CGWHERE = 'extend/03-cgroup-psi/cgwhere.c';
const PSIWATCH = 'extend/03-cgroup-psi/psiwatch.c';
const REF = (file: string) => join(REPO_ROOT, 'c', file);
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/extend/03-cgroup-psi', name);
const summary = (tests: NestedTest[]) => tests.map((t) => `${t.status}: ${t.name}${t.message ? `\n    ${t.message.split('\n')[0]}` : ''}`).join('\n');

const root = process.getuid?.() === 0;

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

describe.skipIf(!root)('extend/03-cgroup-psi against wrong and correct programs', { timeout: 400_000 }, () => {
  // Each wrong program replaces one source; the other is the reference, so only the named mistake can fail.
  const wrong = [
    { file: 'cgwhere_hardcoded_dirs.c', source: CGWHERE, other: PSIWATCH, what: 'hard-codes /sys/fs/cgroup/<controllers> as the directory',
      catches: /names for each hierarchy the directory that holds the process/ },
    { file: 'cgwhere_drops_last_line.c', source: CGWHERE, other: PSIWATCH, what: 'stops one line early and loses the 0:: line',
      catches: /names the one cgroup2 path \(hierarchy 0\)/ },
    { file: 'psiwatch_polls_total.c', source: PSIWATCH, other: CGWHERE, what: 'polls "some total" instead of holding a trigger',
      catches: /psiwatch holds a PSI trigger/ },
    // A helper playing the clever student wrote these; all three passed the spec of 2026-12-04 (the trigger's arguments were fixed).
    { file: 'clever_psiwatch_hardcode.c', source: PSIWATCH, other: CGWHERE, what: 'ignores <stall> and <window>: always "some 50000 2000000"',
      catches: /psiwatch asked for a stall the squeeze never reaches/ },
    { file: 'clever_psiwatch_sysfile.c', source: PSIWATCH, other: CGWHERE, what: 'holds the cgroup trigger for show, takes its events from /proc/pressure/memory',
      catches: /psiwatch reports stall events while the workload is squeezed/ },
    { file: 'clever_psiwatch_tagname.c', source: PSIWATCH, other: CGWHERE, what: 'never waits: prints events when the cgroup\'s name says it is the squeezed run',
      catches: /psiwatch reports stall events while the workload is squeezed/ },
    // Issue #27: these four passed the spec of 2026-12-05 (the kernel said a trigger was there, not which, nor whether its events were the ones printed).
    { file: 'clever_psiwatch_decoy_trigger.c', source: PSIWATCH, other: CGWHERE, what: 'a decoy trigger that never fires; events made up from "some total="',
      catches: /psiwatch's trigger is the one it was asked for/, message: /squeezed: .*"some 1999999 2000000"/ },
    { file: 'clever_psiwatch_unpolled_trigger.c', source: PSIWATCH, other: CGWHERE, what: 'the trigger asked for, never polled; events made up from "some total="',
      catches: /psiwatch prints one event per firing of its trigger/, message: /(printed an event at [\d.]+ s when its trigger had not fired|waited unread)/ },
    { file: 'clever_psiwatch_first_only.c', source: PSIWATCH, other: CGWHERE, what: 'reports the first event, then stops listening',
      catches: /psiwatch prints one event per firing of its trigger/, message: /(printed no event for it|waited unread)/ },
    { file: 'clever_psiwatch_full.c', source: PSIWATCH, other: CGWHERE, what: 'a "full" trigger instead of "some"',
      catches: /psiwatch's trigger is the one it was asked for/, message: /"full \d+ 2000000"/ },
    { file: 'clever_psiwatch_fixed_window.c', source: PSIWATCH, other: CGWHERE, what: 'writes the window 2000000 whatever it is given',
      catches: /psiwatch's trigger is the one it was asked for/, message: /unreachable: .*"some 1500000 2000000"/ },
  ];

  it.for(wrong as { file: string; source: string; other: string; what: string; catches: RegExp; message?: RegExp }[])('$file ($what) fails the spec on an assertion', async ({ file, source, other, catches, message }, ctx) => {
    const tests = await runLabWith(SPEC, { [source]: fixture(file), [other]: REF(other) }, ctx.signal);
    const failed = tests.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.name).some((n) => catches.test(n)), `${file}: expected a failure matching ${catches}\n${summary(tests)}`).toBe(true);
    if (message) expect(failed.find((t) => catches.test(t.name))?.message, `${file}: the failure must say why`).toMatch(message);
    for (const t of failed) expect(t.message, `${file}: "${t.name}" failed for a harness reason`).not.toMatch(HARNESS_FAILURE);
    expect(tests.filter((t) => /^control:/.test(t.name)).map((t) => t.status), summary(tests)).toEqual(['passed', 'passed']);
  });

  it('cgwhere_keyvalue.c and psiwatch_epoll.c (key=value output, epoll) pass every test', async (ctx) => {
    const tests = await runLabWith(SPEC, { [CGWHERE]: fixture('cgwhere_keyvalue.c'), [PSIWATCH]: fixture('psiwatch_epoll.c') }, ctx.signal);
    expect(tests.filter((t) => t.status !== 'passed').map((t) => t.name), summary(tests)).toEqual([]);
  });
});
