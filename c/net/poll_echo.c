// SPDX-License-Identifier: GPL-2.0
/*
 * poll_echo: the same echo server as the student's, on poll(2) instead of
 * epoll: every call hands the kernel the whole array of connections, and the
 * kernel checks each one (and the server scans the answer). Net Lab 1
 * compares its work per event with the epoll server's as connections grow.
 * Students never edit it.
 *
 * Build: gcc -O2 -Wall -o poll_echo poll_echo.c
 * Run:   poll_echo <port>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096

struct conn {
	size_t len, off;
	char buf[BUF_SIZE];
};

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct pollfd *pfds = NULL;
	struct conn **conns = NULL;
	size_t nfds = 1, cap = 1024, i;
	int lfd, fd, one = 1, ret = 1;
	ssize_t n;

	/* A client that leaves before its echo is written must not kill the server (EPIPE instead of SIGPIPE). */
	signal(SIGPIPE, SIG_IGN);
	if (argc != 2) {
		fprintf(stderr, "usage: %s <port>\n", argv[0]);
		return 1;
	}
	addr.sin_port = htons(atoi(argv[1]));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 4096)) {
		fprintf(stderr, "listen on port %s failed: %s\n", argv[1], strerror(errno));
		return 1;
	}
	pfds = calloc(cap, sizeof(*pfds));
	conns = calloc(cap, sizeof(*conns));
	if (!pfds || !conns)
		goto cleanup;
	pfds[0].fd = lfd;
	pfds[0].events = POLLIN;

	for (;;) {
		if (poll(pfds, nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "poll failed: %s\n", strerror(errno));
			goto cleanup;
		}
		/* New connections. */
		if (pfds[0].revents & POLLIN) {
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
				if (nfds == cap) {
					cap *= 2;
					pfds = realloc(pfds, cap * sizeof(*pfds));
					conns = realloc(conns, cap * sizeof(*conns));
					if (!pfds || !conns)
						goto cleanup;
				}
				conns[nfds] = calloc(1, sizeof(struct conn));
				if (!conns[nfds]) {
					close(fd);
					continue;
				}
				pfds[nfds].fd = fd;
				pfds[nfds].events = POLLIN;
				pfds[nfds].revents = 0;
				nfds++;
			}
		}
		/* Every connection is looked at: the O(n) scan poll(2) implies. */
		for (i = 1; i < nfds; i++) {
			struct conn *c = conns[i];

			if (!pfds[i].revents)
				continue;
			if (c->len == 0) {
				n = read(pfds[i].fd, c->buf, sizeof(c->buf));
				if (n == 0 || (n < 0 && errno != EAGAIN)) {
					close(pfds[i].fd);
					free(c);
					/* Move the last one here and look at this slot again. */
					nfds--;
					pfds[i] = pfds[nfds];
					conns[i] = conns[nfds];
					i--;
					continue;
				}
				if (n > 0) {
					c->off = 0;
					c->len = n;
				}
			}
			if (c->len > 0) {
				n = write(pfds[i].fd, c->buf + c->off, c->len);
				if (n > 0) {
					c->off += n;
					c->len -= n;
				}
			}
			/* Wait for room to write the rest, or for more to read. */
			pfds[i].events = c->len ? POLLOUT : POLLIN;
		}
	}
	ret = 0;
cleanup:
	fprintf(stderr, "poll_echo: out of memory\n");
	return ret;
}
