// SPDX-License-Identifier: GPL-2.0
/*
 * cgwhere: where a process sits in the cgroup hierarchies (cgroup 实现之整体架构).
 *
 *   cgwhere <pid>
 *
 * Every line of /proc/<pid>/cgroup is "<hierarchy id>:<controllers>:<path>":
 * one line per v1 hierarchy (its controllers comma-separated, or
 * "name=systemd" for a named hierarchy without controllers) and the line
 * "0::<path>" for the unified (cgroup v2) hierarchy. /proc/cgroups says which
 * hierarchy id each controller is bound to (0: none of v1). Each hierarchy is
 * a mount of the cgroup (v1) or cgroup2 file system, listed in
 * /proc/self/mountinfo (proc(5), cgroups(7)).
 *
 * For each hierarchy the process is in, print one line: the hierarchy id,
 * its controllers ("-" for cgroup2), the path inside the hierarchy and the
 * directory of that cgroup on disk (mount point + path), e.g.
 *
 *   4 memory /kl-x/y /sys/fs/cgroup/memory/kl-x/y
 *   0 - /kl-z /sys/fs/cgroup/unified/kl-z
 *
 * Build: gcc -O2 -Wall -o cgwhere cgwhere.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 4096
#define MAX_HIERARCHIES 32

struct hierarchy {
	int id;
	char controllers[256];
	char path[LINE_MAX_LEN];
};

/* Does the comma-separated list `opts` contain the word `word`? */
static int has_option(const char *opts, const char *word)
{
	size_t n = strlen(word);
	const char *p = opts;

	while ((p = strstr(p, word)) != NULL) {
		if ((p == opts || p[-1] == ',') && (p[n] == ',' || p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return 1;
		p += n;
	}
	return 0;
}

/*
 * The mount point of the hierarchy with these controllers (v1) or of the
 * unified hierarchy (controllers ""), from /proc/self/mountinfo. Fields:
 * id parent major:minor root mountpoint options [optional…] - fstype source superoptions
 */
static int find_mount(const char *controllers, char *out, size_t outlen)
{
	char line[LINE_MAX_LEN];
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f) {
		fprintf(stderr, "fopen /proc/self/mountinfo failed: %s\n", strerror(errno));
		return -1;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		char root[LINE_MAX_LEN], mnt[LINE_MAX_LEN], fstype[64], super[LINE_MAX_LEN];
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2)
			continue;
		if (sscanf(dash + 3, "%63s %*s %4095s", fstype, super) != 2)
			continue;
		if (strcmp(root, "/") != 0)
			continue;
		// LAB:BEGIN set found to 1 exactly when this mount is the hierarchy asked for: the unified one when controllers is empty, else the v1 hierarchy those controllers are bound to. What in a mountinfo line tells you that: proc(5) (/proc/pid/mountinfo) and cgroups(7)
		if (controllers[0] == '\0') {
			found = strcmp(fstype, "cgroup2") == 0;
		} else if (strcmp(fstype, "cgroup") == 0) {
			char list[256], *tok, *save = NULL;

			found = 1;
			snprintf(list, sizeof(list), "%s", controllers);
			for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				if (!has_option(super, tok))
					found = 0;
		}
		// LAB:STARTER
		// found = strcmp(fstype, "cgroup") == 0 || strcmp(fstype, "cgroup2") == 0;
		// LAB:END
		if (found)
			snprintf(out, outlen, "%s", mnt);
	}
	fclose(f);
	return found ? 0 : -1;
}

/* Parse /proc/<pid>/cgroup into `h`; returns how many hierarchies, -1 on error. */
static int read_proc_cgroup(const char *pid, struct hierarchy *h, int max)
{
	char file[64], line[LINE_MAX_LEN];
	int n = 0;
	FILE *f;

	snprintf(file, sizeof(file), "/proc/%s/cgroup", pid);
	f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "fopen %s failed: %s\n", file, strerror(errno));
		return -1;
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		char *c1, *c2;

		line[strcspn(line, "\n")] = '\0';
		// LAB:BEGIN fill h[n] (id, controllers, path) from one line "<id>:<controllers>:<path>" and count it in n; the path may itself contain ':', and the controllers may be empty (cgroups(7), /proc/pid/cgroup)
		c1 = strchr(line, ':');
		if (!c1)
			continue;
		c2 = strchr(c1 + 1, ':');
		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		h[n].id = atoi(line);
		snprintf(h[n].controllers, sizeof(h[n].controllers), "%s", c1 + 1);
		snprintf(h[n].path, sizeof(h[n].path), "%s", c2 + 1);
		n++;
		// LAB:STARTER
		// (void)c1; (void)c2;
		// LAB:END
	}
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	static struct hierarchy h[MAX_HIERARCHIES];
	char mnt[LINE_MAX_LEN];
	int n, i, ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <pid>\n", argv[0]);
		return 2;
	}
	/* 1. The process's cgroup in each hierarchy, as the kernel lists them. */
	n = read_proc_cgroup(argv[1], h, MAX_HIERARCHIES);
	if (n < 0)
		goto cleanup;
	/* 2. Each hierarchy's mount point: its directory is mount point + path. */
	for (i = 0; i < n; i++) {
		const char *ctl = h[i].controllers;

		if (find_mount(ctl, mnt, sizeof(mnt)) < 0) {
			printf("%d %s %s (not mounted here)\n", h[i].id, ctl[0] ? ctl : "-", h[i].path);
			continue;
		}
		printf("%d %s %s %s%s\n", h[i].id, ctl[0] ? ctl : "-", h[i].path, mnt,
		       strcmp(h[i].path, "/") == 0 ? "" : h[i].path);
	}
	ret = 0;
cleanup:
	return ret;
}
