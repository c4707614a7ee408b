#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ftrace.sh: count one process's calls of one system call with ftrace's
# function tracer, in a tracefs instance of its own.
#
# Usage: ftrace.sh <instance> <syscall> <pid>
#   <instance>  a private tracefs instance (/sys/kernel/tracing/instances/<name>) handed to you,
#               with its own ring buffer, tracer and filter files
#   <syscall>   umask, getpgid, dup…: trace its entry function in the kernel
#   <pid>       the process to count; it has not made the calls yet
# Trace only while <pid> lives; when it has exited, print the number of calls
# it made (the last line of the output ends with that number) and exit 0.
# POSIX sh: it runs under dash and under busybox sh.
set -eu

if [ "$#" -ne 3 ]; then
	echo "usage: $0 <instance> <syscall> <pid>" >&2
	exit 2
fi
inst=$1 name=$2 pid=$3

# Attach: the function tracer, on one function, for one process.
# LAB:BEGIN set up the instance: trace only the kernel function that every <syscall> call from user space enters on x86-64 (its name is in <instance>/../../available_filter_functions; see "The wrappers" in the guide), only in task <pid>, with the function tracer (Documentation/trace/ftrace.rst: set_ftrace_filter, set_ftrace_pid, current_tracer, tracing_on)
echo "__x64_sys_$name" > "$inst/set_ftrace_filter"
echo "$pid" > "$inst/set_ftrace_pid"
echo function > "$inst/current_tracer"
echo 1 > "$inst/tracing_on"
# LAB:STARTER
# echo "$pid" > /dev/null
# LAB:END

# Wait for the process to end (it is not our child: wait(1) cannot).
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done

# Count what the instance recorded.
# LAB:BEGIN print the number of calls the instance recorded (one line per call in <instance>/trace, after its '#' header), then put the instance's tracer back to the one that traces nothing
grep -v '^#' "$inst/trace" | grep -c "sys_$name" || true
echo nop > "$inst/current_tracer"
# LAB:STARTER
# echo 0
# LAB:END
