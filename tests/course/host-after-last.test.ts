/**
 * Issue 29, item 3: the host guard looks once more after the last lab file.
 * The labs project's setup file leaves the host as the last file's own check
 * saw it in the run's state directory; the reporter (vitest's main process)
 * compares it with the host after that file ended and the run's survivors
 * were killed: a change made in between (by a process the lab left behind)
 * taints the last lab as tampering.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import LabReporter from '../../helpers/course/reporter.js';
import { LAST_HOST_FILE, snapshotFromJson, snapshotHost, snapshotToJson } from '../../helpers/harness/host-guard.js';
import { runDir } from '../../helpers/harness/run-state.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const cleanup: (() => void)[] = [];
afterEach(() => { while (cleanup.length) cleanup.pop()!(); });

/** A reporter watching a small course of its own, in a run of its own (a made-up run id). */
function watchedRun() {
  const root = mkdtempSync(join(tmpdir(), 'kl-hostlast-'));
  mkdirSync(join(root, 'labs/a'), { recursive: true });
  writeFileSync(join(root, 'labs/a/a.spec.ts'), 'spec\n');
  const id = `t${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const saved = { run: process.env.LABS_RUN_ID, report: process.env.LABS_REPORT };
  process.env.LABS_RUN_ID = id;
  delete process.env.LABS_REPORT;
  mkdirSync(runDir(id), { recursive: true });
  cleanup.push(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(runDir(id), { recursive: true, force: true });
    if (saved.run === undefined) delete process.env.LABS_RUN_ID; else process.env.LABS_RUN_ID = saved.run;
    if (saved.report === undefined) delete process.env.LABS_REPORT; else process.env.LABS_REPORT = saved.report;
  });
  const reporter = new LabReporter({ root, labsRoot: join(REPO_ROOT, 'tests', 'fixtures', 'lab-reporter', 'labs'), announce: false, outputDir: join(root, 'reports') });
  const origLog = console.log;
  console.log = () => {};
  try { reporter.onInit({}); } finally { console.log = origLog; }
  reporter.onTestModuleEnd({ moduleId: join(root, 'labs/a/a.spec.ts'), project: { name: 'labs' } });
  const tampering = () => (reporter as unknown as { watch?: { tampering?: { what?: string; changes: readonly string[] } } }).watch?.tampering;
  return { id, reporter, tampering };
}

describe('the host guard after the last lab file', () => {
  it('a snapshot survives its JSON form (maps, sets and all)', () => {
    const s = snapshotHost();
    const back = snapshotFromJson(snapshotToJson(s));
    expect(back.sysctls).toBeInstanceOf(Map);
    expect(back.mounts).toBeInstanceOf(Set);
    expect(back.sysctls.size).toBe(s.sysctls.size);
    expect([...back.mounts]).toEqual([...s.mounts]);
  });

  it('flags the last lab when the host differs from what its own check left (here: the hostname it saw)', () => {
    const r = watchedRun();
    const seen = snapshotHost();
    writeFileSync(join(runDir(r.id), LAST_HOST_FILE), snapshotToJson({ ...seen, hostname: `${seen.hostname}-before` }));
    const err = console.error;
    console.error = () => {};
    try { r.reporter.onTestModuleStart({ project: { name: 'unit' } }); } finally { console.error = err; }
    expect(r.tampering()?.what).toBe('the host changed after the last lab file\'s own check');
    expect(r.tampering()?.changes.join('\n')).toMatch(/^hostname .*-before -> .* \(undo: hostname /);
  });

  it('says nothing when the host is as the last lab file left it', () => {
    const r = watchedRun();
    writeFileSync(join(runDir(r.id), LAST_HOST_FILE), snapshotToJson(snapshotHost()));
    r.reporter.onTestModuleStart({ project: { name: 'unit' } });
    expect(r.tampering()).toBeUndefined();
  });
});
