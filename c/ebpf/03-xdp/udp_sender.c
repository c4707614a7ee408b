// SPDX-License-Identifier: GPL-2.0
/*
 * udp_sender: send COUNT UDP datagrams of PAYLOAD bytes to IP:PORT as fast
 * as one socket can, and report how long it took. Used to compare where a
 * packet dies: an XDP_DROP at the driver vs a firewall DROP rule.
 *
 *     udp_sender <ipv4> <port> <count> [payload bytes]
 *     -> sent=<n> errors=<n> elapsed_ns=<ns> pps=<packets per second>
 *
 * Build: gcc -O2 -Wall -o udp_sender udp_sender.c
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

#define DEFAULT_PAYLOAD 64
#define MAX_PAYLOAD 1400
#define NSEC_PER_SEC 1000000000LL

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static char payload[MAX_PAYLOAD];
	struct sockaddr_in dst;
	long long start, elapsed;
	long count, sent = 0, errors = 0;
	size_t len = DEFAULT_PAYLOAD;
	int fd, ret = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: %s <ipv4> <port> <count> [payload bytes]\n", argv[0]);
		return 2;
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "inet_pton failed: not an IPv4 address: %s\n", argv[1]);
		return 2;
	}
	count = atol(argv[3]);
	if (argc > 4)
		len = strtoul(argv[4], NULL, 10);
	if (count <= 0 || len > MAX_PAYLOAD) {
		fprintf(stderr, "count must be > 0 and payload <= %d bytes\n", MAX_PAYLOAD);
		return 2;
	}
	memset(payload, 'x', sizeof(payload));

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
	/*
	 * Unconnected on purpose: an ICMP port unreachable coming back would make
	 * the next send(2) on a connected socket fail with ECONNREFUSED.
	 */
	start = now_ns();
	// LAB:BEGIN send `count` datagrams of `len` bytes of payload to dst on this unconnected socket (sendto(2)); each datagram the kernel accepted whole counts in `sent`, any other outcome in `errors`, and a failure does not end the run
	for (long i = 0; i < count; i++) {
		if (sendto(fd, payload, len, 0, (struct sockaddr *)&dst, sizeof(dst)) == (ssize_t)len)
			sent++;
		else
			errors++;
	}
	// LAB:STARTER
	// sent = 0;
	// LAB:END
	elapsed = now_ns() - start;

	printf("sent=%ld errors=%ld elapsed_ns=%lld pps=%.0f\n", sent, errors, elapsed,
	       elapsed > 0 ? (double)sent * NSEC_PER_SEC / elapsed : 0.0);
	ret = sent == count ? 0 : 1;
	close(fd);
	return ret;
}
