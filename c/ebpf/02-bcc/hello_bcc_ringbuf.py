#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# hello_bcc_ringbuf.py: hello_bcc.py the production way. Instead of text in
# the global trace_pipe, the BPF program sends a struct {pid, comm} through
# its own BPF ring buffer (BPF_RINGBUF_OUTPUT, Linux 5.8+) and Python
# receives each one as a callback: no parsing, no other program's noise,
# nothing lost to another reader of trace_pipe.
#
# Run: sudo /usr/bin/python3 hello_bcc_ringbuf.py [--duration SECONDS]
# Output: READY mode=<kprobe|tracepoint> attached=<attach points>
#         EVENT pid=<pid of the caller> comm=<its name>

import argparse
import os
import sys
import time

from bcc import BPF

PROGRAM = r"""
#include <linux/sched.h>

struct event {
	u32 pid;
	char comm[TASK_COMM_LEN];
};

/* 16 pages of ring buffer shared by every CPU; the reader polls it. */
BPF_RINGBUF_OUTPUT(events, 16);

int hello(void *ctx)
{
	struct event e = {};

	// LAB:BEGIN fill e with the calling process's ID (the thread group's, not the thread's: man 7 bpf-helpers says how one helper returns both) and its whole command name, then send e through the events ring buffer (bcc's reference guide, BPF_RINGBUF_OUTPUT)
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	events.ringbuf_output(&e, sizeof(e), 0);
	// LAB:STARTER
	// e.pid = 0;
	// LAB:END
	return 0;
}
"""


def have_kprobes():
    return any(os.path.exists(p) for p in ("/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"))


def have_tracepoint(name):
    return any(os.path.isdir(os.path.join(root, "events/syscalls", name))
               for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))


def attach(b):
    """Attach hello() to clone and clone3; returns (mode, attach points)."""
    points = []
    if have_kprobes():
        for syscall in ("clone", "clone3"):
            fn = b.get_syscall_fnname(syscall).decode()
            if BPF.ksymname(fn) != -1:
                b.attach_kprobe(event=fn, fn_name="hello")
                points.append(fn)
        return "kprobe", points
    for syscall in ("clone", "clone3"):
        if have_tracepoint("sys_enter_" + syscall):
            b.attach_tracepoint(tp="syscalls:sys_enter_" + syscall, fn_name="hello")
            points.append("syscalls:sys_enter_" + syscall)
    return "tracepoint", points


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60, help="seconds to run (default 60)")
    args = parser.parse_args()

    b = BPF(text=PROGRAM)
    mode, points = attach(b)
    if not points:
        print("attach failed: neither kprobes nor syscalls:sys_enter_clone exist", file=sys.stderr)
        return 77

    def on_event(ctx, data, size):
        e = b["events"].event(data)
        if e.pid:
            print(f"EVENT pid={e.pid} comm={e.comm.decode(errors='replace')}", flush=True)

    b["events"].open_ring_buffer(on_event)
    print(f"READY mode={mode} attached={','.join(points)}", flush=True)

    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        b.ring_buffer_poll(timeout=100)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
