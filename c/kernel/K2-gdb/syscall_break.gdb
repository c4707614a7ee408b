# SPDX-License-Identifier: GPL-2.0
#
# syscall_break.gdb - Lab K2: gdb commands run against QEMU's gdbstub after
# "target remote". The harness sets, before this file runs:
#
#   $entry  address of do_syscall_64 (from the built vmlinux's System.map,
#           or from /proc/kallsyms of the guest booted with nokaslr)
#   $nr     the syscall number to catch (309, getcpu)
#
# do_syscall_64(struct pt_regs *regs, int nr) is where every 64-bit system
# call enters C: %rdi holds regs, %esi the number (which user space put in
# %rax; entry_SYSCALL_64 saved it as regs->orig_ax at offset 120 and the
# third argument as regs->dx at offset 96).
#
# Run by hand: qemu-system-x86_64 ... -gdb tcp:127.0.0.1:PORT -S
#              gdb -batch -nx -ex 'set $entry=0x...' -ex 'set $nr=309' \
#                  -ex 'target remote 127.0.0.1:PORT' -x syscall_break.gdb
#
# Must print, when the breakpoint stops:
#   KL_HIT pc=<$pc> nr=<the number register> orig_ax=<regs->orig_ax> dx=<regs->dx>
# each value in hex (0x…) or decimal, fields separated by single spaces.

# LAB:BEGIN stop the kernel at *$entry only for the call numbered $nr (a breakpoint the CPU checks, not one written into memory, with a condition on the register that carries the number: gdb manual, Breakpoints and Break Conditions), let the guest run to it, then print the KL_HIT line above from the registers and from the pt_regs %rdi points to
hbreak *$entry
condition $bpnum $rsi == $nr
continue
printf "KL_HIT pc=%#lx nr=%ld orig_ax=%ld dx=%#lx\n", $pc, $rsi, *(unsigned long *)($rdi + 120), *(unsigned long *)($rdi + 96)
# LAB:STARTER
# echo KL_TODO no breakpoint yet\n
# LAB:END
