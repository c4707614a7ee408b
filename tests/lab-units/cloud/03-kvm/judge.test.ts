/** Cloud Lab 3's verdicts (labs/cloud/03-kvm/judge.ts) on made-up runs: no /dev/kvm needed. */
import { describe, expect, it } from 'vitest';
import { differences, holdsQuietly as holds } from '../../../../helpers/harness/verdict.js';
import { kvmIoctls, parseResult, VMM_STEPS, type ExitsRun, type HltRun, type IoRun, type Shown } from '../../../../labs/cloud/03-kvm/experiment.js';
import * as judge from '../../../../labs/cloud/03-kvm/judge.js';

const ran = (over: Partial<Shown> = {}): Shown => ({ pid: 4242, exitCode: 0, stdout: '', stderr: '', text: 'kvm exited 0', ...over });
const pioOf = (s: string) => [...s].map((c) => `pio_write at 0xe9 size 1 count 1 val 0x${c.charCodeAt(0).toString(16)}`);

describe('Cloud Lab 3 judge', () => {
  it('reads the result line, text= to the end of the line', () => {
    expect(parseResult('noise\nexit_reason=KVM_EXIT_HLT code=5 rip=0x1001 text=a b=c\n', 'exit_reason'))
      .toEqual({ exit_reason: 'KVM_EXIT_HLT', code: '5', rip: '0x1001', text: 'a b=c' });
    expect(parseResult('exits=3\n', 'exit_reason')).toEqual({});
  });

  it('kvm_hlt: a halted guest past its HLT byte, and exactly one KVM_EXIT_HLT of that pid in the trace', () => {
    const good: HltRun = { run: ran(), result: { exit_reason: 'KVM_EXIT_HLT', rip: '0x1001' }, reasons: [5] };
    expect(holds(judge.hltExit(good))).toBe(true);
    expect(holds(judge.hltTraced(good)!)).toBe(true);
    // A program that prints the line without running a guest: the kernel saw no exit of its pid.
    const printed: HltRun = { ...good, reasons: [] };
    expect(holds(judge.hltExit(printed))).toBe(true);
    expect(holds(judge.hltTraced(printed)!)).toBe(false);
    expect(judge.hltTraced(printed)!.message).toMatch(/kvm:kvm_userspace_exit events of pid 4242 \(5 = KVM_EXIT_HLT\): none/);
    expect(differences(judge.hltExit({ ...good, result: { exit_reason: 'KVM_EXIT_HLT', rip: '0x1000' } }))).toEqual(['rip: "0x1000" (want "0x1001")']);
    expect(judge.hltTraced({ ...good, reasons: undefined })).toBeUndefined();
  });

  it('strace: every step present and in order; a missing or misplaced step named', () => {
    const line = (c: string) => `ioctl(3, ${c}, 0) = 0`;
    const calls = kvmIoctls(['execve(...)', ...VMM_STEPS.map(line), 'ioctl(5, KVM_RUN, 0) = 0', '+++ exited with 0 +++'].join('\n'));
    expect(calls.slice(0, VMM_STEPS.length)).toEqual([...VMM_STEPS]);
    expect(holds(judge.ioctlSteps(calls))).toBe(true);
    expect(differences(judge.ioctlSteps(calls.filter((c) => c !== 'KVM_SET_SREGS')))).toEqual(['missing: ["KVM_SET_SREGS"] (want [])']);
    const swapped = ['KVM_GET_API_VERSION', 'KVM_CREATE_VM', 'KVM_CREATE_VCPU', 'KVM_SET_USER_MEMORY_REGION', 'KVM_SET_SREGS', 'KVM_SET_REGS', 'KVM_RUN'];
    expect(differences(judge.ioctlSteps(swapped))).toEqual(['inOrder: false (want true)']);
  });

  it('an injected failure: non-zero exit and "<step> failed: <strerror>"; a step never made is named', () => {
    const i = { step: 'KVM_RUN', errno: 'EFAULT', text: 'Bad address', nth: 7 };
    expect(holds(judge.injected([], { ...i, run: ran({ exitCode: 1, stderr: 'KVM_RUN failed: Bad address\n' }) }))).toBe(true);
    expect(differences(judge.injected([], { ...i, run: ran({ exitCode: 0, stderr: 'KVM_RUN failed: Bad address\n' }) }))).toEqual(['exitsNonZero: false (want true)']);
    expect(differences(judge.injected([], { ...i, run: ran({ exitCode: 1, stderr: 'KVM_RUN: -1\n' }) }))).toEqual(['says: false (want true)']);
    const never = judge.injected(['KVM_CREATE_VM'], { ...i, nth: 0 });
    expect(holds(never)).toBe(false);
    expect(never.message).toMatch(/must call KVM_RUN; ioctls seen: KVM_CREATE_VM/);
  });

  it('kvm_io: the guest\'s bytes as kvm_pio saw them, and a VMM whose output carries them all', () => {
    const message = 'kl 0a1b2c3d4e5f hello from the guest';
    const wrote = `${message}@AOB`;
    const good: IoRun = { message, imageHoldsText: false, run: ran({ stdout: `${wrote}\n` }), pio: pioOf(wrote), reasons: [...Array<number>(wrote.length).fill(2), 5] };
    expect(judge.guestWrote(pioOf('hi'))).toBe('hi');
    expect(judge.guestWrote(['pio_write at 0x10 size 1 count 1 val 0x41'])).toBe('?');
    for (const v of [judge.imageEncoded, judge.ioExit, judge.guestText, judge.guestTail, judge.vmmIsTheDevice, judge.ioExits]) expect(holds(v(good)), v.name).toBe(true);
    // Decoded from the image: the text, but not the counter bytes only the guest's run made.
    const decoded = { ...good, run: ran({ stdout: `${message}\n` }) };
    expect(holds(judge.vmmIsTheDevice(decoded))).toBe(false);
    expect(judge.vmmIsTheDevice(decoded).message).toMatch(/its output must carry the bytes the guest wrote/);
    // Never ran the guest: no kvm_pio at all.
    const notRun: IoRun = { ...good, pio: [], reasons: [] };
    expect(holds(judge.guestText(notRun))).toBe(false);
    expect(judge.guestText(notRun).message).toMatch(/kvm:kvm_pio events of pid 4242 \(0; first: none\)/);
    // Stopped before the counter bytes, and one exit short.
    expect(holds(judge.guestTail({ ...good, pio: pioOf(`${message}@A`) }))).toBe(false);
    expect(holds(judge.ioExits({ ...good, reasons: good.reasons!.slice(1) }))).toBe(false);
    // Without the tracepoints only the output is judged.
    expect(holds(judge.ioUntraced({ ...good, pio: undefined, reasons: undefined }))).toBe(true);
    expect(holds(judge.ioUntraced({ ...good, run: ran({ stdout: 'hello' }), pio: undefined }))).toBe(false);
  });

  it('kvm_exits: N counted, N KVM_EXIT_IO traced (unless the buffer overflowed), an exit dearer than getppid', () => {
    const n = 20_345;
    const good: ExitsRun = { n, run: ran(), result: { exits: String(n), exit_reason: 'KVM_EXIT_HLT', ns_per_exit: '12000', syscall_ns: '90' }, reasons: [...Array<number>(n).fill(2), 5], lost: false };
    for (const v of [judge.exitsCounted, judge.exitCost]) expect(holds(v(good)), v.name).toBe(true);
    expect(holds(judge.exitsTraced(good)!)).toBe(true);
    expect(differences(judge.exitsCounted({ ...good, result: { ...good.result, exits: String(n - 1) } }))).toEqual([`exits: ${n - 1} (want ${n})`]);
    expect(holds(judge.exitsTraced({ ...good, reasons: good.reasons!.slice(2) })!)).toBe(false);
    expect(judge.exitsTraced({ ...good, lost: true })).toBeUndefined();
    expect(holds(judge.exitCost({ ...good, result: { ...good.result, ns_per_exit: '50' } }))).toBe(false);
  });
});
