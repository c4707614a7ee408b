#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# perf.sh: count one process's calls of one system call with perf(1).
#
# Usage: perf.sh <syscall> <pid>
#   <syscall>   umask, getpgid, dup…
#   <pid>       the process to count; it has not made the calls yet
# Count while <pid> lives; when it has exited, print the number of calls it
# made (the last line of the output ends with that number) and exit 0.
set -eu

if [ "$#" -ne 2 ]; then
	echo "usage: $0 <syscall> <pid>" >&2
	exit 2
fi
name=$1 pid=$2

# LAB:BEGIN count the syscall's entry tracepoint (perf list 'syscalls:*') in process <pid> only, for as long as it lives, with perf's counting mode (perf-stat(1): the event, the process, a CSV output you can cut the number out of), then print only that number
perf stat -x, -e "syscalls:sys_enter_$name" -p "$pid" -o /dev/stdout | awk -F, '/^[0-9]/ { n = $1 } END { print n + 0 }'
# LAB:STARTER
# echo 0
# LAB:END
