/**
 * The instructor's workflow and the student's guide stay in step with the
 * tools: the workflow asks for KVM + root runners, shards the labs project
 * with LABS_STRICT=1 and uploads the reports; every `npm run` command the
 * docs show exists; LAB_SRC is never written before sudo (which drops it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const read = (p: string) => readFileSync(join(REPO_ROOT, p), 'utf8');
const WORKFLOW = '.github/workflows/labs.yml';
const DOCS = ['README.md', 'docs/CI.md'];
const workflow = read(WORKFLOW);
const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;

/** The text of one top-level job (jobs are indented by two spaces). */
function job(name: string): string {
  const start = workflow.indexOf(`\n  ${name}:\n`);
  if (start < 0) throw new Error(`${WORKFLOW} has no job ${name}`);
  const rest = workflow.slice(start + 1);
  const next = rest.slice(1).search(/\n {2}[A-Za-z_-]+:\n/);
  return next < 0 ? rest : rest.slice(0, next + 1);
}

describe(`${WORKFLOW}`, () => {
  it('is valid YAML (checked with python3 yaml when it is installed)', (ctx) => {
    const py = spawnSync('python3', ['-c', 'import sys, yaml; yaml.safe_load(open(sys.argv[1])); print("ok")', join(REPO_ROOT, WORKFLOW)], { encoding: 'utf8' });
    if (py.error || /No module named/.test(py.stderr)) ctx.skip('python3 with the yaml module not found. Fix: sudo apt install python3-yaml');
    expect(py.stdout.trim(), py.stderr).toBe('ok');
  });

  it('runs the lab shards on self-hosted runners with KVM and root, strictly, and uploads reports/ even on failure', () => {
    const labs = job('labs');
    expect(labs).toMatch(/runs-on: \[self-hosted, linux, x64, kvm, root\]/);
    expect(labs).toMatch(/shard: \[1, 2, 3\]/);
    expect(labs).toContain('npx vitest run --project labs --shard=${{ matrix.shard }}/${{ strategy.job-total }}');
    expect(labs).toMatch(/LABS_STRICT: '1'/);
    expect(labs).toMatch(/LABS_JUNIT: reports\/junit-labs-\$\{\{ matrix\.shard \}\}\.xml/);
    expect(labs).toMatch(/as_root npm run setup/);
    // sudo drops the environment: the strict flag and the JUnit path must be passed on explicitly.
    expect(labs).toMatch(/sudo --preserve-env=[^ ]*LABS_STRICT[^ ]*LABS_JUNIT/);
    expect(labs).toMatch(/if: always\(\)\n\s+uses: actions\/upload-artifact@v4\n\s+with:\n\s+name: labs-shard-\$\{\{ matrix\.shard \}\}\n\s+path: reports\//);
  });

  it('merges the shards into one report artifact with the command scripts/labs.ts provides', () => {
    const report = job('report');
    expect(report).toMatch(/needs: \[labs, guest\]\n\s+if: always\(\)/);
    expect(report).toContain('npx tsx scripts/labs.ts merge shards/*/labs.json -o reports');
    expect(report).toContain('name: labs-report');
    expect(read('scripts/labs.ts')).toContain("case 'merge': return merge(args);");
  });
});

describe(`${WORKFLOW}: the guest pass`, () => {
  it('runs npm run test:guest strictly on a KVM root runner and hands its report to the merge as a labs-shard-* artifact', () => {
    const guest = job('guest');
    expect(guest).toMatch(/runs-on: \[self-hosted, linux, x64, kvm, root\]/);
    expect(guest).toMatch(/LABS_STRICT: '1'/);
    expect(guest).toMatch(/as_root npm run test:guest -- --timeout \d+/);
    expect(guest).toMatch(/sudo --preserve-env=[^ ]*LABS_STRICT/);
    expect(guest).toMatch(/if: always\(\)\n\s+uses: actions\/upload-artifact@v4\n\s+with:\n(\s+#.*\n)?\s+name: labs-shard-guest\n\s+path: reports\//);
  });

  it('.ci/run runs the guest pass after the host pass only when asked (LABS_CI_GUEST=1) and when it fits in the 90 minutes', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/if \[ "\$\{LABS_CI_GUEST:-0\}" != 1 \]/);
    expect(ci.indexOf('npm run test:guest')).toBeGreaterThan(ci.indexOf('as_root npm test'));
    expect(ci).toMatch(/budget_s=\$\{LABS_CI_BUDGET_S:-5400\}/);
    expect(ci).toMatch(/elif \[ \$\(\( used_s \+ guest_s \+ 120 \)\) -le "\$budget_s" \]/);
  });
});

describe('README.md and docs/CI.md', () => {
  it('show only npm scripts that exist', () => {
    for (const doc of [...DOCS, WORKFLOW]) {
      const used = [...read(doc).matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]!);
      expect(used.length, `${doc} shows no npm run command`).toBeGreaterThan(0);
      for (const s of used) expect(Object.keys(scripts), `${doc} shows "npm run ${s}"`).toContain(s);
    }
  });

  it('name files that exist', () => {
    for (const doc of DOCS) {
      for (const [, path] of read(doc).matchAll(/`((?:scripts|helpers|docs|\.github\/workflows|\.ci)\/[\w./-]+?)`/g)) {
        expect(existsSync(join(REPO_ROOT, path!)), `${doc} names ${path}`).toBe(true);
      }
    }
  });

  it('put LAB_SRC after sudo, never before it (sudo drops it and the reference would be tested instead)', () => {
    for (const doc of [...DOCS, WORKFLOW, 'scripts/labs.ts']) {
      const lines = read(doc).split('\n').filter((l) => /LAB_SRC=\S+\s+sudo\b/.test(l) && !/silently tests the reference/.test(l));
      expect(lines, `${doc}`).toEqual([]);
    }
    expect(read('README.md')).toContain('sudo LAB_SRC=~/my-labs npm run lab -- 00-environment');
  });

  it('walk a student through set up, list, starter, a failing run, watch mode and the report', () => {
    const loop = read('README.md');
    const steps = ['sudo npm run setup', 'npm run labs -- list', 'npm run starter -- ~/my-labs', 'sudo LAB_SRC=~/my-labs npm run lab --', '--watch', 'reports/labs.html'];
    // Each step must appear after the previous one (a step may also be mentioned earlier, e.g. in an overview).
    let from = 0;
    const missing: string[] = [];
    for (const step of steps) {
      const i = loop.indexOf(step, from);
      if (i < 0) missing.push(step);
      else from = i + step.length;
    }
    expect(missing, 'steps missing, or out of order, in the README').toEqual([]);
  });
});
