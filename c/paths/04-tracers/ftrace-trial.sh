#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ftrace-trial.sh: one trial of Lab 8.4's ftrace part, run natively or in a
# guest of Debian's kernel (busybox sh). A harness script: the student never
# edits it.
#
# Usage: ftrace-trial.sh <tool> <syscall> <n> <m> <tracee> <recipe> <dir> <inst> <rec> <decoy-rec> <exit-rec> [<linger-ms> <pause-ms>...]
#   <tool>    ftrace (run <recipe>) or none (a baseline: the tracee alone)
#   <n> <m>   calls of the tracee and of a decoy tracee running beside it
#   <dir>     scratch directory (FIFOs: each tracee's count, then its go; outputs)
#   <inst>    the tracefs instance handed to the recipe (made here, removed by the caller)
#   <rec> <decoy-rec>  instances where the kernel records sys_enter_<syscall> of each tracee
#   <exit-rec> an instance where the kernel records sched_process_exit of the tracee and the recipe
#   <linger-ms> <pause-ms>...  the tracee's shape (tracee.c): its calls in bursts, and how long it lives on after them
# Prints sections "== <name> ==" with the evidence; the caller judges.
set -u
tool=$1 name=$2 n=$3 m=$4 tracee=$5 recipe=$6 dir=$7 inst=$8 rec=$9
shift 9
decoy_rec=$1 exit_rec=$2
shift 2
shape=$*
T=/sys/kernel/tracing

mkdir -p "$dir" "$inst" "$rec" "$decoy_rec" "$exit_rec"
echo 8192 > "$inst/buffer_size_kb"
for r in "$rec" "$decoy_rec"; do echo 8192 > "$r/buffer_size_kb"; done
rm -f "$dir/fifo" "$dir/decoy.fifo" "$dir/go" "$dir/decoy.go"
mkfifo "$dir/fifo" "$dir/decoy.fifo" "$dir/go" "$dir/decoy.go"

# Both tracees read their count now, before the recipe starts, and wait in open(2) of their go FIFO.
"$tracee" "$name" "$dir/fifo" "$dir/go" > "$dir/tracee.out" 2>&1 &
tp=$!
"$tracee" "$name" "$dir/decoy.fifo" "$dir/decoy.go" > "$dir/decoy.out" 2>&1 &
dp=$!
echo "$m" > "$dir/decoy.fifo"
echo "$n $shape" > "$dir/fifo"
echo "$tp" > "$rec/set_event_pid"
echo "$dp" > "$decoy_rec/set_event_pid"
echo 1 > "$rec/events/syscalls/sys_enter_$name/enable"
echo 1 > "$decoy_rec/events/syscalls/sys_enter_$name/enable"
# One clock across CPUs: the tracee's end and the recipe's are compared.
echo global > "$exit_rec/trace_clock"
echo "$tp" > "$exit_rec/set_event_pid"
echo 1 > "$exit_rec/events/sched/sched_process_exit/enable"

rp=
if [ "$tool" = ftrace ]; then
	sh "$recipe" "$inst" "$name" "$tp" > "$dir/recipe.out" 2> "$dir/recipe.err" &
	rp=$!
	echo "$rp" >> "$exit_rec/set_event_pid"
	# Attached when the instance has a tracer (bounded: a recipe that never attaches is judged, not waited for).
	i=0
	while [ "$(cat "$inst/current_tracer")" = nop ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 0.2
fi
echo "== attach =="
echo "waited_ds=${i:-0}"
echo "current_tracer=$(cat "$inst/current_tracer")"
echo "tracing_on=$(cat "$inst/tracing_on")"
echo "set_ftrace_filter=$(grep -v '^#' "$inst/set_ftrace_filter" 2>/dev/null | tr '\n' ' ')"
echo "set_ftrace_pid=$(grep -v '^#' "$inst/set_ftrace_pid" 2>/dev/null | tr '\n' ' ')"
echo "set_event_pid=$(tr '\n' ' ' < "$inst/set_event_pid")"
echo "tracee=$tp decoy=$dp"

# Release both at once; the recipe sees the calls come.
: > "$dir/decoy.go" &
: > "$dir/go"
wait "$tp"; te=$?
wait "$dp"; de=$?

ended=none
if [ -n "$rp" ]; then
	i=0
	while kill -0 "$rp" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$rp" 2>/dev/null; then ended=no; kill "$rp" 2>/dev/null; sleep 0.2; kill -9 "$rp" 2>/dev/null; fi
	wait "$rp"; re=$?
	[ "$ended" = no ] || ended="exit $re"
fi
echo 0 > "$rec/events/syscalls/sys_enter_$name/enable"
echo 0 > "$decoy_rec/events/syscalls/sys_enter_$name/enable"
echo 0 > "$exit_rec/events/sched/sched_process_exit/enable"
echo "== kernel =="
for r in "$rec" "$decoy_rec"; do
	echo "$(grep -v '^#' "$r/trace" | grep -c "sys_$name") $(grep -m1 -o 'entries-in-buffer/entries-written: [0-9]*/[0-9]*' "$r/trace")"
done
echo "== tracees =="
echo "tracee exit $te $(cat "$dir/tracee.out")"
echo "decoy exit $de $(cat "$dir/decoy.out")"
echo "== recipe =="
echo "ended=$ended"
echo "instance_entries=$(grep -m1 -o 'entries-in-buffer/entries-written: [0-9]*/[0-9]*' "$inst/trace")"
echo "== exits =="
echo "tracee=$tp recipe=${rp:-none}"
grep -v '^#' "$exit_rec/trace"
echo "== recipe stdout =="
[ -f "$dir/recipe.out" ] && tail -n 20 "$dir/recipe.out"
echo "== recipe stderr =="
[ -f "$dir/recipe.err" ] && tail -n 20 "$dir/recipe.err"
echo "== end =="
printf "nop\n" 2>/dev/null > "$inst/current_tracer"
exit 0
