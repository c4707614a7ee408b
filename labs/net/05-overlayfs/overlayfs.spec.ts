/**
 * Net Lab 5 — OverlayFS, the file system under a container image.
 *
 * The student's overlay.sh mounts lower/upper/work at merged in a mount
 * namespace of its own and runs a command there. The spec's command changes
 * the merged view (append to a lower file, delete one, replace a directory)
 * and lists it; the spec then reads the layers themselves: the copied-up
 * file in upper, the whiteout (a 0/0 character device), the opaque directory
 * (trusted.overlay.opaque), the untouched lower layer — and the mount tables
 * inside and outside.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { run, type RunResult } from '../../../helpers/harness/exec.js';
import { parseMountinfo, unescapeMountField } from '../../../helpers/harness/mountinfo.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { labRequires, requires } from '../../../helpers/harness/requires.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';

/** 64 KiB + 7 bytes of a pattern: a copy-up must carry all of it, not just the appended line. */
const LOWER_FILE = Buffer.from(Array.from({ length: 65_543 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
const APPENDED = 'appended through the merged view\n';

interface Layers { lower: string; upper: string; work: string; merged: string }

/** Mount points in a mountinfo text, with their fs type. */
function mounts(mountinfo: string): { point: string; fstype: string; options: string; propagation: string }[] {
  // The optional fields are the propagation: shared:N, master:N, propagate_from:N (none: private).
  return parseMountinfo(mountinfo).map((m) => ({ point: m.mountPoint, fstype: m.fsType, options: m.superOptions, propagation: m.optionalFields.join(' ') }));
}

/** The status the command ends with (random per run): the script must pass it on, as unshare(1) does. */
const COMMAND_STATUS = 3 + Math.floor(Math.random() * 100);

/** A word for sh -c: the layer paths hold spaces. */
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const SECTION = (name: string) => `=====${name}=====`;

/** Arguments after the command's script: each must reach it as it is (a space, a glob, an empty one). */
const COMMAND_ARGS = ['two words', '*', ''];
const ARGV_SEEN = COMMAND_ARGS.map((a) => `<${a}>`).join('');

/** The sections the command prints, in order: each must be there (a command that was not run as given misses some). */
const SECTIONS = ['upper0', 'ns', 'argv', 'mountinfo', 'statfs', 'host', 'upnow', 'ls', 'lsdir', 'end'];

function section(out: string, name: string): string {
  const start = out.indexOf(SECTION(name));
  if (start < 0) return '';
  const rest = out.slice(start + SECTION(name).length + 1);
  const end = rest.indexOf('=====');
  return (end < 0 ? rest : rest.slice(0, end)).trimEnd();
}

describe('Net Lab 5 — OverlayFS: copy-up, whiteouts, opaque directories (the layers under a container)', () => {
  requires(...labRequires(import.meta.url));
  let l: Layers;
  let result: RunResult;
  let xattrGet = '';
  let hostMntNs = '';
  let hostMountsAfter: ReturnType<typeof mounts> = [];
  /** What kept the command's mount namespace alive after the script ended: nsfs mounts of it in the host, processes in it. */
  let pinned: { nsfs: string[]; processes: string[] } = { nsfs: [], processes: [] };

  beforeAll(async () => {
    xattrGet = (await buildProgram({ src: join(REFERENCE_SRC, 'net/xattr_get.c') })).path;
    const dir = await makeTempDir('ovl');
    // A decoy: the layers live on a mount that is shared in the host's namespace (as / is on a systemd host), so a
    // namespace that keeps the host's propagation hands the overlay back to the host. makeTempDir's release unmounts it.
    await run('mount', ['--bind', dir, dir], { timeoutMs: 10_000 });
    await run('mount', ['--make-shared', dir], { timeoutMs: 10_000 });
    // Layer paths that are not siblings named lower/upper/work, each with a space: a script must use the ones it is given, quoted.
    const r = () => randomBytes(3).toString('hex');
    l = { lower: join(dir, `img ${r()}`, 'ro'), upper: join(dir, `rw ${r()}`), work: join(dir, `s ${r()}`, 'scratch'), merged: join(dir, `view ${r()}`) };
    for (const d of Object.values(l)) mkdirSync(d, { recursive: true });
    mkdirSync(join(l.lower, 'dir'));
    writeFileSync(join(l.lower, 'file'), LOWER_FILE);
    writeFileSync(join(l.lower, 'gone'), 'deleted through the merged view\n');
    writeFileSync(join(l.lower, 'keep'), 'never touched\n');
    writeFileSync(join(l.lower, 'dir', 'old'), 'in the lower directory\n');
    // A script that mounts in the host's namespace would leave the mount behind: take it down when the test ends.
    defer(`overlay at ${l.merged} (only if it leaked into the host's mount namespace)`, async () => {
      if (mounts(readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.point === l.merged)) {
        await run('umount', ['-l', l.merged], { reject: false, timeoutMs: 10_000 });
      }
    });
    hostMntNs = readlinkSync('/proc/self/ns/mnt');
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
      `exit ${COMMAND_STATUS}`,
    ].join('; ');
    result = await run(labSource('net/05-overlayfs/overlay.sh'), [l.lower, l.upper, l.work, l.merged, 'sh', '-c', ops, 'overlay-command', ...COMMAND_ARGS], { reject: false, timeoutMs: 30_000 });
    hostMountsAfter = mounts(readFileSync('/proc/self/mountinfo', 'utf8'));
    // The command's namespace must end with it: nothing in the host may pin it (an nsfs bind mount, a process left in it).
    const cmdNs = section(result.stdout, 'ns').trim();
    if (/^mnt:\[\d+\]$/.test(cmdNs) && cmdNs !== hostMntNs) {
      const nsfs = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.fsType === 'nsfs' && m.root === cmdNs).map((m) => m.mountPoint);
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
  });

  const out = () => `overlay.sh exited ${result.exitCode}; its output:\n${result.stdout.slice(0, 1500)}${result.stderr ? `\nstderr:\n${result.stderr.slice(-1500)}` : ''}`;

  it('mounts the overlay in a mount namespace of its own: the command sees an overlay at merged with these layers, the host never does', () => {
    const inside = mounts(section(result.stdout, 'mountinfo')).find((m) => m.point === l.merged);
    const ns = section(result.stdout, 'ns').trim();
    const opts = new Map((inside?.options ?? '').split(',').map((kv) => [kv.split('=')[0]!, unescapeMountField(kv.slice(kv.indexOf('=') + 1))] as const));
    const missing = SECTIONS.filter((n) => !result.stdout.includes(SECTION(n)));
    expect({ missing, argv: section(result.stdout, 'argv').trim() },
      `the command (sh -c <script> overlay-command ${COMMAND_ARGS.map((a) => JSON.stringify(a)).join(' ')}) must run as given: its output lacks the sections ${missing.join(', ') || '(none)'} ` +
      `and its arguments arrived as ${section(result.stdout, 'argv').trim() || '(nothing)'}. The command's arguments must reach it unchanged: pass them on as "$@" (exec "$@"), ` +
      `never flattened into one string ($*, sh -c "… $*") nor unquoted (a space splits, * expands)\n${out()}`)
      .toEqual({ missing: [], argv: ARGV_SEEN });
    expect({ exit: result.exitCode, upperAtStart: section(result.stdout, 'upper0').trim(), propagation: inside?.propagation ?? '(no mount)' },
      `the command exits ${COMMAND_STATUS}, and overlay.sh must exit with it; upper is empty when the command starts (ls -A ${l.upper}); ` +
      `the mount at merged has no propagation tag (shared:N or master:N in the optional fields of mountinfo): a private mount namespace\n${out()}`)
      .toEqual({ exit: COMMAND_STATUS, upperAtStart: '', propagation: '' });
    expect({ fstype: inside?.fstype, lowerdir: opts.get('lowerdir'), upperdir: opts.get('upperdir'), workdir: opts.get('workdir'), statfs: section(result.stdout, 'statfs').trim() },
      `the command's /proc/self/mountinfo entry for ${l.merged}: ${inside ? JSON.stringify(inside) : '(none)'}; stat -f of ${l.merged} inside: ${section(result.stdout, 'statfs').trim() || '(nothing)'}\n${out()}`)
      .toEqual({ fstype: 'overlay', lowerdir: l.lower, upperdir: l.upper, workdir: l.work, statfs: 'overlayfs' });
    // While the command runs, the host's table (the spec's own process's mountinfo, read from inside) has no mount at merged.
    const hostDuring = section(result.stdout, 'host');
    const leakedDuring = hostDuring.trim() !== 'unreadable' && mounts(hostDuring).some((m) => m.point === l.merged);
    expect(leakedDuring, `/proc/${process.pid}/mountinfo (the host's namespace) read by the command while it ran shows a mount at ${l.merged}: ` +
      'the overlay was mounted in the host namespace (and taken down before the spec looked)').toBe(false);
    expect({ ownNamespace: ns !== '' && ns !== hostMntNs, leftInHost: hostMountsAfter.some((m) => m.point === l.merged) },
      `mount namespace of the command: ${ns || '(not printed)'}, the host's: ${hostMntNs}; host mount table after the script: ${hostMountsAfter.filter((m) => m.point.startsWith(l.merged)).map((m) => `${m.point} ${m.fstype}`).join(', ') || 'no mount at merged'}`)
      .toEqual({ ownNamespace: true, leftInHost: false });
    expect(pinned, `after overlay.sh exited, its command's mount namespace ${ns} (with the overlay in it) lives on: ` +
      `nsfs mounts of it in the host's /proc/self/mountinfo: ${pinned.nsfs.join(', ') || 'none'}; processes still in it (/proc/<pid>/ns/mnt): ${pinned.processes.join(', ') || 'none'}. ` +
      'A namespace made with unshare --mount=<file> or kept by a process left behind holds the overlay (and its upper layer) busy: run the command as the namespace\'s last process, and pin nothing')
      .toEqual({ nsfs: [], processes: [] });
  });

  it('copies a file up on write: upper holds the whole file (64 KiB from lower plus the appended line), lower is untouched', () => {
    const upNow = section(result.stdout, 'upnow').trim();
    expect(upNow, `stat -c %s ${l.upper}/file right after the append, inside the command (the copy-up happens on the write, not afterwards)`).toBe(String(LOWER_FILE.length + APPENDED.length));
    const up = join(l.upper, 'file');
    const got = existsSync(up) ? readFileSync(up) : undefined;
    const want = Buffer.concat([LOWER_FILE, Buffer.from(APPENDED)]);
    expect({ inUpper: got !== undefined, size: got?.length, same: got?.equals(want) }, `${up}: ${got ? `${got.length} bytes` : 'missing'}; expected ${want.length} bytes\n${out()}`)
      .toEqual({ inUpper: true, size: want.length, same: true });
    expect(readFileSync(join(l.lower, 'file')).equals(LOWER_FILE), `${l.lower}/file changed: the lower layer must stay read-only`).toBe(true);
    expect(existsSync(join(l.upper, 'keep')), 'keep was never written: it must not be copied up').toBe(false);
  });

  it('records a deletion as a whiteout: upper/gone is a character device 0/0, lower/gone still exists', () => {
    const wh = join(l.upper, 'gone');
    const st = (() => { try { return lstatSync(wh); } catch { return undefined; } })();
    expect({ charDevice: st?.isCharacterDevice(), rdev: st?.rdev, lowerKept: existsSync(join(l.lower, 'gone')) },
      `${wh}: ${st ? `mode ${st.mode.toString(8)} rdev ${st.rdev}` : 'missing'}; upper holds: ${readdirSync(l.upper).join(', ')}\n${out()}`)
      .toEqual({ charDevice: true, rdev: 0, lowerKept: true });
  });

  it('makes a directory deleted and made again opaque: trusted.overlay.opaque = y on upper/dir, lower/dir/old hidden but kept', async () => {
    const x = await run(xattrGet, [join(l.upper, 'dir'), 'trusted.overlay.opaque'], { reject: false, timeoutMs: 10_000 });
    const lsDir = section(result.stdout, 'lsdir').split('\n').filter(Boolean);
    expect({ opaque: x.stdout.trim(), mergedDir: lsDir, lowerOld: existsSync(join(l.lower, 'dir', 'old')) },
      `xattr trusted.overlay.opaque of ${l.upper}/dir: ${x.stdout.trim()}; ls -A merged/dir: ${lsDir.join(' ') || '(empty)'}\n${out()}`)
      .toEqual({ opaque: 'y', mergedDir: ['new'], lowerOld: true });
  });

  it('shows the union in the merged view: ls lists dir, file and keep — gone is hidden', () => {
    const ls = section(result.stdout, 'ls').split('\n').filter(Boolean).sort();
    expect(ls, `ls -A merged inside the namespace\n${out()}`).toEqual(['dir', 'file', 'keep']);
  });
});
