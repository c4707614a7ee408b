/**
 * Teeth (issue 12): programs a clever student would write — a shortcut around
 * the mechanism, a hard-coded answer, an off-by-one — must FAIL their lab, and
 * a correct program written differently from the reference must PASS it.
 *
 * Layout: tests/fixtures/<lab id>/<variant>/ holds `fixture.json`
 * ({"expect": "fail", "failing": "<part of the name of the test that must fail>", "why": "…"}
 * or {"expect": "pass", "why": "…"}) and the replacement files, each replacing
 * the lab source (lab.json `sources`) of the same name. The workspace is the
 * reference c/ with only those files replaced, so the failure is theirs.
 * Runs each lab spec in a nested vitest with LAB_SRC (root only).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { runSpecNested } from '../labs/nested-run.js';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listLabs } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

interface Fixture { readonly expect: 'fail' | 'pass'; readonly failing?: string; readonly why: string }
interface Variant { readonly lab: string; readonly spec: string; readonly name: string; readonly dir: string; readonly fixture: Fixture; readonly replaces: Record<string, string> }
interface JsonAssertion { fullName: string; title: string; status: string; failureMessages: string[] }

const FIXTURES = join(REPO_ROOT, 'tests', 'fixtures');

function variants(): Variant[] {
  return listLabs().flatMap((lab) => {
    const root = join(FIXTURES, lab.id);
    if (!existsSync(root)) return [];
    return readdirSync(root).filter((n) => existsSync(join(root, n, 'fixture.json'))).map((name) => {
      const dir = join(root, name);
      const replaces: Record<string, string> = {};
      for (const f of readdirSync(dir).filter((f) => f !== 'fixture.json' && statSync(join(dir, f)).isFile())) {
        const src = lab.sources.find((s) => basename(s) === f);
        if (!src) throw new Error(`${dir}/${f} replaces no source of ${lab.id} (lab.json sources: ${lab.sources.join(', ')})`);
        replaces[src] = join(dir, f);
      }
      return { lab: lab.id, spec: lab.spec, name, dir, fixture: JSON.parse(readFileSync(join(dir, 'fixture.json'), 'utf8')) as Fixture, replaces };
    });
  });
}

const all = variants();
const LAB_FILTER = process.env.WRONG_PROGRAMS_LAB; // e.g. WRONG_PROGRAMS_LAB=00-environment to run one lab's set
const chosen = LAB_FILTER ? all.filter((v) => v.lab === LAB_FILTER) : all;

async function runVariant(v: Variant, signal: AbortSignal): Promise<JsonAssertion[]> {
  const r = await runSpecNested(v.spec, { replace: v.replaces, timeoutMs: 20 * 60_000, signal });
  expect(r.fileMessage, 'the spec file failed to run').not.toMatch(/CompileError|Cannot find module|SyntaxError: /);
  return r.tests.map((t) => ({ ...t, failureMessages: [...t.failureMessages] }));
}

describe('wrong programs fail their lab, correct variants pass it', () => {
  it('has fixtures to run', () => {
    expect(all.length).toBeGreaterThan(0);
  });

  it.for(chosen)('$lab/$name', { timeout: 21 * 60_000 }, async (v, ctx) => {
    if (process.getuid?.() !== 0) {
      if (process.env.LABS_STRICT === '1') throw new Error('the wrong-program check runs lab specs and needs root');
      ctx.skip();
    }
    const tests = await runVariant(v, ctx.signal);
    const lines = tests.map((t) => `${t.status}: ${t.title}${t.failureMessages.length ? `\n    ${t.failureMessages[0]!.split('\n').slice(0, 4).join('\n    ')}` : ''}`).join('\n');
    if (v.fixture.expect === 'pass') {
      expect(tests.filter((t) => t.status !== 'passed').map((t) => t.title), `${v.name} is correct (${v.fixture.why}) but:\n${lines}`).toEqual([]);
      return;
    }
    const failing = tests.filter((t) => t.status === 'failed');
    expect(failing.length, `${v.name} (${v.fixture.why}) PASSED ${v.lab}:\n${lines}`).toBeGreaterThan(0);
    if (v.fixture.failing) {
      expect(failing.map((t) => t.title).join('\n'), `${v.name} must fail "${v.fixture.failing}":\n${lines}`).toContain(v.fixture.failing);
    }
    console.log(`[wrong program] ${v.lab}/${v.name} failed as expected:\n${failing.map((t) => `  ${t.title}: ${t.failureMessages[0]?.split('\n')[0]}`).join('\n')}`);
  });
});
