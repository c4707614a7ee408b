import { describe, expect, it } from 'vitest';
import { checkConfig, insertSyscallEntries, kbuildKey, KCONFIG, parseMakeLine, parseSyscallTable, systemMapAddress } from '../../helpers/kernel/kbuild.js';

const TABLE = `#
# 64-bit system call numbers and entry vectors
#
449	common	futex_waitv		sys_futex_waitv
450	common	set_mempolicy_home_node	sys_set_mempolicy_home_node

#
# Due to a historical design error, certain syscalls are numbered differently
512	x32	rt_sigaction		compat_sys_rt_sigaction
`;

describe('kbuild: syscall table', () => {
  it('parses entries and ignores comments', () => {
    expect(parseSyscallTable('# c\n451\tcommon\tsayhelloworld\t\tsys_sayhelloworld # x\n')).toEqual([
      { nr: 451, abi: 'common', name: 'sayhelloworld', entry: 'sys_sayhelloworld' },
    ]);
    expect(parseSyscallTable('# LAB only comments\n')).toEqual([]);
  });

  it('inserts after the last common entry, before the x32 block', () => {
    const out = insertSyscallEntries(TABLE, '451 common sayhelloworld sys_sayhelloworld\n').split('\n');
    expect(out.indexOf('451\tcommon\tsayhelloworld\t\tsys_sayhelloworld')).toBe(out.findIndex((l) => l.startsWith('450')) + 1);
    expect(insertSyscallEntries(TABLE, '# nothing\n')).toBe(TABLE);
  });

  it('refuses a number or name the kernel already has', () => {
    expect(() => insertSyscallEntries(TABLE, '450 common hello sys_hello')).toThrow(/clashes/);
    expect(() => insertSyscallEntries(TABLE, '460 common futex_waitv sys_x')).toThrow(/clashes/);
    expect(() => parseSyscallTable('hello common x')).toThrow(/not "<number>/);
  });
});

describe('kbuild: config, key, progress', () => {
  it('checks the options that must be set', () => {
    const good = Object.entries(KCONFIG).filter(([, v]) => v === 'y').map(([k]) => `CONFIG_${k}=y`).join('\n');
    expect(checkConfig(good)).toEqual([]);
    expect(checkConfig(good.replace('CONFIG_64BIT=y', '# CONFIG_64BIT is not set'))).toEqual(['CONFIG_64BIT is not =y']);
    expect(checkConfig(`${good}\nCONFIG_RANDOMIZE_BASE=y`)).toEqual(['CONFIG_RANDOMIZE_BASE is =y']);
  });

  it('keys builds by config and student files', () => {
    const a = kbuildKey({ config: KCONFIG, files: { 'kernel/sayhello.c': 'x' } });
    expect(kbuildKey({ config: KCONFIG, files: { 'kernel/sayhello.c': 'x' } })).toBe(a);
    expect(kbuildKey({ config: KCONFIG, files: { 'kernel/sayhello.c': 'y' } })).not.toBe(a);
    expect(kbuildKey({ config: { ...KCONFIG, SMP: 'y' }, files: { 'kernel/sayhello.c': 'x' } })).not.toBe(a);
  });

  it("reads kbuild's short log lines", () => {
    expect(parseMakeLine('  CC      kernel/fork.o')).toEqual({ step: 'CC', target: 'kernel/fork.o' });
    expect(parseMakeLine('  LD      vmlinux')).toEqual({ step: 'LD', target: 'vmlinux' });
    expect(parseMakeLine('kernel/sayhello.c:3:1: error: x')).toBeUndefined();
  });

  it('finds a symbol in a System.map', () => {
    const map = 'ffffffff81001000 T do_syscall_64\nffffffff81002000 t __x64_sys_sayhelloworld\n';
    expect(systemMapAddress(map, 'do_syscall_64')).toBe(0xffffffff81001000n);
    expect(systemMapAddress(map, 'do_syscall')).toBeUndefined();
  });
});
