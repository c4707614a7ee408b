/**
 * Lab K3's verdicts: pure functions from the experiment's evidence (the
 * table entry, System.map, the console: the test program's result line and
 * the kernel's own lines) to what each test compares — `got` against `want` —
 * with the message that shows the evidence. Unit-tested in
 * tests/lab-units/kernel/K3-syscall/judge.test.ts.
 */
import type { Verdict } from '../../../helpers/harness/verdict.js';
import { systemMapAddress } from '../../../helpers/kernel/kbuild.js';
import type { K3Run } from './experiment.js';

export type { Verdict };

export const EINVAL = 22;
export const EFAULT = 14;
export const HELLO_LINE = 'User Mode says hello to the Kernel Mode!';

/** `sayhello nr=451 ok=5/0 oversized=-1/22 …` → { ok: [5, 0], … }: what each call returned, and errno. */
export function parseResult(output: string): Record<string, [number, number]> | undefined {
  const line = output.split('\n').find((l) => l.startsWith('sayhello nr='));
  if (!line) return undefined;
  return Object.fromEntries(line.split(' ').slice(1).map((kv) => {
    const [k, v = ''] = kv.split('=');
    const [ret, err] = v.split('/').map(Number);
    return [k!, [ret!, err ?? 0]];
  }));
}

/** Console lines without the printk timestamp. */
export const kernelLines = (r: K3Run) => r.boot.lines.map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''));
const tail = (r: K3Run, n = 15) => r.boot.lines.slice(-n).join('\n');

/** The table names sys_sayhelloworld, the build has its __x64_ entry point, and the booted kernel is the one built. */
export function builtAndBooted(r: K3Run): Verdict<{ tableEntry?: string; entryPoint: boolean; booted?: string }> {
  return {
    got: { tableEntry: r.entry?.entry, entryPoint: systemMapAddress(r.systemMap, '__x64_sys_sayhelloworld') !== undefined, booted: r.boot.output.match(/Linux version (\S+)/)?.[1] },
    want: { tableEntry: 'sys_sayhelloworld', entryPoint: true, booted: r.build.release },
    message: `c/kernel/K3-syscall/syscall_64.tbl's entry named sayhelloworld: ${r.entry ? JSON.stringify(r.entry) : '(none)'}; ` +
      `${r.build.systemMap} must have __x64_sys_sayhelloworld (define it with SYSCALL_DEFINE2); the booted kernel's banner must name the one built (${r.build.release})`,
  };
}

/** ("hello", 5) returns 5 and the kernel prints the line once. */
export function saysHello(r: K3Run): Verdict<{ ok?: [number, number]; said: string[] }> {
  const res = parseResult(r.boot.output);
  const said = kernelLines(r).filter((l) => l.includes('User Mode says'));
  return {
    got: { ok: res?.ok, said },
    want: { ok: [5, 0], said: [HELLO_LINE] },
    message: res
      ? `syscall(${r.nr}, "hello", 5) returned ${res.ok?.join('/')} (ret/errno; 38 = ENOSYS: no table entry or a stub); kernel lines with "User Mode says":\n${said.join('\n')}`
      : `sayhello_test printed no result line; console tail:\n${tail(r)}`,
  };
}

/** Oversized, negative and exactly-buffer-sized lengths: EINVAL. */
export function rejectsLengths(r: K3Run): Verdict<Record<string, [number, number] | undefined>> {
  const res = parseResult(r.boot.output);
  return {
    got: { oversized: res?.oversized, negative: res?.negative, edge: res?.edge },
    want: { oversized: [-1, EINVAL], negative: [-1, EINVAL], edge: [-1, EINVAL] },
    message: `your workspace file kernel/K3-syscall/sayhello.c; result line: ${JSON.stringify(res)}`,
  };
}

/** A kernel pointer: EFAULT, no fault in the kernel's log, and the guest finishes by itself. */
export function efaultNoCrash(r: K3Run): Verdict<{ badptr?: [number, number]; faults: string[]; done: boolean; exitedByItself: boolean }> {
  const res = parseResult(r.boot.output);
  return {
    got: { badptr: res?.badptr, faults: kernelLines(r).filter((l) => /Oops|BUG:|general protection|Kernel panic|Call Trace/.test(l)), done: /^KL_DONE$/m.test(r.boot.output), exitedByItself: r.boot.exitedByItself },
    want: { badptr: [-1, EFAULT], faults: [], done: true, exitedByItself: true },
    message: `result line: ${JSON.stringify(res)}; the kernel's fault lines (faults) must be none; exitedByItself false: QEMU was killed at the time bound; console tail:\n${tail(r)}`,
  };
}
