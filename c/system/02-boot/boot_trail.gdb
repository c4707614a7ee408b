# SPDX-License-Identifier: GPL-2.0
#
# boot_trail.gdb - System Lab 2 (kernel的启动流程): gdb commands run against
# QEMU's gdbstub after "target remote", while the CPU still sits at the reset
# vector (QEMU -S): no firmware, no decompressor, no kernel has run yet.
# The harness sets, before this file runs (addresses from /proc/kallsyms of
# Debian's kernel booted with nokaslr; gdb has no symbols and no debug info):
#
#   $start_kernel $rest_init $kernel_init $kthreadd   the four functions
#   $current_task       the per-CPU variable current_task: its OFFSET in a
#                       CPU's per-CPU area, not an address
#   $boot_command_line  the kernel's copy of its command line (a char array)
#
# Must print, at each stop in one of the four functions (in the order the
# stops happen), one line:
#   KL_STOP pc=<$pc> task=<current> pid=<current->pid> comm=<current->comm>
# and once, at the start_kernel stop:
#   KL_CMDLINE <the string at $boot_command_line>
# Numbers in hex (0x…) or decimal, fields separated by single spaces.
# After this file the harness deletes every breakpoint and continues the boot.
#
# Run by hand: see the lab's README (Steps).

# LAB:BEGIN stop the boot at each of the four functions — breakpoints set before the kernel runs any of them (gdb manual: Set Breaks; which kind does QEMU check before the kernel's text exists?) — and at each stop print the KL_STOP line for current: the per-CPU pointer current_task of the CPU that stopped (where does x86-64 keep a CPU's per-CPU area, and which register does QEMU's gdbstub show for it?), and the pid and comm members of the task_struct it points to, at the offsets the kernel's BTF gives (bpftool btf dump, pahole); at start_kernel also print KL_CMDLINE
# Offsets of pid and comm in Debian 6.1's task_struct (its BTF:
# bpftool btf dump file <vmlinux> format raw, STRUCT 'task_struct': bits_offset / 8).
set $pid_off = 2416
set $comm_off = 2976
define kl_record
  set $task = *(unsigned long *)($gs_base + $current_task)
  printf "KL_STOP pc=%#lx task=%#lx pid=%d comm=%s\n", $pc, $task, *(int *)($task + $pid_off), (char *)($task + $comm_off)
end
hbreak *$start_kernel
hbreak *$rest_init
hbreak *$kernel_init
hbreak *$kthreadd
continue
kl_record
printf "KL_CMDLINE %s\n", (char *)$boot_command_line
continue
kl_record
continue
kl_record
continue
kl_record
# LAB:STARTER
# echo KL_TODO no breakpoint yet\n
# LAB:END
