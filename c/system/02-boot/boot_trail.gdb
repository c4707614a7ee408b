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
# Offsets of pid and comm in the booted kernel's task_struct, from its own BTF,
# worked out here, at the reset stop, before the kernel runs (nothing hard-coded:
# every Debian 6.1 update may move them). The README's steps: the newest
# /boot/vmlinuz-*-amd64 (the kernel the lab boots), the xz stream inside it
# unpacked to a vmlinux in a temp dir of our own, and bpftool's dump of its BTF;
# in STRUCT 'task_struct', the members 'pid' and 'comm': bits_offset / 8.
# gdb's shell cannot hand its output back to gdb; gdb's Python can
# (subprocess, then gdb.set_convenience_variable: $pid_off, $comm_off).
python
import re, subprocess
steps = r'''
set -e
K=$(ls -1 /boot/vmlinuz-*-amd64 | sort -V | tail -n 1)
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
N=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$K" | head -1 | cut -d: -f1)
tail -c +$((N + 1)) "$K" | xz -dc --single-stream > "$D/vmlinux"
echo "vmlinuz $K"
PATH="$PATH:/usr/sbin:/sbin" bpftool btf dump file "$D/vmlinux" format raw
'''
btf = subprocess.run(["sh", "-c", steps], capture_output=True, text=True, timeout=120)
ts = re.search(r"^\[\d+\] STRUCT 'task_struct' size=\d+ vlen=\d+\n((?:[ \t]+'.*\n)*)", btf.stdout, re.M)
off = {}
for name, bits in re.findall(r"^[ \t]+'(\w*)' type_id=\d+ bits_offset=(\d+)", ts.group(1) if ts else "", re.M):
    off.setdefault(name, int(bits) // 8)
if btf.returncode != 0 or "pid" not in off or "comm" not in off:
    raise gdb.GdbError("no task_struct pid/comm in the BTF (exit %d): %s" % (btf.returncode, btf.stderr[-500:]))
gdb.set_convenience_variable("pid_off", off["pid"])
gdb.set_convenience_variable("comm_off", off["comm"])
print("task_struct of %s: pid at %d, comm at %d" % (btf.stdout.split("\n", 1)[0], off["pid"], off["comm"]))
end
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
