#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# overlay.sh: run a command with an OverlayFS mounted in a mount namespace of
# its own — the way a container runtime stacks an image's read-only layers
# (lower) under the container's writable layer (upper).
#
# Usage: overlay.sh <lower> <upper> <work> <merged> <command> [args...]
#   <lower>   read-only layer (never modified)
#   <upper>   writable layer: copies of changed files, whiteouts, opaque dirs
#   <work>    OverlayFS's scratch directory (same file system as <upper>)
#   <merged>  where the union appears, only inside the new mount namespace
# The command runs inside that namespace; its exit status is the script's.
# The mount disappears with the namespace when the command ends.
set -eu

if [ "$#" -lt 5 ]; then
	echo "usage: $0 <lower> <upper> <work> <merged> <command> [args...]" >&2
	exit 2
fi

# Inside the new namespace (second stage): mount, then become the command.
if [ "${OVERLAY_STAGE:-}" = inner ]; then
	lower=$1 upper=$2 work=$3 merged=$4
	shift 4
	# LAB:BEGIN mount the union of $lower (read-only) and $upper (writable, with $work as OverlayFS's scratch directory) at $merged: the file system type and its options are in Documentation/filesystems/overlayfs.rst and mount(8)
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
	# LAB:STARTER
	# mkdir -p "$merged"
	# LAB:END
	exec "$@"
fi

# First stage: re-run this script in a new mount namespace whose mounts stay private.
# LAB:BEGIN run this script again as the second stage (OVERLAY_STAGE=inner, the same arguments) in a new mount namespace whose mounts never propagate to the namespace it came from (unshare(1); mount_namespaces(7), "Shared subtrees"); the command's exit status must become this script's
OVERLAY_STAGE=inner exec unshare -m --propagation private "$0" "$@"
# LAB:STARTER
# OVERLAY_STAGE=inner exec "$0" "$@"
# LAB:END
