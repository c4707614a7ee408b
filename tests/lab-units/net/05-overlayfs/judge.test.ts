/** Net Lab 5's verdicts (labs/net/05-overlayfs/judge.ts) on made-up evidence: each test's facts and the messages that explain them. */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { OverlayRun } from '../../../../labs/net/05-overlayfs/experiment.js';
import {
  APPENDED, copyUp, LOWER_FILE, mounts, opaque, ownNamespace, section, SECTION, union, whiteout, type Check,
} from '../../../../labs/net/05-overlayfs/judge.js';

const D = '/tmp/kl-abc123-ovl-x';
const layers = { lower: `${D}/img 1a2b3c/ro`, upper: `${D}/rw 4d5e6f`, work: `${D}/s 778899/scratch`, merged: `${D}/view aabbcc` };
/** The kernel's escaping of a path in mountinfo (a space is \040). */
const esc = (p: string) => p.replace(/ /g, '\\040');
const HOST_NS = 'mnt:[4026531841]';
const CMD_NS = 'mnt:[4026532300]';

/** A mountinfo line for merged: an overlay with these layers and optional fields. */
function overlayLine(l = layers, optional = '') {
  return `812 790 0:88 / ${esc(l.merged)} rw,relatime ${optional}${optional ? ' ' : ''}- overlay overlay rw,lowerdir=${esc(l.lower)},upperdir=${esc(l.upper)},workdir=${esc(l.work)}`;
}
const ROOT = '790 1 254:0 / / rw,relatime - ext4 /dev/vda rw';
const TMP_SHARED = `791 790 254:0 ${esc(D)} ${esc(D)} rw,relatime shared:412 - ext4 /dev/vda rw`;

/** What the command prints when overlay.sh does its job. */
function stdout(parts: Partial<Record<string, string>> = {}): string {
  const s: Record<string, string> = {
    upper0: '', ns: CMD_NS, argv: '<two words><*><>', mountinfo: [ROOT, overlayLine()].join('\n'), statfs: 'overlayfs',
    host: [ROOT, TMP_SHARED].join('\n'), upnow: String(LOWER_FILE.length + APPENDED.length), ls: 'dir\nfile\nkeep', lsdir: 'new', end: '', ...parts,
  };
  return Object.entries(s).filter(([, v]) => v !== undefined).map(([k, v]) => `${SECTION(k)}\n${v}${v ? '\n' : ''}`).join('');
}

function overlayRun(extra: Partial<OverlayRun> = {}): OverlayRun {
  return {
    layers, hostPid: 4242, commandStatus: 57,
    result: { exitCode: 57, stdout: stdout(), stderr: '' },
    hostMntNs: HOST_NS, hostMountsAfter: mounts([ROOT, TMP_SHARED].join('\n')), pinned: { nsfs: [], processes: [] },
    upperFile: Buffer.concat([LOWER_FILE, Buffer.from(APPENDED)]), lowerFile: LOWER_FILE, upperKeep: false,
    whiteout: { charDevice: true, rdev: 0, mode: 0o20000 }, lowerGone: true, upperNames: ['dir', 'file', 'gone'],
    opaque: 'y', lowerOld: true, ...extra,
  };
}

/** The first check that fails (what the spec reports), or undefined. */
const firstFailing = (checks: Check | Check[]) => [checks].flat().find((c) => !isDeepStrictEqual(c.got, c.want));

describe('Net Lab 5 judge', () => {
  it('a correct run: every check of every test holds', () => {
    const r = overlayRun();
    for (const checks of [ownNamespace(r), copyUp(r), whiteout(r), opaque(r), union(r)]) expect(firstFailing(checks)).toBeUndefined();
  });

  it('section: the text between two markers, empty when the marker is missing', () => {
    const out = stdout();
    expect(section(out, 'argv')).toBe('<two words><*><>');
    expect(section(out, 'ls').split('\n')).toEqual(['dir', 'file', 'keep']);
    expect(section(out.replace(SECTION('lsdir'), ''), 'lsdir')).toBe('');
  });

  it('reads the layer paths from the overlay options, spaces decoded, and the propagation from the optional fields', () => {
    const m = mounts(overlayLine(layers, 'shared:7')).find((x) => x.point === layers.merged);
    expect(m?.fstype).toBe('overlay');
    expect(m?.propagation).toBe('shared:7');
    expect(firstFailing(ownNamespace(overlayRun()))).toBeUndefined();
  });

  it('arguments flattened or split: the argv check fails first and says "$@"', () => {
    const r = overlayRun({ result: { exitCode: 57, stdout: stdout({ argv: '<two><words><a.txt>' }), stderr: '' } });
    const f = firstFailing(ownNamespace(r));
    expect(f?.got).toEqual({ missing: [], argv: '<two><words><a.txt>' });
    expect(f?.message).toMatch(/pass them on as "\$@"/);
  });

  it('a command that never ran: every section missing, named in the message', () => {
    const f = firstFailing(ownNamespace(overlayRun({ result: { exitCode: 1, stdout: '', stderr: 'mount: permission denied' } })));
    expect((f?.got as { missing: string[] }).missing).toContain('end');
    expect(f?.message).toMatch(/stderr:\nmount: permission denied/);
  });

  it('status swallowed, shared propagation kept, or upper filled beforehand: the exit/propagation check fails', () => {
    expect(firstFailing(ownNamespace(overlayRun({ result: { exitCode: 0, stdout: stdout(), stderr: '' } })))?.message).toMatch(/the command exits 57/);
    const shared = overlayRun({ result: { exitCode: 57, stdout: stdout({ mountinfo: [ROOT, overlayLine(layers, 'shared:412')].join('\n') }), stderr: '' } });
    expect(firstFailing(ownNamespace(shared))?.got).toEqual({ exit: 57, upperAtStart: '', propagation: 'shared:412' });
    const slave = overlayRun({ result: { exitCode: 57, stdout: stdout({ mountinfo: [ROOT, overlayLine(layers, 'master:412')].join('\n') }), stderr: '' } });
    expect(firstFailing(ownNamespace(slave))?.message).toMatch(/no propagation tag/);
    const prefab = overlayRun({ result: { exitCode: 57, stdout: stdout({ upper0: 'file' }), stderr: '' } });
    expect(firstFailing(ownNamespace(prefab))?.got).toMatchObject({ upperAtStart: 'file' });
  });

  it('layers swapped, or no overlay at merged: the mount check shows the entry', () => {
    const swapped = { ...layers, lower: layers.upper, upper: layers.lower };
    const r = overlayRun({ result: { exitCode: 57, stdout: stdout({ mountinfo: [ROOT, overlayLine(swapped)].join('\n') }), stderr: '' } });
    const f = firstFailing(ownNamespace(r));
    expect(f?.got).toMatchObject({ fstype: 'overlay', lowerdir: layers.upper, upperdir: layers.lower });
    expect(f?.message).toMatch(/mountinfo entry for/);
    const none = overlayRun({ result: { exitCode: 57, stdout: stdout({ mountinfo: ROOT, statfs: 'ext2/ext3' }), stderr: '' } });
    // No mount at all has no propagation either: the check before says so first.
    expect(firstFailing(ownNamespace(none))?.got).toMatchObject({ propagation: '(no mount)' });
    const g = ownNamespace(none)[2];
    expect(g?.got).toMatchObject({ fstype: undefined, statfs: 'ext2/ext3' });
    expect(g?.message).toMatch(/: \(none\);/);
  });

  it('mounted in the host namespace: seen by the host while the command ran, or after, or the same namespace', () => {
    const during = overlayRun({ result: { exitCode: 57, stdout: stdout({ host: [ROOT, TMP_SHARED, overlayLine(layers, 'shared:500')].join('\n') }), stderr: '' } });
    expect(firstFailing(ownNamespace(during))?.message).toMatch(/\/proc\/4242\/mountinfo \(the host's namespace\)/);
    // An unreadable host table is no evidence of a leak.
    expect(firstFailing(ownNamespace(overlayRun({ result: { exitCode: 57, stdout: stdout({ host: 'unreadable' }), stderr: '' } })))).toBeUndefined();
    const after = overlayRun({ hostMountsAfter: mounts([ROOT, overlayLine()].join('\n')) });
    const f = firstFailing(ownNamespace(after));
    expect(f?.got).toEqual({ ownNamespace: true, leftInHost: true });
    expect(f?.message).toMatch(`${layers.merged} overlay`);
    const same = overlayRun({ result: { exitCode: 57, stdout: stdout({ ns: HOST_NS }), stderr: '' } });
    expect(firstFailing(ownNamespace(same))?.got).toEqual({ ownNamespace: false, leftInHost: false });
  });

  it('a namespace pinned after the script: the nsfs mounts and processes are named', () => {
    const f = firstFailing(ownNamespace(overlayRun({ pinned: { nsfs: ['/run/kl-ns'], processes: ['777 (sleep)'] } })));
    expect(f?.message).toMatch(/nsfs mounts of it in the host's \/proc\/self\/mountinfo: \/run\/kl-ns; processes still in it \(\/proc\/<pid>\/ns\/mnt\): 777 \(sleep\)/);
  });

  it('copy-up: done afterwards, partial, missing, lower changed, an untouched file copied', () => {
    expect(firstFailing(copyUp(overlayRun({ result: { exitCode: 57, stdout: stdout({ upnow: "stat: cannot statx: No such file or directory" }), stderr: '' } })))?.message)
      .toMatch(/copy-up happens on the write/);
    const partial = firstFailing(copyUp(overlayRun({ upperFile: Buffer.from(APPENDED) })));
    expect(partial?.got).toEqual({ inUpper: true, size: APPENDED.length, same: false });
    expect(firstFailing(copyUp(overlayRun({ upperFile: undefined })))?.message).toMatch(/file: missing; expected 65576 bytes/);
    expect(firstFailing(copyUp(overlayRun({ lowerFile: Buffer.concat([LOWER_FILE, Buffer.from(APPENDED)]) })))?.message).toMatch(/lower layer must stay read-only/);
    expect(firstFailing(copyUp(overlayRun({ lowerFile: undefined })))?.got).toBe(false);
    expect(firstFailing(copyUp(overlayRun({ upperKeep: true })))?.message).toMatch(/must not be copied up/);
  });

  it('whiteout: a regular file or nothing in upper fails, with the mode and what upper holds', () => {
    const f = firstFailing(whiteout(overlayRun({ whiteout: { charDevice: false, rdev: 0, mode: 0o100644 } })));
    expect(f?.message).toMatch(/gone: mode 100644 rdev 0; upper holds: dir, file, gone/);
    expect(firstFailing(whiteout(overlayRun({ whiteout: undefined, upperNames: [] })))?.message).toMatch(/gone: missing; upper holds: \n/);
    expect(firstFailing(whiteout(overlayRun({ lowerGone: false })))?.got).toMatchObject({ lowerKept: false });
  });

  it('opaque directory: no xattr, the lower entry showing through, or lower/dir/old gone', () => {
    expect(firstFailing(opaque(overlayRun({ opaque: '' })))?.message).toMatch(/trusted\.overlay\.opaque of .*: ; ls -A merged\/dir: new/);
    const through = overlayRun({ result: { exitCode: 57, stdout: stdout({ lsdir: 'new\nold' }), stderr: '' } });
    expect(firstFailing(opaque(through))?.got).toMatchObject({ mergedDir: ['new', 'old'] });
    expect(firstFailing(opaque(overlayRun({ lowerOld: false })))?.got).toMatchObject({ lowerOld: false });
  });

  it('union: gone listed, or keep missing, fails with ls -A of merged', () => {
    const shown = firstFailing(union(overlayRun({ result: { exitCode: 57, stdout: stdout({ ls: 'keep\ngone\nfile\ndir' }), stderr: '' } })));
    expect(shown?.got).toEqual(['dir', 'file', 'gone', 'keep']);
    expect(shown?.message).toMatch(/^ls -A merged inside the namespace\noverlay.sh exited 57/);
    expect(firstFailing(union(overlayRun({ result: { exitCode: 57, stdout: stdout({ ls: 'dir\nfile' }), stderr: '' } })))?.got).toEqual(['dir', 'file']);
  });
});
