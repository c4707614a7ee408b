/**
 * Lab 3 — 深入 KVM: the smallest virtual machine monitor.
 * A VMM drives the kernel's KVM with ioctl(2) on /dev/kvm. The guest's HLT
 * comes back to it as KVM_EXIT_HLT; a guest OUT comes back as KVM_EXIT_IO
 * (the VMM is the device); each such exit costs a round trip through the
 * kernel, which we count and time. Kernel evidence comes from the
 * kvm:kvm_userspace_exit and kvm:kvm_pio tracepoints in a private tracefs
 * instance, and from strace's decoding (and fault injection) of the ioctls.
 *
 * The lab's anatomy: experiment.ts runs the VMMs and collects the evidence,
 * judge.ts turns it into facts and messages, this file says what must hold.
 */
import { describe, it } from 'vitest';
import { recordMetric } from '../../../helpers/harness/metrics.js';
import { adapted, labRequires, need, requires } from '../../../helpers/harness/requires.js';
import { holds } from '../../../helpers/harness/verdict.js';
import { injectFailures, runExits, runHlt, runIo, straceHlt, untracedNote } from './experiment.js';
import * as judge from './judge.js';

describe('Lab 3 — the smallest VMM (深入 KVM)', () => {
  requires(...labRequires(import.meta.url));

  it('KVM_RUN returns with exit_reason KVM_EXIT_HLT once the guest executes its one HLT byte', async (ctx) => {
    const x = await runHlt();
    if (!x.reasons) await adapted(ctx, untracedNote(['kvm_userspace_exit']));
    holds(judge.hltExit(x));
    const traced = judge.hltTraced(x);
    if (traced) holds(traced);
    recordMetric(ctx, { name: 'KVM_CREATE_VM to first HLT', value: Number(x.result.create_to_hlt_ns) / 1000, unit: 'µs', group: 'kvm' });
  });

  it('makes the steps of a VMM as ioctls on /dev/kvm, in order (strace decodes them)', async (ctx) => {
    await need(ctx, 'strace');
    holds(judge.ioctlSteps((await straceHlt()).calls));
  });

  it('reports a failing step with the ioctl and its errno (a failure strace injects)', async (ctx) => {
    await need(ctx, 'strace');
    const { calls, injections } = await injectFailures();
    for (const i of injections) holds(judge.injected(calls, i));
  });

  it('hands the guest\'s OUTs to the VMM as KVM_EXIT_IO: the VMM outputs the text only the guest knows, the bytes kvm:kvm_pio saw, then the guest halts', async (ctx) => {
    const x = await runIo();
    holds(judge.imageEncoded(x));
    if (!x.pio) await adapted(ctx, untracedNote(['kvm_userspace_exit', 'kvm_pio']));
    holds(judge.ioExit(x));
    if (!x.pio) return holds(judge.ioUntraced(x));
    holds(judge.guestText(x));
    holds(judge.guestTail(x));
    holds(judge.vmmIsTheDevice(x));
    holds(judge.ioExits(x));
  });

  it('counts one VM exit per guest OUT (N of N) and measures what an exit costs', async (ctx) => {
    const x = await runExits();
    holds(judge.exitsCounted(x));
    if (!x.reasons) await adapted(ctx, untracedNote(['kvm_userspace_exit']));
    else if (x.lost) await adapted(ctx, 'the tracefs instance buffer overflowed: the exit count is checked from the VMM only');
    const traced = judge.exitsTraced(x);
    if (traced) holds(traced);
    recordMetric(ctx, { name: 'VM exit round trip (OUT to user space and back)', value: Number(x.result.ns_per_exit), unit: 'ns/exit', group: 'kvm' });
    recordMetric(ctx, { name: 'getppid(2) system call', value: Number(x.result.syscall_ns), unit: 'ns/call', group: 'kvm' });
    holds(judge.exitCost(x));
  });
});
