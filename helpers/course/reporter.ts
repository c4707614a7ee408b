/**
 * The results report: a vitest reporter that, after every run of the labs
 * project, writes reports/labs.json and a self-contained reports/labs.html
 * (inline CSS and SVG, no scripts, no fonts: it opens offline). Per lab: its
 * result, each test's state with the failure message and where it failed,
 * skip reasons, how the host adapted it, and every figure it measured
 * (recordMetric) as tables and bar charts per group.
 *
 * Labs that this run did not touch keep their last result from the previous
 * labs.json, marked as such, so `npm run lab -- <name>` updates one row of a
 * report that still shows the whole course. LABS_REPORT_DIR moves the output;
 * LABS_REPORT=off writes nothing (nested runs, e.g. the starter check).
 */
import { readFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Reporter, TestModule } from 'vitest/node';
import { listLabs, type LabInfo } from './labs.js';
import { pinStudentSources, REPO_ROOT, STATE_DIR, sourceRoot, studentSources } from '../harness/paths.js';
import { hintsUsed, PASSES_FILE, recordPasses } from './reveal.js';
import { printDigestAtExit } from './report-digest.js';
import { describeSurvivor, killRunSurvivors } from './survivors.js';
import { hostChanges, hostGuardEnabled, LAST_HOST_FILE, snapshotFromJson, snapshotHost, type HostSnapshot } from '../harness/host-guard.js';
import { runDir } from '../harness/run-state.js';
import { TamperWatch, tamperingMessage } from './tamper.js';
import { buildReport, markTampered, type CapabilitySummary, type ErrorLike, type LabsReport, type TestModuleLike } from './report-model.js';
import { closingLines } from './report-console.js';
import { defaultSourcesLabel, sourcesBanner } from './sources.js';
import { lockReportDir, readReport, reportDir, writeReport } from './report-store.js';
import { scoreLines, scoreReport } from './grading.js';

// ---------------------------------------------------------------------------
// The reporter

export interface LabReporterOptions {
  /** Output directory (default: LABS_REPORT_DIR or <repo>/reports). */
  readonly outputDir?: string;
  /** Where the lab.json files are (default <repo>/labs). */
  readonly labsRoot?: string;
  /** The vitest project whose modules are labs (default "labs"). */
  readonly project?: string;
  /** Repository root lab specs are relative to (default the repository). */
  readonly root?: string;
  /** Keep labs this run skipped from the previous labs.json (default true). */
  readonly keepEarlier?: boolean;
  /** Print where the report is (default true). */
  readonly announce?: boolean;
}

function loadCachedCapabilities(): CapabilitySummary[] | undefined {
  const id = process.env.LABS_RUN_ID;
  if (!id) return undefined;
  try {
    const caps = JSON.parse(readFileSync(join(STATE_DIR, id, 'capabilities.json'), 'utf8')) as Record<string, unknown>;
    return Object.values(caps)
      .filter((c): c is CapabilitySummary => typeof c === 'object' && c !== null && 'ok' in c && 'id' in c)
      .map(({ id: cid, title, ok, detail, fix }) => ({ id: cid, title, ok, detail, fix }));
  } catch {
    return undefined;
  }
}

/** What the report says of the run's host and sources: read here, from the environment (buildReport is pure). */
export function runHost(env: NodeJS.ProcessEnv = process.env): LabsReport['host'] {
  return {
    hostname: hostname(),
    kernel: release(),
    labSrc: studentSources(env) ?? null,
    defaultSources: defaultSourcesLabel(),
    strict: env.LABS_STRICT === '1',
  };
}

/** Every lab of this run from the tampered file on fails with the tampering said first (it then scores 0). */
function taint(report: LabsReport, watch: TamperWatch): LabsReport {
  const t = watch.tampering;
  return t ? markTampered(report, t, watch.tainted, tamperingMessage(t)) : report;
}

export default class LabReporter implements Reporter {
  private readonly opts: LabReporterOptions;
  private capabilities: CapabilitySummary[] | undefined;
  /** The course's fingerprint, taken before any lab ran (helpers/course/tamper.ts). */
  private watch: TamperWatch | undefined;
  private lastSpec: string | undefined;
  private watchClosed = false;

  constructor(opts: LabReporterOptions = {}) {
    this.opts = opts;
  }

  /** The first line of the run: which sources the lab specs test (and the sudo trap, loudly). */
  onInit(vitest: { readonly projects?: ReadonlyArray<{ readonly name: string }> }): void {
    // LAB_SRC resolved once, in the main process: the workers started after this read the same absolute path.
    pinStudentSources();
    const project = this.opts.project ?? 'labs';
    if (vitest.projects && !vitest.projects.some((p) => p.name === project)) return; // a unit-only run
    if (process.env.LABS_REPORT !== 'off') {
      try { this.watch = new TamperWatch(this.opts.root ?? REPO_ROOT); } catch (e) { console.error(`[lab-reporter] cannot fingerprint the course: ${(e as Error).message}`); }
    }
    if (process.env.LABS_SOURCES_ANNOUNCED === '1') return; // npm run lab said it already
    try {
      for (const line of sourcesBanner(listLabs(this.opts.labsRoot))) console.log(line);
    } catch { /* no labs to describe */ }
  }

  /** After each lab file: has the course changed since the run began? */
  onTestModuleEnd(mod: { readonly moduleId: string; readonly project: { readonly name: string } }): void {
    if (!this.watch || this.watchClosed || mod.project.name !== (this.opts.project ?? 'labs')) return;
    this.lastSpec = relative(this.opts.root ?? REPO_ROOT, mod.moduleId);
    this.look(this.lastSpec);
  }

  /**
   * After a lab file (or the last one): has the course changed, and did a process of the run escape it?
   * After the last one also: is the host still as the last lab file's own check left it (a process left
   * behind could change it after that check; helpers/harness/host-guard.ts)?
   */
  private look(spec: string, last = false): void {
    if (!this.watch) return;
    const had = this.watch.tampering;
    let t = this.watch.check(spec);
    const run = process.env.LABS_RUN_ID;
    if (run) {
      const escaped = killRunSurvivors(run, { main: process.pid });
      if (escaped.length) t = this.watch.flag(spec, 'a process of the run outlived its lab', escaped.map(describeSurvivor));
      if (last && hostGuardEnabled()) {
        let left: HostSnapshot | undefined;
        try { left = snapshotFromJson(readFileSync(join(runDir(run), LAST_HOST_FILE), 'utf8')); } catch { /* no lab file got to its check */ }
        const changes = left ? hostChanges(left, snapshotHost()) : [];
        if (changes.length) t = this.watch.flag(spec, 'the host changed after the last lab file\'s own check', changes.map((c) => `${c.what} (undo: ${c.undo})`));
      }
    }
    if (t && !had) console.error(`\n[kernel-labs] ${tamperingMessage(t)}\n`);
  }

  onTestModuleStart(mod?: { readonly project: { readonly name: string } }): void {
    // The global setup has probed the host by now; its cache file lives while the run does.
    this.capabilities ??= loadCachedCapabilities();
    // The labs are done (they run first) when another project's file starts: a last look, then the
    // unit tests (which write editions and fixtures of their own) are not watched.
    if (mod && mod.project.name !== (this.opts.project ?? 'labs') && this.watch && !this.watchClosed) {
      if (this.lastSpec) this.look(this.lastSpec, true);
      this.watchClosed = true;
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<ErrorLike>, reason: LabsReport['runResult']): void {
    // A nested run (tests/course/starters.test.ts runs specs against the starter) must not overwrite the student's report.
    if (process.env.LABS_REPORT === 'off') return;
    const project = this.opts.project ?? 'labs';
    const root = this.opts.root ?? REPO_ROOT;
    let labs: LabInfo[];
    try {
      labs = listLabs(this.opts.labsRoot);
    } catch (e) {
      console.error(`[lab-reporter] cannot list the labs, no report written: ${(e as Error).message}`);
      return;
    }
    const specs = new Set(labs.map((l) => resolve(root, l.spec)));
    const mods = testModules.filter((m) => m.project.name === project || specs.has(resolve(m.moduleId)));
    if (!mods.length) return; // a run of the unit project only
    const dir = this.opts.outputDir ? resolve(this.opts.outputDir) : reportDir();
    // Read, merge and write under a lock: two runs in one checkout each add their own labs, and each
    // closing line speaks of its own run only (report.thisRun), whatever the other wrote.
    let release: () => void = () => {};
    try { release = lockReportDir(dir); } catch (e) { console.error(`[lab-reporter] ${(e as Error).message}; writing without the lock`); }
    try {
    const previous = this.opts.keepEarlier === false ? undefined : readReport(join(dir, 'labs.json'));
    // A change after the last lab file (a process it left behind) taints that file too.
    if (this.watch && this.lastSpec && !this.watchClosed) this.look(this.lastSpec, true);
    const built = buildReport(mods as unknown as TestModuleLike[], {
      labs, root, runResult: reason, unhandledErrors, previous,
      host: { ...runHost(), ...(this.capabilities ? { capabilities: this.capabilities } : {}) },
    });
    const report = scoreReport(this.watch ? taint(built, this.watch) : built, labs, hintsUsed(sourceRoot()));
    if (report.tampering) process.exitCode = 1;
    try {
      const { json, html } = writeReport(report, dir);
      recordPasses(report, sourceRoot(), dir);
      // The job log gets the sha256 of what this run wrote (and of vitest's JUnit file) as the process
      // exits: a program that outlives the run and rewrites reports/ is caught by `labs verify-reports`.
      const junit = process.env.LABS_JUNIT ? resolve(root, process.env.LABS_JUNIT) : undefined;
      // Only in CI (a graded run's job log): a student's terminal has no use for it.
      if (this.opts.announce !== false && process.env.CI && process.env.CI !== 'false') printDigestAtExit([json, html, join(dir, PASSES_FILE), ...(junit ? [junit] : [])]);
      if (this.opts.announce !== false) {
        for (const line of scoreLines(report)) console.log(line);
        const shown = relative(process.cwd(), html);
        console.log(`\n[kernel-labs] report: ${shown.startsWith('..') ? html : shown}  (open ${pathToFileURL(html).href} in a browser)\n`
          + closingLines(report).map((l) => `[kernel-labs] ${l}`).join('\n'));
      }
    } catch (e) {
      console.error(`[lab-reporter] could not write the report to ${dir}: ${(e as Error).message}`);
    }
    } finally {
      release();
    }
  }
}
