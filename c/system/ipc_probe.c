// SPDX-License-Identifier: GPL-2.0
/*
 * ipc_probe: the spec's own hands for System Lab 4 (never the student's):
 * it asks the kernel about the student's pipe and queue, and sends and takes
 * queued signals.
 *
 *   pipe <pid> <fd>          open /proc/<pid>/fd/<fd> (the same pipe) and print
 *                            "<F_GETPIPE_SZ> <FIONREAD>"
 *   mq <name>                print "<mq_curmsgs> <mq_maxmsg> <mq_msgsize>", then take
 *                            every message as the kernel orders them: "<prio> <size>" each
 *   sigqueue <pid> <sig> <value>
 *   sigwait <sig> <ms> [uid] block <sig>, print "ready", wait for it and print
 *                            "<si_pid> <si_code> <si_value>" (or "timeout"); with a
 *                            uid, first become that uid (a contained program may
 *                            signal only its own) without an exec: a process whose
 *                            uid changed is not dumpable, so the program cannot
 *                            open its /proc/<pid>/fd (the harness's pipes) or root
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "pipe")) {
		char path[64];
		int fd, size, queued = -1;

		snprintf(path, sizeof(path), "/proc/%s/fd/%s", argv[2], argv[3]);
		fd = open(path, O_RDONLY | O_NONBLOCK);
		if (fd < 0) {
			fprintf(stderr, "open %s: %s\n", path, strerror(errno));
			return 1;
		}
		size = fcntl(fd, F_GETPIPE_SZ);
		if (ioctl(fd, FIONREAD, &queued) < 0)
			queued = -1;
		printf("%d %d\n", size, queued);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "mq")) {
		struct mq_attr a;
		mqd_t q = mq_open(argv[2], O_RDONLY | O_NONBLOCK);
		char *buf;
		unsigned prio;
		ssize_t n;

		if (q == (mqd_t)-1 || mq_getattr(q, &a) < 0) {
			fprintf(stderr, "mq_open %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		printf("%ld %ld %ld\n", a.mq_curmsgs, a.mq_maxmsg, a.mq_msgsize);
		buf = malloc(a.mq_msgsize);
		while (buf && (n = mq_receive(q, buf, a.mq_msgsize, &prio)) >= 0)
			printf("%u %zd\n", prio, n);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "sigqueue")) {
		union sigval v = { .sival_int = atoi(argv[4]) };

		if (sigqueue(atoi(argv[2]), atoi(argv[3]), v) < 0) {
			fprintf(stderr, "sigqueue: %s\n", strerror(errno));
			return 1;
		}
		return 0;
	}
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "sigwait")) {
		long ms = atol(argv[3]);
		struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
		siginfo_t si;
		sigset_t s;

		if (argc == 5) {
			uid_t uid = (uid_t)strtoul(argv[4], NULL, 10);

			if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid) ||
			    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) {
				fprintf(stderr, "becoming uid %s: %s\n", argv[4], strerror(errno));
				return 1;
			}
		}

		sigemptyset(&s);
		sigaddset(&s, atoi(argv[2]));
		sigprocmask(SIG_BLOCK, &s, NULL);
		printf("ready\n");
		if (sigtimedwait(&s, &si, &t) < 0) {
			printf("timeout\n");
			return 0;
		}
		printf("%d %d %d\n", (int)si.si_pid, si.si_code, si.si_value.sival_int);
		return 0;
	}
	fprintf(stderr, "usage: ipc_probe pipe <pid> <fd> | mq <name> | sigqueue <pid> <sig> <value> | sigwait <sig> <ms> [uid]\n");
	return 2;
}
