#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# init.sh - Lab K1: the first user program of a freshly booted kernel.
# The kernel unpacks the initramfs and runs /init (this file) as PID 1.
# helpers/kernel/initramfs.ts packs it with a static busybox (/bin/busybox) and the
# lab's static programs (/lab/*); QEMU runs with -no-reboot, so a reboot
# ends QEMU.
#
# Build: nothing to compile (busybox sh runs it); the spec packs it:
#        npx vitest run --project labs labs/kernel/K1-boot
#
# What it must print on the serial console (one line each):
#   KL_INIT pid=<its PID, which must be 1>
#   KL_RELEASE=<uname -r>
#   the output of each program in /lab, in name order
#   KL_DONE
# and then end the machine at once, which under -no-reboot ends QEMU (never
# exit: PID 1 exiting panics the kernel).

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

# LAB:BEGIN print the KL_INIT and KL_RELEASE lines described above (the PID this shell has, the release of the running kernel), run every program the harness put in /lab, print KL_DONE, then end the machine at once: PID 1 must never exit (busybox's reboot, forced; man 2 reboot)
echo "KL_INIT pid=$$"
echo "KL_RELEASE=$(uname -r)"
for p in /lab/*; do
	[ -x "$p" ] && "$p"
done
echo KL_DONE
reboot -f
# LAB:STARTER
# echo "init: nothing to do yet"
# LAB:END
