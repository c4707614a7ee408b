/**
 * System Lab 1's experiment: build the student's `labchar.ko` against the
 * headers of the kernel it loads into (Debian's 6.1 in a QEMU guest on a host
 * without loadable modules, this kernel where it has them: helpers/kernel/
 * module.ts), and in one run of load / use / unload steps read what the
 * kernel says: the `dev` file under /sys/class, /proc/devices, the node in
 * /dev, the results of the system calls the harness's probe
 * (c/system/chardev_probe.c) makes on /dev/labchar with offsets, lengths and
 * bytes picked at random here, the free memory before and after many opens
 * and closes, the node and numbers after rmmod, a second
 * load, and the kernel log of the whole run. The probe prints only what each
 * system call returned; judge.ts compares that with a model of the device the
 * README documents (device-model.ts), fed the same calls.
 *
 * Never throws for a wrong module once it is built: a step that did not run
 * leaves its section empty and the judge says so.
 */
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { buildModule, moduleTarget, runModuleScript, vermagicOf, type ModuleScriptResult, type ModuleTarget } from '../../../helpers/kernel/module.js';
import { readFileSync } from 'node:fs';
import { CAPACITY, GET_SIZE, RESET, type Group, type Op } from './device-model.js';

export const NAME = 'labchar';

const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const bytes = (n: number) => Array.from({ length: n }, () => rand(0, 255).toString(16).padStart(2, '0')).join('');
const hex = (n: number) => n.toString(16);

/** The random choices of one run, named for the messages. */
export interface Plan {
  /** Offset and bytes of the first open's write (written in two parts), and the read chunk size. */
  readonly o1: number; readonly d1: string; readonly split: number; readonly chunk: number;
  /** Offset and bytes of the second open's write, overlapping the first's range. */
  readonly o2: number; readonly d2: string;
  /** After the reset: offset and bytes of a write inside the range the second open held before. */
  readonly o3: number; readonly d3: string;
  /** Unknown ioctl commands: _IOR('k', 3..255, int), a new number of this device's type; _IOR('q', 1 or 2, int), the number of a known command with another type. */
  readonly unknown: readonly number[];
  /** How many more opens are held at once beside A and B (slots F…). */
  readonly many: number;
  readonly ops: readonly Op[];
}

/** Pick the run's values and the probe's operations, each in the group of the test that judges it. */
export function makePlan(): Plan {
  const len1 = rand(40, 400), o1 = rand(1, 2000), d1 = bytes(len1), split = rand(1, len1 - 1), chunk = rand(7, 61);
  const len2 = rand(40, 400), o2 = Math.max(1, o1 + rand(-len2 + 1, len1 - 1)), d2 = bytes(len2);
  const o3 = rand(o2 + 1, o2 + len2 - 1), d3 = bytes(rand(8, 40));
  const tail = rand(1, Math.min(30, len1));
  const pq = rand(0, o1 - 1), plen = rand(4, Math.min(16, len1));
  const many = Array.from({ length: rand(6, 18) }, (_, i) => ({ slot: String.fromCharCode(0x46 + i), off: rand(0, 300), data: bytes(rand(4, 12)) }));
  const unknown = [0x80000000 + (4 << 16) + (0x6b << 8) + rand(3, 255), 0x80000000 + (4 << 16) + (0x71 << 8) + rand(1, 2)];
  const ops: Op[] = [];
  const add = (group: Group, ...texts: string[]) => { for (const text of texts) ops.push({ group, text }); };
  // The first open: a write at a random offset in two parts, read back in chunks from there, the hole, the end.
  add('offsets', 'open:A', `seek:A:${o1}:S`, `write:A:${d1.slice(0, 2 * split)}`, `write:A:${d1.slice(2 * split)}`, 'read:A:16',
    `seek:A:${o1}:S`, ...Array.from({ length: Math.ceil(len1 / chunk) + 1 }, () => `read:A:${chunk}`),
    'seek:A:0:S', `read:A:${o1 + len1 + rand(1, 100)}`,
    // pread/pwrite at an offset inside the data, the position elsewhere (before the data): they use their offset (*ppos), not the file's position, and leave it.
    // (The position is shown by a read(2) after each, which goes on from it: no SEEK_CUR here, the lseek test judges that.)
    `seek:A:${pq}:S`, `pread:A:${rand(8, 40)}:${rand(o1, o1 + len1 - 1)}`, `read:A:${rand(1, 8)}`, `pwrite:A:${bytes(plen)}:${rand(o1, o1 + len1 - plen)}`, `read:A:${rand(1, 8)}`,
    `pread:A:${len1 + rand(1, 20)}:${o1}`);
  // lseek's three origins and its limits; the write limit at the capacity (open C).
  add('lseek', `seek:A:${-tail}:E`, `read:A:${tail}`, `seek:A:${-(o1 + len1)}:C`, `seek:A:${rand(1, 50)}:C`, `seek:A:${o1}:S`,
    `seek:A:-1:S`, `seek:A:${CAPACITY + rand(1, 100)}:S`, `seek:A:${-rand(1, 9)}:C`,
    'open:C', `seek:C:${CAPACITY}:S`, `write:C:${bytes(rand(1, 8))}`, `seek:C:${CAPACITY - 2}:S`, `write:C:${bytes(rand(3, 9))}`, `ioctl:C:${hex(GET_SIZE)}`, 'close:C');
  // A second open beside the first: empty, its own bytes over the same range, each reads back only its own.
  add('perOpen', 'open:B', `ioctl:B:${hex(GET_SIZE)}`, `read:B:${len1 + 20}`, `seek:B:${o2}:S`, `write:B:${d2}`,
    'seek:A:0:S', `read:A:${o1 + len1 + 10}`, 'seek:B:0:S', `read:B:${o2 + len2 + 10}`,
    `ioctl:A:${hex(GET_SIZE)}`, `ioctl:B:${hex(GET_SIZE)}`, 'close:A', 'open:A', `ioctl:A:${hex(GET_SIZE)}`, `read:A:${len1}`,
    // The reopened A most likely gets the memory A just freed (the allocator's last in, first out): a write past the old data, then a read of all, shows zeros or stale bytes.
    `seek:A:${o1 + len1 + rand(0, 20)}:S`, `write:A:${bytes(rand(4, 20))}`, 'seek:A:0:S', `read:A:${o1 + len1 + 50}`,
    // Many opens at once beside A and B (more than any fixed number of buffers the old probe's three would suggest), each with its own bytes.
    ...many.flatMap((m) => [`open:${m.slot}`, `seek:${m.slot}:${m.off}:S`, `write:${m.slot}:${m.data}`]),
    ...many.flatMap((m) => [`seek:${m.slot}:0:S`, `read:${m.slot}:${m.off + m.data.length / 2 + 5}`]),
    ...many.map((m) => `close:${m.slot}`));
  // ioctl: the size, a reset of one open (zeros, position kept), unknown commands.
  add('ioctl', `seek:B:${rand(1, o2)}:S`, `ioctl:B:${hex(GET_SIZE)}`, `ioctl:B:${hex(RESET)}`, 'seek:B:0:C', `ioctl:B:${hex(GET_SIZE)}`,
    'seek:B:0:S', `read:B:${o2 + len2}`, `seek:B:${o3}:S`, `write:B:${d3}`, 'seek:B:0:S', `read:B:${o2 + len2 + 10}`,
    `ioctl:A:${hex(GET_SIZE)}`, ...unknown.map((c) => `ioctl:B:${hex(c)}`), `ioctl:B:${hex(GET_SIZE)}`, 'close:A', 'close:B');
  // Bad user pointers: nothing mapped at the address the probe passes.
  // (A failed write may leave the bytes it aimed at zeroed — copy_from_user zero-fills what it could not copy — so it aims past the data.)
  add('efault', 'open:E', `write:E:${bytes(16)}`, 'seek:E:0:S', 'readbad:E:16', 'seek:E:0:C', 'read:E:32',
    'writebad:E:16', 'seek:E:0:C', `ioctlbad:E:${hex(GET_SIZE)}`, `ioctl:E:${hex(GET_SIZE)}`, 'close:E');
  return { o1, d1, split, chunk, o2, d2, o3, d3, unknown, many: many.length, ops };
}

export const PLAN = makePlan();

/** Opens (each writes a byte and closes) whose memory must come back: an open that keeps its buffer after close keeps ≥ 4 KiB each. */
export const LEAK_CYCLES = 2000;

const MAIN_GROUPS: readonly Group[] = ['offsets', 'lseek', 'perOpen', 'ioctl'];

/** The steps, in sh (busybox in the guest, the host's sh natively). */
export function script(plan: Plan): string {
  const args = (groups: readonly Group[]) => plan.ops.filter((o) => groups.includes(o.group)).map((o) => `'${o.text}'`).join(' ');
  return `
log_mark() { dmesg | wc -l > /tmp/kl_log_lines; }
new_log() { echo "KL_SECTION $1"; dmesg | tail -n +$(( $(cat /tmp/kl_log_lines) + 1 )) | sed 's/^\\[ *[0-9.]*\\] //'; log_mark; }
wait_node() { i=0; while [ $i -lt 50 ]; do if [ "$1" = present ]; then [ -e /dev/${NAME} ] && return; else [ -e /dev/${NAME} ] || return; fi; sleep 0.1; i=$((i+1)); done; }
show_dev() {
  echo "KL_SECTION $1_sysfs"; for f in /sys/class/*/${NAME}/dev; do [ -e "$f" ] && echo "$f $(cat $f)"; done
  echo "KL_SECTION $1_devices"; cat /proc/devices
  echo "KL_SECTION $1_node"; [ -e /dev/${NAME} ] && stat -c '%F %t %T' /dev/${NAME}
  echo "KL_SECTION $1_modules"; grep "^${NAME} " /proc/modules
}
echo "KL_SECTION release"; uname -r
log_mark
echo "KL_SECTION insmod"; insmod $LAB/${NAME}.ko 2>&1; echo "exit=$?"
wait_node present
show_dev loaded
echo "KL_SECTION probe"; $LAB/chardev_probe /dev/${NAME} ${args(MAIN_GROUPS)} 2>&1; echo "exit=$?"
echo "KL_SECTION probe_efault"; $LAB/chardev_probe /dev/${NAME} ${args(['efault'])} 2>&1; echo "exit=$?"
meminfo() { echo 3 > /proc/sys/vm/drop_caches; grep -E '^(MemFree|Slab):' /proc/meminfo | tr -s ' ' | tr '\n' ' '; echo; }
echo "KL_SECTION leak"; $LAB/chardev_probe /dev/${NAME} 'cycles:L:50' 2>&1; echo "before $(meminfo)"
$LAB/chardev_probe /dev/${NAME} 'cycles:L:${LEAK_CYCLES}' 2>&1; echo "after $(meminfo)"
echo "KL_SECTION rmmod"; rmmod ${NAME} 2>&1; echo "exit=$?"
wait_node absent
show_dev removed
echo "KL_SECTION reload"; insmod $LAB/${NAME}.ko 2>&1; echo "exit=$?"; wait_node present; [ -e /dev/${NAME} ] && echo "node present"; rmmod ${NAME} 2>&1; echo "exit=$?"; wait_node absent; [ -e /dev/${NAME} ] && echo "node left"
new_log log
echo "KL_SECTION done"
`;
}

export interface Run {
  readonly target: ModuleTarget;
  readonly result: ModuleScriptResult;
  readonly vermagic: string;
  /** The kernel's console (guest) or nothing (native), for a crash the script did not live to report. */
  readonly console: string;
}

/**
 * Debian's kernel zeroes every allocation by default (CONFIG_INIT_ON_ALLOC_DEFAULT_ON): a module that forgets to
 * zero its buffer (kmalloc without memset) would read as zeros there and leak old kernel memory elsewhere. The
 * guest boots with that off, so the buffer is zero only when the module makes it so.
 */
export const GUEST_APPEND = ['init_on_alloc=0'] as const;

export async function buildAndRun(plan: Plan = PLAN): Promise<Run> {
  const target = moduleTarget();
  const [mod, probe] = await Promise.all([
    buildModule({ src: labSource(`system/01-chardev/${NAME}.c`), name: NAME, buildDir: target.buildDir }),
    buildProgram({ src: join(REFERENCE_SRC, 'system/chardev_probe.c'), static: true }),
  ]);
  const result = await runModuleScript(target, script(plan), [
    { name: `${NAME}.ko`, path: mod.path },
    { name: 'chardev_probe', path: probe.path },
  ], undefined, GUEST_APPEND);
  return { target, result, vermagic: vermagicOf(readFileSync(mod.path)) ?? '?', console: result.guest?.boot.output ?? '' };
}
