/**
 * Loadable kernel modules: build one out of tree against a kernel's headers
 * (Kbuild, `make -C <headers> M=<dir> modules`), and run a load / inspect /
 * unload script where modules can be loaded:
 *
 * - natively, when the running kernel has modules (/proc/modules) and its
 *   headers are at /lib/modules/$(uname -r)/build (a student's Ubuntu or
 *   Debian VM) — written, not exercised on the CI host;
 * - otherwise in a QEMU guest of Debian's 6.1 kernel (runInGuest), built
 *   against the matching linux-headers-<release> from /usr/src. This host's
 *   kernel has no module support at all (CONFIG_MODULES=n).
 *
 * The script prints sections `KL_SECTION <name>` followed by their lines;
 * parseSections() splits them. A `.ko` is an ELF relocatable object without
 * program headers, so the guest's initramfs takes it as one of its
 * "programs" (/lab/<name>) as it is.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { basename, join } from 'node:path';
import { CompileError, CommandError, LabError } from '../harness/errors.js';
import { logBuild } from '../harness/compile.js';
import { run } from '../harness/exec.js';
import { CACHE_DIR } from '../harness/paths.js';
import { runInGuest, type GuestRunResult } from './guest.js';
import { debianKernel } from './qemu.js';
import { headersUnbuildable } from '../harness/capabilities.js';

export interface ModuleTarget {
  /** Kernel release the module is for (vermagic's first word). */
  readonly release: string;
  /** The kernel's build directory (headers with Makefile, .config, Module.symvers). */
  readonly buildDir: string;
  /** "native": load on this host; "guest": load in a QEMU guest of Debian's kernel. */
  readonly where: 'native' | 'guest';
  /** Why this target, for adapted() and messages. */
  readonly note: string;
}

/** The build directory of a release's headers: /lib/modules/<r>/build, else Debian's /usr/src/linux-headers-<r>. */
export function headersFor(rel: string): string | undefined {
  return [`/lib/modules/${rel}/build`, `/usr/src/linux-headers-${rel}`].find((d) => existsSync(join(d, 'Makefile')));
}

/** Where modules can be loaded on this machine, and the headers to build them with. */
export function moduleTarget(): ModuleTarget {
  const rel = release();
  const native = existsSync('/proc/modules') ? headersFor(rel) : undefined;
  const unbuildable = native ? headersUnbuildable(native) : undefined;
  if (native && unbuildable) throw new LabError(`this kernel (${rel}) loads modules, but ${unbuildable}`, { code: 'E_CAPABILITY' });
  if (native) return { release: rel, buildDir: native, where: 'native', note: `this kernel (${rel}) loads modules; headers at ${native}` };
  const guest = debianKernel();
  if (!guest) throw new LabError('this kernel has no loadable modules and there is no Debian kernel to boot in QEMU — fix: apt-get install linux-image-amd64 linux-headers-amd64', { code: 'E_CAPABILITY' });
  const dir = headersFor(guest.release);
  if (!dir) throw new LabError(`no headers for the guest kernel ${guest.release} — fix: apt-get install linux-headers-${guest.release}`, { code: 'E_CAPABILITY' });
  const why = existsSync('/proc/modules') ? `no headers for this kernel ${rel}` : `this kernel (${rel}) has no loadable module support (no /proc/modules)`;
  return { release: guest.release, buildDir: dir, where: 'guest', note: `${why}: the module is built against ${dir} and loaded in a QEMU guest of Debian's ${guest.release}` };
}

export interface BuiltModule {
  readonly path: string;
  readonly name: string;
  readonly cached: boolean;
  readonly command: string;
}

/**
 * Build `<name>.ko` from one C file against `buildDir` (cached by source,
 * headers and extra make variables). modpost's "undefined!" is an error in
 * 6.1; `allowUndefined` downgrades it (KBUILD_MODPOST_WARN=1) to build a
 * module that must fail at load time.
 */
export async function buildModule(opts: { readonly src: string; readonly name: string; readonly buildDir: string; readonly allowUndefined?: boolean }): Promise<BuiltModule> {
  const text = await readFile(opts.src, 'utf8');
  const vars = opts.allowUndefined ? ['KBUILD_MODPOST_WARN=1'] : [];
  const key = createHash('sha256').update(`${opts.buildDir}\0${opts.name}\0${vars.join(' ')}\0${text}`).digest('hex').slice(0, 24);
  const dir = join(CACHE_DIR, 'modules', key);
  const ko = join(dir, `${opts.name}.ko`);
  const command = `make -C ${opts.buildDir} M=${dir} ${vars.join(' ')} modules`.replace(/\s+/g, ' ');
  if (existsSync(ko)) {
    logBuild('cached', opts.src, key);
    return { path: ko, name: opts.name, cached: true, command };
  }
  const work = `${dir}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  await copyFile(opts.src, join(work, `${opts.name}.c`));
  await writeFile(join(work, 'Kbuild'), `obj-m := ${opts.name}.o\n`);
  try {
    await run('make', ['-C', opts.buildDir, `M=${work}`, ...vars, 'modules'], { timeoutMs: 300_000 });
  } catch (e) {
    if (e instanceof CommandError) {
      // Point the diagnostics at the student's file rather than the build copy.
      const diagnostics = `${e.stderr}\n${e.stdout}`.split(join(work, `${opts.name}.c`)).join(opts.src);
      throw new CompileError({ command, diagnostics, file: opts.src }, e);
    }
    throw e;
  }
  // Another run (two fixtures of one lab at once) may have built the same source meanwhile: keep its copy.
  if (existsSync(ko)) await rm(work, { recursive: true, force: true });
  else {
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  }
  logBuild('compiled', opts.src, key);
  return { path: ko, name: opts.name, cached: false, command };
}

/** The `vermagic=` string of a .ko's .modinfo (pure). */
export function vermagicOf(ko: Buffer): string | undefined {
  const i = ko.indexOf('vermagic=');
  if (i < 0) return undefined;
  return ko.toString('latin1', i + 'vermagic='.length, ko.indexOf(0, i));
}

/**
 * A copy of a module whose vermagic names another kernel configuration:
 * `drop` (e.g. "preempt ") is cut out of the string and the rest NUL-padded
 * to the same length, as if built for a kernel without that option. The
 * kernel compares everything but the release when the module has CRCs
 * (CONFIG_MODVERSIONS), so a changed release alone would still load.
 */
export function withVermagicChanged(ko: Buffer, drop: string): Buffer {
  const magic = vermagicOf(ko);
  if (!magic || !magic.includes(drop)) throw new LabError(`vermagic "${magic ?? '(none)'}" has no "${drop}" to change`, { code: 'E_SOURCE' });
  const start = ko.indexOf('vermagic=') + 'vermagic='.length;
  const changed = magic.replace(drop, '');
  const out = Buffer.from(ko);
  out.fill(0, start, start + magic.length);
  out.write(changed, start, 'latin1');
  return out;
}

/** `KL_SECTION <name>` blocks of a script's output (pure). Lines before the first section are dropped. */
export function parseSections(output: string): Record<string, string> {
  const out: Record<string, string[]> = {};
  let current: string[] | undefined;
  for (const line of output.replace(/\r/g, '').split('\n')) {
    const m = line.match(/^KL_SECTION (\S+)$/);
    if (m) { current = out[m[1]!] = []; continue; }
    current?.push(line);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.join('\n').trim()]));
}

/** A kernel log line without its `[ 12.345678] ` timestamp (pure). */
export function stripTimestamp(line: string): string {
  return line.replace(/^\[\s*\d+\.\d+\]\s?/, '');
}

/** The `exit=<n>` a section printed (`cmd; echo "exit=$?"`), NaN when none (pure). */
export const sectionExit = (section = '') => Number(section.match(/exit=(\d+)/)?.[1] ?? NaN);

/** A section's non-empty lines, kernel log timestamps removed (pure). */
export const sectionLines = (section = '') => section.split('\n').map(stripTimestamp).filter((l) => l.trim());

/** One line of /proc/modules: name, size, use count, dependents, state (pure). */
export interface LoadedModule { readonly name: string; readonly size: number; readonly refcount: number; readonly state: string; readonly taint?: string }

export function parseProcModules(text: string): LoadedModule[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => {
    const f = l.trim().split(/\s+/);
    const taint = l.match(/\(([A-Z]+)\)\s*$/)?.[1];
    return { name: f[0]!, size: Number(f[1]), refcount: Number(f[2]), state: f[4] ?? '', taint };
  });
}

export interface ModuleScriptResult {
  readonly sections: Record<string, string>;
  readonly output: string;
  readonly exitCode?: number;
  readonly where: 'native' | 'guest';
  readonly guest?: GuestRunResult;
}

/**
 * Run a busybox-compatible sh script with the modules available at
 * `/lab/<basename>` (guest) or in a temp dir named by `$LAB` (native: the
 * script must use `$LAB/`; in the guest `$LAB` is /lab).
 */
export async function runModuleScript(target: ModuleTarget, script: string, modules: readonly { readonly name: string; readonly path: string }[], timeoutMs = 180_000,
  /** The guest kernel's extra command-line parameters (a native run keeps the host's). */
  guestAppend?: readonly string[]): Promise<ModuleScriptResult> {
  if (target.where === 'guest') {
    const guest = await runInGuest({ script: `LAB=/lab\n${script}`, programs: modules, timeoutMs, memoryMb: 512, ...(guestAppend ? { append: guestAppend } : {}) });
    return { sections: parseSections(guest.output), output: guest.output, exitCode: guest.exitCode, where: 'guest', guest };
  }
  const { makeTempDir } = await import('../harness/resources.js');
  const dir = await makeTempDir('modules');
  for (const m of modules) await copyFile(m.path, join(dir, basename(m.name)));
  const r = await run('sh', ['-c', `LAB=${dir}\n${script}`], { timeoutMs, reject: false });
  const output = `${r.stdout}\n${r.stderr}`;
  return { sections: parseSections(output), output, exitCode: r.exitCode, where: 'native' };
}

/** True when a module of this name is loaded on the host (native runs clean up with rmmod). */
export function loadedOnHost(name: string): boolean {
  try { return parseProcModules(readFileSync('/proc/modules', 'utf8')).some((m) => m.name === name); } catch { return false; }
}
