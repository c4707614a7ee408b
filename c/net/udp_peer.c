// SPDX-License-Identifier: GPL-2.0
/*
 * udp_peer: the two ends of the UDP datagrams the net labs follow through
 * the stack. Students never edit it; it only sends datagrams of known ports
 * and lengths that the kernel can be watched on.
 *
 * Build: gcc -O2 -Wall -o udp_peer udp_peer.c
 * Run:   udp_peer recv <count> <reply_len> <port>[/lite] [<port>[/lite]…]   (receiver's namespace)
 *        udp_peer send <ip> <gap_ms> <port>:<len>[:opt<n>|:lite|:to<ip>] […] (sender's namespace)
 *
 * recv: bind one UDP socket per port (a UDP-Lite socket for <port>/lite),
 * print "listening", then receive <count> datagrams in all (poll), printing
 * "got <port> <len>" for each. A datagram to the first port is answered with
 * <reply_len> bytes from that port (0: no answer). Gives up after
 * RECV_TIMEOUT_MS without a datagram.
 * send: from one UDP socket, send each datagram (<len> random bytes to
 * <ip>:<port>) in the order given, <gap_ms> apart, printing
 * "sent <port> <len> sport=<source port>"; then wait <gap_ms> once more
 * (answers land in the open socket) and close. ":opt<n>" sends that one
 * with <n> bytes (a multiple of 4, at most 40) of IP options (NOPs, set
 * with IP_OPTIONS for this datagram only: its IPv4 header is 20 + <n>
 * bytes); ":lite" sends it from a second socket, a UDP-Lite one (IPv4
 * protocol 136, the same header layout as UDP); ":to<ip>" sends it to
 * that address instead of <ip>.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

#define MAX_PORTS 16
#define MAX_LEN 1400
#define RECV_TIMEOUT_MS 20000

static int recv_all(int count, int reply_len, int nports, char **ports)
{
	struct pollfd pfd[MAX_PORTS];
	char buf[MAX_LEN + 1], reply[MAX_LEN];
	int i, got = 0, ret = 1;

	if (nports > MAX_PORTS || reply_len < 0 || reply_len > MAX_LEN) {
		fprintf(stderr, "at most %d ports, reply_len 0..%d\n", MAX_PORTS, MAX_LEN);
		return 1;
	}
	memset(reply, 'r', sizeof(reply));
	for (i = 0; i < nports; i++)
		pfd[i].fd = -1;
	/* One bound socket per port. */
	for (i = 0; i < nports; i++) {
		struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(ports[i])) };
		const char *slash = strchr(ports[i], '/');

		pfd[i].fd = socket(AF_INET, SOCK_DGRAM, slash && strcmp(slash, "/lite") == 0 ? IPPROTO_UDPLITE : 0);
		pfd[i].events = POLLIN;
		if (pfd[i].fd < 0 || bind(pfd[i].fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			fprintf(stderr, "socket/bind port %s failed: %s\n", ports[i], strerror(errno));
			goto cleanup;
		}
	}
	printf("listening\n");
	fflush(stdout);
	/* Receive until <count> datagrams arrived, answering those to the first port. */
	while (got < count) {
		int n = poll(pfd, nports, RECV_TIMEOUT_MS);

		if (n <= 0) {
			fprintf(stderr, "poll: %s after %d datagrams\n", n == 0 ? "timed out" : strerror(errno), got);
			goto cleanup;
		}
		for (i = 0; i < nports; i++) {
			struct sockaddr_in from;
			socklen_t flen = sizeof(from);
			ssize_t len;

			if (!(pfd[i].revents & POLLIN))
				continue;
			len = recvfrom(pfd[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
			if (len < 0) {
				fprintf(stderr, "recvfrom failed: %s\n", strerror(errno));
				goto cleanup;
			}
			printf("got %s %zd\n", ports[i], len);
			fflush(stdout);
			got++;
			if (i == 0 && reply_len > 0 &&
			    sendto(pfd[i].fd, reply, reply_len, 0, (struct sockaddr *)&from, flen) < 0) {
				fprintf(stderr, "sendto (reply) failed: %s\n", strerror(errno));
				goto cleanup;
			}
		}
	}
	ret = 0;
cleanup:
	for (i = 0; i < nports; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	return ret;
}

static int send_all(const char *ip, int gap_ms, int n, char **specs)
{
	struct sockaddr_in to = { .sin_family = AF_INET }, me;
	socklen_t mlen = sizeof(me);
	char buf[MAX_LEN];
	int i, fd, lite = -1, ret = 1;

	if (inet_pton(AF_INET, ip, &to.sin_addr) != 1) {
		fprintf(stderr, "not an IPv4 address: %s\n", ip);
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
	/* Each datagram in order, gap_ms apart: the kernel sees them one at a time. */
	for (i = 0; i < n; i++) {
		int port, len, opt = 0, s = fd;
		char flag[24] = "";
		struct sockaddr_in dst = to;
		unsigned char nops[40];

		if (sscanf(specs[i], "%d:%d:%23s", &port, &len, flag) < 2 || len < 0 || len > MAX_LEN ||
		    (flag[0] && strcmp(flag, "lite") != 0 &&
		     !(strncmp(flag, "to", 2) == 0 && inet_pton(AF_INET, flag + 2, &dst.sin_addr) == 1) &&
		     (sscanf(flag, "opt%d", &opt) != 1 || opt <= 0 || opt > 40 || opt % 4))) {
			fprintf(stderr, "bad datagram %s (want <port>:<len>[:opt<n>|:lite|:to<ip>], len 0..%d, n 4..40 by 4)\n", specs[i], MAX_LEN);
			goto cleanup;
		}
		if (getrandom(buf, len, 0) != len) {
			fprintf(stderr, "getrandom failed: %s\n", strerror(errno));
			goto cleanup;
		}
		if (strcmp(flag, "lite") == 0) {
			if (lite < 0)
				lite = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
			if (lite < 0) {
				fprintf(stderr, "UDP-Lite socket failed: %s\n", strerror(errno));
				goto cleanup;
			}
			s = lite;
		}
		/* IP options for this datagram only: NOPs (RFC 791 type 1), which every hop keeps as they are. */
		memset(nops, 1, sizeof(nops));
		if (opt && setsockopt(fd, IPPROTO_IP, IP_OPTIONS, nops, opt) < 0) {
			fprintf(stderr, "setsockopt IP_OPTIONS failed: %s\n", strerror(errno));
			goto cleanup;
		}
		dst.sin_port = htons(port);
		if (sendto(s, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) != len) {
			fprintf(stderr, "sendto failed: %s\n", strerror(errno));
			goto cleanup;
		}
		if (opt && setsockopt(fd, IPPROTO_IP, IP_OPTIONS, NULL, 0) < 0) {
			fprintf(stderr, "setsockopt IP_OPTIONS (clear) failed: %s\n", strerror(errno));
			goto cleanup;
		}
		mlen = sizeof(me);
		if (getsockname(s, (struct sockaddr *)&me, &mlen) < 0) {
			fprintf(stderr, "getsockname failed: %s\n", strerror(errno));
			goto cleanup;
		}
		printf("sent %d %d sport=%d%s%s\n", port, len, ntohs(me.sin_port), flag[0] ? " " : "", flag);
		fflush(stdout);
		usleep(gap_ms * 1000);
	}
	usleep(gap_ms * 1000);
	ret = 0;
cleanup:
	if (lite >= 0)
		close(lite);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "recv") == 0)
		return recv_all(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
	if (argc >= 5 && strcmp(argv[1], "send") == 0)
		return send_all(argv[2], atoi(argv[3]), argc - 4, argv + 4);
	fprintf(stderr, "usage: udp_peer recv <count> <reply_len> <port>[/lite]…\n"
			"       udp_peer send <ip> <gap_ms> <port>:<len>[:opt<n>|:lite|:to<ip>]…\n");
	return 2;
}
