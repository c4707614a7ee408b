// SPDX-License-Identifier: GPL-2.0
/*
 * wire_frames: print every frame a network namespace's interfaces send and
 * receive, as the kernel hands them to an AF_PACKET socket (packet(7)), for
 * the routing lab's checks: the Ethernet header as it was on the wire (which
 * MAC sent it), ARP requests and replies, the IPv4 header with its TTL.
 * A harness program of Lab 8.2: students never edit it.
 *
 * Build: gcc -O2 -Wall -o wire_frames wire_frames.c
 * Run:   ip netns exec <ns> wire_frames <seconds>
 *        prints "listening" once the socket is open, then one line per frame:
 *        <n> <ifindex> <pkttype> <length> <hex of the first SNAP bytes>
 *        (pkttype: 0 to this host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing)
 *        and "done <frames>" when <seconds> have passed or on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SNAP 128		/* Ethernet + IPv4 with options + ICMP/UDP header + some payload */
#define POLL_MS 50

static volatile sig_atomic_t stop;
static const int stop_signals[] = { SIGTERM, SIGINT };

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned char buf[2048];
	struct sockaddr_ll from;
	struct sigaction sa;
	unsigned long frames = 0;
	double deadline;
	int fd, i, ret = 1;

	if (argc != 2 || atof(argv[1]) <= 0) {
		fprintf(stderr, "usage: %s <seconds>\n", argv[0]);
		return 2;
	}
	deadline = now() + atof(argv[1]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	for (i = 0; i < (int)(sizeof(stop_signals) / sizeof(stop_signals[0])); i++)
		sigaction(stop_signals[i], &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Every protocol, every interface of this namespace, both directions. */
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0) {
		fprintf(stderr, "socket(AF_PACKET) failed: %s\n", strerror(errno));
		return 1;
	}
	printf("listening\n");

	while (!stop && now() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		socklen_t len = sizeof(from);
		ssize_t n;
		int shown;

		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from, &len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "recvfrom failed: %s\n", strerror(errno));
			goto out;
		}
		shown = n < SNAP ? (int)n : SNAP;
		if (shown > (int)sizeof(buf))
			shown = sizeof(buf);
		printf("%lu %d %u %zd ", ++frames, from.sll_ifindex, from.sll_pkttype, n);
		for (i = 0; i < shown; i++)
			printf("%02x", buf[i]);
		printf("\n");
	}
	ret = 0;
out:
	printf("done %lu\n", frames);
	close(fd);
	return ret;
}
