/**
 * Net Lab 5's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `OverlayRun`) to the facts each test asserts, with the
 * message that shows the evidence (overlay.sh's output, the mount tables
 * inside and outside, the layers). Unit-tested on made-up runs in
 * tests/lab-units/net/05-overlayfs/judge.test.ts.
 */
import { parseMountinfo, unescapeMountField, type MountInfoEntry } from '../../../helpers/harness/mountinfo.js';
import type { OverlayRun } from './experiment.js';
import type { Verdict } from '../../../helpers/harness/verdict.js';

/** 64 KiB + 7 bytes of a pattern: a copy-up must carry all of it, not just the appended line. */
export const LOWER_FILE = Buffer.from(Array.from({ length: 65_543 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
export const APPENDED = 'appended through the merged view\n';

/** Arguments after the command's script: each must reach it as it is (a space, a glob, an empty one). */
export const COMMAND_ARGS = ['two words', '*', ''];
const ARGV_SEEN = COMMAND_ARGS.map((a) => `<${a}>`).join('');

export const SECTION = (name: string) => `=====${name}=====`;
/** The sections the command prints, in order: each must be there (a command that was not run as given misses some). */
export const SECTIONS = ['upper0', 'ns', 'argv', 'mountinfo', 'statfs', 'host', 'upnow', 'ls', 'lsdir', 'end'];

/** One section of the command's output ('' when it is missing). */
export function section(out: string, name: string): string {
  const start = out.indexOf(SECTION(name));
  if (start < 0) return '';
  const rest = out.slice(start + SECTION(name).length + 1);
  const end = rest.indexOf('=====');
  return (end < 0 ? rest : rest.slice(0, end)).trimEnd();
}

/** A mount point with its fs type, superblock options and propagation. */
export interface Mount { point: string; fstype: string; options: string; propagation: string }

/** The optional fields are the propagation: shared:N, master:N, propagate_from:N (none: private). */
export const mount = (m: MountInfoEntry): Mount => ({ point: m.mountPoint, fstype: m.fsType, options: m.superOptions, propagation: m.optionalFields.join(' ') });

/** Mount points in a mountinfo text, with their fs type. */
export const mounts = (mountinfo: string): Mount[] => parseMountinfo(mountinfo).map(mount);

/** One assertion (helpers/harness/verdict.ts's Verdict): facts to equal want, the message that shows the evidence. */
export type Check = Verdict;

/** overlay.sh's exit and output, for the messages. */
export function out(r: OverlayRun): string {
  const { result } = r;
  return `overlay.sh exited ${result.exitCode}; its output:\n${result.stdout.slice(0, 1500)}${result.stderr ? `\nstderr:\n${result.stderr.slice(-1500)}` : ''}`;
}

/** The command ran as given in a private mount namespace of its own, with the overlay at merged, never seen by the host nor pinned after. */
export function ownNamespace(r: OverlayRun): Check[] {
  const { layers: l, result } = r;
  const inside = mounts(section(result.stdout, 'mountinfo')).find((m) => m.point === l.merged);
  const ns = section(result.stdout, 'ns').trim();
  const opts = new Map((inside?.options ?? '').split(',').map((kv) => [kv.split('=')[0]!, unescapeMountField(kv.slice(kv.indexOf('=') + 1))] as const));
  const missing = SECTIONS.filter((n) => !result.stdout.includes(SECTION(n)));
  // While the command runs, the host's table (the spec's own process's mountinfo, read from inside) has no mount at merged.
  const hostDuring = section(result.stdout, 'host');
  const leakedDuring = hostDuring.trim() !== 'unreadable' && mounts(hostDuring).some((m) => m.point === l.merged);
  return [{
    got: { missing, argv: section(result.stdout, 'argv').trim() },
    want: { missing: [], argv: ARGV_SEEN },
    message: `the command (sh -c <script> overlay-command ${COMMAND_ARGS.map((a) => JSON.stringify(a)).join(' ')}) must run as given: its output lacks the sections ${missing.join(', ') || '(none)'} ` +
      `and its arguments arrived as ${section(result.stdout, 'argv').trim() || '(nothing)'}. The command's arguments must reach it unchanged: pass them on as "$@" (exec "$@"), ` +
      `never flattened into one string ($*, sh -c "… $*") nor unquoted (a space splits, * expands)\n${out(r)}`,
  }, {
    got: { exit: result.exitCode, upperAtStart: section(result.stdout, 'upper0').trim(), propagation: inside?.propagation ?? '(no mount)' },
    want: { exit: r.commandStatus, upperAtStart: '', propagation: '' },
    message: `the command exits ${r.commandStatus}, and overlay.sh must exit with it; upper is empty when the command starts (ls -A ${l.upper}); ` +
      `the mount at merged has no propagation tag (shared:N or master:N in the optional fields of mountinfo): a private mount namespace\n${out(r)}`,
  }, {
    got: { fstype: inside?.fstype, lowerdir: opts.get('lowerdir'), upperdir: opts.get('upperdir'), workdir: opts.get('workdir'), statfs: section(result.stdout, 'statfs').trim() },
    want: { fstype: 'overlay', lowerdir: l.lower, upperdir: l.upper, workdir: l.work, statfs: 'overlayfs' },
    message: `the command's /proc/self/mountinfo entry for ${l.merged}: ${inside ? JSON.stringify(inside) : '(none)'}; stat -f of ${l.merged} inside: ${section(result.stdout, 'statfs').trim() || '(nothing)'}\n${out(r)}`,
  }, {
    got: leakedDuring,
    want: false,
    message: `/proc/${r.hostPid}/mountinfo (the host's namespace) read by the command while it ran shows a mount at ${l.merged}: ` +
      'the overlay was mounted in the host namespace (and taken down before the spec looked)',
  }, {
    got: { ownNamespace: ns !== '' && ns !== r.hostMntNs, leftInHost: r.hostMountsAfter.some((m) => m.point === l.merged) },
    want: { ownNamespace: true, leftInHost: false },
    message: `mount namespace of the command: ${ns || '(not printed)'}, the host's: ${r.hostMntNs}; host mount table after the script: ${r.hostMountsAfter.filter((m) => m.point.startsWith(l.merged)).map((m) => `${m.point} ${m.fstype}`).join(', ') || 'no mount at merged'}`,
  }, {
    got: r.pinned,
    want: { nsfs: [], processes: [] },
    message: `after overlay.sh exited, its command's mount namespace ${ns} (with the overlay in it) lives on: ` +
      `nsfs mounts of it in the host's /proc/self/mountinfo: ${r.pinned.nsfs.join(', ') || 'none'}; processes still in it (/proc/<pid>/ns/mnt): ${r.pinned.processes.join(', ') || 'none'}. ` +
      'A namespace made with unshare --mount=<file> or kept by a process left behind holds the overlay (and its upper layer) busy: run the command as the namespace\'s last process, and pin nothing',
  }];
}

/** The write copied the whole file up, at once; lower and the untouched file stay as they were. */
export function copyUp(r: OverlayRun): Check[] {
  const { layers: l } = r;
  const up = `${l.upper}/file`;
  const got = r.upperFile;
  const want = Buffer.concat([LOWER_FILE, Buffer.from(APPENDED)]);
  return [{
    got: section(r.result.stdout, 'upnow').trim(),
    want: String(LOWER_FILE.length + APPENDED.length),
    message: `stat -c %s ${l.upper}/file right after the append, inside the command (the copy-up happens on the write, not afterwards)`,
  }, {
    got: { inUpper: got !== undefined, size: got?.length, same: got?.equals(want) },
    want: { inUpper: true, size: want.length, same: true },
    message: `${up}: ${got ? `${got.length} bytes` : 'missing'}; expected ${want.length} bytes\n${out(r)}`,
  }, {
    got: r.lowerFile?.equals(LOWER_FILE) ?? false,
    want: true,
    message: `${l.lower}/file changed: the lower layer must stay read-only`,
  }, {
    got: r.upperKeep,
    want: false,
    message: 'keep was never written: it must not be copied up',
  }];
}

/** The deletion is a whiteout in upper (a 0/0 character device); lower keeps the file. */
export function whiteout(r: OverlayRun): Check {
  const wh = `${r.layers.upper}/gone`;
  const st = r.whiteout;
  return {
    got: { charDevice: st?.charDevice, rdev: st?.rdev, lowerKept: r.lowerGone },
    want: { charDevice: true, rdev: 0, lowerKept: true },
    message: `${wh}: ${st ? `mode ${st.mode.toString(8)} rdev ${st.rdev}` : 'missing'}; upper holds: ${r.upperNames.join(', ')}\n${out(r)}`,
  };
}

/** The directory deleted and made again is opaque in upper: merged shows only the new entry, lower keeps the old. */
export function opaque(r: OverlayRun): Check {
  const lsDir = section(r.result.stdout, 'lsdir').split('\n').filter(Boolean);
  return {
    got: { opaque: r.opaque, mergedDir: lsDir, lowerOld: r.lowerOld },
    want: { opaque: 'y', mergedDir: ['new'], lowerOld: true },
    message: `xattr trusted.overlay.opaque of ${r.layers.upper}/dir: ${r.opaque}; ls -A merged/dir: ${lsDir.join(' ') || '(empty)'}\n${out(r)}`,
  };
}

/** The merged view is the union: dir, file and keep; gone is hidden. */
export function union(r: OverlayRun): Check {
  return {
    got: section(r.result.stdout, 'ls').split('\n').filter(Boolean).sort(),
    want: ['dir', 'file', 'keep'],
    message: `ls -A merged inside the namespace\n${out(r)}`,
  };
}
