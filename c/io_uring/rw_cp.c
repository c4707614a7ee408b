// SPDX-License-Identifier: GPL-2.0
/*
 * rw_cp: the baseline for the io_uring copies — a plain read(2)/write(2)
 * loop with the same block size as uring_cp. Not a lab exercise: the
 * benchmark compares the io_uring programs with it.
 *
 * Build: gcc -O2 -Wall -o rw_cp rw_cp.c
 * Run:   ./rw_cp <src> <dst>
 * Output (stdout, one line): "copied=<bytes> blocks=<reads> bs=<BS>"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BS	(32 * 1024)	/* block size, as in uring_cp */

int main(int argc, char **argv)
{
	unsigned long long copied = 0, blocks = 0;
	int in_fd = -1, out_fd = -1;
	char *buf = NULL;
	int ret = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <src> <dst>\n", argv[0]);
		return 1;
	}
	in_fd = open(argv[1], O_RDONLY);
	if (in_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", argv[1], strerror(errno));
		goto cleanup;
	}
	out_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", argv[2], strerror(errno));
		goto cleanup;
	}
	buf = malloc(BS);
	if (!buf) {
		fprintf(stderr, "malloc failed: %s\n", strerror(errno));
		goto cleanup;
	}

	/* read a block, write all of it, until read returns 0 */
	for (;;) {
		ssize_t n = read(in_fd, buf, BS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "read %s failed: %s\n", argv[1], strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		blocks++;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out_fd, buf + done, n - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				fprintf(stderr, "write %s failed: %s\n", argv[2], w < 0 ? strerror(errno) : "wrote 0 bytes");
				goto cleanup;
			}
			done += w;
		}
		copied += n;
	}
	printf("copied=%llu blocks=%llu bs=%d\n", copied, blocks, BS);
	ret = 0;

cleanup:
	free(buf);
	if (out_fd >= 0 && close(out_fd) < 0 && ret == 0) {
		fprintf(stderr, "close %s failed: %s\n", argv[2], strerror(errno));
		ret = 1;
	}
	if (in_fd >= 0)
		close(in_fd);
	return ret;
}
