// SPDX-License-Identifier: GPL-2.0
/*
 * sysinfo: Lab 0's first C program. It asks the kernel who it is and where it
 * runs, through three system calls, and prints one machine-readable line:
 *
 *     release=<kernel release> pid=<its PID> ppid=<its parent's PID> raw_pid=<its PID, from the raw system call>
 *
 * Build: gcc -O2 -Wall -o sysinfo sysinfo.c
 * Run:   ./sysinfo
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
	struct utsname uts;
	long raw_pid = -1;
	pid_t pid = 0, ppid = 0;

	memset(&uts, 0, sizeof(uts));
	strcpy(uts.release, "?");

	// LAB:BEGIN ask the kernel, through system calls made here and now: uts gets its identification (uname(2)), pid this process's ID and ppid its parent's (getpid(2)), and raw_pid the same PID again from the same system call made without its libc wrapper (syscall(2); the numbers are in <sys/syscall.h>). If the identification call fails, print "uname failed: <the reason for errno>" to stderr and return 1.
	if (uname(&uts) < 0) {
		fprintf(stderr, "uname failed: %s\n", strerror(errno));
		return 1;
	}
	pid = getpid();
	ppid = getppid();
	raw_pid = syscall(SYS_getpid);
	// LAB:END

	printf("release=%s pid=%d ppid=%d raw_pid=%ld\n", uts.release, (int)pid, (int)ppid, raw_pid);
	return 0;
}
