/**
 * sudo npm run bench -- <area>
 * Runs an area's benchmark (labs/<area>/bench.ts, which exports `bench()`),
 * bigger than the specs' measurements, and prints its figures.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers/harness/paths.js';
import { startRun } from '../helpers/harness/run-state.js';
import { reapRun, reapStaleRuns } from '../helpers/harness/reaper.js';
import { releaseAll } from '../helpers/harness/resources.js';

const areas = readdirSync(join(REPO_ROOT, 'labs')).filter((a) => existsSync(join(REPO_ROOT, 'labs', a, 'bench.ts')));
const area = process.argv[2];
if (!area || !areas.includes(area)) {
  console.error(`usage: sudo npm run bench -- <area>\nareas with a benchmark: ${areas.join(', ') || '(none yet)'}`);
  process.exit(2);
}
const run = startRun();
reapStaleRuns(run);
const onSignal = () => { reapRun(run); process.exit(130); };
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
try {
  const mod = (await import(pathToFileURL(join(REPO_ROOT, 'labs', area, 'bench.ts')).href)) as { bench: (args: string[]) => Promise<void> };
  await mod.bench(process.argv.slice(3));
} finally {
  await releaseAll().catch((e) => console.error(e));
  reapRun(run);
}
