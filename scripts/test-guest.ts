/**
 * npm run test:guest [-- <lab filters>] — the lab specs, unchanged, inside a
 * QEMU TCG guest of Debian's kernel with this machine's userland (see
 * helpers/kernel/guest-pass.ts). Prints the boot stages and the guest's
 * vitest output as they come, the wall time at the end, and merges the
 * guest's results into reports/labs.json (beside the host's) and its JUnit
 * into reports/junit-guest.xml (or $LABS_JUNIT). Exits with the guest's
 * vitest status.
 *
 * Each group of up to --per-boot <n> labs (default 4, about a minute of host time) boots a guest of its own
 * with its own bound (groupBoundS), so an emulator hang costs one group: a guest that never reports its
 * exit status is booted once more for the same group, and the retry is said in the closing lines.
 *
 * Options: --timeout <s> (whole pass; default: every boot's bound and one retry), --memory <MiB> (3584),
 * --cpus <n> (2), --exec '<shell command>' (run that in the guest instead of
 * the specs: `--exec 'npm run doctor'`), --kernel <series> (5.10 or 6.12: Debian's kernel of that series,
 * fetched once into .cache/guest-kernels by helpers/course/guest-kernels.ts without touching the host's
 * apt state; its modules are shared into the guest at /lib/modules/<release>, its /boot over /boot;
 * 6.1, the default, is the one in /boot). LABS_GUEST_KERNEL=<bzImage> picks another kernel, LABS_GUEST_CPU
 * another QEMU CPU model (default max), LABS_GUEST_ACCEL another -accel (default tcg,thread=multi).
 * --qemu <host|10.0> (or LABS_GUEST_QEMU) picks the emulator: the installed one, or QEMU 10.0 from
 * bookworm-backports fetched once into .cache/guest-qemu (helpers/course/guest-qemu.ts) the same way.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execFileSync, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { killGroup, run } from '../helpers/harness/exec.js';
import { REPO_ROOT, studentSources } from '../helpers/harness/paths.js';
import { makeTempDir, releaseAll } from '../helpers/harness/resources.js';
import { reapRun, reapStaleRuns } from '../helpers/harness/reaper.js';
import { recordProcessGroup, runIsLive, startRun } from '../helpers/harness/run-state.js';
import { listLabs } from '../helpers/course/labs.js';
import { readReport, reportDir, writeReport } from '../helpers/course/report-store.js';
import { fetchGuestKernel, type GuestKernel } from '../helpers/course/guest-kernels.js';
import { DEFAULT_GUEST_QEMU, fetchGuestQemu, qemuDataArgs, QEMU_SERIES } from '../helpers/course/guest-qemu.js';
import { attachGuest, failedPassJunit, mergeJunit, tagJunit } from '../helpers/course/guest-report.js';
import { debianKernel } from '../helpers/kernel/qemu.js';
import { BUSYBOX, initramfsEntries, newcArchive } from '../helpers/kernel/initramfs.js';
import { bootGroups, groupBoundS, guestModuleFiles, passBoundS, lastLines, parseConsole, passInitScript, passQemuArgs, selectGuestLabs, stageOf, WARM_UP, type PassLab, type Share } from '../helpers/course/guest-pass.js';

interface Args { filters: string[]; timeoutS?: number; memoryMb: number; cpus: number; scratchGb: number; perBoot: number; exec?: string; kernel?: string; qemu: string }

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = { filters: [], memoryMb: 3584, cpus: 2, scratchGb: 8, perBoot: 4, qemu: process.env.LABS_GUEST_QEMU ?? DEFAULT_GUEST_QEMU };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i]!;
    const num = () => { const n = Number(argv[++i]); if (!Number.isFinite(n) || n <= 0) throw new Error(`${v} needs a positive number`); return n; };
    if (v === '--timeout') a.timeoutS = num();
    else if (v === '--memory') a.memoryMb = num();
    else if (v === '--cpus') a.cpus = num();
    else if (v === '--per-boot') a.perBoot = num();
    else if (v === '--exec') a.exec = argv[++i];
    else if (v === '--kernel') { a.kernel = argv[++i]; if (!a.kernel) throw new Error('--kernel needs a series: 5.10, 6.1 or 6.12'); }
    else if (v === '--qemu') { a.qemu = argv[++i] ?? ''; if (!a.qemu) throw new Error(`--qemu needs host or one of ${Object.keys(QEMU_SERIES).join(', ')}`); }
    else if (v !== '--') a.filters.push(v);
  }
  return a;
}

/**
 * Where the vCPUs of a hung guest are: QEMU's monitor answers `info registers -a`; the RIP of each vCPU (and
 * whether it is in the kernel: CS 0010) is kept. With nokaslr a RIP names the same function on every boot
 * (look it up in the guest's /proc/kallsyms: npm run test:guest -- --exec 'grep -i " t " /proc/kallsyms | sort').
 */
function vcpuPlaces(socket: string): Promise<string> {
  return new Promise((res) => {
    let text = '';
    const c = createConnection(socket);
    const done = () => { c.destroy(); res([...text.matchAll(/^CPU#(\d+)[\s\S]*?RIP=([0-9a-f]+)[\s\S]*?\nCS =([0-9a-f]{4})/gm)].map((m) => `vCPU ${m[1]}: RIP ${m[2]} (${m[3] === '0010' ? 'kernel' : 'user'})`).join('; ') || 'the monitor did not answer'); };
    c.on('error', () => res('no monitor'));
    c.on('data', (d) => { text += d.toString(); });
    c.on('connect', () => c.write('info registers -a\n'));
    setTimeout(done, 2000);
  });
}

/**
 * QEMU in its own process group, recorded for the reaper, killed at the bound
 * and when this process dies (asking its monitor where the vCPUs are first).
 * Its console is decoded as one UTF-8 stream (a character split across reads stays whole).
 */
function spawnQemu(binary: string, args: readonly string[], timeoutMs: number, monitor?: string) {
  // setpriv --pdeathsig: QEMU is killed by the kernel when this process dies, even by kill -9 (the reaper removes the temp dir then).
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid ?? -1;
  if (pid > 0) recordProcessGroup(pid, `${binary} ${args.join(' ')}`);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  let timedOut = false;
  let places: string | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    void (monitor ? vcpuPlaces(monitor) : Promise.resolve(undefined)).then((p) => { places = p; killGroup(pid, 'SIGKILL'); });
  }, timeoutMs);
  const exited = new Promise<{ exitCode: number; signal?: string; timedOut: boolean; stderr: string; places?: string }>((res) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL'); // anything left in its group
      res({ exitCode: code ?? -1, ...(signal ? { signal } : {}), timedOut, stderr: err, ...(places ? { places } : {}) });
    });
  });
  return { pid, exited, output: () => out };
}

const say = (s: string) => console.log(`[guest] ${s}`);

/** A module's name in the initramfs: unpacked (busybox's insmod takes plain ELF). */
const moduleFileName = (f: string) => basename(f).replace(/\.(xz|zst|gz)$/, '');

/** A module file's bytes, unpacked when the kernel's packaging compressed it (Debian 6.12: .ko.xz). */
async function moduleBytes(f: string): Promise<Buffer> {
  if (f.endsWith('.gz')) return gunzipSync(readFileSync(f));
  const tool = f.endsWith('.xz') ? 'xz' : f.endsWith('.zst') ? 'zstd' : undefined;
  if (!tool) return readFileSync(f);
  return execFileSync(tool, ['-dc', f], { maxBuffer: 64 << 20 });
}


async function main(): Promise<number> {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  if (process.getuid?.() !== 0) { console.error('The guest pass runs as root (QEMU shares / read-only with the guest). Run: sudo npm run test:guest'); return 1; }
  const args = parseArgs(process.argv.slice(2));
  // The kernel: another series fetched into the cache (--kernel 5.10|6.12), or the one in /boot (6.1).
  let fetched: GuestKernel | undefined;
  if (args.kernel && !debianKernel()?.release.startsWith(`${args.kernel}.`)) {
    try { fetched = await fetchGuestKernel(args.kernel, say); } catch (e) { console.error(`[guest] ${(e as Error).message}`); return 1; }
  }
  const kernel = fetched ? { path: fetched.path, release: fetched.release } : process.env.LABS_GUEST_KERNEL
    ? { path: process.env.LABS_GUEST_KERNEL, release: basename(process.env.LABS_GUEST_KERNEL).replace(/^vmlinuz-/, '') }
    : debianKernel();
  if (!kernel) { console.error('no /boot/vmlinuz-*-amd64 — fix: sudo apt-get install linux-image-amd64 (or sudo npm run setup)'); return 1; }
  const mods = guestModuleFiles(kernel.release, fetched?.modulesRoot);
  if (mods.missing.length) { console.error(`modules of ${kernel.release} missing: ${mods.missing.join(', ')} — fix: ${fetched ? `rm -r ${dirname(fetched.bootDir)} and run again` : `sudo apt-get install --reinstall linux-image-${kernel.release}`}`); return 1; }
  // The emulator: the installed QEMU, or a newer one fetched into the cache (--qemu 10.0).
  let qemuBinary = 'qemu-system-x86_64';
  let qemuPre: string[] = [];
  let qemuName = 'host';
  try { qemuName = `host (${execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.replace(/^QEMU emulator version /, '')})`; } catch { /* said by the checks below */ }
  if (args.qemu !== 'host') {
    try {
      const q = await fetchGuestQemu(args.qemu, say);
      qemuBinary = q.binary; qemuPre = qemuDataArgs(q); qemuName = `${q.series} (${q.version}, from the cache)`;
    } catch (e) { console.error(`[guest] ${(e as Error).message}`); return 1; }
  }
  if (!existsSync(BUSYBOX)) { console.error(`${BUSYBOX} missing — fix: sudo apt-get install busybox-static`); return 1; }

  const runIdNow = startRun();
  const stale = reapStaleRuns(runIdNow);
  if (stale.length) say(`reaped ${stale.length} resources of killed runs: ${stale.map((l) => `${l.kind} ${l.name}`).join('; ')}`);

  const labs = listLabs();
  const { run: toRun, skip } = selectGuestLabs(labs, args.filters);
  for (const s of skip) say(`skip ${s.lab.id}: ${s.reason}`);
  if (!toRun.length) { say('no lab to run in the guest'); return args.filters.length ? 1 : 0; }
  say(`kernel ${kernel.release} (${kernel.path}); labs: ${toRun.map((l) => l.id).join(', ')}`);

  // Read-write shares: the guest's report directory and its own build cache (never the host's).
  const reports = reportDir();
  // One directory per pass (two passes at once must not share it); its files end up in reports/guest/.
  const guestReports = join(reports, 'guest', `run-${runIdNow}`);
  const guestCache = join(REPO_ROOT, '.cache', 'guest');
  // Per-pass directories of passes that were killed (their run is no longer live) go first.
  for (const d of existsSync(join(reports, 'guest')) ? readdirSync(join(reports, 'guest')) : []) {
    const id = d.match(/^run-(.+)$/)?.[1];
    if (id && id !== runIdNow && !runIsLive(id)) rmSync(join(reports, 'guest', d), { recursive: true, force: true });
  }
  mkdirSync(guestReports, { recursive: true });
  mkdirSync(guestCache, { recursive: true });
  const shares: Share[] = [
    { tag: 'klreports', hostPath: guestReports, readonly: false },
    { tag: 'klcache', hostPath: guestCache, readonly: false },
    // A fetched kernel's modules where its modprobe looks, its config where the probes look.
    ...(fetched ? [
      { tag: 'klmodules', hostPath: join(fetched.modulesRoot, fetched.release), guestPath: join('/lib/modules', fetched.release), readonly: true },
      { tag: 'klboot', hostPath: fetched.bootDir, guestPath: '/boot', readonly: true },
      // Its headers where /lib/modules/<release>/build points, and the kbuild tools where they point (BCC, module builds).
      ...(fetched.headers ? [
        { tag: 'klsrc', hostPath: fetched.headers.usrSrc, guestPath: '/usr/src', readonly: true },
        { tag: 'klkbuild', hostPath: fetched.headers.kbuild, guestPath: fetched.headers.kbuildGuestPath, readonly: true },
      ] : []),
    ] : []),
  ];

  const modules = mods.files.map((f) => `/modules/${moduleFileName(f)}`);
  // The student's sources, resolved here (the guest's processes start elsewhere): an absolute path.
  const labSrc = studentSources();
  const envFor = (bootReports: string): Record<string, string> => ({
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root', LANG: 'C.UTF-8', TERM: 'dumb',
    LABS_GUEST: '1',
    LABS_STRICT: process.env.LABS_STRICT ?? '1',
    LABS_FORBID_ADAPTED: 'kprobes,cgroup-v1',
    LABS_REPORT_DIR: bootReports,
    LABS_JUNIT: join(bootReports, 'junit.xml'),
    LABS_CACHE_DIR: guestCache,
    // Programs under TCG run several times slower: every command bound of the harness stretches (helpers/harness/exec.ts).
    LABS_TIMEOUT_SCALE: process.env.LABS_GUEST_TIMEOUT_SCALE ?? '4',
    ...(process.env.CI ? { CI: process.env.CI } : {}),
    ...(labSrc ? { LAB_SRC: labSrc } : {}),
  });
  const vitest = join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  // One boot of the guest running some labs' specs (or --exec's command), its reports in bootReports.
  const attempt = async (timeoutS: number, specs: readonly string[], bootReports: string) => {
    mkdirSync(bootReports, { recursive: true });
    const init = passInitScript({
      modules, shares, cwd: REPO_ROOT, env: envFor(bootReports), warm: WARM_UP, scratchDevice: '/dev/vda',
      command: args.exec ? ['sh', '-c', args.exec] : ['node', vitest, 'run', '--project', 'labs', '--testTimeout=720000', '--hookTimeout=720000', ...specs],
    });
    const dir = await makeTempDir('guest');
    const initrd = join(dir, 'initramfs.cpio.gz');
    // The usual initramfs (busybox, /dev/console, /dev/null) with the pass's /init and the guest kernel's modules.
    const entries = initramfsEntries({
      init,
      files: await Promise.all(mods.files.map(async (f) => ({ path: `modules/${moduleFileName(f)}`, data: await moduleBytes(f), mode: 0o644 }))),
    });
    await writeFile(initrd, gzipSync(newcArchive(entries), { level: 1 }));
    // The guest's /tmp: a sparse ext4 image in the temp dir (removed with it; the reaper removes it after a kill -9).
    const scratch = join(dir, 'tmp.ext4');
    await run('truncate', ['-s', `${args.scratchGb}G`, scratch]);
    await run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1', scratch], { timeoutMs: 60_000 });

    const monitor = join(dir, 'monitor.sock');
    const qemuArgs = [...qemuPre, ...passQemuArgs({ kernel: kernel.path, initrd, memoryMb: args.memoryMb, cpus: args.cpus, shares, scratch, monitor, ...(process.env.LABS_GUEST_CPU ? { cpu: process.env.LABS_GUEST_CPU } : {}), ...(process.env.LABS_GUEST_ACCEL ? { accel: process.env.LABS_GUEST_ACCEL } : {}) })];
    say(`booting (QEMU ${qemuName}, TCG, ${args.cpus} vCPUs, ${args.memoryMb} MiB, bound ${Math.round(timeoutS)} s); load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    const qemu = spawnQemu(qemuBinary, qemuArgs, timeoutS * 1000, monitor);

    let interrupted: string | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      interrupted = sig;
      killGroup(qemu.pid, 'SIGKILL');
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);

    // Stream the console: stage markers as progress lines, everything else as it is.
    let shown = 0;
    let bootDeadline: NodeJS.Timeout | undefined = setTimeout(() => {
      if (!parseConsole(qemu.output()).stages.some((st) => st.name === 'root-ready')) { interrupted = 'boot bound (180 s)'; killGroup(qemu.pid, 'SIGKILL'); }
    }, 180_000);
    const pump = () => {
      const text = qemu.output().replace(/\r/g, '');
      const end = text.lastIndexOf('\n');
      if (end < shown) return;
      for (const line of text.slice(shown, end).split('\n')) {
        const st = stageOf(line);
        if (st) {
          say(`${st.name} (guest uptime ${st.uptime} s, ${elapsed()})`);
          if (st.name === 'root-ready' && bootDeadline) { clearTimeout(bootDeadline); bootDeadline = undefined; }
        } else if (line.length) console.log(line);
      }
      shown = end + 1;
    };
    const ticker = setInterval(pump, 200);
    const result = await qemu.exited;
    clearInterval(ticker);
    if (bootDeadline) clearTimeout(bootDeadline);
    pump();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(dir, { recursive: true, force: true }); // the 8 GiB scratch image goes with each boot
    return { state: parseConsole(qemu.output()), result, interrupted, output: qemu.output() };
  };

  // Each group of labs boots a guest of its own with its own bound: an emulator hang costs that group, not the pass.
  const groups = args.exec ? [[] as PassLab[]] : bootGroups(toRun, args.perBoot);
  // The whole pass's bound: --timeout, else every boot's bound and one retry (--exec: 1200 s).
  const passS = args.timeoutS ?? (args.exec ? 1200 : passBoundS(groups));
  const deadline = Date.now() + passS * 1000;
  const left = () => (deadline - Date.now()) / 1000;
  if (groups.length > 1) say(`${groups.length} boots of up to ${args.perBoot} labs each, each with its own bound`);
  let status = 0;
  let merged = readReport(join(reports, 'labs.json'));
  const junits: string[] = [];
  const retries: string[] = [];
  const failures: string[] = [];
  for (const [i, group] of groups.entries()) {
    if (left() < 60) {
      failures.push(`${group.map((l) => l.id).join(', ')}: not run, the pass bound (${passS} s) was spent`);
      junits.push(failedPassJunit(`guest ${kernel.release}: ${group.map((l) => l.id).join(', ')}`, `not run: the pass bound (${passS} s) was spent`, ''));
      status ||= 1;
      continue;
    }
    const bootReports = join(guestReports, `boot-${i + 1}`);
    const bound = () => Math.min(left(), args.exec ? left() : groupBoundS(group));
    if (groups.length > 1) say(`boot ${i + 1}/${groups.length}: ${group.map((l) => l.id).join(', ')}`);
    let a = await attempt(bound(), group.map((l) => l.spec), bootReports);
    // A guest that never reported its status (a lockup: softlockup_panic; or no progress until the bound) says
    // nothing about the labs: it is the emulator or the kernel under it. One more boot of the same group, said.
    if (a.state.exitCode === undefined && a.interrupted !== 'SIGINT' && a.interrupted !== 'SIGTERM' && left() >= 120 && process.env.LABS_GUEST_RETRY !== '0') {
      const why = a.state.lockup ?? (a.result.timedOut ? `no exit status within its bound (${Math.round(bound())} s)` : a.interrupted ?? `QEMU ended (${a.result.signal ?? `code ${a.result.exitCode}`})`);
      retries.push(`${group.map((l) => l.id).join(', ') || 'exec'}: ${why}`);
      say(`the guest of boot ${i + 1} never reported an exit status (${why}; its console is above): booting it once more`);
      rmSync(bootReports, { recursive: true, force: true });
      a = await attempt(bound(), group.map((l) => l.spec), bootReports);
    }
    const { state, result, interrupted } = a;
    let failedWhy: string | undefined;
    if (state.exitCode === undefined) {
      const why = interrupted ?? (state.lockup ? `the guest kernel locked up: ${state.lockup}` : result.timedOut ? `its bound (${Math.round(bound())} s)` : `QEMU ended (${result.signal ?? `code ${result.exitCode}`})`);
      console.error(`\n[guest] FAILED: the guest never reported an exit status (${why}${state.failure ? `; /init: ${state.failure}` : ''}). Last console lines:\n${lastLines(a.output)}`);
      if (result.places) console.error(`[guest] at the bound: ${result.places}`);
      if (result.stderr.trim()) console.error(`[guest] QEMU said: ${result.stderr.trim().split('\n').slice(-5).join('\n')}`);
      status = interrupted === 'SIGINT' ? 130 : status || 1;
      failedWhy = `the guest never reported an exit status (${why})`;
      failures.push(`${group.map((l) => l.id).join(', ') || 'exec'}: ${failedWhy}`);
    } else if (state.exitCode !== 0) {
      status ||= state.exitCode;
    }
    // Results back: the guest's labs.json beside the host's, its JUnit tagged with the kernel.
    const guestReport = readReport(join(bootReports, 'labs.json'));
    if (guestReport) {
      merged = attachGuest(merged, guestReport, i === 0 ? skip.map((s) => ({ id: s.lab.id, reason: s.reason })) : [], labs);
    } else if (state.exitCode !== undefined && !args.exec) {
      say(`the guest of boot ${i + 1} wrote no labs.json`);
      status ||= 1;
    }
    const junitIn = join(bootReports, 'junit.xml');
    if (!args.exec && failedWhy !== undefined) junits.push(failedPassJunit(`guest ${kernel.release}: ${group.map((l) => l.id).join(', ')}`, failedWhy, lastLines(a.output)));
    else if (existsSync(junitIn) && !args.exec) junits.push(tagJunit(readFileSync(junitIn, 'utf8'), `guest ${kernel.release}`));
    if (interrupted === 'SIGINT' || interrupted === 'SIGTERM') break;
  }
  await releaseAll();
  const leftovers = reapRun(runIdNow);
  if (leftovers.length) say(`released ${leftovers.length} leftovers: ${leftovers.map((l) => `${l.kind} ${l.name}`).join('; ')}`);
  if (merged && !args.exec) {
    const { html } = writeReport(merged, reports);
    say(`results merged into ${html} (host and guest side by side)`);
  }
  if (junits.length) {
    const junitOut = process.env.LABS_JUNIT ? resolve(process.env.LABS_JUNIT) : join(reports, 'junit-guest.xml');
    writeFileSync(junitOut, mergeJunit(junits));
    say(`JUnit: ${junitOut}`);
  }
  for (const r of retries) say(`retried once: ${r}`);
  for (const f of failures) say(`FAILED: ${f}`);
  // The guest's own reports stay readable in reports/guest/boot-<n>/; the per-pass directory goes.
  for (const f of readdirSync(guestReports)) {
    rmSync(join(reports, 'guest', f), { recursive: true, force: true });
    renameSync(join(guestReports, f), join(reports, 'guest', f));
  }
  rmSync(guestReports, { recursive: true, force: true });
  say(`wall time ${elapsed()} (${groups.length} boot${groups.length > 1 ? 's' : ''}${retries.length ? `, ${retries.length} retried` : ''}); exit ${status}`);
  return status;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  process.exitCode = await main();
}
