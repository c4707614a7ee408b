/**
 * Lab 6.1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `ModuleRun`: the sections each step printed in the kernel
 * that loaded the module) to what each test compares — `got` against `want` —
 * with the message that shows the evidence. Unit-tested on made-up sections in
 * tests/lab-units/extend/01-module/judge.test.ts.
 */
import { parseProcModules, sectionExit as exitOf, sectionLines as lines } from '../../../helpers/kernel/module.js';
import { NAME, SMALL_READ, TIMES, WHO, type ModuleRun } from './experiment.js';

import type { Verdict } from '../../../helpers/harness/verdict.js';

export type { Verdict };

/** `stat -c '%a %n'` lines: path → permission bits. */
export const modesOf = (section = ''): Record<string, number> =>
  Object.fromEntries(section.split('\n').flatMap((l) => { const m = l.match(/^([0-7]{3,4}) (\/\S+)$/); return m ? [[m[2]!, parseInt(m[1]!, 8)]] : []; }));

/** Where the steps ran and the script's last 60 lines: the end of every message. */
export const evidence = (x: ModuleRun) => `(${x.target.where}: ${x.target.note})\nscript output:\n${x.result.output.split('\n').slice(-60).join('\n')}`;

export function builtForItsKernel(x: ModuleRun): Verdict<{ release?: string; vermagic?: string; finished?: number }> {
  return {
    got: { release: x.result.sections.release, vermagic: x.vermagic.good.split(' ')[0], finished: x.result.exitCode },
    want: { release: x.target.release, vermagic: x.target.release, finished: 0 },
    message: `vermagic "${x.vermagic.good}"\n${evidence(x)}`,
  };
}

/** The init line names both values: who, and times as a number of its own (not a part of who). */
export function insmodLogs(x: ModuleRun, who = WHO, times = TIMES): Verdict<{ insmodExit: number; initLine: boolean }> {
  const s = x.result.sections;
  const log = lines(s.log_init);
  return {
    got: { insmodExit: exitOf(s.insmod), initLine: log.some((l) => l.includes(who) && new RegExp(`(^|\\D)${times}(\\D|$)`).test(l.split(who).join(' '))) },
    want: { insmodExit: 0, initLine: true },
    message: `insmod ${NAME}.ko who=${who} times=${times}:\n${s.insmod}\nkernel log lines added by insmod:\n${log.join('\n') || '(none)'}\n${evidence(x)}`,
  };
}

/** /proc/labmod: `times` lines, each greeting `who`, the same in small reads, readable by everyone. */
export function procReflects(x: ModuleRun, who = WHO, times = TIMES, smallRead = SMALL_READ): Verdict<{ lines: number; greetingWho: number; smallReadsSame: boolean; readableByAll: boolean }> {
  const s = x.result.sections;
  const proc = lines(s.proc);
  const small = (s.procsmall ?? '').replace(/\n?exit=\d+\s*$/, '');
  const mode = modesOf(s.modes)[`/proc/${NAME}`];
  return {
    got: { lines: proc.length, greetingWho: proc.filter((l) => l.includes(who)).length, smallReadsSame: small === (s.proc ?? ''), readableByAll: mode !== undefined && (mode & 0o444) === 0o444 },
    want: { lines: times, greetingWho: times, smallReadsSame: true, readableByAll: true },
    message: `cat /proc/${NAME} after insmod who=${who} times=${times}:\n${s.proc || '(empty)'}\n` +
      `dd if=/proc/${NAME} bs=${smallRead} (read(2) calls of ${smallRead} bytes, each going on from the offset the last one reached):\n${small || '(empty)'}\n` +
      `mode of /proc/${NAME}: ${mode === undefined ? '(no file)' : mode.toString(8)} (readable by everyone: r--r--r-- at least)\n${evidence(x)}`,
  };
}

/** /sys/module/labmod/parameters/ shows both values, read-only to everyone; /proc/modules lists the module as Live. */
export function parametersAndLsmod(x: ModuleRun, who = WHO, times = TIMES): Verdict<Record<string, string | undefined>> {
  const s = x.result.sections;
  const params = Object.fromEntries(lines(s.params).map((l) => l.split('=') as [string, string]));
  const mod = parseProcModules(s.lsmod ?? '')[0];
  const modes = modesOf(s.modes);
  const modeOf = (p: string) => modes[`/sys/module/${NAME}/parameters/${p}`]?.toString(8) ?? '(no file)';
  return {
    got: { who: params.who, times: params.times, whoMode: modeOf('who'), timesMode: modeOf('times'), lsmod: mod?.name, state: mod?.state },
    want: { who, times: String(times), whoMode: '444', timesMode: '444', lsmod: NAME, state: 'Live' },
    message: `/sys/module/${NAME}/parameters/:\n${s.params}\nmode of each file (read-only to everyone: 444):\n${s.modes ?? ''}\n` +
      `/proc/modules: ${s.lsmod || '(no line)'}\n${evidence(x)}`,
  };
}

export function removed(x: ModuleRun): Verdict<{ rmmodExit: number; exitLogged: boolean; after?: string }> {
  const s = x.result.sections;
  const log = lines(s.log_exit);
  return {
    got: { rmmodExit: exitOf(s.rmmod), exitLogged: log.length > 0, after: s.after },
    want: { rmmodExit: 0, exitLogged: true, after: 'proc absent\nsysfs absent' },
    message: `rmmod ${NAME}:\n${s.rmmod}\nkernel log lines added by rmmod:\n${log.join('\n') || '(none)'}\n${evidence(x)}`,
  };
}

export function unknownSymbolRefused(x: ModuleRun): Verdict<{ failed: boolean; unknownSymbol: boolean }> {
  const s = x.result.sections;
  const log = lines(s.log_unresolved);
  return {
    got: { failed: exitOf(s.unresolved) !== 0, unknownSymbol: log.some((l) => /Unknown symbol kl_no_such_symbol/.test(l)) },
    want: { failed: true, unknownSymbol: true },
    message: `insmod mod_unresolved.ko:\n${s.unresolved}\nkernel log:\n${log.join('\n') || '(none)'}\n${evidence(x)}`,
  };
}

export function versionMagicRefused(x: ModuleRun): Verdict<{ failed: boolean; versionMagic: boolean }> {
  const s = x.result.sections;
  const log = lines(s.log_badmagic);
  return {
    got: { failed: exitOf(s.badmagic) !== 0, versionMagic: log.some((l) => /version magic .* should be /.test(l)) },
    want: { failed: true, versionMagic: true },
    message: `vermagic changed from "${x.vermagic.good}" to "${x.vermagic.bad}"; insmod:\n${s.badmagic}\nkernel log:\n${log.join('\n') || '(none)'}\n${evidence(x)}`,
  };
}

export function noneLeft(x: ModuleRun): Verdict<{ left: string; host: boolean }> {
  return {
    got: { left: x.result.sections.left ?? '', host: x.leftOnHost },
    want: { left: '', host: false },
    message: `/proc/modules lines of ${NAME} or mod_unresolved after the steps\n${evidence(x)}`,
  };
}
