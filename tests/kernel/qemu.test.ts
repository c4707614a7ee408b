import { describe, expect, it } from 'vitest';
import { kvmVerdict, qemuArgs } from '../../helpers/kernel/qemu.js';

describe('qemu: accelerator choice and command line', () => {
  it('skips KVM on PVM (no vmx/svm) and without /dev/kvm', () => {
    expect(kvmVerdict({ devKvm: true, cpuinfo: 'flags\t\t: fpu sse2 avx\n' }).tryKvm).toBe(false);
    expect(kvmVerdict({ devKvm: false, cpuinfo: 'flags\t\t: vmx\n' }).tryKvm).toBe(false);
    expect(kvmVerdict({ devKvm: true, cpuinfo: 'flags\t\t: fpu vmx\n' }).tryKvm).toBe(true);
    expect(kvmVerdict({ devKvm: true, cpuinfo: 'flags\t\t: fpu svm\n', env: 'tcg' }).tryKvm).toBe(false);
  });

  it('boots with -no-reboot, serial on stdio and the gdbstub on the given Unix socket', () => {
    const a = qemuArgs({ kernel: 'bz', initrd: 'i.gz', gdbSocket: '/tmp/kl-x/qemu.sock', append: ['quiet'] }, 'tcg');
    expect(a).toContain('-no-reboot');
    expect(a.slice(a.indexOf('-serial'), a.indexOf('-serial') + 2)).toEqual(['-serial', 'stdio']);
    expect(a.slice(-5)).toEqual(['-chardev', 'socket,id=kl-gdb,path=/tmp/kl-x/qemu.sock,server=on,wait=off', '-gdb', 'chardev:kl-gdb', '-S']);
    expect(() => qemuArgs({ kernel: 'bz', initrd: 'i.gz', gdbSocket: '/tmp/a,b/qemu.sock' }, 'tcg')).toThrow(/a comma/);
    expect(a[a.indexOf('-append') + 1]).toBe('console=ttyS0 panic=-1 nokaslr oops=panic quiet');
    expect(a[a.indexOf('-accel') + 1]).toMatch(/^tcg/);
  });
});
