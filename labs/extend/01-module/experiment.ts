/**
 * Lab 6.1's experiment: the student's module (labmod.c) is built against the
 * headers of the kernel it loads into, with two harness modules beside it (one
 * that calls an unexported function, and labmod itself with another kernel's
 * vermagic). This host's kernel has no module support, so the steps run in a
 * QEMU guest of Debian's 6.1 kernel (one boot runs them all); on a VM whose
 * kernel loads modules and has its headers, the same script runs natively.
 * Each step prints a section: the loader's exit status and message, the kernel
 * log lines the step added, /proc/labmod (whole and in small reads), the
 * files' modes, /sys/module/labmod/parameters/, /proc/modules. It returns those
 * sections; no verdicts here: judge.ts and the spec decide.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REFERENCE_SRC, labSource } from '../../../helpers/harness/paths.js';
import { makeTempDir } from '../../../helpers/harness/resources.js';
import { buildModule, loadedOnHost, moduleTarget, runModuleScript, vermagicOf, withVermagicChanged, type ModuleScriptResult, type ModuleTarget } from '../../../helpers/kernel/module.js';

export const NAME = 'labmod';
/**
 * Random parameters, so that a module that ignores them cannot pass: a name
 * of 100 to 700 characters (no room in a fixed buffer of 64 bytes, or of a
 * few hundred: a charp parameter takes up to 1024, and the init line must fit
 * one kernel log record of under 1000) and 11 to 30 lines (more than a module
 * that stops at 10, or at another small fixed count, gives).
 */
export const WHO = `kl${Array.from({ length: 98 + Math.floor(Math.random() * 601) }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 36)]).join('')}`;
export const TIMES = 11 + Math.floor(Math.random() * 20);
/** The second read of /proc/labmod asks for this many bytes per read(2), so the file must serve reads that resume at an offset. */
export const SMALL_READ = 5 + Math.floor(Math.random() * 9);

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

/** The evidence: where the steps ran, their sections, the two vermagic strings, and whether the host still has the module. */
export interface ModuleRun {
  readonly target: ModuleTarget;
  readonly result: ModuleScriptResult;
  readonly vermagic: { readonly good: string; readonly bad: string };
  /** Native runs only: the module is still in the host's /proc/modules after the steps. */
  readonly leftOnHost: boolean;
}

export async function runModuleSteps(): Promise<ModuleRun> {
  const target = moduleTarget();
  const [mod, unresolved] = await Promise.all([
    buildModule({ src: labSource('extend/01-module/labmod.c'), name: NAME, buildDir: target.buildDir }),
    buildModule({ src: join(REFERENCE_SRC, 'extend/mod_unresolved.c'), name: 'mod_unresolved', buildDir: target.buildDir, allowUndefined: true }),
  ]);
  // The same module, as if built for a kernel configured without PREEMPT_DYNAMIC ("preempt " gone from vermagic).
  const ko = readFileSync(mod.path);
  const badPath = join(await makeTempDir('badmagic'), `${NAME}_badmagic.ko`);
  const bad = withVermagicChanged(ko, 'preempt ');
  await writeFile(badPath, bad);
  const result = await runModuleScript(target, SCRIPT, [
    { name: `${NAME}.ko`, path: mod.path },
    { name: 'mod_unresolved.ko', path: unresolved.path },
    { name: `${NAME}_badmagic.ko`, path: badPath },
  ]);
  return { target, result, vermagic: { good: vermagicOf(ko) ?? '?', bad: vermagicOf(bad) ?? '?' }, leftOnHost: target.where === 'native' && loadedOnHost(NAME) };
}
