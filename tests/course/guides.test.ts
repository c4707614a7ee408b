/**
 * Issue 12/21: every command a lab guide shows works when pasted, and every
 * run of a lab in a guide tests the student's workspace. The rules are in
 * helpers/course/guide-commands.ts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { buildCommands, codeSnippets, isSpecRun, namedPaths, RUN_COMMAND, shellBlocks, WORKSPACE } from '../../helpers/course/guide-commands.js';
import { listLabs } from '../../helpers/course/labs.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { matchLabs } from '../../scripts/labs.js';
import { writeStarter } from '../../scripts/starter.js';

const labs = listLabs();
const guideOf = (spec: string) => join(REPO_ROOT, dirname(spec), 'README.md');

describe('guide commands (the rules)', () => {
  it('finds the paths of a shell block, following cd into the workspace', () => {
    const [block] = shellBlocks(['x', '```sh', 'gcc -o a c/ebpf/03-xdp/a.c', 'cd ~/my-labs/ebpf/03-xdp && clang -c b.c', 'cd /tmp && cc kernel/x.c', 'cat ~/labs/x', '```'].join('\n'));
    expect(namedPaths(block!).map((p) => [p.kind, p.rel])).toEqual([
      ['reference', 'ebpf/03-xdp/a.c'], ['workspace', 'ebpf/03-xdp'], ['workspace', 'ebpf/03-xdp/b.c'], ['other-workspace', '~/labs/x'],
    ]);
  });

  it('finds the build commands of a block and the directory each runs in', () => {
    const [block] = shellBlocks(['```sh', 'gcc -O2 -o a a.c && ./a', 'cd ~/my-labs/ebpf/03-xdp && clang -c b.c # note', 'sudo bpftool btf dump file x format c > /tmp/v.h', 'cd /tmp && cc x.c', '```'].join('\n'));
    expect(buildCommands(block!, 'process/02-vm').map((b) => [b.cwd, b.command])).toEqual([
      ['process/02-vm', 'gcc -O2 -o a a.c'], ['ebpf/03-xdp', 'clang -c b.c'], ['ebpf/03-xdp', 'bpftool btf dump file x format c > /tmp/v.h'],
    ]);
  });

  it('tells a run command that tests the workspace from one that does not', () => {
    expect(RUN_COMMAND.exec('sudo LAB_SRC=~/my-labs npm run lab -- ebpf/02-bcc')?.[1]).toBe('ebpf/02-bcc');
    for (const bad of ['sudo npm test -- 02-bcc', 'LAB_SRC=~/my-labs sudo npm run lab -- 02-bcc', 'sudo npx vitest run --project labs labs/kernel/K2-gdb']) {
      expect(isSpecRun(bad) && !RUN_COMMAND.test(bad), bad).toBe(true);
    }
    expect(isSpecRun('npx vitest run --project unit tests/x.test.ts')).toBe(false);
  });
});

describe('lab guides work when pasted in the student workspace (issue 12)', () => {
  let workspace = '';
  beforeAll(() => {
    workspace = mkdtempSync(join(tmpdir(), 'guide-check-'));
    writeStarter(workspace);
  });
  afterAll(() => rmSync(workspace, { recursive: true, force: true }));

  it.each(labs)('$id: every path its shell blocks name exists in a starter workspace (or the checkout)', (lab) => {
    const md = readFileSync(guideOf(lab.spec), 'utf8');
    const bad: string[] = [];
    for (const block of shellBlocks(md)) {
      for (const p of namedPaths(block)) {
        const where = `README.md:${p.line}: ${p.token}`;
        if (p.kind === 'reference') bad.push(`${where} names the reference solution c/…; name the student's file ${WORKSPACE}/${p.rel}`);
        else if (p.kind === 'other-workspace') bad.push(`${where}: the workspace is ${WORKSPACE} in every guide`);
        else if (p.kind === 'workspace' && !existsSync(join(workspace, p.rel))) bad.push(`${where}: ${WORKSPACE}/${p.rel} is not in a starter workspace`);
        else if (p.kind === 'checkout' && !existsSync(join(REPO_ROOT, p.rel))) bad.push(`${where}: not in the course checkout (a workspace file is ${WORKSPACE}/${p.rel})`);
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
  });

  it.each(labs)('$id: every run of a spec in its guide is `sudo LAB_SRC=~/my-labs npm run lab -- <this lab>`', (lab) => {
    const md = readFileSync(guideOf(lab.spec), 'utf8');
    const bad: string[] = [];
    let runs = 0;
    for (const s of codeSnippets(md)) {
      const cmd = s.text.replace(/^\s*\$\s+/, '').replace(/\s+#.*$/, '').trim();
      if (!isSpecRun(cmd)) continue;
      runs++;
      const m = RUN_COMMAND.exec(cmd);
      if (!m) { bad.push(`README.md:${s.line}: \`${cmd}\` does not test the student's workspace: use sudo LAB_SRC=${WORKSPACE} npm run lab -- <id>`); continue; }
      const chosen = matchLabs(m[1]!, labs).map((l) => l.id);
      if (chosen.length !== 1 || chosen[0] !== lab.id) bad.push(`README.md:${s.line}: \`npm run lab -- ${m[1]}\` selects [${chosen.join(', ')}], not ${lab.id}`);
    }
    expect(bad, bad.join('\n')).toEqual([]);
    expect(runs, `${lab.id}'s guide never says how to run the lab against the workspace`).toBeGreaterThan(0);
  });

  it('the course README and docs/ use the same workspace name', () => {
    const files = [join(REPO_ROOT, 'README.md'), ...readdirSync(join(REPO_ROOT, 'docs')).map((n) => join(REPO_ROOT, 'docs', n))].filter((p) => statSync(p).isFile());
    const bad = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').flatMap((l, i) =>
      [...l.matchAll(/LAB_SRC=(\S+)/g)].map((m) => m[1]!.replace(/[`'")]+$/, ''))
        .filter((v) => v !== '' && !/(^|\/)my-labs$/.test(v) && !/^[$<…]/.test(v)) // the name, its expansion, or a placeholder
        .map((v) => `${relative(REPO_ROOT, f)}:${i + 1}: LAB_SRC=${v}`)));
    expect(bad, bad.join('\n')).toEqual([]);
  });
});

describe("every build command of a guide builds the starter as written (#28: the guides' commands work in an edition)", () => {
  let home = '';
  let scratch = '';
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'guide-build-'));
    scratch = join(home, 'tmp');
    mkdirSync(scratch);
    writeStarter(join(home, 'workspace'));
    symlinkSync(join(home, 'workspace'), join(home, 'my-labs')); // as `npm run starter -- ~/my-labs` does in an edition
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  const builds = labs.flatMap((lab) => shellBlocks(readFileSync(guideOf(lab.spec), 'utf8')).flatMap((b) => buildCommands(b, lab.id)).map((b) => ({ id: lab.id, ...b })));

  it('the guides have build commands to check', () => {
    expect(builds.length).toBeGreaterThanOrEqual(20);
  });

  it.each(builds)('$id README.md:$line: `$command` builds in ~/my-labs/$cwd', ({ cwd, command }) => {
    // ~ is a home whose my-labs is the starter workspace; /tmp is a private scratch directory.
    const cmd = command.replace(/(^|[\s=I])\/tmp(?=\/|\s|$)/g, `$1${scratch}`).replace(/~\//g, `${home}/`);
    const r = spawnSync('sh', ['-c', cmd], { cwd: join(home, 'my-labs', cwd), env: { ...process.env, HOME: home }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `\`${command}\` in ~/my-labs/${cwd} of a starter workspace exited ${r.status ?? r.signal}:\n${(r.stderr || r.stdout).slice(-2000)}`).toBe(0);
  });
});
