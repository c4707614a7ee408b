/**
 * Building a small kernel from Debian's linux-source-6.1 (labs K2, K3).
 *
 * The tarball /usr/src/linux-source-6.1.tar.xz is extracted once into
 * .cache/kbuild/linux-source-6.1 (never into the repository tree). A build
 * writes the student's system call into that tree (kernel/sayhello.c, one
 * `obj-y` line in kernel/Makefile, the entries of their syscall_64.tbl
 * fragment), makes a config from tinyconfig plus KCONFIG below, runs
 * `make -j$(nproc) bzImage` with progress lines, and copies bzImage, vmlinux
 * and System.map to .cache/kbuild/out/<key>, where key hashes the config and
 * the student's files. An unchanged key is not rebuilt; a changed student
 * file rebuilds incrementally (seconds to a minute). One build at a time
 * (a lock directory); the tree is shared by every key.
 *
 * CLI: npx tsx helpers/kernel/kbuild.ts [--src <LAB_SRC dir>]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompileError, LabError } from '../harness/errors.js';
import { logBuild } from '../harness/compile.js';
import { run, startBackground } from '../harness/exec.js';
import { CACHE_DIR, sourceRoot } from '../harness/paths.js';

export const KERNEL_TARBALL = process.env.LABS_KERNEL_TARBALL ?? '/usr/src/linux-source-6.1.tar.xz';
export const KBUILD_DIR = join(CACHE_DIR, 'kbuild');
export const TREE_DIR = join(KBUILD_DIR, 'linux-source-6.1');
/** Bumped when the way a tree is prepared changes (part of every key). */
const KBUILD_VERSION = '1';
const EXTRACTED_MARK = '.kl-extracted';
const TBL_PATH = 'arch/x86/entry/syscalls/syscall_64.tbl';
const TBL_PRISTINE = `${TBL_PATH}.kl-orig`;
const MAKEFILE_LINE = 'obj-y += sayhello.o # added by kernel-labs helpers/kernel/kbuild.ts';

/**
 * Options set on top of `make tinyconfig` (y = enable, n = disable).
 * tinyconfig is 32-bit and has no console, no initramfs, no ELF loader.
 */
export const KCONFIG: Readonly<Record<string, 'y' | 'n'>> = {
  '64BIT': 'y',
  PRINTK: 'y', EARLY_PRINTK: 'y', TTY: 'y', SERIAL_8250: 'y', SERIAL_8250_CONSOLE: 'y',
  BLK_DEV_INITRD: 'y', RD_GZIP: 'y', BINFMT_ELF: 'y', BINFMT_SCRIPT: 'y',
  PROC_FS: 'y', SYSFS: 'y', DEVTMPFS: 'y', DEVTMPFS_MOUNT: 'y',
  MULTIUSER: 'y', FUTEX: 'y', POSIX_TIMERS: 'y', KALLSYMS: 'y',
  // gzip is faster to build than tinyconfig's xz
  KERNEL_GZIP: 'y', KERNEL_XZ: 'n',
  // K2: symbols and types for gdb, fixed addresses
  DEBUG_KERNEL: 'y', DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT: 'y', RANDOMIZE_BASE: 'n',
};

/** The options that must read `=y` (or be unset for `n`) in the final .config. */
export function checkConfig(config: string, wanted: Readonly<Record<string, 'y' | 'n'>> = KCONFIG): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(wanted)) {
    const on = new RegExp(`^CONFIG_${name}=y$`, 'm').test(config);
    if (value === 'y' && !on) problems.push(`CONFIG_${name} is not =y`);
    if (value === 'n' && on) problems.push(`CONFIG_${name} is =y`);
  }
  return problems;
}

export interface SyscallEntry {
  readonly nr: number;
  readonly abi: string;
  readonly name: string;
  readonly entry: string;
}

/** Entries of a syscall_64.tbl (fragment): `<nr> <abi> <name> [<entry point>]`, # comments. */
export function parseSyscallTable(text: string): SyscallEntry[] {
  const entries: SyscallEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [nr, abi, name, entry] = line.split(/\s+/);
    if (!/^\d+$/.test(nr ?? '') || !abi || !name) throw new LabError(`syscall table line "${raw.trim()}" is not "<number> <abi> <name> <entry point>"`, { code: 'E_SOURCE' });
    entries.push({ nr: Number(nr), abi, name, entry: entry ?? '' });
  }
  return entries;
}

/**
 * The kernel's table with the fragment's entries inserted after the last
 * common/64 entry (before the x32 block at 512). Refuses a number or name
 * the table already has.
 */
export function insertSyscallEntries(table: string, fragment: string): string {
  const added = parseSyscallTable(fragment);
  if (!added.length) return table;
  const existing = parseSyscallTable(table);
  for (const e of added) {
    const clash = existing.find((x) => x.nr === e.nr || (x.name === e.name && x.abi !== 'x32'));
    if (clash) throw new LabError(`syscall_64.tbl: ${e.nr} ${e.name} clashes with the kernel's "${clash.nr} ${clash.abi} ${clash.name}"; use the next free number`, { code: 'E_SOURCE' });
  }
  const lines = table.split('\n');
  let at = -1;
  lines.forEach((l, i) => {
    const m = l.match(/^(\d+)\s+(common|64)\s/);
    if (m && Number(m[1]) < 512) at = i;
  });
  if (at < 0) throw new LabError('syscall_64.tbl has no common/64 entries', { code: 'E_SOURCE' });
  const newLines = added.map((e) => `${e.nr}\t${e.abi}\t${e.name}\t\t${e.entry}`);
  lines.splice(at + 1, 0, ...newLines);
  return lines.join('\n');
}

/** The cache key: config options, student files, prepare version. */
export function kbuildKey(parts: { readonly config: Readonly<Record<string, string>>; readonly files: Readonly<Record<string, string>> }): string {
  const h = createHash('sha256');
  h.update(`kbuild ${KBUILD_VERSION}\0`);
  for (const [k, v] of Object.entries(parts.config).sort(([a], [b]) => a.localeCompare(b))) h.update(`${k}=${v}\0`);
  for (const [k, v] of Object.entries(parts.files).sort(([a], [b]) => a.localeCompare(b))) h.update(`${k}\0${v}\0`);
  return h.digest('hex').slice(0, 16);
}

/** Kbuild's short log lines (`  CC      kernel/fork.o`): the step and its target, or undefined. */
export function parseMakeLine(line: string): { step: string; target: string } | undefined {
  const m = line.match(/^\s{2}([A-Z][A-Z0-9_]{1,9})(?:\s+\[M\])?\s+(\S.*)$/);
  return m ? { step: m[1]!, target: m[2]!.trim() } : undefined;
}

export interface KernelBuild {
  readonly key: string;
  readonly dir: string;
  readonly bzImage: string;
  readonly vmlinux: string;
  readonly systemMap: string;
  readonly release: string;
  /** True when the cache had it and make did not run. */
  readonly cached: boolean;
  /** Wall seconds of this call (extraction + make, or the cache lookup). */
  readonly seconds: number;
  /** Syscalls added from the fragment. */
  readonly syscalls: readonly SyscallEntry[];
}

export interface BuildKernelOptions {
  /** Root of the student's sources (LAB_SRC or c/): kernel/K3-syscall/sayhello.c and syscall_64.tbl. */
  readonly srcRoot?: string;
  /** Progress lines (default: console.log). */
  readonly log?: (line: string) => void;
  /** Kill make after this long. Default 60 min. */
  readonly timeoutMs?: number;
  /** Seconds between progress lines. Default 15. */
  readonly progressEverySec?: number;
}

function studentFiles(srcRoot: string): Record<string, string> {
  const read = (rel: string) => {
    const p = join(srcRoot, rel);
    if (!existsSync(p)) throw new LabError(`Lab source ${rel} not found in ${srcRoot}`, { code: 'E_SOURCE' });
    return readFileSync(p, 'utf8');
  };
  // Keys are the files' places in the kernel tree; the student's copies live in c/kernel/K3-syscall/.
  return { 'kernel/sayhello.c': read('kernel/K3-syscall/sayhello.c'), 'kernel/syscall_64.tbl': read('kernel/K3-syscall/syscall_64.tbl') };
}

/** Where the outputs of a key live; undefined when not built yet. */
export function cachedBuild(key: string): Omit<KernelBuild, 'cached' | 'seconds'> | undefined {
  const dir = join(KBUILD_DIR, 'out', key);
  const metaPath = join(dir, 'meta.json');
  if (!existsSync(metaPath)) return undefined;
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { release: string; syscalls: SyscallEntry[] };
  const out = { key, dir, bzImage: join(dir, 'bzImage'), vmlinux: join(dir, 'vmlinux'), systemMap: join(dir, 'System.map'), release: meta.release, syscalls: meta.syscalls };
  return [out.bzImage, out.vmlinux, out.systemMap].every((p) => existsSync(p)) ? out : undefined;
}

/** The newest build in the cache (K2 uses it when present), or undefined. */
export function newestCachedBuild(): Omit<KernelBuild, 'cached' | 'seconds'> | undefined {
  const outDir = join(KBUILD_DIR, 'out');
  if (!existsSync(outDir)) return undefined;
  let best: { key: string; mtime: number } | undefined;
  for (const key of readdirSafe(outDir)) {
    const meta = join(outDir, key, 'meta.json');
    if (!existsSync(meta)) continue;
    const mtime = statSync(meta).mtimeMs;
    if (!best || mtime > best.mtime) best = { key, mtime };
  }
  return best ? cachedBuild(best.key) : undefined;
}

/** Builds kept in .cache/kbuild/out (45 MB each, mostly vmlinux). */
const KEEP_OUTPUTS = 8;

/** Remove all but the newest `keep` outputs. */
export function pruneOutputs(keep: number): void {
  const outDir = join(KBUILD_DIR, 'out');
  const entries = readdirSafe(outDir)
    .filter((k) => existsSync(join(outDir, k, 'meta.json')))
    .map((k) => ({ k, t: statSync(join(outDir, k, 'meta.json')).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { k } of entries.slice(keep)) rmSync(join(outDir, k), { recursive: true, force: true });
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One build at a time: mkdir is atomic; a lock whose pid is dead is taken over. */
async function withLock<T>(log: (l: string) => void, fn: () => Promise<T>): Promise<T> {
  const lock = join(KBUILD_DIR, 'lock');
  mkdirSync(KBUILD_DIR, { recursive: true });
  let said = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = NaN;
      try { holder = Number(readFileSync(join(lock, 'pid'), 'utf8')); } catch { /* being written */ }
      if (Number.isFinite(holder) && !pidAlive(holder)) { rmSync(lock, { recursive: true, force: true }); continue; }
      if (!said) { log(`[kbuild] waiting for the build of pid ${holder} (lock ${lock})`); said = true; }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function ensureTree(log: (l: string) => void): Promise<void> {
  const mark = join(TREE_DIR, EXTRACTED_MARK);
  if (existsSync(mark)) return;
  if (!existsSync(KERNEL_TARBALL)) throw new LabError(`${KERNEL_TARBALL} is missing — fix: apt-get install linux-source-6.1`, { code: 'E_SOURCE' });
  const tmp = join(KBUILD_DIR, `extract-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  log(`[kbuild] extracting ${KERNEL_TARBALL} into ${KBUILD_DIR} (about a minute, ~1.5 GB)`);
  const t0 = Date.now();
  await run('tar', ['-C', tmp, '-xf', KERNEL_TARBALL], { timeoutMs: 15 * 60_000 });
  await rm(TREE_DIR, { recursive: true, force: true });
  await rename(join(tmp, 'linux-source-6.1'), TREE_DIR);
  await rm(tmp, { recursive: true, force: true });
  await writeFile(mark, `${KERNEL_TARBALL}\n`);
  log(`[kbuild] extracted in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** Write the student's files into the tree (only when they differ, so make stays incremental). */
async function applyStudent(files: Record<string, string>): Promise<void> {
  const writeIfChanged = async (path: string, text: string) => {
    if (existsSync(path) && (await readFile(path, 'utf8')) === text) return;
    await writeFile(path, text);
  };
  await writeIfChanged(join(TREE_DIR, 'kernel/sayhello.c'), files['kernel/sayhello.c']!);
  const makefile = join(TREE_DIR, 'kernel/Makefile');
  const mk = await readFile(makefile, 'utf8');
  if (!mk.includes(MAKEFILE_LINE)) await writeFile(makefile, `${mk.trimEnd()}\n${MAKEFILE_LINE}\n`);
  const pristine = join(TREE_DIR, TBL_PRISTINE);
  if (!existsSync(pristine)) await copyFile(join(TREE_DIR, TBL_PATH), pristine);
  const table = insertSyscallEntries(await readFile(pristine, 'utf8'), files['kernel/syscall_64.tbl']!);
  await writeIfChanged(join(TREE_DIR, TBL_PATH), table);
}

async function makeConfig(log: (l: string) => void): Promise<void> {
  const hash = kbuildKey({ config: KCONFIG, files: {} });
  const mark = join(TREE_DIR, '.kl-config');
  if (existsSync(mark) && readFileSync(mark, 'utf8') === hash && existsSync(join(TREE_DIR, '.config'))) return;
  log('[kbuild] make tinyconfig + the lab options');
  await run('make', ['tinyconfig'], { cwd: TREE_DIR, timeoutMs: 5 * 60_000 });
  const args = ['--file', '.config'];
  for (const [k, v] of Object.entries(KCONFIG)) args.push(v === 'y' ? '--enable' : '--disable', k);
  await run('./scripts/config', args, { cwd: TREE_DIR, timeoutMs: 60_000 });
  await run('make', ['olddefconfig'], { cwd: TREE_DIR, timeoutMs: 5 * 60_000 });
  const problems = checkConfig(await readFile(join(TREE_DIR, '.config'), 'utf8'));
  if (problems.length) throw new LabError(`kernel config: ${problems.join(', ')}`, { code: 'E_COMMAND' });
  await writeFile(mark, hash);
}

/** Build (or find in the cache) the lab kernel with the student's system call. */
export async function buildKernel(opts: BuildKernelOptions = {}): Promise<KernelBuild> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const started = Date.now();
  const srcRoot = opts.srcRoot ?? sourceRoot();
  const files = studentFiles(srcRoot);
  const syscalls = parseSyscallTable(files['kernel/syscall_64.tbl']!);
  const key = kbuildKey({ config: KCONFIG, files });
  const hit = cachedBuild(key);
  if (hit) {
    log(`[kbuild] cached kernel ${key} (${hit.release}) in ${hit.dir}`);
    logBuild('cached', join(srcRoot, 'kernel/K3-syscall'), key);
    return { ...hit, cached: true, seconds: (Date.now() - started) / 1000 };
  }
  return withLock(log, async () => {
    const again = cachedBuild(key);
    if (again) return { ...again, cached: true, seconds: (Date.now() - started) / 1000 };
    await ensureTree(log);
    await makeConfig(log);
    await applyStudent(files);
    const jobs = String(cpus().length);
    log(`[kbuild] make -j${jobs} bzImage in ${TREE_DIR} (first build: several minutes; later ones are incremental)`);
    const make = startBackground('make', [`-j${jobs}`, 'bzImage'], { cwd: TREE_DIR, timeoutMs: opts.timeoutMs ?? 60 * 60_000 });
    let steps = 0;
    let last = '';
    let seen = 0;
    const scan = () => {
      const all = make.output();
      const lines = all.slice(seen).split('\n');
      const complete = all.endsWith('\n') ? lines : lines.slice(0, -1);
      seen += complete.reduce((n, l) => n + l.length + 1, 0);
      for (const l of complete) {
        const p = parseMakeLine(l);
        if (p) { steps++; last = `${p.step} ${p.target}`; }
      }
    };
    const timer = setInterval(() => {
      scan();
      log(`[kbuild] ${((Date.now() - started) / 1000).toFixed(0)} s: ${steps} steps done, now ${last || '(starting)'}`);
    }, (opts.progressEverySec ?? 15) * 1000);
    let res;
    try {
      res = await make.exited;
    } finally {
      clearInterval(timer);
    }
    scan();
    const output = make.output();
    await writeFile(join(KBUILD_DIR, 'last-build.log'), output);
    if (res.exitCode !== 0) {
      const errors = output.split('\n').filter((l) => /error:|Error \d|undefined reference|\*\*\*/.test(l));
      const diagnostics = errors.slice(0, 30).join('\n') || output.slice(-4000);
      const loc = diagnostics.match(/^([^\s:][^:\n]*):(\d+):(?:\d+:)?\s*(?:fatal )?error:/m);
      throw new CompileError({ command: `make -j${jobs} bzImage (in ${TREE_DIR}; full log ${join(KBUILD_DIR, 'last-build.log')})`, file: loc?.[1] ?? 'kernel', line: loc ? Number(loc[2]) : undefined, diagnostics }, new Error(`make exited ${res.exitCode}`));
    }
    const release = (await readFile(join(TREE_DIR, 'include/config/kernel.release'), 'utf8')).trim();
    const dir = join(KBUILD_DIR, 'out', key);
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await copyFile(join(TREE_DIR, 'arch/x86/boot/bzImage'), join(tmp, 'bzImage'));
    await copyFile(join(TREE_DIR, 'vmlinux'), join(tmp, 'vmlinux'));
    await copyFile(join(TREE_DIR, 'System.map'), join(tmp, 'System.map'));
    await copyFile(join(TREE_DIR, '.config'), join(tmp, 'config'));
    const seconds = (Date.now() - started) / 1000;
    await writeFile(join(tmp, 'meta.json'), JSON.stringify({ key, release, syscalls, seconds, srcRoot, builtAt: new Date().toISOString() }, null, 2));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    pruneOutputs(KEEP_OUTPUTS);
    log(`[kbuild] built ${release} in ${seconds.toFixed(0)} s (${steps} steps) → ${dir}`);
    logBuild('compiled', join(srcRoot, 'kernel/K3-syscall'), key);
    const built = cachedBuild(key)!;
    return { ...built, cached: false, seconds };
  });
}

/** Address of a symbol in a System.map (`ffffffff81000000 T _text`), or undefined. */
export function systemMapAddress(map: string, symbol: string): bigint | undefined {
  const m = map.match(new RegExp(`^([0-9a-f]{16})\\s+[tTwW]\\s+${symbol.replace(/[.$]/g, '\\$&')}$`, 'm'));
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--src');
  const srcRoot = i > 0 ? resolve(process.argv[i + 1]!) : undefined;
  buildKernel({ srcRoot }).then(
    (b) => { console.log(JSON.stringify(b, null, 2)); process.exit(0); },
    (e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); },
  );
}
