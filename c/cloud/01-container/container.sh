#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# container.sh: a container by hand (Lab 1, 手动造轮) — no Docker, just
# namespaces (unshare) and a different root directory (chroot).
#
# Usage: sudo sh container.sh <rootfs> [more unshare flags, e.g. --uts --net]
#        The container's shell reads its commands from stdin.
#
# Inside: /bin/sh of <rootfs> is PID 1 of a new PID namespace, with a /proc of
# its own (so ps shows only the container's processes), in a new mount
# namespace (so that /proc mount does not leak to the host).
set -eu

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 <rootfs> [unshare flags...]" >&2
	exit 2
fi
ROOTFS=$1
shift
if [ ! -e "$ROOTFS/bin/sh" ] || [ ! -d "$ROOTFS/proc" ]; then
	echo "$ROOTFS has no /bin/sh or no /proc directory" >&2
	exit 2
fi

# LAB:BEGIN Start "$ROOTFS"/bin/sh as PID 1 of a new PID namespace in a new mount namespace (plus the extra unshare flags in "$@"), its root changed to "$ROOTFS", with a /proc of that PID namespace mounted inside that root rather than on the host's /proc (unshare(1) on --mount-proc; chroot(1)); no shell of this script may stay in between.
exec unshare --fork --pid --mount --mount-proc="$ROOTFS/proc" "$@" -- chroot "$ROOTFS" /bin/sh
# LAB:STARTER
# exec chroot "$ROOTFS" /bin/sh
# LAB:END
