/**
 * What a lab guide (labs/<area>/<lab>/README.md) tells the student to type
 * (issue 12/21): its shell blocks, the paths they name, and its run commands.
 *
 * The rules the guides follow, checked by tests/course/guides.test.ts:
 *   - one workspace name everywhere: WORKSPACE (`npm run starter -- ~/my-labs`);
 *   - one run command: `sudo LAB_SRC=~/my-labs npm run lab -- <id>` (scripts/labs.ts),
 *     `LAB_SRC=` after `sudo` (sudo drops the environment);
 *   - a shell block starts in the course checkout; a path of the student's
 *     files is `~/my-labs/<area>/<lab>/<file>` (or relative after `cd ~/my-labs…`),
 *     never `c/…`, which is the reference solution.
 */

export const WORKSPACE = '~/my-labs';
export const RUN_COMMAND = /^sudo LAB_SRC=~\/my-labs npm run lab -- (\S+)(?: .*)?$/;

export interface ShellBlock {
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly lines: readonly string[];
}

const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);

/** The fenced shell blocks of a Markdown text. */
export function shellBlocks(md: string): ShellBlock[] {
  const out: ShellBlock[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i]!.match(/^\s*```+\s*(\w*)/);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```/.test(lines[i]!); i++) body.push(lines[i]!);
    if (SHELL_LANGS.has(open[1]!.toLowerCase())) out.push({ line: start + 1, lang: open[1]!, lines: body });
  }
  return out;
}

/** Inline code spans and shell-block lines: everything a guide shows as a command. */
export function codeSnippets(md: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = md.split('\n');
  let fence = false;
  lines.forEach((l, i) => {
    if (/^\s*```/.test(l)) { fence = !fence; return; }
    if (fence) { out.push({ line: i + 1, text: l }); return; }
    for (const m of l.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, text: m[1]! });
  });
  return out;
}

/** A command that runs lab specs (and so must test the student's workspace). */
export function isSpecRun(cmd: string): boolean {
  return /\bnpm (run )?test\b|\bnpx vitest\b|\bnpm run lab\b|\bvitest run\b/.test(cmd) && !/--project unit/.test(cmd)
    && !/\bnpm run lab -- (hints?|answers?)\b/.test(cmd); // hints and answers run no spec
}

/** Strip a shell comment and a leading prompt (`$ `, `# ` stays a comment). */
function command(line: string): string {
  return line.replace(/^\s*\$\s+/, '').replace(/(^|\s)#.*$/, '').trim();
}

export interface NamedPath {
  readonly line: number;
  /** As written. */
  readonly token: string;
  /** Where it points: the workspace (`rel` inside it), the reference c/, or the course checkout. */
  readonly kind: 'workspace' | 'reference' | 'checkout' | 'other-workspace';
  readonly rel: string;
}

const WORKSPACE_TOP = /^(00-environment|ebpf|io_uring|cloud|kernel)(\/|$)/;
const CHECKOUT_TOP = /^(labs|helpers|scripts|tests|docs)\//;

/**
 * The paths a shell block names, with the directory it is in tracked through
 * `cd` (a block starts in the course checkout; a `cd` elsewhere stops the
 * checking of relative paths until a `cd` back into the workspace).
 */
export function namedPaths(block: ShellBlock): NamedPath[] {
  const out: NamedPath[] = [];
  let cwd: { kind: 'checkout' } | { kind: 'workspace'; rel: string } | { kind: 'elsewhere' } = { kind: 'checkout' };
  block.lines.forEach((raw, i) => {
    const line = block.line + 1 + i;
    for (const part of command(raw).split(/&&|;|\|/)) {
      const words = part.trim().split(/\s+/).filter(Boolean);
      for (const [k, w0] of words.entries()) {
        const w = w0.replace(/^['"(]+|['")]+$/g, '').replace(/^[A-Z_]+=/, '');
        if (!w || w.startsWith('-') || w.includes('$') || w.includes('*')) continue;
        const isCd = words[0] === 'cd' && k === 1;
        const home = w.match(/^~\/([^/]+)(?:\/(.*))?$/);
        let p: NamedPath | undefined;
        if (home) {
          if ('~/' + home[1] !== WORKSPACE) p = { line, token: w, kind: 'other-workspace', rel: w };
          else p = { line, token: w, kind: 'workspace', rel: home[2] ?? '' };
        } else if (/^c\//.test(w)) {
          p = { line, token: w, kind: 'reference', rel: w.slice(2) };
        } else if (cwd.kind === 'workspace' && /\.(c|h|py|bt|sh|tbl|gdb|fio)$/.test(w) && !w.startsWith('/')) { // a source file, not a built program
          p = { line, token: w, kind: 'workspace', rel: cwd.rel ? `${cwd.rel}/${w}` : w };
        } else if (cwd.kind === 'checkout' && (CHECKOUT_TOP.test(w) || WORKSPACE_TOP.test(w) && w.includes('/'))) {
          p = { line, token: w, kind: 'checkout', rel: w }; // must exist in the checkout: io_uring/… there is a mistake
        }
        if (isCd) {
          if (p?.kind === 'workspace') cwd = { kind: 'workspace', rel: p.rel.replace(/\/$/, '') };
          else cwd = { kind: 'elsewhere' };
        }
        if (p && !(p.kind === 'workspace' && p.rel === '')) out.push(p);
      }
    }
  });
  return out;
}

/** A command of a guide that builds the student's program (a compiler, or the header a BPF build includes). */
export interface BuildCommand {
  readonly line: number;
  /** The directory it runs in, relative to the workspace: the block's `cd ~/my-labs/…`, else the lab's folder. */
  readonly cwd: string;
  /** As written (comment and prompt stripped), one command of the line. */
  readonly command: string;
}

const BUILD_WORD = /^(gcc|cc|clang)\s|^bpftool btf dump\s/;

/**
 * The build commands of a shell block (issue 28: the guides' commands work as
 * written in an edition): gcc/cc/clang, and `bpftool btf dump` (a BPF build's
 * vmlinux.h). A block without `cd` builds in the lab's own folder of the
 * workspace, where the guides say the programs build; after a `cd` outside
 * the workspace (a kernel tree) nothing is a student build. `make` is the
 * kernel's build (K3, the module lab), which the specs run themselves.
 */
export function buildCommands(block: ShellBlock, labId: string): BuildCommand[] {
  const out: BuildCommand[] = [];
  let cwd: string | undefined = labId;
  block.lines.forEach((raw, i) => {
    for (const part of command(raw).split(/&&|;/).map((p) => p.trim().replace(/^sudo\s+/, ''))) {
      const cd = part.match(/^cd\s+(\S+)$/);
      if (cd) {
        const home = cd[1]!.match(/^~\/my-labs(?:\/(.*?))?\/?$/);
        cwd = home ? (home[1] ?? '') : undefined;
        continue;
      }
      if (cwd !== undefined && BUILD_WORD.test(part + ' ')) out.push({ line: block.line + 1 + i, cwd, command: part });
    }
  });
  return out;
}
