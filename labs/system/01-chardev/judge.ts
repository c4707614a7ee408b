/**
 * System Lab 1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`, its sections) to the facts each test asserts, with
 * the message that shows the kernel's evidence and says what to fix.
 * Unit-tested in tests/lab-units/system/01-chardev/judge.test.ts.
 */
import { sectionExit as exitOf, sectionLines as lines } from '../../../helpers/kernel/module.js';
import { expectedOutcomes, parseProbe, sameOutcome, showOutcome, CAPACITY, type Group, type Op } from './device-model.js';
import type { Plan } from './experiment.js';

export const NAME = 'labchar';
/** Kernel log lines that mean the module (or the kernel under it) went wrong. */
export const BAD_LOG = /\b(BUG:|WARNING:|Oops|general protection fault|Call Trace|kernel panic|list_add corruption|list_del corruption|refcount_t:|UBSAN|KASAN)/i;

/** What the judge reads: the script's sections, the console (guest), where it ran. */
export interface Evidence {
  readonly sections: Readonly<Record<string, string>>;
  readonly console: string;
  readonly where: 'native' | 'guest';
  readonly note: string;
}


/** `/sys/class/<class>/labchar/dev M:m` lines of a section → [{cls, dev}] (pure). */
export function sysfsDevs(section = ''): { cls: string; dev: string }[] {
  return lines(section).flatMap((l) => { const m = l.match(/^\/sys\/class\/([^/]+)\/[^/]+\/dev (\d+:\d+)$/); return m ? [{ cls: m[1]!, dev: m[2]! }] : []; });
}

/** The "Character devices:" part of /proc/devices: major → names (pure). */
export function charMajors(procDevices = ''): Map<number, string[]> {
  const out = new Map<number, string[]>();
  let inChar = false;
  for (const l of procDevices.split('\n')) {
    if (/^Character devices:/.test(l)) { inChar = true; continue; }
    if (/^Block devices:/.test(l)) { inChar = false; continue; }
    const m = l.match(/^\s*(\d+)\s+(\S+)/);
    if (inChar && m) out.set(Number(m[1]), [...(out.get(Number(m[1])) ?? []), m[2]!]);
  }
  return out;
}

/** `stat -c '%F %t %T'` of the node → `M:m` of a character node, or a description (pure). */
export function nodeDev(section = ''): { char: boolean; dev?: string; text: string } {
  const l = lines(section)[0];
  if (!l) return { char: false, text: '(no /dev/labchar)' };
  const m = l.match(/^(.*\S)\s+([0-9a-f]+)\s+([0-9a-f]+)$/);
  if (!m) return { char: false, text: l };
  return { char: /character/.test(m[1]!), dev: `${parseInt(m[2]!, 16)}:${parseInt(m[3]!, 16)}`, text: `${m[1]} ${parseInt(m[2]!, 16)}:${parseInt(m[3]!, 16)}` };
}

/** Crash lines of the console (a guest that died mid-script), for messages. */
function crash(ev: Evidence): string {
  const bad = ev.console.split('\n').filter((l) => BAD_LOG.test(l) || /RIP:|unable to handle/.test(l)).slice(0, 8);
  return bad.length ? `\nthe guest's console:\n${bad.join('\n')}` : '';
}

const where = (ev: Evidence) => `(${ev.where}: ${ev.note})`;

export function registered(ev: Evidence) {
  const s = ev.sections;
  const sys = sysfsDevs(s.loaded_sysfs);
  const majors = charMajors(s.loaded_devices);
  const node = nodeDev(s.loaded_node);
  const dev = sys[0]?.dev;
  const major = dev ? Number(dev.split(':')[0]) : undefined;
  const names = major !== undefined ? majors.get(major) : undefined;
  return {
    facts: { insmodExit: exitOf(s.insmod), sysfsDev: sys.length === 1, majorInProcDevices: !!names?.length, nodeIsThatDevice: node.char && node.dev === dev },
    expected: { insmodExit: 0, sysfsDev: true, majorInProcDevices: true, nodeIsThatDevice: true },
    message: `insmod ${NAME}.ko: ${s.insmod ?? '(not run)'}\n` +
      `/sys/class/*/${NAME}/dev: ${sys.map((x) => `${x.cls} ${x.dev}`).join(', ') || '(none: no device of that name in any class — register a misc device, or a cdev plus a device in a class)'}\n` +
      `/proc/devices, character major ${major ?? '?'}: ${names?.join(', ') ?? '(not listed)'}\n` +
      `/dev/${NAME}: ${node.text}${node.dev && dev && node.dev !== dev ? ` (sysfs says ${dev})` : ''}\n` +
      `/proc/modules: ${s.loaded_modules || '(no line)'}\n${where(ev)}${crash(ev)}`,
  };
}

/** Each group's description for the messages, and what to look at when a call differs. */
export function groupText(plan: Plan, group: Group): { what: string; fix: string } {
  const len1 = plan.d1.length / 2, len2 = plan.d2.length / 2;
  switch (group) {
    case 'offsets': return {
      what: `open A writes ${len1} random bytes at offset ${plan.o1} in two write(2) calls (${plan.split} + ${len1 - plan.split}), reads at the end (EOF: 0), reads back from ${plan.o1} in read(2) calls of ${plan.chunk} bytes, then everything from 0 (${plan.o1} zero bytes before the data); then, the position put before the data, pread(2) and pwrite(2) at offsets inside it, which must use their offset and leave the position`,
      fix: 'read and write must start at *ppos (not file->f_pos: for pread/pwrite the VFS passes the call\'s offset there) and move it on by what they copied; read returns 0 at or after the end of the data and never more than is there; an open starts with a zeroed buffer',
    };
    case 'lseek': return {
      what: `lseek(2) from the end (SEEK_END = the end of the data, ${plan.o1 + len1}), from the position (SEEK_CUR) and from 0 (SEEK_SET), to -1 and past ${CAPACITY} (EINVAL, the position unchanged); open C writes at ${CAPACITY} (ENOSPC) and across it (shortened), GET_SIZE ${CAPACITY}`,
      fix: `the llseek operation computes the new position from SEEK_SET/SEEK_CUR/SEEK_END, refuses one outside 0..${CAPACITY} with -EINVAL, stores it in the file's position and returns it; write refuses at ${CAPACITY} with -ENOSPC and shortens a write across it`,
    };
    case 'perOpen': return {
      what: `open B beside A: empty (GET_SIZE 0, read 0), writes ${len2} bytes at offset ${plan.o2} (overlapping A's ${plan.o1}..${plan.o1 + len1}); A reads back only its own bytes, B only its own; A closed and opened again starts empty (a write past A's old data, then a read from 0: zeros before it, nothing of the old bytes); ${plan.many} more opens held at once beside A and B each read back only the few bytes they wrote`,
      fix: 'the buffer belongs to the open file (allocated zeroed in open — kzalloc, not kmalloc — kept in file->private_data, freed in release), not to the module or to the process, and every open gets one (no fixed number of buffers)',
    };
    case 'ioctl': return {
      what: `ioctl(2) GET_SIZE on B, RESET on B (then its size 0, its position where it was, read 0; a write of ${plan.d3.length / 2} bytes at ${plan.o3} reads back after ${plan.o3} zero bytes: nothing of the old data), A untouched; unknown commands ${plan.unknown.map((c) => `0x${c.toString(16)}`).join(' and ')} fail with ENOTTY`,
      fix: 'GET_SIZE stores the end of the data as an int at the user pointer (put_user/copy_to_user); RESET zeroes this open\'s bytes and size only; any other command returns -ENOTTY ("inappropriate ioctl for device"), not -EINVAL',
    };
    case 'efault': return {
      what: 'open E writes 16 bytes; read(2) from 0, write(2) at 16 and ioctl GET_SIZE, each with a pointer to an unmapped address, must fail with EFAULT and leave the position, the size and the bytes as they were',
      fix: 'copy with copy_to_user/copy_from_user/put_user (never memcpy or a plain dereference of a user pointer) and return -EFAULT when they report bytes not copied, before moving *ppos',
    };
  }
}

/** The calls of one group whose kernel result differs from the documented device's. */
export function calls(ev: Evidence, plan: Plan, group: Group) {
  const main = plan.ops.filter((o) => o.group !== 'efault');
  const efault = plan.ops.filter((o) => o.group === 'efault');
  const [ops, section] = group === 'efault' ? [efault, 'probe_efault'] : [main, 'probe'];
  const want = expectedOutcomes(ops);
  const got = parseProbe(ev.sections[section] ?? '');
  const diffs: string[] = [];
  ops.forEach((op: Op, i) => {
    if (op.group !== group) return;
    if (!sameOutcome(want[i]!, got.get(i))) diffs.push(`#${i} ${op.text.length > 40 ? `${op.text.slice(0, 40)}…` : op.text}: want ${showOutcome(want[i])}, kernel gave ${showOutcome(got.get(i))}`);
  });
  const t = groupText(plan, group);
  const probeEnd = lines(ev.sections[section]).filter((l) => !/^\d+ \S+ ret=/.test(l)).slice(-3).join(' | ');
  return {
    facts: { differing: diffs.length },
    expected: { differing: 0 },
    message: `${t.what}.\n${diffs.length} of ${ops.filter((o) => o.group === group).length} calls differ from the README's device:\n${diffs.slice(0, 12).join('\n')}${diffs.length > 12 ? `\n… ${diffs.length - 12} more` : ''}\n` +
      `fix: ${t.fix}\nprobe: ${probeEnd || '(no output)'}\n${where(ev)}${crash(ev)}`,
  };
}

/** `before MemFree: 123 kB Slab: 45 kB` → kB by field (pure). */
export function meminfoLine(section: string, tag: string): { memFree?: number; slab?: number } {
  const l = lines(section).find((x) => x.startsWith(`${tag} `)) ?? '';
  const kb = (f: string) => { const m = l.match(new RegExp(`${f}: (\\d+) kB`)); return m ? Number(m[1]) : undefined; };
  return { memFree: kb('MemFree'), slab: kb('Slab') };
}

/** Close frees the open's buffer: `cycles` opens (each writes a byte, then closes) must not keep `cycles` × 4 KiB of the kernel's memory. */
export function leak(ev: Evidence, cycles: number) {
  const s = ev.sections.leak ?? '';
  const done = [...s.matchAll(/^\d+ cycles ret=(-?\d+) errno=(\d+)/gm)].map((m) => Number(m[1]));
  const before = meminfoLine(s, 'before'), after = meminfoLine(s, 'after');
  const measured = before.memFree !== undefined && after.memFree !== undefined && before.slab !== undefined && after.slab !== undefined;
  const keptKiB = measured ? Math.max(before.memFree! - after.memFree!, after.slab! - before.slab!) : NaN;
  /** Half of the least a buffer per open can take (4 KiB): far above the noise of a run that frees (tens of KiB). */
  const limitKiB = (cycles * CAPACITY) / 1024 / 2;
  return {
    facts: { cyclesDone: done[1], measured, memoryKept: measured && keptKiB >= limitKiB },
    expected: { cyclesDone: cycles, measured: true, memoryKept: false },
    keptKiB,
    message: `${cycles} opens of /dev/${NAME}, each writing 1 byte and closing (after 50 to warm up): ${done[1] ?? '(not run)'} went through\n` +
      `/proc/meminfo before: MemFree ${before.memFree ?? '?'} kB, Slab ${before.slab ?? '?'} kB; after: MemFree ${after.memFree ?? '?'} kB, Slab ${after.slab ?? '?'} kB` +
      `${measured ? ` — ${keptKiB} kB kept (${(keptKiB / cycles).toFixed(1)} kB per open; at most ${limitKiB} kB may go, a buffer per open is ${CAPACITY / 1024} KiB)` : ''}\n` +
      `fix: release (the last close of an open) frees what open allocated (kfree/kvfree of file->private_data); the README: "close frees its buffer"\n${where(ev)}${crash(ev)}`,
  };
}

export function removal(ev: Evidence) {
  const s = ev.sections;
  const sys = sysfsDevs(s.removed_sysfs);
  const namedMajor = [...charMajors(s.removed_devices).entries()].filter(([, n]) => n.includes(NAME)).map(([m]) => m);
  const node = nodeDev(s.removed_node);
  const reload = s.reload ?? '';
  const exits = [...reload.matchAll(/exit=(\d+)/g)].map((m) => Number(m[1]));
  return {
    facts: { rmmodExit: exitOf(s.rmmod), nodeGone: !node.char && !node.dev, sysfsGone: sys.length === 0, numberFreed: namedMajor.length === 0, moduleGone: !s.removed_modules,
      loadsAgain: exits[0] === 0 && /node present/.test(reload), unloadsAgain: exits[1] === 0 && !/node left/.test(reload) },
    expected: { rmmodExit: 0, nodeGone: true, sysfsGone: true, numberFreed: true, moduleGone: true, loadsAgain: true, unloadsAgain: true },
    message: `rmmod ${NAME}: ${s.rmmod ?? '(not run)'}\nafter it: /dev/${NAME}: ${node.text}; /sys/class/*/${NAME}/dev: ${sys.map((x) => `${x.cls} ${x.dev}`).join(', ') || '(none)'}; ` +
      `/proc/devices majors named ${NAME}: ${namedMajor.join(', ') || '(none)'}; /proc/modules: ${s.removed_modules || '(no line)'}\n` +
      `insmod again, then rmmod again: ${reload.replace(/\n/g, ' | ') || '(not run)'}\n` +
      `fix: the exit function unregisters everything init registered (misc_deregister; or device_destroy, class_destroy, cdev_del, unregister_chrdev_region), in reverse order\n${where(ev)}${crash(ev)}`,
  };
}

export function cleanLog(ev: Evidence) {
  const log = lines(ev.sections.log);
  const bad = [...log, ...ev.console.split('\n')].filter((l) => BAD_LOG.test(l));
  return {
    facts: { finished: ev.sections.done !== undefined, badLines: [...new Set(bad)].slice(0, 10) },
    expected: { finished: true, badLines: [] },
    message: `kernel log lines added by the steps (${log.length}):\n${log.slice(-25).join('\n') || '(none)'}\n` +
      `${ev.sections.done === undefined ? 'the steps did not run to the end (the kernel or the script died on the way)\n' : ''}${where(ev)}${crash(ev)}`,
  };
}
