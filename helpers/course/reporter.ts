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
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Reporter, TestModule } from 'vitest/node';
import { listLabs, type LabInfo } from './labs.js';
import { REPO_ROOT, STATE_DIR, sourceRoot } from '../harness/paths.js';
import { hintsUsed } from './reveal.js';
import { buildReport, closingLines, type CapabilitySummary, type ErrorLike, type LabsReport, type TestModuleLike } from './report-model.js';
import { sourcesBanner } from './sources.js';
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

export default class LabReporter implements Reporter {
  private readonly opts: LabReporterOptions;
  private capabilities: CapabilitySummary[] | undefined;

  constructor(opts: LabReporterOptions = {}) {
    this.opts = opts;
  }

  /** The first line of the run: which sources the lab specs test (and the sudo trap, loudly). */
  onInit(vitest: { readonly projects?: ReadonlyArray<{ readonly name: string }> }): void {
    if (process.env.LABS_SOURCES_ANNOUNCED === '1') return; // npm run lab said it already
    const project = this.opts.project ?? 'labs';
    if (vitest.projects && !vitest.projects.some((p) => p.name === project)) return; // a unit-only run
    try {
      for (const line of sourcesBanner(listLabs(this.opts.labsRoot))) console.log(line);
    } catch { /* no labs to describe */ }
  }

  onTestModuleStart(): void {
    // The global setup has probed the host by now; its cache file lives while the run does.
    this.capabilities ??= loadCachedCapabilities();
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
    const report = scoreReport(buildReport(mods as unknown as TestModuleLike[], {
      labs, root, runResult: reason, unhandledErrors, previous,
      ...(this.capabilities ? { host: { capabilities: this.capabilities } } : {}),
    }), labs, hintsUsed(sourceRoot()));
    try {
      const { html } = writeReport(report, dir);
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
