/**
 * `npm run starter -- <dir>` in a student edition. The guides were written for
 * a workspace made by the course's `npm run starter` (~/my-labs); in an edition
 * the workspace is the repository's own c/, which CI grades. So here the
 * command makes <dir> a symbolic link to c/: every command of every guide
 * (`cd ~/my-labs/…`, `sudo LAB_SRC=~/my-labs npm run lab -- …`) then works as
 * written, on the same files CI grades. Nothing is copied.
 */
import { lstatSync, readlinkSync, realpathSync, symlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { REFERENCE_SRC } from '../helpers/harness/paths.js';

export function linkWorkspace(target: string, cDir = REFERENCE_SRC): { readonly code: number; readonly message: string } {
  const dest = resolve(target);
  let existing: ReturnType<typeof lstatSync> | undefined;
  try { existing = lstatSync(dest); } catch { existing = undefined; }
  if (existing) {
    if (existing.isSymbolicLink() && realpathSync(dest) === realpathSync(cDir)) {
      return { code: 0, message: `${dest} already links to ${cDir}: your workspace is ready.` };
    }
    const what = existing.isSymbolicLink() ? `a link to ${readlinkSync(dest)}` : existing.isDirectory() ? 'a directory' : 'a file';
    return {
      code: 2,
      message: `${dest} exists (${what}). In a student edition your workspace is this repository's c/ (${cDir}), which CI grades: `
        + `move ${dest} away and run this again, or skip the guides' LAB_SRC and edit the files in c/ (sudo npm run lab -- <lab>).`,
    };
  }
  symlinkSync(cDir, dest, 'dir');
  return {
    code: 0,
    message: `${dest} now links to ${cDir}, the files CI grades (nothing copied): the guides' commands work as written, `
      + `e.g. sudo LAB_SRC=${target} npm run lab -- 00-environment. Commit your work in c/.`,
  };
}

if (resolve(process.argv[1] ?? '') === resolve(new URL(import.meta.url).pathname)) {
  const target = process.argv.slice(2).find((a) => !a.startsWith('--'));
  if (!target) {
    console.error('usage: npm run starter -- <dir>   (in a student edition: <dir> becomes a link to c/, your workspace)');
    process.exitCode = 2;
  } else {
    const r = linkWorkspace(resolve(process.env.INIT_CWD ?? process.cwd(), target));
    (r.code ? console.error : console.log)(r.message);
    process.exitCode = r.code;
  }
}
