// SPDX-License-Identifier: GPL-2.0
/*
 * link_cp: Lab 3's copy with linked SQEs. For each block the read and the
 * write of the same buffer form a linked chain: the kernel starts the write
 * only after the read has completed in full. NCHAINS such chains go
 * to the kernel in one io_uring_enter(2), and the program waits for all their
 * completions in that same call — one system call per NCHAINS blocks instead
 * of two per block.
 *
 * A short read breaks the link: the read's CQE has the bytes it got and the
 * write's CQE has -ECANCELED. The block then continues without a link: the
 * bytes already read are written, and the rest is read and written by a new
 * chain. A short write is continued the same way. Any other negative res ends
 * the copy with "<op> <file> failed: <reason>".
 *
 * Build: gcc -O2 -Wall -o link_cp link_cp.c -luring
 * Run:   ./link_cp <src> <dst>
 * Output (stdout, one line): "copied=<bytes> blocks=<n> bs=<BS> chains=<NCHAINS> submits=<io_uring_enter calls> cancelled=<writes cut by a short read>"
 * Exit:  0 on success, 1 on any error, 77 when io_uring is unavailable.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define NCHAINS	8		/* read→write chains submitted together */
#define BS	(32 * 1024)	/* block size, as in uring_cp */
#define OP_READ	0
#define OP_WRITE 1

struct job {
	off_t off;		/* where the block starts in both files */
	unsigned int len;	/* block length (the last block may be shorter) */
	unsigned int rpos;	/* bytes of the block read so far */
	unsigned int wpos;	/* bytes of the block written so far */
	int pending;		/* CQEs still expected for the requests in flight */
	int busy;		/* the job holds a block */
	char *buf;
};

struct copy {
	struct io_uring ring;
	int in_fd, out_fd;
	const char *src, *dst;
	off_t size, next_off;
	unsigned long long copied, blocks, cancelled;
	int active;		/* jobs holding a block */
	int inflight;		/* CQEs expected over all jobs */
	struct job jobs[NCHAINS];
};

static struct io_uring_sqe *get_sqe(struct copy *c, struct job *j, int op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	if (!sqe) {
		fprintf(stderr, "io_uring_get_sqe failed: submission queue full\n");
		return NULL;
	}
	j->pending++;
	c->inflight++;
	sqe->user_data = ((uint64_t)(j - c->jobs) << 1) | op;	/* which job, which operation */
	return sqe;
}

/* Queue the block's next step: a read→write chain, or the write of bytes already read. */
static int issue(struct copy *c, struct job *j)
{
	struct io_uring_sqe *rsqe, *wsqe;
	unsigned int n = j->len - j->rpos;

	if (j->rpos > j->wpos) {
		/* After a short read or write: write what is in the buffer, unlinked. */
		wsqe = get_sqe(c, j, OP_WRITE);
		if (!wsqe)
			return -1;
		io_uring_prep_write(wsqe, c->out_fd, j->buf + j->wpos, j->rpos - j->wpos, j->off + j->wpos);
		return 0;
	}
	rsqe = get_sqe(c, j, OP_READ);
	wsqe = rsqe ? get_sqe(c, j, OP_WRITE) : NULL;
	if (!wsqe)
		return -1;
	// LAB:BEGIN One chain for the n bytes of the block not read yet: rsqe reads them from the source into the block's buffer at their own position, wsqe writes the same bytes to the same offset of the destination, and the two are linked so that the kernel starts the write only once the read has completed in full (io_uring_enter(2), "IOSQE_IO_LINK"; io_uring_sqe_set_flags(3)).
	io_uring_prep_read(rsqe, c->in_fd, j->buf + j->rpos, n, j->off + j->rpos);
	io_uring_sqe_set_flags(rsqe, IOSQE_IO_LINK);
	io_uring_prep_write(wsqe, c->out_fd, j->buf + j->rpos, n, j->off + j->rpos);
	// LAB:STARTER
	// (void)n;
	// io_uring_prep_nop(rsqe);
	// io_uring_prep_nop(wsqe);
	// LAB:END
	return 0;
}

/* Give the job the next block of the file (or retire it at the end). */
static int start_block(struct copy *c, struct job *j)
{
	if (c->next_off >= c->size) {
		if (j->busy)
			c->active--;
		j->busy = 0;
		return 0;
	}
	if (!j->busy)
		c->active++;
	j->busy = 1;
	j->off = c->next_off;
	j->len = c->size - c->next_off < BS ? c->size - c->next_off : BS;
	j->rpos = j->wpos = 0;
	c->next_off += j->len;
	c->blocks++;
	return issue(c, j);
}

/* One completion. When the job has no request left in flight, take its next step. */
static int on_cqe(struct copy *c, struct io_uring_cqe *cqe)
{
	struct job *j = &c->jobs[cqe->user_data >> 1];
	int op = cqe->user_data & 1;
	int res = cqe->res;

	j->pending--;
	c->inflight--;
	// LAB:BEGIN Account for this completion (op, res) in the block's read and write positions; res is what the kernel did (io_uring_enter(2), "IOSQE_IO_LINK": what becomes of the rest of a chain when a request in it fails or comes up short, and which res the skipped request then completes with; c->cancelled counts those). A read that failed or found the source ended early, and a write that failed or wrote nothing, print "<read|write> <file> failed: <reason>" and return -1. Once the job has no request left in flight, move it on with the helpers above: a block written in full counts in c->copied and the job takes the next block.
	if (op == OP_READ) {
		if (res < 0) {
			fprintf(stderr, "read %s failed: %s\n", c->src, strerror(-res));
			return -1;
		}
		if (res == 0) {
			fprintf(stderr, "read %s failed: file ended at %lld, expected %lld bytes\n",
				c->src, (long long)(j->off + j->rpos), (long long)c->size);
			return -1;
		}
		j->rpos += res;
	} else if (res == -ECANCELED) {
		c->cancelled++;		/* the linked read was short: nothing was written */
	} else if (res < 0) {
		fprintf(stderr, "write %s failed: %s\n", c->dst, strerror(-res));
		return -1;
	} else if (res == 0) {
		fprintf(stderr, "write %s failed: wrote 0 bytes\n", c->dst);
		return -1;
	} else {
		j->wpos += res;
	}
	if (j->pending > 0)
		return 0;
	if (j->wpos == j->len) {
		c->copied += j->len;
		return start_block(c, j);
	}
	return issue(c, j);
	// LAB:STARTER
	// fprintf(stderr, "%s completion (res %d): not handled yet (on_cqe)\n", op == OP_READ ? "read" : "write", res);
	// return -1;
	// LAB:END
}

int main(int argc, char **argv)
{
	struct copy c = { .in_fd = -1, .out_fd = -1 };
	unsigned long long submits = 0;
	int ring_ok = 0, i, err;
	struct stat st;
	int ret = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <src> <dst>\n", argv[0]);
		return 1;
	}
	c.src = argv[1];
	c.dst = argv[2];

	/* Open both files and learn the size to copy. */
	c.in_fd = open(c.src, O_RDONLY);
	if (c.in_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", c.src, strerror(errno));
		goto cleanup;
	}
	if (fstat(c.in_fd, &st) < 0) {
		fprintf(stderr, "fstat %s failed: %s\n", c.src, strerror(errno));
		goto cleanup;
	}
	c.size = st.st_size;
	c.out_fd = open(c.dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (c.out_fd < 0) {
		fprintf(stderr, "open %s failed: %s\n", c.dst, strerror(errno));
		goto cleanup;
	}
	for (i = 0; i < NCHAINS; i++) {
		c.jobs[i].buf = malloc(BS);
		if (!c.jobs[i].buf) {
			fprintf(stderr, "malloc failed: %s\n", strerror(errno));
			goto cleanup;
		}
	}

	/* Two SQEs (read + write) per chain. */
	err = io_uring_queue_init(2 * NCHAINS, &c.ring, 0);
	if (err < 0) {
		fprintf(stderr, "io_uring_queue_init failed: %s\n", strerror(-err));
		ret = (err == -ENOSYS || err == -EPERM) ? 77 : 1;
		goto cleanup;
	}
	ring_ok = 1;

	/*
	 * Queue a chain per job, then one io_uring_enter submits them all and
	 * waits until every CQE they will produce has arrived; handle those
	 * CQEs (which queues the next chains) and go again.
	 */
	for (i = 0; i < NCHAINS; i++)
		if (start_block(&c, &c.jobs[i]) < 0)
			goto cleanup;
	while (c.active > 0) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		int failed = 0;

		err = io_uring_submit_and_wait(&c.ring, c.inflight);
		submits++;
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "io_uring_submit_and_wait failed: %s\n", strerror(-err));
			goto cleanup;
		}
		io_uring_for_each_cqe(&c.ring, head, cqe) {
			seen++;
			if (on_cqe(&c, cqe) < 0) {
				failed = 1;
				break;
			}
		}
		io_uring_cq_advance(&c.ring, seen);
		if (failed)
			goto cleanup;
	}

	printf("copied=%llu blocks=%llu bs=%d chains=%d submits=%llu cancelled=%llu\n",
	       c.copied, c.blocks, BS, NCHAINS, submits, c.cancelled);
	ret = 0;

cleanup:
	if (ring_ok)
		io_uring_queue_exit(&c.ring);
	for (i = 0; i < NCHAINS; i++)
		free(c.jobs[i].buf);
	if (c.out_fd >= 0 && close(c.out_fd) < 0 && ret == 0) {
		fprintf(stderr, "close %s failed: %s\n", c.dst, strerror(errno));
		ret = 1;
	}
	if (c.in_fd >= 0)
		close(c.in_fd);
	return ret;
}
