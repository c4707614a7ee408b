// SPDX-License-Identifier: GPL-2.0
/*
 * epoll_echo: a single-threaded TCP echo server on epoll(7): every byte a
 * client sends comes back to it, in order, however many clients are connected
 * and however slowly they read; a client that reads slowly must not stall
 * the others.
 *
 * Build: gcc -O2 -Wall -o epoll_echo epoll_echo.c
 * Run:   epoll_echo <port>        (listens on 0.0.0.0:<port>, runs until killed)
 *
 * Trigger mode of the connections (say here which one yours uses; the spec
 * reads it from /proc/<pid>/fdinfo): edge-triggered. The listener is
 * edge-triggered either way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUF_SIZE 4096

struct conn {
	int fd;
	size_t len;	/* bytes in buf not yet written back */
	size_t off;	/* first of them */
	char buf[BUF_SIZE];
};

static void close_conn(int epfd, struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/*
 * Echo what the client sent. Returns 0 to keep the connection, -1 to close it.
 * Called on every event of the connection (EPOLLIN or EPOLLOUT).
 */
static int service(struct conn *c)
{
	ssize_t n;

	// LAB:BEGIN echo: send back every byte this client sent, in order, correctly for the trigger mode the connection is registered with (epoll(7): level- versus edge-triggered, and when the kernel will not report the same data again); bytes the client is not ready to take wait in c->buf (c->off, c->len) while the other clients go on. Return 0 to keep the connection, -1 when the peer has closed it or on an error.
	for (;;) {
		/* First flush what is pending: a short write leaves the rest for EPOLLOUT. */
		while (c->len > 0) {
			n = write(c->fd, c->buf + c->off, c->len);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				if (errno == EINTR)
					continue;
				return -1;
			}
			c->off += n;
			c->len -= n;
		}
		/* Then read until EAGAIN: with EPOLLET no event comes for data already queued. */
		n = read(c->fd, c->buf, sizeof(c->buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		c->off = 0;
		c->len = n;
	}
	// LAB:STARTER
	// n = read(c->fd, c->buf, sizeof(c->buf));
	// if (n <= 0)
	// 	return n < 0 && errno == EAGAIN ? 0 : -1;
	// return 0;
	// LAB:END
}

/* Accept every pending connection (the listener is edge-triggered too). */
static void accept_all(int epfd, int lfd)
{
	struct epoll_event ev;
	struct conn *c;
	int fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				fprintf(stderr, "accept4 failed: %s\n", strerror(errno));
			if (errno == EINTR)
				continue;
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		// LAB:BEGIN register the new connection with the epoll instance so that the kernel reports it when there is something to read and when a pending echo can be written, and so that its events lead back to c (epoll_ctl(2), struct epoll_event; the trigger mode is yours to choose, see the header). On failure report it and drop the connection
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
			fprintf(stderr, "epoll_ctl ADD failed: %s\n", strerror(errno));
			close(fd);
			free(c);
		}
		// LAB:STARTER
		// (void)ev;
		// close(fd);
		// free(c);
		// LAB:END
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct epoll_event ev, events[MAX_EVENTS];
	int lfd = -1, epfd = -1, one = 1, n, i, ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s <port>\n", argv[0]);
		return 1;
	}
	addr.sin_port = htons(atoi(argv[1]));
	/*
	 * A client may leave before it has read its echo: writing to it then
	 * fails with EPIPE, and the kernel also sends SIGPIPE, whose default
	 * action would end the whole server (signal(7)). Handle the error instead.
	 */
	signal(SIGPIPE, SIG_IGN);

	/* A non-blocking listening socket. */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		goto cleanup;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 4096)) {
		fprintf(stderr, "bind/listen failed: %s\n", strerror(errno));
		goto cleanup;
	}

	/* One epoll instance; the listener is its first member (data.ptr NULL). */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "epoll_create1 failed: %s\n", strerror(errno));
		goto cleanup;
	}
	ev.events = EPOLLIN | EPOLLET;
	ev.data.ptr = NULL;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev)) {
		fprintf(stderr, "epoll_ctl ADD listener failed: %s\n", strerror(errno));
		goto cleanup;
	}

	/* The event loop: work only on the connections the kernel says are ready. */
	for (;;) {
		n = epoll_wait(epfd, events, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "epoll_wait failed: %s\n", strerror(errno));
			goto cleanup;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;

			if (!c)
				accept_all(epfd, lfd);
			else if (service(c))
				close_conn(epfd, c);
		}
	}
	ret = 0;
cleanup:
	if (epfd >= 0)
		close(epfd);
	if (lfd >= 0)
		close(lfd);
	return ret;
}
