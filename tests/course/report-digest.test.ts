import { mkdtempSync, rmSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../helpers/harness/exec.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { checkDigest, DIGEST_TAG, digestLine, digestProblems, parseDigest } from '../../helpers/course/report-digest.js';

const dirs: string[] = [];
function reports(): string {
  const d = mkdtempSync(join(tmpdir(), 'digest-'));
  dirs.push(d);
  writeFileSync(join(d, 'labs.json'), '{"labs":[]}\n');
  writeFileSync(join(d, 'junit.xml'), '<testsuites tests="3" failures="1"><testcase name="a"><failure/></testcase></testsuites>\n');
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe('the reports digest: what the run wrote, printed to the job log as vitest exits', () => {
  it('lists each existing file once by name, and a log line parses back to the same entries', () => {
    const d = reports();
    const line = digestLine([join(d, 'labs.json'), join(d, 'junit.xml'), join(d, 'labs.json'), join(d, 'absent.html')]);
    expect(line.startsWith(DIGEST_TAG)).toBe(true);
    const entries = parseDigest(`noise\n2026-12-05T06:00:00.1Z \u001b[32m${line}\u001b[39m\n`);
    expect(entries?.map((e) => e.name)).toEqual(['labs.json', 'junit.xml']);
    expect(checkDigest(d, entries!)).toEqual({ ok: ['labs.json', 'junit.xml'], changed: [], missing: [] });
  });

  it('names a file changed or removed after the run (the JUnit file with its <failure> stripped)', () => {
    const d = reports();
    const entries = parseDigest(digestLine([join(d, 'labs.json'), join(d, 'junit.xml')]))!;
    writeFileSync(join(d, 'junit.xml'), '<testsuites tests="3" failures="0"><testcase name="a"/></testsuites>\n');
    unlinkSync(join(d, 'labs.json'));
    const problems = digestProblems(d, checkDigest(d, entries));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/tampering: .*junit\.xml changed after the run/);
    expect(problems[1]).toMatch(/tampering: .*labs\.json was removed after the run/);
  });

  it('a log of several runs speaks for the last one; a log without the line has no digest', () => {
    const d = reports();
    const first = digestLine([join(d, 'labs.json')]);
    appendFileSync(join(d, 'labs.json'), ' ');
    const second = digestLine([join(d, 'labs.json')]);
    expect(checkDigest(d, parseDigest(`${first}\n${second}\n`)!).changed).toEqual([]);
    expect(parseDigest('vitest said nothing of the sort\n')).toBeUndefined();
  });

  it('printed by the exiting process after its last write, and checked by `labs verify-reports`', async () => {
    const d = reports();
    // A process that registers the digest, then (later, as vitest's JUnit reporter does) rewrites a file before exiting.
    const script = `import { printDigestAtExit } from ${JSON.stringify(join(REPO_ROOT, 'helpers/course/report-digest.ts'))};
import { writeFileSync } from 'node:fs';
printDigestAtExit([${JSON.stringify(join(d, 'labs.json'))}, ${JSON.stringify(join(d, 'junit.xml'))}]);
setTimeout(() => writeFileSync(${JSON.stringify(join(d, 'junit.xml'))}, '<testsuites tests="4" failures="0"></testsuites>\\n'), 50);`;
    writeFileSync(join(d, 'writer.mts'), script);
    const r = await run('npx', ['tsx', join(d, 'writer.mts')], { cwd: REPO_ROOT, timeoutMs: 60_000 });
    expect(r.stdout).toContain(DIGEST_TAG);
    writeFileSync(join(d, 'run.log'), r.stdout);
    const verify = (dir: string) => run('npx', ['tsx', 'scripts/labs.ts', 'verify-reports', join(d, 'run.log'), '--dir', dir], { cwd: REPO_ROOT, timeoutMs: 60_000, reject: false });
    const good = await verify(d);
    expect(good.exitCode, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/reports verified: labs\.json, junit\.xml/);
    writeFileSync(join(d, 'junit.xml'), '<testsuites tests="4" failures="0"><!-- forged --></testsuites>\n');
    const bad = await verify(d);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/tampering: .*junit\.xml changed after the run/);
  });
});
