/**
 * The grading summary of a student edition's CI run:
 *
 *   npx tsx scripts/classroom-summary.ts reports/labs.json [--out $GITHUB_STEP_SUMMARY] [--jsonl reports/scores.jsonl]
 *                                        [--revision <sha>] [--repository <owner/name>] [--root <dir>]
 *
 * Appends the Markdown (points per lab, failed tests, and a warning when files
 * outside c/ differ from .classroom/manifest.json) to --out (default stdout),
 * writes one JSON line per lab to --jsonl, and prints those lines to stdout
 * too when LABS_LMS_JSON=1. Exits 1 when the report is missing or unreadable.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { checkTree, MANIFEST_PATH, outsideC, readManifest, sha256 } from '../helpers/course/classroom.js';
import { lmsLines, markdownSummary } from '../helpers/course/grading.js';
import { readReport } from '../helpers/course/report-store.js';

export function main(argv: readonly string[]): number {
  const opt = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
  const valued = new Set(['--out', '--jsonl', '--revision', '--repository', '--root']);
  const file = argv.find((a, i) => !a.startsWith('--') && !valued.has(argv[i - 1] ?? ''));
  const report = file ? readReport(resolve(file)) : undefined;
  const out = opt('--out');
  const emit = (text: string) => (out ? appendFileSync(out, text) : process.stdout.write(text));
  if (!report) {
    emit(`## Kernel labs: no report\n\nNo readable labs report at \`${file ?? '(none given)'}\`: the lab jobs did not get to write one (see their logs).\n`);
    return 1;
  }
  const root = resolve(opt('--root') ?? '.');
  const manifest = readManifest(root);
  const check = manifest ? checkTree(root, manifest) : undefined;
  const changed = check ? outsideC(check) : undefined;
  emit(markdownSummary(report, {
    ...(changed ? { changedOutsideC: changed, missing: check!.missing } : {}),
    ...(opt('--revision') ? { revision: opt('--revision')! } : {}),
  }) + (manifest
    ? `\n<sub>Checked against .classroom/manifest.json (sha256 ${sha256(readFileSync(join(root, MANIFEST_PATH))).slice(0, 16)}…; \`npm run labs -- grade --manifest\` checks a clone against the instructor's copy).</sub>\n`
    : '\n> No .classroom/manifest.json: changes outside `c/` cannot be checked.\n'));
  const lines = lmsLines(report, {
    ...(opt('--repository') ? { repository: opt('--repository')! } : {}),
    ...(opt('--revision') ? { revision: opt('--revision')! } : {}),
    changedOutsideC: Boolean(changed?.length || check?.missing.length),
  });
  const jsonl = opt('--jsonl');
  if (jsonl) {
    mkdirSync(dirname(resolve(jsonl)), { recursive: true });
    writeFileSync(jsonl, lines.map((l) => `${l}\n`).join(''));
  }
  if (process.env.LABS_LMS_JSON === '1') for (const l of lines) console.log(`LABS_SCORE ${l}`);
  return 0;
}

if (resolve(process.argv[1] ?? '') === resolve(new URL(import.meta.url).pathname)) process.exitCode = main(process.argv.slice(2));
