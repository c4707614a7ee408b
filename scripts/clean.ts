/**
 * npm run clean — reap what earlier runs left: runs that were killed, and
 * runs kept with LABS_KEEP=1 (live runs are never touched). Lists every
 * object it removed, and every one it could not remove with the reason and
 * the command to remove it by hand. Exits 1 when something stays.
 */
import { describeUnreleased, reapStaleRunsReport } from '../helpers/harness/reaper.js';

function main(): void {
  if (process.getuid?.() !== 0) {
    console.error('npm run clean removes namespaces, cgroups and mounts: run it as root (sudo npm run clean).');
    process.exitCode = 1;
    return;
  }
  const report = reapStaleRunsReport(undefined, () => true, { orphanGraceMs: 0 });
  if (!report.found.length) console.log('Nothing left by earlier runs.');
  else console.log(`Removed ${report.found.length - report.failed.length} of ${report.found.length} objects left by earlier runs:\n` +
    report.found.map((l) => `  ${report.failed.some((f) => f.kind === l.kind && f.name === l.name) ? '✗' : '✓'} ${l.kind} ${l.name} (run ${l.run})`).join('\n'));
  if (report.failed.length) {
    console.error(`\nCould not remove ${report.failed.length}:\n${describeUnreleased(report.failed)}`);
    process.exitCode = 1;
  }
}

main();
