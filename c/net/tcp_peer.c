// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_peer: the two ends of the TCP connections the net labs trace. Students
 * never edit it; it only makes connections the kernel can be watched on.
 *
 * Build: gcc -O2 -Wall -o tcp_peer tcp_peer.c
 * Run:   tcp_peer serve <port> <connections> [mptcp]   (in the server's namespace)
 *        tcp_peer connect <ip> <port> c|s [mptcp]      (in the client's namespace)
 *
 * serve: listen on <port>, print "listening" once the socket listens, accept
 * <connections> connections one after another, then close the listener.
 * For each connection it reads the client's one byte: 's' means the server
 * closes first (active close), 'c' means it waits for the client's FIN
 * (read() returns 0) and closes after it (passive close).
 * connect: connect to <ip>:<port>, send the byte, then close first ('c') or
 * wait for the server's FIN and close after it ('s'). Prints
 * "local_port=<its ephemeral port> connect_us=<microseconds connect() took>",
 * or "refused" (exit 2) when the SYN was answered with RST.
 * "mptcp": the socket is an MPTCP one (socket(AF_INET, SOCK_STREAM,
 * IPPROTO_MPTCP), RFC 8684): the kernel runs its connection over TCP
 * subflows, and the MPTCP socket has TCP-like states of its own. Where the
 * kernel has no MPTCP, it prints "no-mptcp: <error>" and exits 3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* A stream socket of the protocol asked for; -2 (after saying so) when the kernel has no MPTCP. */
static int stream_socket(int proto)
{
	int fd = socket(AF_INET, SOCK_STREAM, proto);

	if (fd < 0 && proto == IPPROTO_MPTCP && (errno == EPROTONOSUPPORT || errno == EINVAL || errno == ENOPROTOOPT)) {
		printf("no-mptcp: %s\n", strerror(errno));
		return -2;
	}
	if (fd < 0)
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
	return fd;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Read until the peer's FIN (read() returns 0). */
static int drain(int fd)
{
	char buf[64];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0) {
		fprintf(stderr, "read failed: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int serve(int port, int count, int proto)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	int lfd, fd, i, one = 1, ret = 1;
	char who;

	lfd = stream_socket(proto);
	if (lfd < 0)
		return lfd == -2 ? 3 : 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 16)) {
		fprintf(stderr, "bind/listen on port %d failed: %s\n", port, strerror(errno));
		goto cleanup;
	}
	printf("listening\n");
	fflush(stdout);
	for (i = 0; i < count; i++) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			fprintf(stderr, "accept failed: %s\n", strerror(errno));
			goto cleanup;
		}
		if (read(fd, &who, 1) != 1) {
			fprintf(stderr, "read of the close byte failed\n");
			close(fd);
			goto cleanup;
		}
		/* Passive close: wait for the client's FIN first. */
		if (who == 'c' && drain(fd)) {
			close(fd);
			goto cleanup;
		}
		close(fd);
	}
	ret = 0;
cleanup:
	close(lfd);
	return ret;
}

static int connect_to(const char *ip, int port, char who, int proto)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in local;
	socklen_t len = sizeof(local);
	double start, elapsed;
	int fd, ret = 1;

	if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", ip);
		return 1;
	}
	fd = stream_socket(proto);
	if (fd < 0)
		return fd == -2 ? 3 : 1;
	start = now_us();
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		if (errno == ECONNREFUSED) {
			printf("refused\n");
			ret = 2;
		} else {
			fprintf(stderr, "connect failed: %s\n", strerror(errno));
		}
		goto cleanup;
	}
	elapsed = now_us() - start;
	if (getsockname(fd, (struct sockaddr *)&local, &len)) {
		fprintf(stderr, "getsockname failed: %s\n", strerror(errno));
		goto cleanup;
	}
	printf("local_port=%d connect_us=%.0f\n", ntohs(local.sin_port), elapsed);
	fflush(stdout);
	if (write(fd, &who, 1) != 1) {
		fprintf(stderr, "write failed: %s\n", strerror(errno));
		goto cleanup;
	}
	/* Passive close on this side: wait for the server's FIN. */
	if (who == 's' && drain(fd))
		goto cleanup;
	ret = 0;
cleanup:
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	int mptcp = argc >= 5 && !strcmp(argv[argc - 1], "mptcp");
	int proto = mptcp ? IPPROTO_MPTCP : 0;

	if (argc - mptcp == 4 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]), atoi(argv[3]), proto);
	if (argc - mptcp == 5 && !strcmp(argv[1], "connect") && (argv[4][0] == 'c' || argv[4][0] == 's'))
		return connect_to(argv[2], atoi(argv[3]), argv[4][0], proto);
	fprintf(stderr, "usage: %s serve <port> <connections> [mptcp] | connect <ip> <port> c|s [mptcp]\n", argv[0]);
	return 1;
}
