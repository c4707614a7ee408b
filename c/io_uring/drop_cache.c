// SPDX-License-Identifier: GPL-2.0
/*
 * drop_cache: write back and drop the page cache of the given files only
 * (fdatasync, then posix_fadvise(POSIX_FADV_DONTNEED)), so the next read of
 * them comes from the disk. Never the host-wide /proc/sys/vm/drop_caches.
 * Used by the io_uring benchmark between runs.
 *
 * Build: gcc -O2 -Wall -o drop_cache drop_cache.c
 * Run:   ./drop_cache <file>...
 * Output (stdout, one line): "dropped=<files> sync_ms=<time spent in fdatasync>"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	double sync_ms = 0;
	int i, fd, err;

	for (i = 1; i < argc; i++) {
		double t0;

		fd = open(argv[i], O_RDWR);
		if (fd < 0) {
			fprintf(stderr, "open %s failed: %s\n", argv[i], strerror(errno));
			return 1;
		}
		/* Dirty pages are not dropped: write them back first. */
		t0 = now_ms();
		if (fdatasync(fd) < 0) {
			fprintf(stderr, "fdatasync %s failed: %s\n", argv[i], strerror(errno));
			close(fd);
			return 1;
		}
		sync_ms += now_ms() - t0;
		err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
		if (err) {
			fprintf(stderr, "posix_fadvise %s failed: %s\n", argv[i], strerror(err));
			return 1;
		}
	}
	printf("dropped=%d sync_ms=%.1f\n", argc - 1, sync_ms);
	return 0;
}
