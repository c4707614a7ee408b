/**
 * Cloud Lab 3's verdicts: pure functions from the experiment's evidence
 * (experiment.ts: the VMMs' runs, strace's view of their ioctls, the kernel's
 * kvm:kvm_userspace_exit and kvm:kvm_pio events of their pids) to what each
 * test compares, with the message that shows the evidence. Unit-tested on
 * made-up runs in tests/lab-units/cloud/03-kvm/judge.test.ts.
 */
import type { Verdict } from '../../../helpers/harness/verdict.js';
import { VMM_STEPS, type ExitsRun, type HltRun, type Injection, type IoRun } from './experiment.js';

export type { Verdict };

export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HLT = 5;
/** What the guest of make_guest.sh writes after its text: four nibbles of its time-stamp counter as '@'..'O'. */
export const TSC_TAIL = /^[@-O]{4}$/;

/** kvm_hlt: the guest's HLT ends KVM_RUN with KVM_EXIT_HLT past the byte at 0x1000, and the program exits 0. */
export function hltExit(x: HltRun): Verdict {
  return {
    got: { exit_reason: x.result.exit_reason, exitCode: x.run.exitCode, rip: x.result.rip },
    want: { exit_reason: 'KVM_EXIT_HLT', exitCode: 0, rip: '0x1001' },
    message: `kvm_hlt must print exit_reason=KVM_EXIT_HLT and rip= (after HLT at 0x1000 the guest's rip points past it: 0x1001), and exit 0 for a halted guest:\n${x.run.text}`,
  };
}

/** kvm_hlt: the kernel saw exactly one exit to user space of that pid, KVM_EXIT_HLT. Undefined without the tracepoint. */
export function hltTraced(x: HltRun): Verdict | undefined {
  if (!x.reasons) return undefined;
  return {
    got: x.reasons, want: [KVM_EXIT_HLT],
    message: `kvm:kvm_userspace_exit events of pid ${x.run.pid} (5 = KVM_EXIT_HLT): ${x.reasons.join(', ') || 'none'}\n${x.run.text}`,
  };
}

/** strace: every step of a VMM is an ioctl, each after the one before. */
export function ioctlSteps(calls: readonly string[]): Verdict {
  const missing = VMM_STEPS.filter((s) => !calls.includes(s));
  // The order of the steps it makes (a missing one is named once, as missing).
  const order = VMM_STEPS.map((s) => calls.indexOf(s)).filter((p) => p >= 0);
  return {
    got: { missing, inOrder: order.every((p, i) => i === 0 || p > order[i - 1]!) },
    want: { missing: [], inOrder: true },
    message: `each of ${VMM_STEPS.join(', ')} after the one before; ioctls strace saw: ${calls.join(', ') || 'none'}`,
  };
}

/** A step that fails (strace injects its errno): the program exits non-zero and says "<step> failed: <strerror>". */
export function injected(calls: readonly string[], i: Injection): Verdict {
  if (!i.run) {
    return { got: { makesStep: false }, want: { makesStep: true }, message: `kvm_hlt must call ${i.step}; ioctls seen: ${calls.join(', ') || 'none'}` };
  }
  const says = `${i.step} failed: ${i.text}`;
  return {
    got: { exitsNonZero: i.run.exitCode !== 0 || i.run.signal !== undefined, says: i.run.stderr.includes(says) },
    want: { exitsNonZero: true, says: true },
    message: `with ${i.step} failing (${i.errno}, strace's inject on its call ${i.nth}) kvm_hlt must exit non-zero and print "${says}" on stderr:\n${i.run.text}`,
  };
}

/** The bytes the guest wrote to port 0xe9, one OUT of one byte each, as kvm:kvm_pio saw them ('?' for any other access). */
export function guestWrote(pio: readonly string[]): string {
  return pio.map((b) => b.match(/pio_write at 0xe9 size 1 count 1 val 0x([0-9a-f]+)/)?.[1])
    .map((h) => (h ? String.fromCharCode(parseInt(h, 16)) : '?')).join('');
}

function ioEvidence(x: IoRun): string {
  const pio = x.pio ?? [];
  return `kvm:kvm_pio events of pid ${x.run.pid} (${pio.length}; first: ${pio.slice(0, 3).join(' | ') || 'none'}) spell "${guestWrote(pio)}"\n${x.run.text}`;
}

/** The image make_guest.sh wrote must not hold the text in clear (a harness check: the text is the guest's alone). */
export function imageEncoded(x: IoRun): Verdict {
  return { got: x.imageHoldsText, want: false, message: 'the guest image must not hold the text in clear' };
}

/** kvm_io ran the guest to its HLT and exited 0. */
export function ioExit(x: IoRun): Verdict {
  return { got: x.run.exitCode, want: 0, message: `kvm_io must run the guest image to its HLT and exit 0:\n${x.run.text}` };
}

/** Without the tracepoints: the VMM's output carries the text (the only check left). */
export function ioUntraced(x: IoRun): Verdict {
  return { got: x.run.stdout.includes(x.message), want: true, message: `the VMM must output what the guest wrote to port 0xe9 ("${x.message}"):\n${x.run.text}` };
}

/** kvm:kvm_pio: the guest wrote its text, one OUT per byte — the VMM loaded the image at the entry point and ran it. */
export function guestText(x: IoRun): Verdict {
  return {
    got: guestWrote(x.pio ?? []).slice(0, x.message.length), want: x.message,
    message: `the guest writes its text to port 0xe9, one OUT per byte: load the image at GUEST_ENTRY and run it. ${ioEvidence(x)}`,
  };
}

/** kvm:kvm_pio: after its text the guest wrote four bytes of its time-stamp counter — it ran to the end. */
export function guestTail(x: IoRun): Verdict {
  const tail = guestWrote(x.pio ?? []).slice(x.message.length);
  return {
    got: TSC_TAIL.test(tail), want: true,
    message: `after its text the guest writes four bytes of its time-stamp counter ('@'..'O'), then halts: run it to its HLT (it wrote "${tail}" after the text). ${ioEvidence(x)}`,
  };
}

/**
 * The VMM is the device: its output carries the bytes kvm_pio saw, in order, the four counter bytes included — they
 * are in no file and, when the OUT exits, in no register: only kvm_run's io data has them.
 */
export function vmmIsTheDevice(x: IoRun): Verdict {
  const wrote = guestWrote(x.pio ?? []);
  return {
    got: x.run.stdout.includes(wrote), want: true,
    message: `the VMM is the device on port 0xe9: its output must carry the bytes the guest wrote (kvm_pio), in order, ` +
      `the last four ("${wrote.slice(x.message.length)}", the guest's time-stamp counter at run time) included: they are in no file and in no register when the OUT exits ` +
      `(the guest writes each byte with outsb from its memory, AL holds its complement), so a VMM that decodes the image or reads the guest's registers cannot know them — ` +
      `take each byte from kvm_run at io.data_offset (io.size × io.count bytes) at its KVM_EXIT_IO. ${ioEvidence(x)}`,
  };
}

/** kvm:kvm_userspace_exit: one KVM_EXIT_IO per byte (the text and the four counter bytes), then KVM_EXIT_HLT. */
export function ioExits(x: IoRun): Verdict {
  return {
    got: x.reasons ?? [], want: [...Array<number>(x.message.length + 4).fill(KVM_EXIT_IO), KVM_EXIT_HLT],
    message: `kvm:kvm_userspace_exit reasons of pid ${x.run.pid}: one KVM_EXIT_IO (2) per byte (${x.message.length} of the text, 4 of the counter), then KVM_EXIT_HLT (5)\n${x.run.text}`,
  };
}

/** kvm_exits N: the VMM counted N exits and ended on the guest's HLT. */
export function exitsCounted(x: ExitsRun): Verdict {
  return {
    got: { exits: Number(x.result.exits), exit: x.result.exit_reason }, want: { exits: x.n, exit: 'KVM_EXIT_HLT' },
    message: `the VMM must count every OUT exit of a guest making ${x.n} (exits=${x.result.exits ?? '-'}), then stop at its HLT:\n${x.run.text}`,
  };
}

/** kvm:kvm_userspace_exit saw N KVM_EXIT_IO of that pid. Undefined without the tracepoint or when its buffer overflowed. */
export function exitsTraced(x: ExitsRun): Verdict | undefined {
  if (!x.reasons || x.lost) return undefined;
  return {
    got: x.reasons.filter((r) => r === KVM_EXIT_IO).length, want: x.n,
    message: `kvm:kvm_userspace_exit with KVM_EXIT_IO for pid ${x.run.pid} (the guest makes ${x.n} OUTs)`,
  };
}

/** An exit to user space and back costs more than a plain system call (the VMM's own timings). */
export function exitCost(x: ExitsRun): Verdict {
  const perExit = Number(x.result.ns_per_exit);
  const syscall = Number(x.result.syscall_ns);
  return {
    got: perExit > syscall, want: true,
    message: `an exit to user space costs more than a plain system call (${perExit} ns vs ${syscall} ns):\n${x.run.text}`,
  };
}
