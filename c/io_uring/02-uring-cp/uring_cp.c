// SPDX-License-Identifier: GPL-2.0
/*
 * uring_cp: Lab 2's naive file copy with io_uring: <src> to <dst> (created
 * or truncated), byte for byte, through io_uring read and write requests
 * only, one request in flight at a time. Short reads and short writes are
 * handled; a failed request ends the copy with "<op> <file> failed: <reason>".
 *
 * Build: gcc -O2 -Wall -o uring_cp uring_cp.c -luring
 * Run:   ./uring_cp <src> <dst>
 * Output (stdout, one line): "copied=<bytes> blocks=<reads> bs=<BS>"
 * Exit:  0 on success, 1 on any error, 77 when io_uring is unavailable.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define QD	4		/* ring entries: one request is in flight at a time */
#define BS	(32 * 1024)	/* block size: one read, then one write, per block */

/* Submit the one prepared SQE and wait for its completion; returns cqe->res. */
static int submit_and_reap(struct io_uring *ring, int *res)
{
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_submit_and_wait(ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret < 0)
		return ret;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

int main(int argc, char **argv)
{
	struct io_uring ring;
	int ring_ok = 0, in_fd = -1, out_fd = -1;
	unsigned long long copied = 0, blocks = 0;
	char *buf = NULL;
	int ret = 1, err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <src> <dst>\n", argv[0]);
		return 1;
	}
	const char *src = argv[1], *dst = argv[2];

	/* Open both files: a missing source or destination directory is an error naming it. */
	in_fd = open(src, O_RDONLY);
	if (in_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", src, strerror(errno));
		goto cleanup;
	}
	out_fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", dst, strerror(errno));
		goto cleanup;
	}
	buf = malloc(BS);
	if (!buf) {
		fprintf(stderr, "malloc failed: %s\n", strerror(errno));
		goto cleanup;
	}

	/* Initialise the ring (SQ and CQ shared with the kernel). */
	err = io_uring_queue_init(QD, &ring, 0);
	if (err < 0) {
		fprintf(stderr, "io_uring_queue_init failed: %s\n", strerror(-err));
		ret = (err == -ENOSYS || err == -EPERM) ? 77 : 1;
		goto cleanup;
	}
	ring_ok = 1;

	/* Copy block by block: read → wait → write (until all of it is written) → wait. */
	for (;;) {
		struct io_uring_sqe *sqe;
		int res = 0;

		// LAB:BEGIN One block, the naive way: with io_uring requests and only one in flight at a time (io_uring_prep_read(3), io_uring_prep_write(3), and the helper above that submits and waits), move the next part of src to the same place in dst. The file must arrive byte for byte whatever a completion says: read what res means for a read and for a write in io_uring_enter(2) ("CQE"). A res that is -errno: report "<read|write> <file> failed: <reason>" and goto cleanup. Keep `copied` and `blocks` up to date.
		sqe = io_uring_get_sqe(&ring);
		if (!sqe) {
			fprintf(stderr, "io_uring_get_sqe failed: submission queue full\n");
			goto cleanup;
		}
		io_uring_prep_read(sqe, in_fd, buf, BS, copied);
		err = submit_and_reap(&ring, &res);
		if (err < 0) {
			fprintf(stderr, "io_uring_submit failed: %s\n", strerror(-err));
			goto cleanup;
		}
		if (res < 0) {
			fprintf(stderr, "read %s failed: %s\n", src, strerror(-res));
			goto cleanup;
		}
		if (res == 0)
			break; /* end of file */
		blocks++;

		/* A write may be short: write the rest until the whole block is out. */
		for (int done = 0; done < res;) {
			int wres = 0;

			sqe = io_uring_get_sqe(&ring);
			if (!sqe) {
				fprintf(stderr, "io_uring_get_sqe failed: submission queue full\n");
				goto cleanup;
			}
			io_uring_prep_write(sqe, out_fd, buf + done, res - done, copied + done);
			err = submit_and_reap(&ring, &wres);
			if (err < 0) {
				fprintf(stderr, "io_uring_submit failed: %s\n", strerror(-err));
				goto cleanup;
			}
			if (wres < 0) {
				fprintf(stderr, "write %s failed: %s\n", dst, strerror(-wres));
				goto cleanup;
			}
			if (wres == 0) {
				fprintf(stderr, "write %s failed: wrote 0 bytes\n", dst);
				goto cleanup;
			}
			done += wres;
		}
		copied += res;
		// LAB:STARTER
		// (void)sqe;
		// (void)res;
		// (void)submit_and_reap;
		// break; /* copies nothing yet */
		// LAB:END
	}

	printf("copied=%llu blocks=%llu bs=%d\n", copied, blocks, BS);
	ret = 0;

cleanup:
	if (ring_ok)
		io_uring_queue_exit(&ring);
	free(buf);
	if (out_fd >= 0 && close(out_fd) < 0 && ret == 0) {
		fprintf(stderr, "close %s failed: %s\n", dst, strerror(errno));
		ret = 1;
	}
	if (in_fd >= 0)
		close(in_fd);
	return ret;
}
