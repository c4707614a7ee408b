/**
 * npm run starter -- <dir> [--force]
 * Writes a student workspace: a copy of c/ in which every marked region
 * (LAB:BEGIN … LAB:END) is replaced by its TODO hint and starter lines.
 * Then: sudo LAB_SRC=<dir> npm run lab -- <id>  runs a lab's spec against it.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, chownSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { findRegions, toStarter } from '../helpers/course/markers.js';
import { REFERENCE_SRC } from '../helpers/harness/paths.js';

export interface StarterSummary {
  readonly files: number;
  readonly regions: number;
  readonly marked: readonly string[];
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Write the starter workspace for `src` (default c/) into `dest`. */
export function writeStarter(dest: string, src = REFERENCE_SRC): StarterSummary {
  mkdirSync(dest, { recursive: true });
  let regions = 0;
  const marked: string[] = [];
  const files = walk(src);
  for (const file of files) {
    const rel = relative(src, file);
    const out = join(dest, rel);
    mkdirSync(join(out, '..'), { recursive: true });
    const buf = readFileSync(file);
    if (buf.includes(0)) { cpSync(file, out); continue; }
    const text = buf.toString('utf8');
    const found = findRegions(text, rel);
    if (found.length) { regions += found.length; marked.push(rel); }
    writeFileSync(out, found.length ? toStarter(text, rel) : text, { mode: statSync(file).mode });
  }
  return { files: files.length, regions, marked };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), uid, gid);
}

function main(argv: string[]): void {
  const force = argv.includes('--force');
  const target = argv.find((a) => !a.startsWith('--'));
  if (!target) {
    console.error('usage: npm run starter -- <dir> [--force]\nWrites your lab workspace (the sources of c/ with the parts you write replaced by TODOs).');
    process.exit(2);
  }
  const dest = resolve(target);
  if (existsSync(dest) && readdirSync(dest).length && !force) {
    console.error(`${dest} exists and is not empty; pass --force to overwrite (your edits there would be lost).`);
    process.exit(2);
  }
  const summary = writeStarter(dest);
  // Under sudo, give the workspace to the student who asked for it.
  const uid = Number(process.env.SUDO_UID), gid = Number(process.env.SUDO_GID);
  if (process.getuid?.() === 0 && uid > 0) chownTree(dest, uid, gid);
  console.log(`Wrote ${summary.files} files to ${dest}; ${summary.regions} TODO regions in ${summary.marked.length} files:`);
  for (const f of summary.marked) console.log(`  ${f}`);
  console.log(`\nEvery lab fails until you fill its TODOs. Run one against your workspace with (LAB_SRC= after sudo):\n  sudo LAB_SRC=${dest} npm run lab -- 00-environment\n  npm run labs -- list     (every lab id)`);
}

if (resolve(process.argv[1] ?? '') === resolve(new URL(import.meta.url).pathname)) main(process.argv.slice(2));
