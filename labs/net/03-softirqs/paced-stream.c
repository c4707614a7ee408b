// SPDX-License-Identifier: GPL-2.0
/*
 * paced-stream: a TCP stream whose sender the kernel paces (a harness program
 * of Net Lab 3's spec, never the student's).
 *
 *   paced-stream recv <ip> <port>                       accept one connection, read it to EOF, print "received <n>"
 *   paced-stream send <ip> <port> <bytes> <bytes/s>    connect, send <bytes> at most <bytes/s>, close
 *
 * SO_MAX_PACING_RATE (socket(7)) caps the sender's rate; without the fq
 * qdisc, TCP paces itself with one high-resolution timer per socket in
 * softirq mode (tcp_pacing_timer, HRTIMER_MODE_ABS_PINNED_SOFT in
 * net/ipv4/tcp_output.c): every wait for the next packet's departure ends in
 * an HRTIMER softirq. The spec uses it to make that vector run.
 *
 * Build: gcc -O2 -Wall -o paced-stream paced-stream.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_MAX_PACING_RATE
#define SO_MAX_PACING_RATE 47
#endif

static int fail(const char *what)
{
	fprintf(stderr, "paced-stream: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	static char buf[65536];
	int s, one = 1;

	if (argc < 4 || (strcmp(argv[1], "recv") && strcmp(argv[1], "send")) || (!strcmp(argv[1], "send") && argc != 6)) {
		fprintf(stderr, "usage: %s recv <ip> <port> | send <ip> <port> <bytes> <bytes/s>\n", argv[0]);
		return 2;
	}
	a.sin_port = htons(atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
		fprintf(stderr, "paced-stream: not an IPv4 address: %s\n", argv[2]);
		return 2;
	}
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (!strcmp(argv[1], "recv")) {
		long long got = 0;
		ssize_t n;
		int c;

		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
			return fail("bind/listen");
		printf("listening\n");
		fflush(stdout);
		c = accept(s, NULL, NULL);
		if (c < 0)
			return fail("accept");
		while ((n = read(c, buf, sizeof(buf))) > 0)
			got += n;
		if (n < 0)
			return fail("read");
		printf("received %lld\n", got);
		return 0;
	}
	{
		long long left = atoll(argv[4]);
		unsigned long long rate = strtoull(argv[5], NULL, 10);

		if (setsockopt(s, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof(rate)) < 0)
			return fail("SO_MAX_PACING_RATE");
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
			return fail("connect");
		memset(buf, 'x', sizeof(buf));
		while (left > 0) {
			ssize_t n = write(s, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf));

			if (n < 0)
				return fail("write");
			left -= n;
		}
		close(s);
		return 0;
	}
}
