/**
 * Lab 1 — 内核模块: a loadable module with parameters and a /proc file.
 *
 * Modules load into the kernel they were built for. This host's kernel has
 * no module support, so the module is built against Debian's 6.1 headers and
 * loaded in a QEMU guest of that kernel (one boot runs every step below); on
 * a VM whose kernel loads modules and has its headers, the same script runs
 * natively. Each step prints a section the assertions read: the loader's exit
 * status and message, the kernel log lines the step added, /proc/labmod,
 * /sys/module/labmod/parameters/, /proc/modules.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { afterCorrectness } from '../../../helpers/harness/gates.js';
import { REFERENCE_SRC, labSource } from '../../../helpers/harness/paths.js';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, requires, unmet } from '../../../helpers/harness/requires.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { buildModule, loadedOnHost, moduleTarget, parseProcModules, runModuleScript, stripTimestamp, vermagicOf, withVermagicChanged,
  type ModuleScriptResult, type ModuleTarget } from '../../../helpers/kernel/module.js';

const NAME = 'labmod';
/**
 * Random parameters, so that a module that ignores them cannot pass: a name
 * of 100 to 700 characters (no room in a fixed buffer of 64 bytes, or of a
 * few hundred: a charp parameter takes up to 1024, and the init line must fit
 * one kernel log record of under 1000) and 11 to 30 lines (more than a module
 * that stops at 10, or at another small fixed count, gives).
 */
const WHO = `kl${Array.from({ length: 98 + Math.floor(Math.random() * 601) }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 36)]).join('')}`;
const TIMES = 11 + Math.floor(Math.random() * 20);
/** The second read of /proc/labmod asks for this many bytes per read(2), so the file must serve reads that resume at an offset. */
const SMALL_READ = 5 + Math.floor(Math.random() * 9);

/**
 * The steps, in busybox sh. `new_log <tag>` prints the kernel log lines added
 * since the last call (dmesg line count kept in /tmp/kl_log_lines), without
 * their timestamps (the guest runner drops console lines that start with one).
 */
const SCRIPT = `
log_mark() { dmesg | wc -l > /tmp/kl_log_lines; }
new_log() { echo "KL_SECTION $1"; dmesg | tail -n +$(( $(cat /tmp/kl_log_lines) + 1 )) | sed 's/^\[ *[0-9.]*\] //'; log_mark; }
echo "KL_SECTION release"; uname -r
log_mark
echo "KL_SECTION insmod"; insmod $LAB/${NAME}.ko who=${WHO} times=${TIMES} 2>&1; echo "exit=$?"
new_log log_init
echo "KL_SECTION proc"; cat /proc/${NAME} 2>&1
echo "KL_SECTION procsmall"; dd if=/proc/${NAME} bs=${SMALL_READ} 2>/dev/null; echo "exit=$?"
echo "KL_SECTION modes"; stat -c '%a %n' /proc/${NAME} /sys/module/${NAME}/parameters/* 2>&1
echo "KL_SECTION params"; for f in /sys/module/${NAME}/parameters/*; do echo "$(basename $f)=$(cat $f)"; done 2>&1
echo "KL_SECTION lsmod"; grep "^${NAME} " /proc/modules
echo "KL_SECTION rmmod"; rmmod ${NAME} 2>&1; echo "exit=$?"
new_log log_exit
echo "KL_SECTION after"; test -e /proc/${NAME} && echo "proc present" || echo "proc absent"; test -d /sys/module/${NAME} && echo "sysfs present" || echo "sysfs absent"
echo "KL_SECTION unresolved"; insmod $LAB/mod_unresolved.ko 2>&1; echo "exit=$?"
new_log log_unresolved
echo "KL_SECTION badmagic"; insmod $LAB/${NAME}_badmagic.ko who=x 2>&1; echo "exit=$?"
new_log log_badmagic
echo "KL_SECTION left"; grep -E "^(${NAME}|mod_unresolved) " /proc/modules; true
`;

const exitOf = (section = '') => Number(section.match(/exit=(\d+)/)?.[1] ?? NaN);
const lines = (section = '') => section.split('\n').map(stripTimestamp).filter((l) => l.trim());
/** `stat -c '%a %n'` lines: path → permission bits. */
const modesOf = (section = ''): Record<string, number> =>
  Object.fromEntries(section.split('\n').flatMap((l) => { const m = l.match(/^([0-7]{3,4}) (\/\S+)$/); return m ? [[m[2]!, parseInt(m[1]!, 8)]] : []; }));

describe('Lab 1 — a loadable kernel module with a parameter and a /proc file (内核模块)', () => {
  requires(...labRequires(import.meta.url));

  let target: ModuleTarget;
  let result: ModuleScriptResult;
  let vermagic: { good: string; bad: string };
  let evidence = '';

  beforeAll(async () => {
    if (await unmet(['qemu', 'busybox'])) return;
    target = moduleTarget();
    const [mod, unresolved] = await Promise.all([
      buildModule({ src: labSource('extend/01-module/labmod.c'), name: NAME, buildDir: target.buildDir }),
      buildModule({ src: join(REFERENCE_SRC, 'extend/mod_unresolved.c'), name: 'mod_unresolved', buildDir: target.buildDir, allowUndefined: true }),
    ]);
    // The same module, as if built for a kernel configured without PREEMPT_DYNAMIC ("preempt " gone from vermagic).
    const ko = readFileSync(mod.path);
    const badPath = join(await makeTempDir('badmagic'), `${NAME}_badmagic.ko`);
    const bad = withVermagicChanged(ko, 'preempt ');
    await writeFile(badPath, bad);
    vermagic = { good: vermagicOf(ko) ?? '?', bad: vermagicOf(bad) ?? '?' };
    result = await runModuleScript(target, SCRIPT, [
      { name: `${NAME}.ko`, path: mod.path },
      { name: 'mod_unresolved.ko', path: unresolved.path },
      { name: `${NAME}_badmagic.ko`, path: badPath },
    ]);
    evidence = `(${target.where}: ${target.note})\nscript output:\n${result.output.split('\n').slice(-60).join('\n')}`;
  }, 400_000);

  it('builds labmod.ko against the headers of the kernel it loads into, and that kernel runs the steps', async (ctx) => {
    if (target.where === 'guest') await adapted(ctx, target.note);
    if (result.guest) recordMetric(ctx, { name: `guest boot and module steps (${result.guest.boot.accel})`, value: result.guest.boot.seconds, unit: 's', group: 'module lab' });
    expect({ release: result.sections.release, vermagic: vermagic.good.split(' ')[0], finished: result.exitCode },
      `vermagic "${vermagic.good}"\n${evidence}`).toEqual({ release: target.release, vermagic: target.release, finished: 0 });
  });

  it(`insmod ${NAME}.ko who=<random> times=<random> succeeds and init logs a line naming both values`, () => {
    const log = lines(result.sections.log_init);
    expect({ insmodExit: exitOf(result.sections.insmod), initLine: log.some((l) => l.includes(WHO) && new RegExp(`(^|\\D)${TIMES}(\\D|$)`).test(l.split(WHO).join(' '))) },
      `insmod ${NAME}.ko who=${WHO} times=${TIMES}:\n${result.sections.insmod}\nkernel log lines added by insmod:\n${log.join('\n') || '(none)'}\n${evidence}`)
      .toEqual({ insmodExit: 0, initLine: true });
  });

  it(`/proc/${NAME} reflects the parameters: ${'`times`'} lines, each greeting ${'`who`'}, the same in small reads, readable by everyone`, () => {
    const proc = lines(result.sections.proc);
    const small = (result.sections.procsmall ?? '').replace(/\n?exit=\d+\s*$/, '');
    const mode = modesOf(result.sections.modes)[`/proc/${NAME}`];
    expect({ lines: proc.length, greetingWho: proc.filter((l) => l.includes(WHO)).length, smallReadsSame: small === (result.sections.proc ?? ''), readableByAll: mode !== undefined && (mode & 0o444) === 0o444 },
      `cat /proc/${NAME} after insmod who=${WHO} times=${TIMES}:\n${result.sections.proc || '(empty)'}\n` +
      `dd if=/proc/${NAME} bs=${SMALL_READ} (read(2) calls of ${SMALL_READ} bytes, each going on from the offset the last one reached):\n${small || '(empty)'}\n` +
      `mode of /proc/${NAME}: ${mode === undefined ? '(no file)' : mode.toString(8)} (readable by everyone: r--r--r-- at least)\n${evidence}`)
      .toEqual({ lines: TIMES, greetingWho: TIMES, smallReadsSame: true, readableByAll: true });
  });

  it(`/sys/module/${NAME}/parameters/ shows who and times, and /proc/modules (lsmod) lists the module as Live`, () => {
    const params = Object.fromEntries(lines(result.sections.params).map((l) => l.split('=') as [string, string]));
    const mod = parseProcModules(result.sections.lsmod ?? '')[0];
    const modes = modesOf(result.sections.modes);
    const modeOf = (p: string) => modes[`/sys/module/${NAME}/parameters/${p}`]?.toString(8) ?? '(no file)';
    expect({ who: params.who, times: params.times, whoMode: modeOf('who'), timesMode: modeOf('times'), lsmod: mod?.name, state: mod?.state },
      `/sys/module/${NAME}/parameters/:\n${result.sections.params}\nmode of each file (read-only to everyone: 444):\n${result.sections.modes ?? ''}\n` +
      `/proc/modules: ${result.sections.lsmod || '(no line)'}\n${evidence}`)
      .toEqual({ who: WHO, times: String(TIMES), whoMode: '444', timesMode: '444', lsmod: NAME, state: 'Live' });
  });

  it(`rmmod ${NAME} succeeds, exit logs a line, and /proc/${NAME} and /sys/module/${NAME} are gone`, (ctx) => {
    afterCorrectness(ctx, ['insmod ', `/proc/${NAME} reflects`], 'the removal');
    const log = lines(result.sections.log_exit);
    expect({ rmmodExit: exitOf(result.sections.rmmod), exitLogged: log.length > 0, after: result.sections.after },
      `rmmod ${NAME}:\n${result.sections.rmmod}\nkernel log lines added by rmmod:\n${log.join('\n') || '(none)'}\n${evidence}`)
      .toEqual({ rmmodExit: 0, exitLogged: true, after: 'proc absent\nsysfs absent' });
  });

  it('a module calling an unexported function is refused with the loader\'s "Unknown symbol" message', () => {
    const log = lines(result.sections.log_unresolved);
    expect({ failed: exitOf(result.sections.unresolved) !== 0, unknownSymbol: log.some((l) => /Unknown symbol kl_no_such_symbol/.test(l)) },
      `insmod mod_unresolved.ko:\n${result.sections.unresolved}\nkernel log:\n${log.join('\n') || '(none)'}\n${evidence}`)
      .toEqual({ failed: true, unknownSymbol: true });
  });

  it('the same module with another kernel\'s vermagic is refused with the loader\'s "version magic" message', () => {
    const log = lines(result.sections.log_badmagic);
    expect({ failed: exitOf(result.sections.badmagic) !== 0, versionMagic: log.some((l) => /version magic .* should be /.test(l)) },
      `vermagic changed from "${vermagic.good}" to "${vermagic.bad}"; insmod:\n${result.sections.badmagic}\nkernel log:\n${log.join('\n') || '(none)'}\n${evidence}`)
      .toEqual({ failed: true, versionMagic: true });
  });

  it('leaves no module loaded', (ctx) => {
    afterCorrectness(ctx, ['insmod ', 'rmmod '], 'leaving no module loaded');
    expect({ left: result.sections.left ?? '', host: target.where === 'native' ? loadedOnHost(NAME) : false },
      `/proc/modules lines of ${NAME} or mod_unresolved after the steps\n${evidence}`).toEqual({ left: '', host: false });
  });
});
