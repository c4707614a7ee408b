// SPDX-License-Identifier: GPL-2.0
/*
 * rx_peer: the two ends of the traffic Lab 8.1 watches arrive. Students never
 * edit it; it only switches offloads and sends data of known sizes.
 *
 * Build: gcc -O2 -Wall -o rx_peer rx_peer.c
 * Run (each in the namespace of the device or socket it names):
 *   rx_peer feature <ifname> tso|gso|gro on|off   ETHTOOL_S{TSO,GSO,GRO} (no ethtool binary needed)
 *   rx_peer sink <port> <connections>             accept that many TCP connections on <port>, read each
 *                                                 to EOF, print "got <bytes>" for each, then exit
 *   rx_peer tcp <ip> <port> <segments> [-b <source port>] [-o ra]
 *                                                 connect (from that source port with -b; with -o ra
 *                                                 every packet carries the IPv4 Router Alert option,
 *                                                 so its IPv4 header is 24 bytes, not 20), print
 *                                                 "connected mss=<TCP_MAXSEG>", write <segments> × mss bytes
 *                                                 at once, print "sent <bytes>", close and wait for the
 *                                                 peer's EOF
 *   rx_peer udp <ip> <port> <len>...              one UDP datagram of each <len> bytes, 1 ms apart
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 8
#define WAIT_MS 60000
#define MAX_UDP 1472

static int feature(const char *ifname, const char *which, const char *state)
{
	struct ethtool_value ev = { .data = strcmp(state, "on") == 0 };
	struct ifreq ifr;
	int fd, ret = 1;

	if (strcmp(which, "tso") == 0)
		ev.cmd = ETHTOOL_STSO;
	else if (strcmp(which, "gso") == 0)
		ev.cmd = ETHTOOL_SGSO;
	else if (strcmp(which, "gro") == 0)
		ev.cmd = ETHTOOL_SGRO;
	else {
		fprintf(stderr, "unknown feature %s (tso, gso, gro)\n", which);
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		fprintf(stderr, "SIOCETHTOOL %s %s %s failed: %s\n", ifname, which, state, strerror(errno));
	else {
		printf("%s %s %s\n", which, ifname, state);
		ret = 0;
	}
	close(fd);
	return ret;
}

static int sink(int port, int conns)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct pollfd pfd[MAX_CONNS + 1];
	long got[MAX_CONNS + 1] = { 0 };
	int lfd, one = 1, accepted = 0, done = 0, i;
	char buf[65536];

	if (conns < 1 || conns > MAX_CONNS) {
		fprintf(stderr, "1..%d connections\n", MAX_CONNS);
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, MAX_CONNS) < 0) {
		fprintf(stderr, "listen on %d failed: %s\n", port, strerror(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (done < conns) {
		int n = poll(pfd, 1 + accepted, WAIT_MS);

		if (n <= 0) {
			fprintf(stderr, "sink: nothing for %d ms (%d of %d connections done)\n", WAIT_MS, done, conns);
			return 1;
		}
		if (accepted < conns && (pfd[0].revents & POLLIN)) {
			int c = accept(lfd, NULL, NULL);

			if (c < 0) {
				fprintf(stderr, "accept failed: %s\n", strerror(errno));
				return 1;
			}
			accepted++;
			pfd[accepted] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
		for (i = 1; i <= accepted; i++) {
			ssize_t r;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pfd[i].fd, buf, sizeof(buf));
			if (r > 0) {
				got[i] += r;
				continue;
			}
			if (r < 0)
				fprintf(stderr, "read failed: %s\n", strerror(errno));
			printf("got %ld\n", got[i]);
			fflush(stdout);
			close(pfd[i].fd);
			pfd[i].fd = -1;
			done++;
		}
	}
	close(lfd);
	return 0;
}

static int tcp_send(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	/* IPv4 Router Alert (RFC 2113): type 148, length 4, value 0. */
	static const unsigned char ra[4] = { 148, 4, 0, 0 };
	int segs = atoi(argv[4]), mss = 0, sport = 0, opts = 0, one = 1, fd, i, ret = 1;
	socklen_t len = sizeof(mss);
	size_t total, off = 0;
	char *buf = NULL, c;

	for (i = 5; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "-b") == 0)
			sport = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "-o") == 0 && strcmp(argv[i + 1], "ra") == 0)
			opts = 1;
	}
	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1 || segs < 1) {
		fprintf(stderr, "bad address %s or segment count %s\n", argv[2], argv[4]);
		return 1;
	}
	src.sin_port = htons(sport);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (sport && bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) ||
	    (opts && setsockopt(fd, IPPROTO_IP, IP_OPTIONS, ra, sizeof(ra)) < 0) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len) < 0) {
		fprintf(stderr, "connect to %s:%s failed: %s\n", argv[2], argv[3], strerror(errno));
		goto cleanup;
	}
	printf("connected mss=%d\n", mss);
	fflush(stdout);
	total = (size_t)segs * mss;
	buf = malloc(total);
	if (!buf) {
		fprintf(stderr, "malloc failed\n");
		goto cleanup;
	}
	memset(buf, 'd', total);
	while (off < total) {
		ssize_t w = write(fd, buf + off, total - off);

		if (w < 0) {
			fprintf(stderr, "write failed: %s\n", strerror(errno));
			goto cleanup;
		}
		off += w;
	}
	printf("sent %zu\n", total);
	fflush(stdout);
	shutdown(fd, SHUT_WR);
	/* The peer closes after our FIN: wait for its EOF, so every segment is acknowledged. */
	while (read(fd, &c, 1) > 0)
		;
	ret = 0;
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int udp_send(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
	char buf[MAX_UDP];
	int fd, i;

	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
	memset(buf, 'u', sizeof(buf));
	for (i = 4; i < argc; i++) {
		int n = atoi(argv[i]);

		if (n < 1 || n > MAX_UDP || sendto(fd, buf, n, 0, (struct sockaddr *)&a, sizeof(a)) != n) {
			fprintf(stderr, "sendto %d bytes failed: %s\n", n, strerror(errno));
			close(fd);
			return 1;
		}
		printf("udp %d\n", n);
		usleep(1000);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "feature") == 0)
		return feature(argv[2], argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "sink") == 0)
		return sink(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "tcp") == 0)
		return tcp_send(argc, argv);
	if (argc >= 5 && strcmp(argv[1], "udp") == 0)
		return udp_send(argc, argv);
	fprintf(stderr, "usage: %s feature <if> tso|gso|gro on|off | sink <port> <n> | tcp <ip> <port> <segments> [-b sport] [-o ra] | udp <ip> <port> <len>...\n", argv[0]);
	return 2;
}
