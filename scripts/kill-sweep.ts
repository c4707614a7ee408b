/**
 * The kill -9 sweep (instructor tool, root): for every lab, start its spec in
 * a vitest of its own, kill the whole process group with SIGKILL in the
 * middle of the experiment (no teardown, no Ctrl-C handler runs), wait, and
 * list what the run left: its kl-… resources (namespaces, links, cgroups,
 * mounts, trace instances, bpffs pins, temp dirs, recorded process groups)
 * and any process still carrying its LABS_RUN_ID. The run's watchdog is what
 * should have reaped it; its log is shown.
 *
 *   npm run kill-sweep [-- <lab filter>…] [--at <fraction of the lab's seconds> | --random] [--wait <s>]
 *
 * Prints a table (lab, killed after, reaped by the watchdog, left behind) and
 * exits 1 if any lab left something. Leftovers are then reaped, so the host
 * is clean whatever the result.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listLabs, courseOrder } from '../helpers/course/labs.js';
import { REPO_ROOT, STATE_DIR } from '../helpers/harness/paths.js';
import { findLeftovers, reapRunReport } from '../helpers/harness/reaper.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => { const i = args.indexOf(name); if (i < 0) return dflt; const v = Number(args[i + 1]); args.splice(i, 2); return v; };
const AT = opt('--at', 0.3);
/** --random: kill at a uniformly random moment of the lab's time instead of at --at (the issue's "random moment"). */
const RANDOM = args.includes('--random') ? (args.splice(args.indexOf('--random'), 1), true) : false;
const WAIT_S = opt('--wait', 5);
const MAX_KILL_AFTER_S = 40;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The run whose owner file names this pid (the vitest main process started it). */
function runOwnedBy(pid: number): string | undefined {
  let runs: string[] = [];
  try { runs = readdirSync(STATE_DIR).filter((r) => /^[0-9a-f]{6}$/.test(r)); } catch { return undefined; }
  return runs.find((r) => { try { return readFileSync(join(STATE_DIR, r, 'owner'), 'utf8').startsWith(`${pid} `); } catch { return false; } });
}

/** Processes whose environment carries LABS_RUN_ID=<run>: what the harness started and what they started. */
function processesOfRun(run: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'latin1');
      if (env.split('\0').includes(`LABS_RUN_ID=${run}`)) out.push(`${p} ${readFileSync(`/proc/${p}/comm`, 'utf8').trim()}`);
    } catch { /* gone */ }
  }
  return out;
}

interface Row { readonly lab: string; readonly killedAfter: number; readonly held: number; readonly ended: boolean; readonly run?: string; readonly watchdog: string; readonly left: string[] }

async function sweep(labId: string, seconds: number): Promise<Row> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'labs', `labs/${labId}/`],
    { cwd: REPO_ROOT, detached: true, stdio: 'ignore', env: { ...process.env, LABS_RUN_ID: '', CI: 'true' } });
  const t0 = Date.now();
  let run: string | undefined;
  // Mid-experiment: once the run holds a resource of its own (a cgroup, netns, trace instance, temp dir…),
  // wait a fraction of the lab's time, then kill.
  let firstHeld = 0;
  const at = RANDOM ? Math.random() : AT;
  const deadline = t0 + MAX_KILL_AFTER_S * 1000;
  while (Date.now() < deadline && child.exitCode === null) {
    run ??= runOwnedBy(child.pid!);
    if (run && !firstHeld && findLeftovers((r) => r === run).some((l) => l.kind !== 'process-group')) firstHeld = Date.now();
    // …and only at a moment when it holds something (a lab may release all between its tests).
    if (firstHeld && Date.now() - firstHeld >= Math.min(seconds * at, 15) * 1000 && findLeftovers((r) => r === run).length) break;
    await sleep(50);
  }
  const held = run ? findLeftovers((r) => r === run).length : 0;
  const ended = child.exitCode !== null;
  const killedAfter = (Date.now() - t0) / 1000;
  try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* ended on its own */ }
  run ??= runOwnedBy(child.pid!);
  // The watchdog's log, read as soon as it appears (another suite starting on this machine reaps dead runs too,
  // state dir and all: the log tells who released what).
  const log = run ? join(STATE_DIR, run, 'watchdog.log') : '';
  let logText = '';
  for (const until = Date.now() + WAIT_S * 1000; Date.now() < until;) {
    if (!logText && log) { try { logText = readFileSync(log, 'utf8'); } catch { /* not yet */ } }
    await sleep(50);
  }
  if (!run) return { lab: labId, killedAfter, held, ended, watchdog: '-', left: ['(no run started: vitest did not reach its global setup)'] };
  const left = [...findLeftovers((r) => r === run).map((l) => `${l.kind} ${l.name}`), ...processesOfRun(run).map((p) => `process ${p}`)];
  const watchdog = logText ? `${logText.match(/reaped (\d+)/)?.[1] ?? '?'} objects` : 'no log';
  if (left.length) reapRunReport(run);
  return { lab: labId, killedAfter, held, ended, run, watchdog, left };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.error('kill-sweep must run as root (sudo npm run kill-sweep)'); process.exit(2); }
  const labs = courseOrder(listLabs()).filter((l) => !args.length || args.some((a) => l.id.includes(a)));
  const rows: Row[] = [];
  for (const lab of labs) {
    const row = await sweep(lab.id, lab.seconds ?? 10);
    rows.push(row);
    console.log(`${row.lab.padEnd(24)} ${row.ended ? 'ended by itself after' : 'killed after'} ${row.killedAfter.toFixed(1).padStart(5)} s holding ${String(row.held).padStart(2)}  run ${row.run ?? '-'}  watchdog reaped ${row.watchdog.padEnd(11)}  left: ${row.left.length ? row.left.join(', ') : 'nothing'}`);
  }
  const dirty = rows.filter((r) => r.left.length);
  const ended = rows.filter((r) => r.ended).length;
  console.log(`\n${rows.length - ended} labs killed with -9 mid-run${ended ? ` (${ended} ended before the kill: rerun them, or pass a smaller --at)` : ''}; ${dirty.length} left something${dirty.length ? `: ${dirty.map((r) => r.lab).join(', ')}` : ''}.`);
  process.exit(dirty.length ? 1 : 0);
}

await main();
