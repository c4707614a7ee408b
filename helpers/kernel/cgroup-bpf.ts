/**
 * cgroup-BPF: BPF programs attached to a cgroup of the unified (v2)
 * hierarchy, such as a BPF_PROG_TYPE_CGROUP_SYSCTL guard.
 *
 * The kernel attaches cgroup programs only to cgroup2 directories
 * (`cgroup_get_from_fd` refuses v1 ones), but needs no controller for that:
 * on a v1 host (this one) the unified hierarchy is still there, mounted at
 * /sys/fs/cgroup/unified or mountable, and every process belongs to one
 * cgroup of it besides its v1 cgroups. So the lab:
 *
 * - finds the cgroup2 mount in /proc/self/mountinfo (or mounts cgroup2 on a
 *   `kl-` temp dir, removed with the test; there is one unified hierarchy, so
 *   every mount shows the same tree),
 * - makes a `kl-<run>-…` child there (never attaches to the root),
 * - attaches with the harness program c/extend/cgroup_attach.c (libbpf,
 *   bpf_prog_attach with BPF_F_ALLOW_OVERRIDE), which detaches on SIGTERM,
 * - runs commands inside the cgroup (`sh` writes its pid to cgroup.procs,
 *   then execs the command, so the command and its children are members),
 * - reads the attachments back with `bpftool cgroup show`.
 *
 * Release: stop the loader (it detaches), kill the cgroup's members, rmdir
 * it. rmdir also frees any program still attached (a loader killed with -9).
 */
import { formatRejection, rememberRejection, rejectedBefore, verifierLog } from './bpf-verifier.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { pidsIn } from '../harness/cgroup-files.js';
import { buildProgram } from '../harness/compile.js';
import { LabError } from '../harness/errors.js';
import { run, startBackground, waitUntil, type RunOptions, type RunResult } from '../harness/exec.js';
import { parseMountinfo, type MountInfoEntry } from '../harness/mountinfo.js';
import { REFERENCE_SRC } from '../harness/paths.js';
import { defer, makeTempDir } from '../harness/resources.js';
import { uniqueName } from '../harness/run-state.js';

/** One line of /proc/self/mountinfo (the harness's one parser). */
export type MountEntry = MountInfoEntry;
export { parseMountinfo };

/** The first cgroup2 mount of the whole hierarchy (root "/"), if any (pure). */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  return parseMountinfo(mountinfo).find((m) => m.fsType === 'cgroup2' && m.root === '/')?.mountPoint;
}

/**
 * A mount point of the unified hierarchy: the existing one (/sys/fs/cgroup
 * on a v2 host, /sys/fs/cgroup/unified on a hybrid one), or a private
 * mount on a temp dir, unmounted when the test ends.
 */
export async function cgroup2Root(): Promise<{ readonly path: string; readonly how: string }> {
  const found = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (found) return { path: found, how: `the host's cgroup2 mount at ${found}` };
  const dir = await makeTempDir('cgroup2');
  await run('mount', ['-t', 'cgroup2', 'none', dir], { timeoutMs: 10_000 });
  defer(`cgroup2 mount ${dir}`, () => run('umount', [dir], { reject: false, timeoutMs: 10_000 }));
  return { path: dir, how: `no cgroup2 mount on the host: mounted one at ${dir}` };
}

/** Kill the members of a cgroup (processes the lab put there) and remove it, child cgroups first. Idempotent. */
export async function removeCgroupDir(dir: string): Promise<void> {
  let children: string[] = [];
  try { children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name)); } catch { /* gone */ }
  for (const child of children) await removeCgroupDir(child);
  for (let attempt = 0; attempt < 100 && existsSync(dir); attempt++) {
    for (const pid of pidsIn(dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    try { rmdirSync(dir); } catch { /* EBUSY until the members are gone */ }
    if (existsSync(dir)) await new Promise((r) => setTimeout(r, 20));
  }
  if (existsSync(dir)) throw new LabError(`could not remove cgroup ${dir} (members: ${pidsIn(dir).join(' ') || 'none'})`, { code: 'E_RESOURCE' });
}

/** A `kl-<run>-<tag>…` child of the unified hierarchy, removed when the test (or suite) ends. */
export async function makeCgroup2Child(tag = 'cg'): Promise<{ readonly path: string; readonly root: string; readonly how: string }> {
  const root = await cgroup2Root();
  const path = join(root.path, uniqueName(tag));
  mkdirSync(path);
  defer(`cgroup ${path}`, () => removeCgroupDir(path));
  return { path, root: root.path, how: root.how };
}

/**
 * Run `file args…` as a member of the cgroup `dir`: a shell joins the cgroup
 * (its pid into cgroup.procs), then execs the command, which inherits it.
 */
export function runInCgroup(dir: string, file: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  return run('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, file, ...args], { timeoutMs: 20_000, ...options });
}

/** One program attached to a cgroup, as `bpftool -j cgroup show` reports it. */
export interface CgroupAttachment {
  readonly id: number;
  /** "cgroup_sysctl" (bpftool 7), "sysctl" in older ones, "egress", … */
  readonly attachType: string;
  readonly attachFlags: string;
  readonly name: string;
}

/** Parse `bpftool -j cgroup show <dir>` (pure); bpftool prints nothing at all when nothing is attached. */
export function parseCgroupShow(stdout: string): CgroupAttachment[] {
  const text = stdout.trim();
  if (!text) return [];
  const rows = JSON.parse(text) as { id: number; attach_type: string; attach_flags?: string; name?: string }[];
  return rows.map((r) => ({ id: r.id, attachType: r.attach_type, attachFlags: r.attach_flags ?? '', name: r.name ?? '' }));
}

/** The programs attached to cgroup `dir` (its own, not inherited ones). */
export async function cgroupAttachments(dir: string): Promise<{ readonly attachments: CgroupAttachment[]; readonly raw: string }> {
  const r = await run('bpftool', ['-j', 'cgroup', 'show', dir], { timeoutMs: 15_000 });
  return { attachments: parseCgroupShow(r.stdout), raw: r.stdout.trim() || '(nothing attached)' };
}

export interface CgroupProgram {
  readonly progId: number;
  readonly name: string;
  /** SIGTERM the loader (it calls bpf_prog_detach2) and wait until bpftool no longer lists the program. Idempotent. */
  detach(): Promise<void>;
}

/** The loader's "attached prog_id=<id> name=<name>" line (pure). */
export function parseAttachedLine(output: string): { progId: number; name: string } | undefined {
  const m = output.match(/attached prog_id=(\d+)(?: name=(\S*))?/);
  return m ? { progId: Number(m[1]), name: m[2] ?? '' } : undefined;
}

/**
 * Load a BPF object and attach its program to cgroup `dir` with the harness
 * loader (c/extend/cgroup_attach.c; built from the reference tree even when
 * LAB_SRC names a student workspace). A verifier rejection or a failed attach
 * surfaces as the loader's stderr (libbpf prints the verifier log there).
 */
export async function attachToCgroup(object: string, dir: string): Promise<CgroupProgram> {
  const loader = await buildProgram({ src: join(REFERENCE_SRC, 'extend/cgroup_attach.c'), ldlibs: ['-lbpf'] });
  rejectedBefore(object);
  const bg = startBackground(loader.path, [object, dir]);
  let attached: { progId: number; name: string } | undefined;
  try {
    const m = await bg.waitFor(/attached prog_id=\d+(?: name=\S*)?/, `cgroup_attach to attach ${object} to ${dir}`, 30_000);
    attached = parseAttachedLine(m[0]);
  } catch (e) {
    await bg.stop();
    const out = bg.output().trim();
    const log = verifierLog(out);
    if (log) {
      rememberRejection(object, log);
      throw new LabError(formatRejection(object, `cgroup_attach ${object} ${dir} (libbpf's bpf_object__load, then bpf_prog_attach)`, log), { code: 'E_COMMAND' });
    }
    throw new LabError(`loading or attaching ${object} to ${dir} failed:\n${out.split('\n').slice(-40).join('\n')}`, { code: 'E_COMMAND', cause: new Error((e as Error).message.split('\n')[0]) });
  }
  const progId = attached!.progId;
  let done = false;
  const detach = async () => {
    if (done) return;
    done = true;
    await bg.stop('SIGTERM');
    if (existsSync(dir)) {
      await waitUntil(`program ${progId} to leave cgroup ${dir}`, async () => (await cgroupAttachments(dir)).attachments,
        (list) => !list.some((a) => a.id === progId), { timeoutMs: 10_000 });
    }
  };
  defer(`BPF program ${progId} on cgroup ${dir}`, detach);
  return { progId, name: attached!.name, detach };
}
