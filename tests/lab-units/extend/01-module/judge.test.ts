/** Lab 6.1's verdicts (labs/extend/01-module/judge.ts) on made-up sections of the module steps. */
import { describe, expect, it } from 'vitest';
import { holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import type { ModuleRun } from '../../../../labs/extend/01-module/experiment.js';
import { insmodLogs, noneLeft, parametersAndLsmod, procReflects, removed, unknownSymbolRefused, versionMagicRefused } from '../../../../labs/extend/01-module/judge.js';

const WHO = 'klabc123';
const greeting = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}: Hello, ${WHO}!`).join('\n');

function run(sections: Record<string, string> = {}): ModuleRun {
  const proc = greeting(12);
  return {
    target: { release: '6.1.0-28-amd64', buildDir: '/b', where: 'guest', note: 'no modules here' },
    vermagic: { good: '6.1.0-28-amd64 SMP preempt mod_unload modversions', bad: '6.1.0-28-amd64 SMP mod_unload modversions' },
    leftOnHost: false,
    result: {
      where: 'guest', output: '', exitCode: 0,
      sections: {
        release: '6.1.0-28-amd64', insmod: 'exit=0', log_init: `labmod: loaded, who=${WHO} times=12`, proc, procsmall: `${proc}\nexit=0`,
        modes: '444 /proc/labmod\n444 /sys/module/labmod/parameters/times\n444 /sys/module/labmod/parameters/who',
        params: `times=12\nwho=${WHO}`, lsmod: 'labmod 16384 0 - Live 0xffffffffc0a00000 (O)', rmmod: 'exit=0', log_exit: 'labmod: bye',
        after: 'proc absent\nsysfs absent', unresolved: 'insmod: ERROR\nexit=1', log_unresolved: 'mod_unresolved: Unknown symbol kl_no_such_symbol (err -2)',
        badmagic: 'exit=1', log_badmagic: 'labmod: version magic \'6.1.0-28-amd64 SMP mod_unload\' should be \'6.1.0-28-amd64 SMP preempt mod_unload\'', left: '',
        ...sections,
      },
    },
  };
}

describe('Lab 6.1 judge', () => {
  it('accepts a module that does every step', () => {
    for (const v of [insmodLogs(run(), WHO, 12), procReflects(run(), WHO, 12, 7), parametersAndLsmod(run(), WHO, 12), removed(run()), unknownSymbolRefused(run()), versionMagicRefused(run()), noneLeft(run())]) {
      expect(v.got, v.message).toEqual(v.want);
    }
  });

  it('wants times as a number of its own in the init line, not a digit inside who', () => {
    expect(holds(insmodLogs(run({ log_init: `labmod: loaded, who=${WHO}` }), WHO, 12))).toBe(false);
    expect(holds(insmodLogs(run({ log_init: `labmod: loaded, who=${WHO} times=123` }), WHO, 12))).toBe(false);
  });

  it('refuses one line too many, a file that answers only the first small read, and a file for root only', () => {
    expect(procReflects(run({ proc: greeting(13) }), WHO, 12, 7).got.lines).toBe(13);
    expect(procReflects(run({ procsmall: `1: Hello\nexit=0` }), WHO, 12, 7).got.smallReadsSame).toBe(false);
    expect(procReflects(run({ modes: '400 /proc/labmod' }), WHO, 12, 7).got.readableByAll).toBe(false);
  });

  it('wants the parameters read-only to everyone', () => {
    const v = parametersAndLsmod(run({ modes: '444 /proc/labmod\n644 /sys/module/labmod/parameters/times\n644 /sys/module/labmod/parameters/who' }), WHO, 12);
    expect(v.got).toMatchObject({ whoMode: '644', timesMode: '644' });
  });

  it('refuses a /proc file left behind by rmmod', () => {
    expect(removed(run({ after: 'proc present\nsysfs absent' })).got.after).toBe('proc present\nsysfs absent');
  });
});
