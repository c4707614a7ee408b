/**
 * Paths Lab 3's experiment: a small ext4 image of random size with a random
 * reserved-blocks percentage (`mkfs.ext4 -m`), mounted through a loop device
 * in a `kl-` temp dir (the loop device is set up by `mount -o loop`, which
 * marks it autoclear: it goes with the last unmount, and the reaper's
 * unmount of a killed run's temp dir releases it too; while the lab is
 * contained its namespace, made before the mount, gets a copy of it at the
 * same path — contain.ts showMount — which the release unmounts first, and
 * the program, the run's own uid, makes its files in the image's root, root's
 * and sticky); the student's `descriptors` driven on its stdin, and for each
 * answer what the kernel says: `/proc/<pid>/fd` and `fdinfo` of the program
 * and its child, `kcmp(2)` and a seek of the spec's own through
 * `pidfd_getfd(2)` (c/paths/fd_probe.c),
 * `statfs(2)` of the file system, `du`, `dumpe2fs -h` and the ext4 reserve in
 * sysfs; and in a private tracefs instance following the program and what it
 * forks, its statfs/fstatfs calls and any exec. Never throws once set up: a
 * program that does not answer leaves `stuck`, and judge.ts and the spec decide.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, statfsSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { showMount } from '../../../helpers/harness/contain.js';
import { destroyMount } from '../../../helpers/harness/destroy.js';
import { run, scaledTimeout, startBackground, type RunResult } from '../../../helpers/harness/exec.js';
import { readMountinfo } from '../../../helpers/harness/mountinfo.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { defer, makeTempDir } from '../../../helpers/harness/resources.js';
import { uniqueName } from '../../../helpers/harness/run-state.js';
import { readIo, readStat } from '../../../helpers/kernel/procfs.js';
import { makeTraceInstance, type TraceEvent } from '../../../helpers/kernel/tracefs.js';

const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** The run's random inputs. */
export interface Plan {
  /** Image size (MiB) and `mkfs.ext4 -m` percentage. */
  readonly imageMiB: number;
  readonly reservePct: number;
  /** The file `share` opens, its size, the bytes the child reads, the spec's two seeks. */
  readonly shareName: string;
  readonly shareBytes: number;
  readonly k: number;
  readonly seekX: number;
  readonly seekY: number;
  /** The file `unlinked` makes, and its size (not a multiple of the block size). */
  readonly deletedName: string;
  readonly deletedBytes: number;
}

export function makePlan(): Plan {
  const shareBytes = rnd(64, 256) * 1024 + rnd(1, 1023);
  const k = rnd(1, Math.floor(shareBytes / 4));
  const seekX = rnd(Math.floor(shareBytes / 2), shareBytes - 1);
  let seekY = rnd(k + 1, shareBytes - 1);
  if (seekY === seekX) seekY = seekX - 1;
  return {
    imageMiB: rnd(24, 48), reservePct: rnd(1, 25),
    shareName: `shared-${randomBytes(3).toString('hex')}.dat`, shareBytes, k, seekX, seekY,
    deletedName: `deleted-${randomBytes(3).toString('hex')}.log`, deletedBytes: rnd(1024, 6144) * 1024 + rnd(1, 1023),
  };
}

/** How long the program may take to answer, a change to show, the program to end (stretched under TCG). */
export const ANSWER_MS = scaledTimeout(5_000);
export const REACT_MS = scaledTimeout(1_500);
export const EXIT_MS = scaledTimeout(5_000);

/** statfs(2) of the lab's file system, in blocks of `bsize`. */
export interface Fs { readonly bsize: number; readonly blocks: number; readonly bfree: number; readonly bavail: number }
export const usedBytes = (s: Fs) => (s.blocks - s.bfree) * s.bsize;

/** What `dumpe2fs -h` says of the image (blocks), and the ext4 reserve pool in sysfs (clusters = blocks here). */
export interface Dumpe2fs {
  readonly blockSize?: number;
  readonly blockCount?: number;
  readonly reserved?: number;
  readonly free?: number;
  readonly overhead?: number;
  readonly text: string;
}

export interface DescriptorsSetup {
  readonly plan: Plan;
  readonly program: string;
  readonly probe: string;
  readonly mnt: string;
  readonly device?: string;
  /** dumpe2fs -h right after the mount, before any file was written. */
  readonly dumpe2fs?: Dumpe2fs;
  /** /sys/fs/ext4/<dev>/reserved_clusters: ext4's own reserve, which statfs also keeps out of f_bavail. */
  readonly reservedClusters?: number;
  /** Why the file system could not be made (the spec skips with this reason). */
  readonly unavailable?: string;
}

/** One `df` command: the answer and the kernel's statfs read just before and after it. */
export interface DfAsk { readonly line?: string; readonly before: Fs; readonly after: Fs }

/** One descriptor as /proc shows it. */
export interface FdView {
  readonly pid: number;
  readonly fd: number;
  /** readlink /proc/<pid>/fd/<fd> (undefined: no such descriptor). */
  readonly target?: string;
  /** fdinfo pos and flags (octal as printed). */
  readonly pos?: number;
  readonly flags?: string;
}

export interface Share {
  readonly path: string;
  readonly line?: string;
  readonly fd?: number;
  readonly dup?: number;
  readonly again?: number;
  readonly child?: number;
  readonly childParent?: number;
  /** The child's descriptors that point to the path (by /proc/<child>/fd). */
  readonly childFds: FdView[];
  /** The child's descriptor that kcmp says is the program's `fd` (if any). */
  childFd?: number;
  /** The child's rchar (it starts at 0 with the fork). */
  readonly childRchar?: number;
  /** /proc views right after the answer. */
  readonly views: FdView[];
  /** kcmp KCMP_FILE results (0 = one struct file), or the probe's error. */
  readonly kcmp: Record<'dup' | 'child' | 'again', string>;
  /** After the spec's seek to seekX through (program, fd): the others' pos. */
  afterSeekX?: { through?: string; dup?: number; child?: number; again?: number };
  /** After the spec's seek to seekY through (child, its fd): the program's pos. */
  afterSeekY?: { through?: string; fd?: number; dup?: number; again?: number };
}

export interface Deleted {
  readonly path: string;
  readonly line?: string;
  readonly fd?: number;
  /** statfs and du (bytes) before the command. */
  readonly before: { fs: Fs; du?: number };
  /** While held: the fd link, fstat through it, whether the name still exists, statfs and du. */
  held?: { target?: string; unwritten?: string; nlink?: number; size?: number; blocks512?: number; ino?: number; nameExists: boolean; fs: Fs; du?: number };
  /** The program's df while the file is held. */
  df?: DfAsk;
  /** After `close <fd>`: statfs and du, the fd link, and descriptors of the program or its child still on the inode. */
  after?: { line?: string; fs: Fs; du?: number; target?: string; stillHeldBy: string[] };
}

export interface Run {
  readonly pid: number;
  readonly plan: Plan;
  df1?: DfAsk;
  share?: Share;
  deleted?: Deleted;
  /** The kernel's record of the program and what it forked: statfs/fstatfs calls and execs. */
  events: TraceEvent[];
  lost: boolean;
  exit?: RunResult;
  /** The child of `share`, still alive (not a zombie) once the program had ended. */
  childLeft: boolean;
  stuck?: string;
  output: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const readText = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };
const link = (p: string) => { try { return readlinkSync(p); } catch { return undefined; } };

export function readFs(path: string): Fs {
  const s = statfsSync(path);
  return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail };
}

/** `dumpe2fs -h` text → the figures the lab compares. */
export function parseDumpe2fs(text: string): Dumpe2fs {
  const num = (key: string) => { const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text); return m ? Number(m[1]) : undefined; };
  return {
    blockSize: num('Block size'), blockCount: num('Block count'), reserved: num('Reserved block count'),
    free: num('Free blocks'), overhead: num('Overhead clusters') ?? num('Overhead blocks'), text,
  };
}

/** fdinfo of one descriptor: pos and flags. */
export function parseFdinfo(text: string): { pos?: number; flags?: string } {
  const pos = /^pos:\s+(\d+)/m.exec(text);
  const flags = /^flags:\s+(\d+)/m.exec(text);
  return { pos: pos ? Number(pos[1]) : undefined, flags: flags?.[1] };
}

export function fdView(pid: number, fd: number): FdView {
  const target = link(`/proc/${pid}/fd/${fd}`);
  const info = target === undefined ? {} : parseFdinfo(readText(`/proc/${pid}/fdinfo/${fd}`) ?? '');
  return { pid, fd, target, ...info };
}

/** du of the mount, in bytes (st_blocks of every file it can reach by name). */
async function du(dir: string): Promise<number | undefined> {
  const r = await run('du', ['-sxB1', dir], { timeoutMs: 10_000, reject: false });
  const m = /^(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

/** Build the program and the probe, make the image and mount it (released when the file ends). */
export async function prepareDescriptors(plan: Plan = makePlan()): Promise<DescriptorsSetup> {
  const program = (await buildProgram({ src: labSource('paths/03-descriptors/descriptors.c') })).path;
  const probe = (await buildProgram({ src: join(REFERENCE_SRC, 'paths/fd_probe.c') })).path;
  const dir = await makeTempDir('desc');
  const mnt = join(dir, uniqueName('mnt'));
  mkdirSync(mnt);
  const base = { plan, program, probe, mnt };
  const image = join(dir, 'ext4.img');
  writeFileSync(image, '');
  truncateSync(image, plan.imageMiB * 1024 * 1024);
  const mkfs = await run('mkfs.ext4', ['-q', '-F', '-m', String(plan.reservePct), image], { timeoutMs: 30_000, reject: false });
  if (mkfs.exitCode !== 0) return { ...base, unavailable: `mkfs.ext4 failed: ${mkfs.stderr.trim() || mkfs.reason} (apt install e2fsprogs)` };
  // A guest kernel has loop as a module: load it when the control device is missing.
  if (!existsSync('/dev/loop-control')) await run('modprobe', ['loop'], { timeoutMs: 10_000, reject: false });
  const mount = await run('mount', ['-t', 'ext4', '-o', 'loop', image, mnt], { timeoutMs: 30_000, reject: false });
  if (mount.exitCode !== 0) return { ...base, unavailable: `mount -o loop of an ext4 image failed: ${mount.stderr.trim() || mount.reason} (needs loop devices and ext4: modprobe loop ext4)` };
  const device = readMountinfo().find((m) => m.mountPoint === mnt)?.source;
  let unshow = async () => {};
  defer(`ext4 mount ${mnt} (${device ?? 'loop'} of ${image})`, async () => {
    // The contained lab's namespace holds a copy of the mount (showMount): the superblock, and the loop device under
    // it, live until both are gone.
    await unshow();
    const d = destroyMount(mnt);
    if (!d.gone) throw new Error(`mount ${mnt} not released: ${d.reason}`);
    // mount -o loop made the device autoclear: it is released with the superblock. Detach it by hand only if it
    // still serves this image after a moment, and say so if even that leaves it bound (a file still open on it).
    const serves = () => (device ? readText(`/sys/block/${basename(device)}/loop/backing_file`)?.trim() === image : false);
    for (let t = 0; t < 40 && serves(); t++) await sleep(50);
    if (device && serves()) await run('losetup', ['-d', device], { timeoutMs: 10_000, reject: false });
    if (device && serves()) throw new Error(`loop device ${device} still serves ${image} after the unmount: its superblock is still held (a mount of it in another mount namespace, or a file still open on it)`);
  }, `umount ${mnt}; losetup -j ${image} (then losetup -d the device it names)`);
  // The student's program runs as the run's own uid while the lab is contained: it makes its files in the image's
  // root, which is root's and sticky (it cannot remove or rename the spec's files there). No block changes: du, df
  // and dumpe2fs are as before.
  chmodSync(mnt, 0o1777);
  // and sees the image at the same path in the lab's namespace, made before this mount (nothing when not contained)
  unshow = await showMount(mnt);
  const dump = device ? await run('dumpe2fs', ['-h', device], { timeoutMs: 10_000, reject: false }) : undefined;
  const rc = device ? readText(`/sys/fs/ext4/${basename(device)}/reserved_clusters`) : undefined;
  return { ...base, device, dumpe2fs: dump && dump.exitCode === 0 ? parseDumpe2fs(dump.stdout) : undefined, reservedClusters: rc === undefined ? undefined : Number(rc.trim()) };
}

async function probe(setup: DescriptorsSetup, args: (string | number)[]): Promise<string> {
  const r = await run(setup.probe, args.map(String), { timeoutMs: 10_000, reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : `error: ${r.stderr.trim() || r.reason}`;
}

/** Descriptors of `pid` whose file is the inode `ino` on device `dev`. */
function descriptorsOn(pid: number, dev: number, ino: number): string[] {
  const out: string[] = [];
  let fds: string[] = [];
  try { fds = readdirSync(`/proc/${pid}/fd`); } catch { return out; }
  for (const fd of fds) {
    try { const s = statSync(`/proc/${pid}/fd/${fd}`); if (s.ino === ino && s.dev === dev) out.push(`${pid}/fd/${fd}`); } catch { /* closed */ }
  }
  return out;
}

/** Run the whole protocol once; never throws (the tests judge). */
export async function runDescriptors(setup: DescriptorsSetup): Promise<Run> {
  const { plan, mnt } = setup;
  const dir = await makeTempDir('descio');
  const fifo = join(dir, 'commands');
  await run('mkfifo', [fifo], { timeoutMs: 5_000 });
  // Read and write: the open does not wait for the program, and the program sees end of input when this closes.
  let fd: number | undefined = openSync(fifo, 'r+');
  const trace = makeTraceInstance(['syscalls/sys_enter_statfs', 'syscalls/sys_enter_fstatfs', 'syscalls/sys_enter_lseek', 'sched/sched_process_exec'],
    { tag: 'fd', bufferKb: 1024, clock: 'mono', enable: false, recordTgid: true });
  const prog = startBackground('sh', ['-c', 'exec "$0" < "$1"', setup.program, fifo], { timeoutMs: 120_000 });
  const pid = prog.pid;
  const r: Run = { pid, plan, events: [], lost: false, childLeft: false, output: '' };
  const finish = async (stuck?: string): Promise<Run> => {
    if (fd !== undefined) { closeSync(fd); fd = undefined; }
    const exit = await Promise.race([prog.exited, sleep(EXIT_MS).then(() => undefined)]);
    const child = r.share?.child;
    if (exit && child && child > 0 && child !== pid) {
      const deadline = Date.now() + REACT_MS;
      const alive = () => { const s = readStat(child); return s !== undefined && s.state !== 'Z' && s.ppid === pid; };
      while (alive() && Date.now() < deadline) await sleep(10);
      // Its parent is gone: a child still alive now was left running (reparented, so ppid changed).
      const s = readStat(child);
      r.childLeft = s !== undefined && s.state !== 'Z';
    }
    if (trace) { trace.setEnabled(false); ({ events: r.events, lost: r.lost } = trace.read()); await trace.release(); }
    await prog.stop('SIGKILL');
    return Object.assign(r, { exit, output: prog.output(), ...(stuck ? { stuck } : {}) });
  };
  if (!trace) return finish('tracefs instances or syscalls:sys_enter_statfs/sys_enter_fstatfs, sched:sched_process_exec missing');
  // The program, once sh has exec'd it (its own exec is not one of its doings), and everything it forks.
  const exe = realpathSync(setup.program);
  const started = Date.now() + ANSWER_MS;
  while (link(`/proc/${pid}/exe`) !== exe && Date.now() < started && readStat(pid)) await sleep(5);
  writeFileSync(trace.pidFile, String(pid));
  writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
  trace.setEnabled(true);

  const lines = () => prog.stdout().split('\n').map((l) => l.trim()).filter(Boolean);
  const alive = () => { const s = readStat(pid); return s !== undefined && s.state !== 'Z'; };
  /** Send one command; its answer line, or undefined when none came in time. */
  const ask = async (cmd: string): Promise<string | undefined> => {
    const before = lines().length;
    try { writeSync(fd!, `${cmd}\n`); } catch { return undefined; }
    const deadline = Date.now() + ANSWER_MS;
    while (lines().length <= before && Date.now() < deadline && alive()) await sleep(5);
    return lines()[before];
  };
  const askDf = async (): Promise<DfAsk> => {
    const before = readFs(mnt);
    const line = await ask(`df ${mnt}`);
    return { line, before, after: readFs(mnt) };
  };

  // ---- df on the fresh file system
  r.df1 = await askDf();
  if (!alive()) return finish(`the program ${pid} ended after 'df'`);

  // ---- share: one open file through dup and fork, and a second open
  {
    const path = join(mnt, plan.shareName);
    writeFileSync(path, randomBytes(plan.shareBytes));
    const line = await ask(`share ${path} ${plan.k}`);
    const n = (line ?? '').split(/\s+/).map(Number);
    const ok = n.length === 4 && n.every((x) => Number.isInteger(x) && x >= 0);
    const [fdA, dup, again, child] = ok ? n : [undefined, undefined, undefined, undefined];
    const views = ok ? [fdView(pid, fdA!), fdView(pid, dup!), fdView(pid, again!)] : [];
    const childOk = ok && child! > 0 && child !== pid;
    let childFds: FdView[] = [];
    if (childOk) {
      let fds: string[] = [];
      try { fds = readdirSync(`/proc/${child}/fd`); } catch { /* gone */ }
      childFds = fds.map((f) => fdView(child!, Number(f))).filter((v) => v.target === path);
    }
    const s: Share = {
      path, line, fd: fdA, dup, again, child, childParent: childOk ? readStat(child!)?.ppid : undefined, childFds,
      childRchar: childOk ? readIo(child!)?.get('rchar') : undefined, views,
      kcmp: { dup: 'not asked', child: 'not asked', again: 'not asked' },
    };
    r.share = s;
    if (ok) {
      s.kcmp.dup = await probe(setup, ['kcmp', pid, fdA!, pid, dup!]);
      s.kcmp.again = await probe(setup, ['kcmp', pid, fdA!, pid, again!]);
      for (const c of childFds) {
        const k = await probe(setup, ['kcmp', pid, fdA!, child!, c.fd]);
        if (k === '0' || s.childFd === undefined) { s.kcmp.child = k; s.childFd = c.fd; }
        if (k === '0') break;
      }
      if (!childFds.length) s.kcmp.child = `the child ${child} holds no descriptor of ${path}`;
      // The spec's own hands on the offset: through the program's fd, then through the child's.
      const through = await probe(setup, ['seek', pid, fdA!, plan.seekX]);
      s.afterSeekX = { through, dup: fdView(pid, dup!).pos, again: fdView(pid, again!).pos, child: s.childFd === undefined ? undefined : fdView(child!, s.childFd).pos };
      if (s.childFd !== undefined) {
        const t2 = await probe(setup, ['seek', child!, s.childFd, plan.seekY]);
        s.afterSeekY = { through: t2, fd: fdView(pid, fdA!).pos, dup: fdView(pid, dup!).pos, again: fdView(pid, again!).pos };
      }
    }
  }
  if (!alive()) return finish(`the program ${pid} ended after 'share'`);

  // ---- unlinked: a file with no name that still has its blocks, until the last close
  {
    const path = join(mnt, plan.deletedName);
    // A file of the spec's own, of random size, that the program never sees: a df answered from figures
    // cached earlier (plus what the program itself wrote) misses it.
    writeFileSync(join(mnt, `other-${randomBytes(3).toString('hex')}.dat`), randomBytes(rnd(64, 512) * 1024 + rnd(1, 1023)));
    const d: Deleted = { path, before: { fs: readFs(mnt), du: await du(mnt) } };
    r.deleted = d;
    const line = await ask(`unlinked ${path} ${plan.deletedBytes}`);
    Object.assign(d, { line });
    const n = line !== undefined && /^\d+$/.test(line) ? Number(line) : undefined;
    if (n !== undefined) {
      Object.assign(d, { fd: n });
      const target = link(`/proc/${pid}/fd/${n}`);
      let st: import('node:fs').Stats | undefined;
      try { st = statSync(`/proc/${pid}/fd/${n}`) as import('node:fs').Stats; } catch { /* closed */ }
      // Blocks allocated but never written (fallocate: unwritten extents) are not data: FIEMAP flags them.
      const frag = await run('filefrag', ['-v', `/proc/${pid}/fd/${n}`], { timeoutMs: 10_000, reject: false });
      const unwritten = frag.exitCode !== 0 ? `filefrag failed: ${frag.stderr.trim()}` : frag.stdout.split('\n').filter((l) => /\bunwritten\b/.test(l)).length ? 'unwritten extents' : 'none';
      d.held = {
        target, unwritten, nlink: st?.nlink, size: st?.size, blocks512: st?.blocks, ino: st?.ino,
        nameExists: existsSync(path), fs: readFs(mnt), du: await du(mnt),
      };
      d.df = await askDf();
      const closed = await ask(`close ${n}`);
      const before = usedBytes(d.before.fs);
      const deadline = Date.now() + REACT_MS;
      while (usedBytes(readFs(mnt)) !== before && Date.now() < deadline) await sleep(10);
      const child = r.share?.child;
      const dev = st ? Number(st.dev) : 0;
      const ino = st ? Number(st.ino) : 0;
      d.after = {
        line: closed, fs: readFs(mnt), du: await du(mnt), target: link(`/proc/${pid}/fd/${n}`),
        stillHeldBy: st ? [...descriptorsOn(pid, dev, ino), ...(child && child > 0 && child !== pid ? descriptorsOn(child, dev, ino) : [])] : [],
      };
    }
  }
  return finish();
}

/** The program's own thread group's statfs-family calls, and every exec by it or what it forked. */
export function statfsCalls(events: readonly TraceEvent[], pid: number): TraceEvent[] {
  return events.filter((e) => (e.event === 'sys_statfs' || e.event === 'sys_fstatfs') && (e.tgid ?? e.pid) === pid);
}
export function execs(events: readonly TraceEvent[]): TraceEvent[] {
  return events.filter((e) => e.event === 'sched_process_exec');
}

