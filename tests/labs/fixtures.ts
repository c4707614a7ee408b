/**
 * Wrong programs and correct variants: one format for every lab (issue #30).
 *
 *   tests/fixtures/<lab id>/<variant>/fixture.json
 *   tests/fixtures/<lab id>/<variant>/<files that replace lab sources>
 *
 * fixture.json:
 *   {
 *     "expect": "fail" | "pass",
 *     "why": "what the program does, in a few words (read in the test's name)",
 *     "failing": [{ "test": "<title part or /regex/>", "message": "<regex its failure must match>" }],
 *                                  (fail: each test that must fail; a plain string is one test)
 *     "message": "<regex>",        (shorthand: the message of a single "failing" string)
 *     "passes": ["<title part or /regex/>"],
 *                                  (tests that must still pass: the controls, the part the program gets right)
 *     "files": { "<file here>": "<source path relative to c/>" },
 *                                  ("<file here>" may be a path relative to this folder, e.g. another
 *                                  fixture's file or ../../../../../c/<file>: no copy of a program the tree holds)
 *                                  (default: each file here replaces the lab source of the same name)
 *     "base": "reference" | "starter"   (what the lab's other sources are; default the reference)
 *   }
 *
 * A title part is matched against the test's title (the last part of its
 * name); "/…/flags" is a regular expression. The workspace is the reference
 * c/ with only the fixture's files replaced, so a failure is the fixture's.
 * A wrong program runs only until its last named test (vitest -t over the
 * titles the spec lists up to there); a correct variant runs every test.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { listLabs, type LabInfo } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { CAPABILITY_IDS, type CapabilityId } from '../../helpers/harness/capabilities.js';

export const FIXTURES_DIR = join(REPO_ROOT, 'tests', 'fixtures');

export interface FailingTest { readonly test: string; readonly message?: string }

export interface FixtureJson {
  readonly expect: 'fail' | 'pass';
  readonly why: string;
  readonly failing?: string | readonly (string | FailingTest)[];
  readonly message?: string;
  readonly passes?: readonly string[];
  readonly files?: Readonly<Record<string, string>>;
  readonly base?: 'reference' | 'starter';
  /** Capabilities the program is only wrong (or right) with, beyond its lab's: a wrong program that reads its pages is wrong only where a read maps the zero page. */
  readonly requires?: readonly string[];
  /** Why this wrong program runs outside the lab's containment (LABS_CONTAIN=0): the containment closes its route, and the judge's check behind it must stay tested. */
  readonly uncontained?: string;
}

export interface Fixture {
  readonly lab: string;
  readonly spec: string;
  readonly name: string;
  readonly dir: string;
  readonly expect: 'fail' | 'pass';
  readonly why: string;
  readonly failing: readonly FailingTest[];
  readonly passes: readonly string[];
  /** Source path relative to c/ → the fixture file put there. */
  readonly replaces: Readonly<Record<string, string>>;
  readonly base: 'reference' | 'starter';
  /** The name of its test in the teeth run. */
  readonly title: string;
  /** Its lab's capabilities and its own: without them it is skipped (a failure under LABS_STRICT=1), as its lab is. */
  readonly requires: readonly CapabilityId[];
  /** Set: run with LABS_CONTAIN=0 (fixture.json "uncontained" says why). */
  readonly uncontained?: string;
}

/** "/re/flags" → that expression; anything else → the literal text, anywhere in the title. */
export function selector(sel: string): RegExp {
  const m = /^\/(.+)\/([a-z]*)$/s.exec(sel);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(escapeRegExp(sel));
}

export const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The last part of a test's full name ("Lab > describe > title"). */
export const titleOf = (fullName: string) => fullName.split(' > ').pop() ?? fullName;

function normalize(lab: LabInfo, dir: string, name: string, raw: FixtureJson): Fixture {
  const where = `${dir}/fixture.json`;
  if (raw.expect !== 'fail' && raw.expect !== 'pass') throw new Error(`${where}: "expect" must be "fail" or "pass"`);
  if (!raw.why) throw new Error(`${where}: "why" says what the program does`);
  const list = raw.failing === undefined ? [] : typeof raw.failing === 'string' ? [raw.failing] : raw.failing;
  const failing = list.map((f) => (typeof f === 'string' ? { test: f, message: raw.message } : f));
  if (raw.expect === 'fail' && !failing.length) throw new Error(`${where}: a wrong program names the test it must fail ("failing")`);
  if (raw.expect === 'pass' && failing.length) throw new Error(`${where}: a correct variant names no failing test`);
  for (const s of [...failing.map((f) => f.test), ...failing.flatMap((f) => (f.message ? [f.message] : [])), ...(raw.passes ?? [])]) selector(s);
  const replaces: Record<string, string> = {};
  const files = raw.files ?? Object.fromEntries(readdirSync(dir)
    .filter((f) => f !== 'fixture.json' && statSync(join(dir, f)).isFile())
    .map((f) => {
      const src = lab.sources.find((s) => basename(s) === f);
      if (!src) throw new Error(`${dir}/${f} replaces no source of ${lab.id} (lab.json sources: ${lab.sources.join(', ')}; or map it in "files")`);
      return [f, src];
    }));
  for (const [file, src] of Object.entries(files)) {
    if (!existsSync(join(dir, file))) throw new Error(`${where}: "files" names ${file}, which is not in ${dir}`);
    if (!existsSync(join(REPO_ROOT, 'c', src))) throw new Error(`${where}: ${file} replaces c/${src}, which does not exist`);
    replaces[src] = join(dir, file);
  }
  if (!Object.keys(replaces).length) throw new Error(`${dir}: a fixture replaces at least one source`);
  const unknown = (raw.requires ?? []).filter((c) => !(CAPABILITY_IDS as readonly string[]).includes(c));
  if (unknown.length) throw new Error(`${where}: "requires" names no capability: ${unknown.join(', ')} (helpers/harness/capabilities.ts)`);
  const requires = [...new Set([...lab.requires, ...(raw.requires ?? []) as CapabilityId[]])];
  const named = failing.map((f) => `"${f.test.replace(/^\/\^?|\/[a-z]*$/g, '')}"`).join(' and ');
  const title = raw.expect === 'pass' ? `${name} (${raw.why}) passes every test` : `${name} (${raw.why}) fails ${named}`;
  return { lab: lab.id, spec: lab.spec, name, dir, expect: raw.expect, why: raw.why, failing, passes: raw.passes ?? [], replaces, base: raw.base ?? 'reference', title, requires, ...(raw.uncontained ? { uncontained: raw.uncontained } : {}) };
}

/** Every fixture of every lab, in course order, then by name. */
export function loadFixtures(root = FIXTURES_DIR, labs: readonly LabInfo[] = listLabs()): Fixture[] {
  return labs.flatMap((lab) => {
    const labRoot = join(root, lab.id);
    if (!existsSync(labRoot)) return [];
    return readdirSync(labRoot).sort()
      .filter((n) => existsSync(join(labRoot, n, 'fixture.json')))
      .map((name) => {
        const dir = join(labRoot, name);
        let raw: FixtureJson;
        try { raw = JSON.parse(readFileSync(join(dir, 'fixture.json'), 'utf8')) as FixtureJson; } catch (e) { throw new Error(`${dir}/fixture.json: ${(e as Error).message}`); }
        return normalize(lab, dir, name, raw);
      });
  });
}

/**
 * The -t pattern that runs a wrong program until its last named test: every
 * test the spec lists up to there, by title. Throws when a named test is not
 * in the listing (a fixture that names a test the spec no longer has).
 */
export function untilPattern(fixture: Pick<Fixture, 'failing' | 'passes' | 'name'>, listed: readonly string[]): string {
  const titles = listed.map(titleOf);
  let last = -1;
  for (const sel of [...fixture.failing.map((f) => f.test), ...fixture.passes]) {
    const re = selector(sel);
    const at = titles.findLastIndex((t) => re.test(t));
    if (at < 0) throw new Error(`${fixture.name} names "${sel}", which matches no test of the spec:\n  ${titles.join('\n  ')}`);
    last = Math.max(last, at);
  }
  const wanted = [...new Set(titles.slice(0, last + 1))];
  return `(?:${wanted.map(escapeRegExp).join('|')})$`;
}
