/**
 * The student edition (scripts/edition.ts): a complete student repository
 * without the solutions; its manifest and the check of a push against it
 * (helpers/course/classroom.ts); `update` keeps the student's work; and the
 * instructor's path of docs/CLASSROOM.md end to end on Lab 0: an edition's
 * own `vitest` fails its starter with 0 points and gives a solved copy full
 * points, in reports/labs.json, the JUnit properties and the CI summary.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkTree, MANIFEST_PATH, readManifest, readStudent, sha256, type Manifest } from '../../helpers/course/classroom.js';
import { findRegions } from '../../helpers/course/markers.js';
import { namedPaths, shellBlocks } from '../../helpers/course/guide-commands.js';
import { HINTS_RECORD } from '../../helpers/course/reveal.js';
import type { LabsReport } from '../../helpers/course/report-model.js';
import { run } from '../../helpers/harness/exec.js';
import { REFERENCE_SRC, REPO_ROOT } from '../../helpers/harness/paths.js';
import { applyUpdate, buildEdition, findLeaks, planUpdate, sealEdition, solutionLines, writeEdition, type Edition } from '../../scripts/edition.js';
import { main as summaryMain } from '../../scripts/classroom-summary.js';
import { main as labsMain } from '../../scripts/labs.js';

const edition = buildEdition();
const text = (p: string) => edition.get(p)!.data.toString('utf8');
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'kl-edition-test-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('npm run edition -- student <dir>', () => {
  it('holds the specs, helpers, guides, scripts, the grading workflow and the manifest', () => {
    for (const p of ['labs/00-environment/environment.spec.ts', 'labs/00-environment/README.md', 'labs/00-environment/lab.json',
      'helpers/harness/exec.ts', 'helpers/course/grading.ts', 'scripts/labs.ts', 'scripts/setup.sh', 'scripts/classroom-summary.ts',
      'scripts/packages/apt.txt', 'package.json', 'package-lock.json', 'vitest.config.ts', 'tsconfig.json', 'README.md',
      '.github/workflows/grade.yml', MANIFEST_PATH]) {
      expect(edition.has(p), `${p} is missing from the edition`).toBe(true);
    }
    expect(text('README.md')).toContain('sudo npm run setup');
    expect(text('README.md')).toContain('sudo npm test ');
    expect(text('README.md'), 'the guides speak of LAB_SRC workspaces: the edition says c/ is the workspace').toContain('Your workspace is this repository\'s `c/`');
    expect(text('README.md')).toContain('[通用准备工作 · Preparing the environment](labs/00-environment/README.md)');
  });

  it('leaves out the unit tests and their fixtures, the instructor docs and tools, and any git history', () => {
    const paths = [...edition.keys()];
    expect(paths.filter((p) => /^(tests|docs|\.git|node_modules|reports|\.cache)\//.test(p))).toEqual([]);
    expect(paths).not.toContain('scripts/starter.ts');
    expect(paths).not.toContain('scripts/edition.ts');
    expect(paths).not.toContain('.github/workflows/labs.yml');
  });

  it('replaces c/ by the starters: every file of the reference is there, no LAB:BEGIN region is left', () => {
    const cFiles = [...edition.keys()].filter((p) => p.startsWith('c/'));
    const r = spawnSync('git', ['-C', REPO_ROOT, 'ls-files', 'c'], { encoding: 'utf8' });
    for (const f of r.stdout.split('\n').filter(Boolean)) expect(cFiles, `${f} has no starter in the edition`).toContain(f);
    for (const f of cFiles) expect(findRegions(text(f), f), `${f} still has a marked region`).toEqual([]);
    expect(text('c/00-environment/sysinfo.c')).toContain('TODO:');
    // What the guides build next to the sources is not pushed; every source of the course is.
    const dir = tempDir();
    writeEdition(dir, edition);
    expect(spawnSync('git', ['init', '-q', dir]).status).toBe(0);
    writeFileSync(join(dir, 'c/io_uring/02-uring-cp/uring_cp'), 'ELF');
    writeFileSync(join(dir, 'c/ebpf/03-xdp/xdp_dropper.o'), 'ELF');
    const ignored = spawnSync('git', ['-C', dir, 'check-ignore', '--no-index', 'c/io_uring/02-uring-cp/uring_cp', 'c/ebpf/03-xdp/xdp_dropper.o', ...cFiles], { encoding: 'utf8' });
    expect(ignored.stdout.trim().split('\n')).toEqual(['c/io_uring/02-uring-cp/uring_cp', 'c/ebpf/03-xdp/xdp_dropper.o']);
  });

  it('contains no line of marked solution text in any file', () => {
    const solution = solutionLines();
    expect(solution.size, 'the reference has marked solution lines to look for').toBeGreaterThan(50);
    const leaks = findLeaks(edition, solution);
    expect(leaks.map((l) => `${l.file}:${l.line}: ${l.text} (solution at ${l.from})`)).toEqual([]);
  });

  it("folds each lab's hints and model answers: no guide or plain file of the edition shows them, `npm run lab -- hint|answers` does", () => {
    const paths = [...edition.keys()];
    expect(paths.filter((p) => /\/(hints|answers)\.md$/.test(p))).toEqual([]);
    const folded = paths.filter((p) => /\/(hints|answers)\.md\.gz$/.test(p));
    expect(folded).toContain('labs/process/05-strace/answers.md.gz');
    for (const p of folded) expect(gunzipSync(edition.get(p)!.data).toString('utf8')).toBe(readFileSync(join(REPO_ROOT, p.replace(/\.gz$/, '')), 'utf8'));
    const guides = paths.filter((p) => p.endsWith('README.md'));
    for (const g of guides) expect(text(g), g).not.toMatch(/<summary>Answer|Second hint|If you are stuck/);
    // One model answer, verbatim, searched for in every text file of the edition.
    const answer = 'the kernel\'s entry code (`syscall_trace_enter`/`syscall_exit_work`)';
    expect(readFileSync(join(REPO_ROOT, 'labs/process/05-strace/answers.md'), 'utf8')).toContain(answer);
    expect(paths.filter((p) => !edition.get(p)!.data.includes(0) && text(p).includes(answer))).toEqual([]);
  });

  it('the leak check has teeth: a reference source or a fixture copy slipped into an edition is found', () => {
    const leaky: Edition = new Map(edition);
    leaky.set('tests/fixtures/00-environment/correct/sysinfo.c', { data: readFileSync(join(REFERENCE_SRC, '00-environment/sysinfo.c')), mode: 0o644 });
    leaky.set('c/cloud/03-kvm/kvm_hlt.c', { data: readFileSync(join(REFERENCE_SRC, 'cloud/03-kvm/kvm_hlt.c')), mode: 0o644 });
    const found = new Set(findLeaks(leaky).map((l) => l.file));
    expect([...found].sort()).toEqual(['c/cloud/03-kvm/kvm_hlt.c', 'tests/fixtures/00-environment/correct/sysinfo.c']);
  });

  it("runs the labs only, against its own c/: package.json's test script, no LAB_SRC", () => {
    const pkg = JSON.parse(text('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.test).toBe('node scripts/require-root.mjs && vitest run --project labs');
    expect(pkg.scripts.starter, 'the guides\' `npm run starter -- ~/my-labs` links ~/my-labs to c/').toBe('tsx scripts/edition-starter.ts');
    expect(Object.keys(pkg.scripts)).not.toContain('edition');
    expect(pkg.scripts.setup).toBe('bash scripts/setup.sh');
  });

  it('lists every file outside c/ in its manifest with its sha256, and the starters apart', () => {
    const m = JSON.parse(text(MANIFEST_PATH)) as Manifest;
    expect(m.files['labs/00-environment/environment.spec.ts']).toBe(sha256(edition.get('labs/00-environment/environment.spec.ts')!.data));
    expect(m.starters['c/00-environment/sysinfo.c']).toBe(sha256(edition.get('c/00-environment/sysinfo.c')!.data));
    expect(Object.keys(m.files).filter((p) => p.startsWith('c/'))).toEqual([]);
    expect(Object.keys(m.files).length + Object.keys(m.starters).length).toBe(edition.size - 1);
  });
});

describe("the edition's workflow (.github/workflows/grade.yml)", () => {
  const wf = text('.github/workflows/grade.yml');
  it('is valid YAML (checked with python3 yaml when it is installed)', (ctx) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'grade.yml'), wf);
    const py = spawnSync('python3', ['-c', 'import sys, yaml; yaml.safe_load(open(sys.argv[1])); print("ok")', join(dir, 'grade.yml')], { encoding: 'utf8' });
    if (py.error || /No module named/.test(py.stderr)) ctx.skip('python3 with the yaml module not found. Fix: sudo apt install python3-yaml');
    expect(py.stdout.trim(), py.stderr).toBe('ok');
  });

  it('grades every push on self-hosted KVM+root runners, sharded and strict, and uploads the report', () => {
    expect(wf).toMatch(/on:\n {2}push:/);
    expect(wf).toContain('runs-on: [self-hosted, linux, x64, kvm, root]');
    expect(wf).toContain('npx vitest run --project labs --shard=${{ matrix.shard }}/${{ strategy.job-total }}');
    expect(wf).toMatch(/LABS_STRICT: '1'/);
    expect(wf).toContain('name: labs-report');
    expect(wf).not.toContain('LAB_SRC');
  });

  it('writes the points to $GITHUB_STEP_SUMMARY and the LMS lines, with the scripts the edition ships', () => {
    expect(wf).toContain('npx tsx scripts/classroom-summary.ts reports/labs.json --out "$GITHUB_STEP_SUMMARY" --jsonl reports/scores.jsonl');
    expect(wf).toContain('npx tsx scripts/labs.ts merge shards/*/labs.json -o reports');
    expect(edition.has('scripts/classroom-summary.ts')).toBe(true);
  });
});

describe('a push checked against the manifest', () => {
  it('flags files changed, added or removed outside c/, and not the work in c/', () => {
    const dir = tempDir();
    writeEdition(dir, edition);
    const m = readManifest(dir)!;
    expect(checkTree(dir, m)).toEqual({ changed: [], added: [], missing: [] });
    writeFileSync(join(dir, 'c/00-environment/sysinfo.c'), '/* the student\'s work */\n');
    writeFileSync(join(dir, 'c/00-environment/notes.txt'), 'mine\n');
    expect(checkTree(dir, m)).toEqual({ changed: [], added: [], missing: [] });
    writeFileSync(join(dir, 'labs/00-environment/environment.spec.ts'), 'it.skip("nothing", () => {});\n');
    writeFileSync(join(dir, 'vitest.workspace.ts'), 'export default [];\n');
    rmSync(join(dir, 'helpers/course/grading.ts'));
    expect(checkTree(dir, m)).toEqual({
      changed: ['labs/00-environment/environment.spec.ts'], added: ['vitest.workspace.ts'], missing: ['helpers/course/grading.ts'],
    });
  });
});

describe('npm run labs -- grade <dir> --run (#29)', () => {
  it('checks a repository against the manifest before it runs its code: a push that changes what is graded is not run', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip('grade --run needs root');
    const dir = tempDir();
    writeEdition(dir, edition);
    writeFileSync(join(dir, 'labs/00-environment/environment.spec.ts'), 'it("passes", () => {});\n');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      // Had it run, the missing node_modules would have thrown.
      await labsMain(['grade', dir, '--run']);
      const out = log.mock.calls.map((c) => String(c[0])).join('\n');
      expect(out).toContain(`[grade] not running ${dir}: it changes what is graded (labs/00-environment/environment.spec.ts)`);
      expect(out).not.toContain('[grade] running the labs');
    } finally {
      log.mockRestore();
    }
  });
});

describe("the instructor's copy of the manifest", () => {
  it('still flags a changed spec when the student rewrote the manifest in the repository to match it', () => {
    const dir = tempDir();
    writeEdition(dir, edition);
    const trusted = readManifest(dir)!;
    writeFileSync(join(dir, 'labs/00-environment/environment.spec.ts'), 'it("passes", () => {});\n');
    const forged = { ...trusted, files: { ...trusted.files, 'labs/00-environment/environment.spec.ts': sha256('it("passes", () => {});\n') } };
    writeFileSync(join(dir, MANIFEST_PATH), JSON.stringify(forged));
    expect(readStudent(dir).changedOutsideC).toEqual([]);
    expect(readStudent(dir, trusted).changedOutsideC).toEqual(['labs/00-environment/environment.spec.ts']);
  });
});

describe('npm run edition -- update <dir>', () => {
  it("brings specs, helpers and starters up to date, keeps the student's c/ work, and reports conflicts without overwriting", () => {
    const dir = tempDir();
    writeEdition(dir, edition);
    const old = readManifest(dir)!;
    // The student solves Lab 0, edits the KVM starter, and (wrongly) edits a spec.
    const solved = readFileSync(join(REFERENCE_SRC, '00-environment/sysinfo.c'));
    writeFileSync(join(dir, 'c/00-environment/sysinfo.c'), solved);
    writeFileSync(join(dir, 'c/cloud/03-kvm/kvm_hlt.c'), '/* half done */\n');
    writeFileSync(join(dir, 'labs/ebpf/03-xdp/README.md'), 'my notes\n');
    // Upstream: a fix to a helper and to that README, a changed KVM starter, a new lab, a removed script.
    const fresh: Edition = new Map(edition);
    const bump = (p: string, extra: string) => fresh.set(p, { data: Buffer.concat([edition.get(p)!.data, Buffer.from(extra)]), mode: 0o644 });
    bump('helpers/harness/exec.ts', '\n// upstream fix\n');
    bump('labs/ebpf/03-xdp/README.md', '\nupstream fix\n');
    bump('c/cloud/03-kvm/kvm_hlt.c', '\n// a clearer hint\n');
    bump('c/00-environment/sysinfo.c', '\n// a clearer hint\n');
    fresh.set('c/new/01-lab/prog.c', { data: Buffer.from('// TODO: new lab\n'), mode: 0o644 });
    fresh.delete('scripts/junit-summary.mjs');
    sealEdition(fresh, { builtAt: new Date().toISOString() });

    const plan = planUpdate(dir, old, fresh);
    expect([...plan.write].sort()).toEqual(['c/new/01-lab/prog.c', 'helpers/harness/exec.ts']);
    expect(plan.remove).toEqual(['scripts/junit-summary.mjs']);
    expect(plan.conflicts.map((c) => c.path).sort()).toEqual(['c/00-environment/sysinfo.c', 'c/cloud/03-kvm/kvm_hlt.c', 'labs/ebpf/03-xdp/README.md']);
    applyUpdate(dir, fresh, plan);
    expect(readFileSync(join(dir, 'c/00-environment/sysinfo.c'))).toEqual(solved);
    expect(readFileSync(join(dir, 'c/cloud/03-kvm/kvm_hlt.c'), 'utf8')).toBe('/* half done */\n');
    expect(readFileSync(join(dir, 'labs/ebpf/03-xdp/README.md'), 'utf8')).toBe('my notes\n');
    expect(readFileSync(join(dir, '.classroom/upstream/c/cloud/03-kvm/kvm_hlt.c'), 'utf8')).toContain('a clearer hint');
    expect(readFileSync(join(dir, 'helpers/harness/exec.ts'), 'utf8')).toContain('upstream fix');
    expect(existsSync(join(dir, 'c/new/01-lab/prog.c'))).toBe(true);
    expect(existsSync(join(dir, 'scripts/junit-summary.mjs'))).toBe(false);
    // The next update with the same course has nothing left to do but the same README conflict.
    const again = planUpdate(dir, readManifest(dir)!, fresh);
    expect(again.write).toEqual([]);
    expect(again.conflicts.map((c) => c.path)).toEqual(['labs/ebpf/03-xdp/README.md']);
  });
});

// ---------------------------------------------------------------------------
// docs/CLASSROOM.md end to end on Lab 0 (seconds): the edition's own vitest.

interface Graded { readonly report: LabsReport; readonly junit: string; readonly summary: string; readonly stdout: string; readonly stderr: string }

describe("the instructor's path on Lab 0 (docs/CLASSROOM.md)", () => {
  let dir = '';
  beforeAll(() => {
    dir = tempDir();
    writeEdition(dir, edition);
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  });

  /** Grade the edition's Lab 0 as CI does (`extra`: LABS_CONTAIN=0 tries the checks behind the containment). */
  async function grade(signal: AbortSignal, extra: Record<string, string> = {}): Promise<Graded> {
    rmSync(join(dir, 'reports'), { recursive: true, force: true });
    mkdirSync(join(dir, 'reports'));
    const r = await run(join(dir, 'node_modules/.bin/vitest'), ['run', '--project', 'labs', 'labs/00-environment'], {
      cwd: dir,
      // The edition's own c/; strict, as CI grades; its own reports/.
      env: { LAB_SRC: '', LABS_STRICT: '1', LABS_REPORT: '', LABS_REPORT_DIR: '', LABS_JUNIT: 'reports/junit.xml', CI: 'true', FORCE_COLOR: '0', ...extra },
      timeoutMs: 150_000, reject: false, signal,
    });
    const reportFile = join(dir, 'reports/labs.json');
    expect(existsSync(reportFile), `the edition's run wrote no report:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`).toBe(true);
    const out = join(dir, 'reports/summary.md');
    expect(summaryMain(['reports/labs.json', '--out', out, '--root', dir].map((a) => (a === 'reports/labs.json' ? reportFile : a)))).toBe(0);
    return {
      report: JSON.parse(readFileSync(reportFile, 'utf8')) as LabsReport,
      junit: readFileSync(join(dir, 'reports/junit.xml'), 'utf8'),
      summary: readFileSync(out, 'utf8'),
      stdout: r.stdout,
      stderr: r.stderr,
    };
  }

  const lab0 = (g: Graded) => g.report.labs.find((l) => l.id === '00-environment')!;

  it('the starter fails Lab 0 with 0 points', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip('the labs run as root: sudo npm run test:unit');
    const g = await grade(ctx.signal);
    const lab = lab0(g);
    expect(lab.result, g.stdout.slice(-2000)).toBe('failed');
    expect(lab.labSrc, 'the edition runs against its own c/, not a LAB_SRC').toBeNull();
    expect(lab.score).toMatchObject({ earned: 0, total: 8, strict: true });
    expect(g.stdout).toMatch(/\[score\] 00-environment\s+0\/8/);
    expect(g.junit).toContain('<property name="points" value="3">');
    expect(g.summary).toContain('## Kernel labs: 0/8 points');
    expect(g.summary).not.toContain('WARNING');
  });

  it('a solved copy (the reference sysinfo.c in c/) passes Lab 0 with full points', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip('the labs run as root: sudo npm run test:unit');
    copyFileSync(join(REFERENCE_SRC, '00-environment/sysinfo.c'), join(dir, 'c/00-environment/sysinfo.c'));
    const g = await grade(ctx.signal);
    const lab = lab0(g);
    expect(lab.result, g.stdout.slice(-3000)).toBe('passed');
    expect(lab.score).toMatchObject({ earned: 8, total: 8, failedPoints: 0, skippedPoints: 0 });
    expect(g.summary).toContain('## Kernel labs: 8/8 points');
    expect(g.summary, 'editing c/ is the student\'s work, not a change to what is graded').not.toContain('WARNING');
    // The instructor's table reads the same report.
    const s = readStudent(dir);
    expect(s.report?.labs.find((l) => l.id === '00-environment')?.score?.earned).toBe(8);
    expect(s.changedOutsideC).toEqual([]);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await labsMain(['grade', dir, join(dir, 'no-such-student')])).toBe(1);
      const table = log.mock.calls.map((c) => String(c[0])).join('\n');
      expect(table).toMatch(new RegExp(`^${basename(dir)}\\s+8/8\\s`, 'm'));
      expect(table).toMatch(/^no-such-student\s.*no report/m);
    } finally {
      log.mockRestore();
    }
    expect(readFileSync(join(dir, 'reports/labs.html'), 'utf8')).toContain('<td class="num score">8/8</td>');
  });

  it("the student's path: `npm run starter -- ~/my-labs` links the guides' workspace to c/, every path the guides name is there, hints are recorded in c/, answers come after the pass", () => {
    const home = tempDir();
    const link = join(home, 'my-labs');
    const tsx = (args: string[], env: Record<string, string> = {}) => spawnSync(join(dir, 'node_modules/.bin/tsx'), args, {
      cwd: dir, encoding: 'utf8', env: { ...process.env, LAB_SRC: '', INIT_CWD: dir, ...env },
    });
    const made = tsx(['scripts/edition-starter.ts', link]);
    expect(made.status, made.stderr).toBe(0);
    expect(realpathSync(link)).toBe(realpathSync(join(dir, 'c')));
    expect(tsx(['scripts/edition-starter.ts', link]).stdout).toContain('already links');
    // Every workspace path of every guide, through the link (as tests/course/guides.test.ts checks a starter workspace).
    const missing: string[] = [];
    for (const g of [...edition.keys()].filter((p) => /^labs\/.*README\.md$/.test(p))) {
      for (const block of shellBlocks(text(g))) {
        for (const p of namedPaths(block)) if (p.kind === 'workspace' && !existsSync(join(link, p.rel))) missing.push(`${g}:${p.line}: ${p.token}`);
      }
    }
    expect(missing).toEqual([]);
    // A hint, from the folded file, recorded in c/ (what the student commits).
    const h = tsx(['scripts/labs.ts', 'hint', 'process/05-strace'], { LAB_SRC: link });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/Hint 1 of \d+ for process\/05-strace/);
    expect(JSON.parse(readFileSync(join(dir, 'c', HINTS_RECORD), 'utf8'))['process/05-strace'].shown).toBe(1);
    // Lab 0 passed in the test above (against c/): its answers open, with or without the link; 4.5's stay closed.
    const a = tsx(['scripts/labs.ts', 'answers', '00-environment']);
    expect(a.status, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toContain('CONFIG_IKCONFIG_PROC');
    expect(tsx(['scripts/labs.ts', 'answers', '00-environment'], { LAB_SRC: link }).status).toBe(0);
    const closed = tsx(['scripts/labs.ts', 'answers', 'process/05-strace']);
    expect(closed.status).toBe(1);
    expect(closed.stdout).toMatch(/no run of process\/05-strace is recorded on this machine/);
  });

  it('a Lab 0 program that rewrites a later spec while it is graded (#29): contained, the write is refused; behind the containment Lab 0 fails with "tampering", scores 0, and the summary says so first', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip('the labs run as root: sudo npm run test:unit');
    const target = join(dir, 'labs/ebpf/01-bpftrace/bpftrace.spec.ts');
    expect(existsSync(target)).toBe(true);
    // The reference program, plus one line that turns the later spec into a shim whose tests run nothing.
    const reference = readFileSync(join(REFERENCE_SRC, '00-environment/sysinfo.c'), 'utf8');
    const evil = reference.replace(/int main\(void\)\n\{/, `int main(void)\n{\n\t{ FILE *f = fopen(${JSON.stringify(target)}, "a"); if (f) { fputs("\\n// it = it.skip\\n", f); fclose(f); } }`);
    expect(evil).not.toBe(reference);
    writeFileSync(join(dir, 'c/00-environment/sysinfo.c'), evil);
    // Contained (Lab 0's lab.json): the course is read-only to the program; its write fails, the lab is judged on its work.
    const held = await grade(ctx.signal);
    expect(readFileSync(target, 'utf8'), 'the contained program could not rewrite the spec').not.toContain('it = it.skip');
    expect(lab0(held).result, held.stdout.slice(-2000)).toBe('passed');
    expect(held.report.tampering).toBeFalsy();
    // Behind the containment (LABS_CONTAIN=0): the rewrite happens, and the tamper check catches it.
    const g = await grade(ctx.signal, { LABS_CONTAIN: '0' });
    expect(readFileSync(target, 'utf8'), 'the program did rewrite the spec').toContain('it = it.skip');
    const lab = lab0(g);
    expect(lab.result, g.stdout.slice(-2000)).toBe('failed');
    expect(lab.errors[0]).toMatch(/^tampering: the course changed while it was graded \(found after labs\/00-environment\/environment\.spec\.ts\): changed: labs\/ebpf\/01-bpftrace\/bpftrace\.spec\.ts/);
    expect(lab.score?.earned).toBe(0);
    expect(g.report.tampering?.changes).toContain('changed: labs/ebpf/01-bpftrace/bpftrace.spec.ts');
    expect(g.summary.split('\n').slice(0, 4).join('\n')).toMatch(/## Kernel labs: 0\/8 points\n\n> \[!CAUTION\]\n> \*\*Tampering\*\*/);
    expect(g.stdout + g.stderr).toMatch(/TAMPERING: the course changed/);
  });

  it('a Lab 0 program that leaves a process outside its sandbox (#29: a new session that moves itself to the parent cgroups): contained, it cannot; behind the containment it is found after Lab 0, killed, Lab 0 scores 0', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip('the labs run as root: sudo npm run test:unit');
    const reference = readFileSync(join(REFERENCE_SRC, '00-environment/sysinfo.c'), 'utf8');
    // The reference, plus a double fork whose grandchild starts a session, writes its pid into the parent of each kl- cgroup
    // it is in, lets go of the harness's pipes, and waits: neither the process group nor the sandbox's kill reaches it.
    const escape = [
      '\tif (fork() == 0) {',
      '\t\tif (fork() == 0) {',
      '\t\t\tchar l[512], path[1024]; FILE *f = fopen("/proc/self/cgroup", "r");',
      '\t\t\tsetsid();',
      '\t\t\twhile (f && fgets(l, sizeof l, f)) {',
      '\t\t\t\tchar *c1 = strchr(l, \':\'), *c2 = c1 ? strchr(c1 + 1, \':\') : NULL, *s;',
      '\t\t\t\tif (!c2 || !strstr(c2, "/kl-")) continue;',
      '\t\t\t\tl[strcspn(l, "\\n")] = 0; *c2 = 0; s = strrchr(c2 + 1, \'/\'); *s = 0;',
      '\t\t\t\tsnprintf(path, sizeof path, "/sys/fs/cgroup%s%s%s/cgroup.procs", c1[1] ? "/" : "", c1 + 1, c2 + 1);',
      '\t\t\t\tFILE *o = fopen(path, "w"); if (o) { fprintf(o, "%d\\n", getpid()); fclose(o); }',
      '\t\t\t}',
      '\t\t\tif (f) fclose(f);',
      '\t\t\tfreopen("/dev/null", "r", stdin); freopen("/dev/null", "w", stdout); freopen("/dev/null", "w", stderr);',
      '\t\t\tsleep(120); _exit(0);',
      '\t\t}',
      '\t\t_exit(0);',
      '\t}',
      '\twait(NULL);',
    ].join('\n');
    const evil = reference.replace('#include <unistd.h>', '#include <unistd.h>\n#include <sys/wait.h>').replace(/int main\(void\)\n\{/, `int main(void)\n{\n${escape}`);
    expect(evil).not.toBe(reference);
    writeFileSync(join(dir, 'c/00-environment/sysinfo.c'), evil);
    // Contained: the cgroup file systems are read-only to the program; it stays in its sandbox and dies with it
    // (under strace -f its sleeping grandchild now holds the trace open until the time bound: that test fails).
    const held = await grade(ctx.signal);
    expect(held.report.tampering, held.stdout.slice(-2000)).toBeFalsy();
    expect(lab0(held).score?.earned).toBeLessThan(8);
    const ofEdition = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
      try { return readlinkSync(`/proc/${n}/exe`).startsWith(dir) && !/\) Z /.test(readFileSync(`/proc/${n}/stat`, 'utf8')); } catch { return false; }
    });
    expect(ofEdition, 'no process of the contained program outlived its lab').toEqual([]);
    const g = await grade(ctx.signal, { LABS_CONTAIN: '0' });
    const lab = lab0(g);
    expect(lab.result, g.stdout.slice(-2000)).toBe('failed');
    expect(lab.errors[0], g.stderr.slice(-2000)).toMatch(/^tampering: a process of the run outlived its lab \(found after labs\/00-environment\/environment\.spec\.ts\): pid \d+ \(sysinfo\) still alive after its lab, outside the lab's sandbox/);
    expect(lab.score?.earned).toBe(0);
    expect(g.summary.split('\n').slice(0, 4).join('\n')).toMatch(/## Kernel labs: 0\/8 points\n\n> \[!CAUTION\]\n> \*\*Tampering\*\*: a process of the run outlived its lab/);
    // Killed by the run: no process of it is left.
    const left = (g.report.tampering?.changes ?? []).map((c) => Number(c.match(/^pid (\d+)/)?.[1])).filter((pid) => {
      try { return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
    });
    expect(left, 'the escaped processes were killed').toEqual([]);
  });
});

