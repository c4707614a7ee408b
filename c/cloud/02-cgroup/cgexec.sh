#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cgexec.sh: run a command inside cgroups (Lab 2, 资源铁笼) — what the seed
# does with `echo $PID | sudo tee /sys/fs/cgroup/my-slice/cgroup.procs`,
# for a command that has not started yet: this shell moves itself into each
# cgroup, then becomes the command (exec keeps the PID and the membership).
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
	# LAB:BEGIN Join the cgroup: a process moves itself (or another) into a cgroup by writing a PID into that cgroup's cgroup.procs (Documentation/admin-guide/cgroup-v2.rst, "Processes"; v1: cgroups.rst). This shell joins; the command it execs next keeps the membership.
	echo $$ > "$dir/cgroup.procs"
	# LAB:STARTER
	# :
	# LAB:END
done
exec "$@"
