/**
 * Building the labs' C: user programs with gcc, BPF objects with clang.
 * Results are cached under .cache/build by a hash of the source (and the
 * local headers it includes), the flags and the compiler's version, so an
 * unchanged lab recompiles nothing. A compiler error becomes a CompileError
 * with the compiler's diagnostics and the first file:line it names.
 *
 * The compiler does not run as root (issue #29): the source and the local
 * headers it includes from the student's tree are copied into a temp
 * directory of the run owned by `nobody`, and gcc/clang run there as
 * nobody, with no capabilities and no_new_privs. A source that includes a
 * file only root can read (`#include "/root/…"`, a path that climbs out of
 * the workspace) fails to build instead of printing that file into the
 * report; the diagnostics name the student's files, not the copy.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, constants, existsSync } from 'node:fs';
import { chown, copyFile, mkdir, mkdtemp, open, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { expect } from 'vitest';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CompileError, CommandError, LabError, type CompileFacts } from './errors.js';
import { RESOURCE_PREFIX, runDir, runId } from './run-state.js';
import { run } from './exec.js';
import { systemTool } from './programs.js';
import { isStudentSource, markStudentProgram } from './contain.js';
import { CACHE_DIR, REFERENCE_SRC, sourceRoot } from './paths.js';

export interface BuildOptions {
  /** The C source (absolute path). */
  readonly src: string;
  /** Extra compiler flags (e.g. -DQD=64). */
  readonly cflags?: readonly string[];
  /** Libraries and linker flags, after the source (e.g. -luring). */
  readonly ldlibs?: readonly string[];
  /** Link statically (for programs run inside a chroot or a QEMU guest). */
  readonly static?: boolean;
  /** Output file name inside the cache entry; default: the source's base name without .c (or .o for BPF). */
  readonly name?: string;
}

export interface BuildResult {
  /** Path of the built file (inside the cache). */
  readonly path: string;
  /** True when the cache already had it and no compiler ran. */
  readonly cached: boolean;
  /** The compiler command line that built it (or would have). */
  readonly command: string;
}

export const USER_CFLAGS = ['-O2', '-g', '-Wall', '-Wextra', '-Wno-unused-parameter'] as const;
export const BPF_CFLAGS = ['-O2', '-g', '-Wall', '-target', 'bpf', '-D__TARGET_ARCH_x86'] as const;

const versions = new Map<string, Promise<string>>();

/** First line of `<compiler> --version`, memoized (part of every cache key). */
export function compilerVersion(compiler: string): Promise<string> {
  let v = versions.get(compiler);
  if (!v) {
    v = run(compiler, ['--version'], { timeoutMs: 10_000 }).then((r) => r.stdout.split('\n')[0] ?? '');
    versions.set(compiler, v);
  }
  return v;
}

const LOCAL_INCLUDE = /^\s*#\s*include\s+"([^"]+)"/gm;

/** The source and every local header it includes (recursively), for the cache key. */
export async function sourceClosure(src: string, seen = new Set<string>()): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const path = resolve(src);
  if (seen.has(path)) return files;
  seen.add(path);
  const text = await readFile(path, 'utf8');
  files.set(path, text);
  for (const m of text.matchAll(LOCAL_INCLUDE)) {
    const header = resolve(dirname(path), m[1]!);
    if (existsSync(header)) for (const [p, t] of await sourceClosure(header, seen)) files.set(p, t);
  }
  return files;
}

/**
 * The cache key of a build: compiler, its version, the arguments and the
 * files' contents. Files are named by their path relative to `root` (the
 * source's directory; their base name without one), never by an absolute
 * path, so the same sources in two workspaces (a student's checkout, each
 * teeth run's fresh temp copy) share one cache entry.
 */
export async function cacheKey(parts: { compiler: string; version: string; args: readonly string[]; files: Map<string, string>; root?: string }): Promise<string> {
  const h = createHash('sha256');
  h.update(`${parts.compiler}\0${parts.version}\0${parts.args.join('\0')}\0`);
  const name = (path: string) => (parts.root ? relative(parts.root, path) : basename(path));
  for (const [path, text] of [...parts.files].map(([p, t]) => [name(p), t] as const).sort(([a], [b]) => a.localeCompare(b))) {
    h.update(`${path}\0${text}\0`);
  }
  return h.digest('hex').slice(0, 24);
}

/** `file:line` of the first error (or warning) in gcc/clang diagnostics. */
export function firstDiagnosticLocation(diagnostics: string): { file: string; line: number } | undefined {
  const m = diagnostics.match(/^([^\s:][^:\n]*):(\d+):(?:\d+:)?\s*(?:fatal )?error:/m)
    ?? diagnostics.match(/^([^\s:][^:\n]*):(\d+):(?:\d+:)?\s*(?:warning|note):/m);
  return m ? { file: m[1]!, line: Number(m[2]) } : undefined;
}

/**
 * `LABS_BUILD_LOG=1` prints `[build] cached|compiled <source> (<key>)` for every
 * build; `LABS_BUILD_LOG=<file>` appends those lines to the file (to count
 * what a run compiled).
 */
export function logBuild(what: 'cached' | 'compiled', src: string, key: string): void {
  const to = process.env.LABS_BUILD_LOG;
  if (!to || to === '0') return;
  const line = `[build] ${what} ${src} (${key})`;
  if (to === '1') console.log(line);
  else try { appendFileSync(to, `${line}\n`); } catch { /* a log, not a build step */ }
}

function currentTestName(): string {
  try { return expect.getState().currentTestName ?? '(setup)'; } catch { return '(setup)'; }
}

async function compile(compiler: string, opts: BuildOptions, args: readonly string[], outName: string): Promise<BuildResult> {
  const src = resolve(opts.src);
  const files = await sourceClosure(src);
  const version = await compilerVersion(compiler);
  // Libraries are part of what is built (a static link copies them in); only when there are some, so other keys stay as they were.
  const keyArgs = opts.ldlibs?.length ? [...args, '__LDLIBS__', ...opts.ldlibs] : args;
  const key = await cacheKey({ compiler, version, args: keyArgs, files, root: dirname(src) });
  const dir = join(CACHE_DIR, 'build', key);
  const out = join(dir, outName);
  const fullArgs = [...args.slice(0, -1), '-o', out, src, ...(opts.ldlibs ?? [])];
  const command = [compiler, ...fullArgs].join(' ');
  builtFrom.set(out, src);
  if (existsSync(out) && (await stat(out)).size > 0) {
    logBuild('cached', src, key);
    return { path: out, cached: true, command };
  }
  // Diagnostics once per build: a source that failed in this run fails again at once, pointing at the first report.
  const failedMark = join(runDir(), `compile-failed-${key}.json`);
  if (existsSync(failedMark)) {
    try {
      const f = JSON.parse(await readFile(failedMark, 'utf8')) as CompileFacts & { test: string };
      throw new CompileError({ command: f.command, file: f.file, line: f.line, diagnostics: f.diagnostics }, undefined, f.test);
    } catch (e) {
      if (e instanceof CompileError) throw e;
    }
  }
  await mkdir(dir, { recursive: true });
  const tmpOut = `${out}.tmp-${process.pid}`;
  const stage = await stageUnprivileged(compiler, src, files, fullArgs, out);
  try {
    await run(stage.file, stage.args, { timeoutMs: 120_000, cwd: stage.cwd, env: stage.env });
    await copyFile(stage.out, tmpOut);
  } catch (e) {
    await rm(tmpOut, { force: true });
    if (e instanceof CommandError && e.code === 'E_COMMAND') {
      const diagnostics = stage.unstage(e.stderr || e.stdout);
      const loc = firstDiagnosticLocation(diagnostics);
      const facts = { command, file: loc?.file ?? src, line: loc?.line, diagnostics };
      try { await writeFile(failedMark, JSON.stringify({ ...facts, test: currentTestName() })); } catch { /* no state dir */ }
      // No cause: the facts are the compiler's message, said once (the command's error would repeat it twice more).
      throw new CompileError(facts);
    }
    throw e;
  } finally {
    await stage.cleanup();
  }
  await rename(tmpOut, out);
  logBuild('compiled', src, key);
  return { path: out, cached: false, command };
}

/** The uid and gid compiles run as: nobody. */
export const COMPILE_UID = 65534;
const SETPRIV = systemTool('setpriv');

const inside = (path: string, root: string) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/** The tree a source's local headers may come from: the student's sources, the reference tree, or the source's own directory. */
export function includeRoot(src: string): string {
  return [sourceRoot(), REFERENCE_SRC].map((r) => resolve(r)).find((r) => inside(src, r)) ?? dirname(src);
}

interface Staged {
  readonly file: string;
  readonly args: string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  /** Where the compiler writes the output. */
  readonly out: string;
  /** The diagnostics with the copy's paths put back to the student's. */
  unstage(text: string): string;
  cleanup(): Promise<void>;
}

/**
 * Copy what the compiler may read into a temp directory owned by nobody and
 * return the command that compiles it there as nobody. The local headers of
 * the closure are copied only from the source's include root (a header that
 * climbs out of it is not there: the compiler says which); each `-I` directory
 * of the command (vmlinux.h) is copied flat. When this process is not root,
 * or setpriv is missing, the command is the compiler itself in place.
 */
async function stageUnprivileged(compiler: string, src: string, files: Map<string, string>, fullArgs: readonly string[], out: string): Promise<Staged> {
  if (process.getuid?.() !== 0 || !SETPRIV) {
    return { file: compiler, args: [...fullArgs], cwd: dirname(src), env: {}, out, unstage: (t) => t, cleanup: async () => {} };
  }
  const root = includeRoot(src);
  const realRoot = await realpath(root);
  const tmp = await mkdtemp(join(tmpdir(), `${RESOURCE_PREFIX}${runId()}-cc-`));
  const back: Array<[string, string]> = [];
  try {
    const tree = join(tmp, 'src');
    // Root copies: a source or local header that is a link (or lies under a linked directory) leading out of the
    // tree would have root copy a file the compiler, as nobody, may not read, and its diagnostics quote it.
    const place = async (from: string, to: string) => {
      const real = await realpath(from);
      if (!inside(real, realRoot)) {
        throw new LabError(`${from} leads out of ${root} (to ${real}): a source and the local headers it includes must be files of that tree, not links out of it`, { code: 'E_SOURCE' });
      }
      await mkdir(dirname(to), { recursive: true });
      const fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
      try { await writeFile(to, await fh.readFile()); } finally { await fh.close(); }
    };
    for (const file of files.keys()) {
      if (inside(file, root)) await place(file, join(tree, relative(root, file)));
    }
    back.push([tree, root]);
    const outDir = join(tmp, 'out');
    await mkdir(outDir);
    const stagedOut = join(outDir, basename(out));
    const args: string[] = [];
    let includes = 0;
    for (let i = 0; i < fullArgs.length; i++) {
      const a = fullArgs[i]!;
      const prev = fullArgs[i - 1];
      if (a === out) args.push(stagedOut);
      else if (a === src) args.push(join(tree, relative(root, src)));
      else if (prev === '-I' && isAbsolute(a) && !a.startsWith('/usr/')) {
        const copy = join(tmp, `include${includes++}`);
        await mkdir(copy);
        for (const e of await readdir(a, { withFileTypes: true })) if (e.isFile()) await copyFile(join(a, e.name), join(copy, e.name));
        back.push([copy, a]);
        args.push(copy);
      } else args.push(a);
    }
    // Everything in the copy belongs to nobody, whatever the student's modes.
    const own = async (p: string) => {
      await chown(p, COMPILE_UID, COMPILE_UID);
      const st = await stat(p);
      if (st.isDirectory()) for (const n of await readdir(p)) await own(join(p, n));
    };
    await own(tmp);
    // Longest first, so that a path inside another is put back whole.
    back.sort(([x], [y]) => y.length - x.length);
    return {
      file: SETPRIV,
      args: ['--reuid', String(COMPILE_UID), '--regid', String(COMPILE_UID), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--', compiler, ...args],
      cwd: dirname(join(tree, relative(root, src))),
      env: { TMPDIR: tmp },
      out: stagedOut,
      unstage: (text) => back.reduce((t, [from, to]) => t.split(from).join(to), text),
      cleanup: () => rm(tmp, { recursive: true, force: true }),
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Build a user-space program with gcc (-O2 -Wall). */
export async function buildProgram(opts: BuildOptions): Promise<BuildResult> {
  const name = opts.name ?? basename(opts.src).replace(/\.c$/, '');
  const args = [...USER_CFLAGS, ...(opts.static ? ['-static'] : []), ...(opts.cflags ?? []), '__SRC__'];
  const built = await compile('gcc', opts, args, name);
  if (isStudentSource(opts.src)) markStudentProgram(built.path);
  return built;
}

let sysIncludes: Promise<string[]> | undefined;

/**
 * clang's own system include directories as `-idirafter` flags, so that a
 * BPF program finds <asm/types.h> and friends from the host's multiarch dir.
 */
export function bpfSystemIncludes(): Promise<string[]> {
  sysIncludes ??= run('clang', ['-v', '-E', '-', '-o', '/dev/null'], { input: '', timeoutMs: 10_000, reject: false }).then((r) => {
    const text = r.stderr;
    const start = text.indexOf('#include <...> search starts here:');
    const end = text.indexOf('End of search list.');
    if (start < 0 || end < 0) return [];
    return text.slice(start, end).split('\n').slice(1)
      .map((l) => l.trim()).filter((l) => l.startsWith('/'))
      .flatMap((dir) => ['-idirafter', dir]);
  });
  return sysIncludes;
}

/** `vmlinux.h` generated from the running kernel's BTF (cached by the BTF's hash). */
export async function vmlinuxHeaderDir(): Promise<string> {
  const btf = await readFile('/sys/kernel/btf/vmlinux');
  const dir = join(CACHE_DIR, 'vmlinux', createHash('sha256').update(btf).digest('hex').slice(0, 16));
  const header = join(dir, 'vmlinux.h');
  if (!existsSync(header)) {
    await mkdir(dir, { recursive: true });
    const r = await run('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { timeoutMs: 60_000 });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${header}.tmp`, r.stdout);
    await rename(`${header}.tmp`, header);
  }
  return dir;
}

export interface BpfBuildOptions extends BuildOptions {
  /** Add the directory of a generated vmlinux.h to the include path. */
  readonly vmlinux?: boolean;
}

/** Build a BPF object with clang -O2 -g -target bpf. */
/** Which source each output of this run was built from (for messages that name the file to fix, not the cache). */
const builtFrom = new Map<string, string>();

/** The source `output` was built from in this run, if the harness built it. */
export function sourceOf(output: string): string | undefined {
  return builtFrom.get(output);
}

export async function buildBpfObject(opts: BpfBuildOptions): Promise<BuildResult> {
  const name = opts.name ?? basename(opts.src).replace(/\.c$/, '.o');
  const includes = [...(opts.vmlinux ? ['-I', await vmlinuxHeaderDir()] : []), ...(await bpfSystemIncludes())];
  const args = [...BPF_CFLAGS, ...includes, ...(opts.cflags ?? []), '-c', '__SRC__'];
  return compile('clang', opts, args, name);
}
