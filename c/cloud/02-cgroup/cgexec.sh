#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cgexec.sh: run a command inside cgroups (Lab 2, 资源铁笼) — the seed's
# cgroup.procs step, for a command that has not started yet: the command runs
# with this script's PID and is a member of every given cgroup from its first
# instruction.
#
# Usage: sudo sh cgexec.sh <cgroup dir>... -- <command> [args...]
#   cgroup v2: one directory, e.g. /sys/fs/cgroup/my-slice
#   cgroup v1: one per controller hierarchy, e.g.
#              /sys/fs/cgroup/cpu/my-slice /sys/fs/cgroup/cpuacct/my-slice /sys/fs/cgroup/memory/my-slice
set -eu

DIRS=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	if [ ! -f "$1/cgroup.procs" ]; then
		echo "cgexec.sh: $1 is not a cgroup directory (no cgroup.procs)" >&2
		exit 2
	fi
	DIRS="$DIRS $1"
	shift
done
if [ $# -lt 2 ] || [ -z "$DIRS" ]; then
	echo "usage: $0 <cgroup dir>... -- <command> [args...]" >&2
	exit 2
fi
shift

for dir in $DIRS; do
	# LAB:BEGIN Join the cgroup $dir: this shell itself must become a member, so that the command it execs next is in the cgroup from its first instruction (Documentation/admin-guide/cgroup-v2.rst, "Processes"; v1: Documentation/admin-guide/cgroup-v1/cgroups.rst).
	echo $$ > "$dir/cgroup.procs"
	# LAB:STARTER
	# :
	# LAB:END
done
exec "$@"
