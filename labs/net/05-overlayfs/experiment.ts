/**
 * Net Lab 5's experiment: the student's overlay.sh mounts lower/upper/work at
 * merged in a mount namespace of its own and runs the spec's command there.
 * The layers sit on a bind mount made shared in the host's namespace (as / is
 * on a systemd host), each at a path with a space and not named
 * lower/upper/work. The command (sh -c, with arguments that must arrive
 * unchanged) prints its mount namespace, its arguments, its mountinfo, statfs
 * of merged and the host's mount table as it sees them, then appends to a
 * lower file, deletes one, replaces a directory and lists the merged view,
 * and exits with a random status. Afterwards the experiment reads the layers
 * themselves (the copied-up file, the whiteout, the opaque xattr, the lower
 * layer), the host's mount table, and what keeps the command's namespace alive
 * (nsfs mounts of it, processes left in it). Returns the evidence (`OverlayRun`);
 * never throws for a wrong script: judge.ts and the spec decide.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { readMountinfo } from '../../../helpers/harness/mountinfo.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';
import { APPENDED, COMMAND_ARGS, LOWER_FILE, mount, SECTION, section, type Mount } from './judge.js';

export interface Layers { lower: string; upper: string; work: string; merged: string }

/** What the kernel and the layers show after overlay.sh ran the command. */
export interface OverlayRun {
  layers: Layers;
  /** The spec's own pid: the command read /proc/<it>/mountinfo (the host's table) while it ran. */
  hostPid: number;
  /** The status the command ends with (random per run): the script must pass it on, as unshare(1) does. */
  commandStatus: number;
  /** overlay.sh's exit, stdout (the command's sections) and stderr. */
  result: Pick<RunResult, 'exitCode' | 'stdout' | 'stderr'>;
  /** readlink /proc/self/ns/mnt of the spec. */
  hostMntNs: string;
  /** The host's mount table after overlay.sh exited. */
  hostMountsAfter: Mount[];
  /** What kept the command's mount namespace alive after the script ended: nsfs mounts of it in the host, processes in it. */
  pinned: { nsfs: string[]; processes: string[] };
  /** upper/file after the run (undefined: missing or unreadable). */
  upperFile?: Buffer;
  /** lower/file after the run. */
  lowerFile?: Buffer;
  /** upper/keep exists (keep was never written). */
  upperKeep: boolean;
  /** lstat of upper/gone (undefined: missing). */
  whiteout?: { charDevice: boolean; rdev: number; mode: number };
  /** lower/gone still exists. */
  lowerGone: boolean;
  /** The names in upper (for the messages). */
  upperNames: string[];
  /** trusted.overlay.opaque of upper/dir, as xattr_get printed it. */
  opaque: string;
  /** lower/dir/old still exists. */
  lowerOld: boolean;
}

/** A word for sh -c: the layer paths hold spaces. */
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const hostMounts = () => readMountinfo('self').map(mount);

/** Prepare the layers, run overlay.sh on the command, read the layers and the host afterwards. */
export async function runOverlay(): Promise<OverlayRun> {
  const xattrGet = (await buildProgram({ src: join(REFERENCE_SRC, 'net/xattr_get.c') })).path;
  const commandStatus = 3 + Math.floor(Math.random() * 100);
  const dir = await makeTempDir('ovl');
  // A decoy: the layers live on a mount that is shared in the host's namespace (as / is on a systemd host), so a
  // namespace that keeps the host's propagation hands the overlay back to the host. makeTempDir's release unmounts it.
  await run('mount', ['--bind', dir, dir], { timeoutMs: 10_000 });
  await run('mount', ['--make-shared', dir], { timeoutMs: 10_000 });
  // Layer paths that are not siblings named lower/upper/work, each with a space: a script must use the ones it is given, quoted.
  const r = () => randomBytes(3).toString('hex');
  const l: Layers = { lower: join(dir, `img ${r()}`, 'ro'), upper: join(dir, `rw ${r()}`), work: join(dir, `s ${r()}`, 'scratch'), merged: join(dir, `view ${r()}`) };
  for (const d of Object.values(l)) mkdirSync(d, { recursive: true });
  mkdirSync(join(l.lower, 'dir'));
  writeFileSync(join(l.lower, 'file'), LOWER_FILE);
  writeFileSync(join(l.lower, 'gone'), 'deleted through the merged view\n');
  writeFileSync(join(l.lower, 'keep'), 'never touched\n');
  writeFileSync(join(l.lower, 'dir', 'old'), 'in the lower directory\n');
  // A script that mounts in the host's namespace would leave the mount behind: take it down when the test ends.
  defer(`overlay at ${l.merged} (only if it leaked into the host's mount namespace)`, async () => {
    if (hostMounts().some((m) => m.point === l.merged)) {
      await run('umount', ['-l', l.merged], { reject: false, timeoutMs: 10_000 });
    }
  });
  const hostMntNs = readlinkSync('/proc/self/ns/mnt');
  const M = shq(l.merged);
  const U = shq(l.upper);
  const ops = [
    `echo ${SECTION('upper0')}; ls -A ${U}`,
    `echo ${SECTION('ns')}; readlink /proc/self/ns/mnt`,
    `echo ${SECTION('argv')}; printf '<%s>' "$@"; echo`,
    `echo ${SECTION('mountinfo')}; cat /proc/self/mountinfo`,
    `echo ${SECTION('statfs')}; stat -f -c %T ${M}`,
    `echo ${SECTION('host')}; cat /proc/${process.pid}/mountinfo 2>/dev/null || echo unreadable`,
    `printf '${APPENDED.trimEnd()}\\n' >> ${M}/file`,
    `echo ${SECTION('upnow')}; stat -c %s ${U}/file 2>&1`,
    `rm -f ${M}/gone`,
    `rm -rf ${M}/dir; mkdir ${M}/dir; echo new > ${M}/dir/new`,
    `echo ${SECTION('ls')}; ls -A ${M}`,
    `echo ${SECTION('lsdir')}; ls -A ${M}/dir`,
    `echo ${SECTION('end')}`,
    `exit ${commandStatus}`,
  ].join('; ');
  const result = await run(labSource('net/05-overlayfs/overlay.sh'), [l.lower, l.upper, l.work, l.merged, 'sh', '-c', ops, 'overlay-command', ...COMMAND_ARGS], { reject: false, timeoutMs: 30_000 });
  const hostMountsAfter = hostMounts();
  // The command's namespace must end with it: nothing in the host may pin it (an nsfs bind mount, a process left in it).
  let pinned: OverlayRun['pinned'] = { nsfs: [], processes: [] };
  const cmdNs = section(result.stdout, 'ns').trim();
  if (/^mnt:\[\d+\]$/.test(cmdNs) && cmdNs !== hostMntNs) {
    const nsfs = readMountinfo('self').filter((m) => m.fsType === 'nsfs' && m.root === cmdNs).map((m) => m.mountPoint);
    const procs: number[] = [];
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try { if (readlinkSync(`/proc/${p}/ns/mnt`) === cmdNs) procs.push(Number(p)); } catch { /* gone */ }
    }
    pinned = { nsfs, processes: procs.map((p) => { try { return `${p} (${readFileSync(`/proc/${p}/comm`, 'utf8').trim()})`; } catch { return String(p); } }) };
    // The script made them: take them down with the test.
    defer(`what pins mount namespace ${cmdNs}`, async () => {
      for (const p of procs) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
      for (const m of nsfs) await run('umount', [m], { reject: false, timeoutMs: 10_000 });
    });
  }
  const read = (p: string) => { try { return existsSync(p) ? readFileSync(p) : undefined; } catch { return undefined; } };
  const st = (() => { try { return lstatSync(join(l.upper, 'gone')); } catch { return undefined; } })();
  const x = await run(xattrGet, [join(l.upper, 'dir'), 'trusted.overlay.opaque'], { reject: false, timeoutMs: 10_000 });
  return {
    layers: l, hostPid: process.pid, commandStatus,
    result: { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr },
    hostMntNs, hostMountsAfter, pinned,
    upperFile: read(join(l.upper, 'file')),
    lowerFile: read(join(l.lower, 'file')),
    upperKeep: existsSync(join(l.upper, 'keep')),
    whiteout: st && { charDevice: st.isCharacterDevice(), rdev: st.rdev, mode: st.mode },
    lowerGone: existsSync(join(l.lower, 'gone')),
    upperNames: (() => { try { return readdirSync(l.upper); } catch { return []; } })(),
    opaque: x.stdout.trim(),
    lowerOld: existsSync(join(l.lower, 'dir', 'old')),
  };
}
