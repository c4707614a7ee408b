// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_peer: the two ends of the TCP connections the net labs trace. Students
 * never edit it; it only makes connections the kernel can be watched on.
 *
 * Build: gcc -O2 -Wall -o tcp_peer tcp_peer.c
 * Run:   tcp_peer serve <port> <connections>   (in the server's namespace)
 *        tcp_peer connect <ip> <port> c|s      (in the client's namespace)
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

static int serve(int port, int count)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	int lfd, fd, i, one = 1, ret = 1;
	char who;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
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

static int connect_to(const char *ip, int port, char who)
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
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
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
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]), atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "connect") && (argv[4][0] == 'c' || argv[4][0] == 's'))
		return connect_to(argv[2], atoi(argv[3]), argv[4][0]);
	fprintf(stderr, "usage: %s serve <port> <connections> | connect <ip> <port> c|s\n", argv[0]);
	return 1;
}
