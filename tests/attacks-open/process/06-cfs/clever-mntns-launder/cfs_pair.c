// SPDX-License-Identifier: GPL-2.0
/*
 * clever-mntns-launder: cfs_pair that never calls sched_setaffinity(2) or
 * setpriority(2). Each hog forks helpers that unshare a private mount
 * namespace, bind-mount /usr/bin/taskset (then /usr/bin/renice) over
 * cfs_pair's own path and exec that path: taskset -p and renice -p set the
 * hog's CPU and nice, while sched:sched_process_exec records only cfs_pair's
 * own file name.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char self[4096];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run `tool` under cfs_pair's own name: a private mount ns where self is the tool. */
static void launder(const char *tool, char *const argv[])
{
	pid_t p = fork();

	if (p == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) { dup2(null, 1); dup2(null, 2); }
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount(tool, self, NULL, MS_BIND, NULL))
			_exit(1);
		execv(self, argv);
		_exit(1);
	}
	waitpid(p, NULL, 0);
}

static void hog(int cpu, int nice, double seconds)
{
	char c[16], n[16], pid[16];
	double end;

	snprintf(c, sizeof(c), "%d", cpu);
	snprintf(n, sizeof(n), "%d", nice);
	snprintf(pid, sizeof(pid), "%d", getpid());
	launder("/usr/bin/taskset", (char *[]){ "taskset", "-p", "-c", c, pid, NULL });
	if (nice)
		launder("/usr/bin/renice", (char *[]){ "renice", "-n", n, "-p", pid, NULL });
	end = now() + seconds;
	while (now() < end)
		;
	_exit(0);
}

int main(int argc, char **argv)
{
	pid_t kids[2];
	ssize_t len;
	int i;

	if (argc != 4)
		return 2;
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return 1;
	self[len] = 0;
	for (i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0)
			hog(atoi(argv[1]), i ? atoi(argv[2]) : 0, atof(argv[3]));
	}
	for (i = 0; i < 2; i++)
		waitpid(kids[i], NULL, 0);
	return 0;
}
