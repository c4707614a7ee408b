// SPDX-License-Identifier: GPL-2.0
/*
 * ip_probe: traffic the XDP filter's spec sends besides the student's
 * udp_sender (harness-owned, not a student file).
 *
 *   ip_probe udp-options <ip> <port> <count>
 *       <count> UDP datagrams whose IPv4 header carries 4 bytes of options
 *       (four NOPs, IP_OPTIONS in ip(7)): IHL is 6, so the UDP header starts
 *       24 bytes into the IP packet, not 20. Prints "sent=<n> errors=<n>".
 *   ip_probe tcp <ip> <port>
 *       One TCP connect(2), whose SYN has the destination port at the same
 *       offset as a UDP header's. Prints "refused" (the SYN reached TCP,
 *       which answered with a RST), "connected", or "timeout" (1 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int address(const char *ip, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
		fprintf(stderr, "ip_probe: not an IPv4 address: %s\n", ip);
		return -1;
	}
	return 0;
}

static int udp_options(const char *ip, const char *port, long count)
{
	static const unsigned char nops[4] = { 1, 1, 1, 1 };	/* IPOPT_NOOP ×4 */
	struct sockaddr_in sa;
	char payload[32] = "ip-options";
	long sent = 0, errors = 0, i;
	int fd;

	if (address(ip, port, &sa) < 0)
		return 2;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_OPTIONS, nops, sizeof(nops)) < 0) {
		fprintf(stderr, "ip_probe: socket/IP_OPTIONS: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < count; i++) {
		if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			errors++;
		else
			sent++;
	}
	printf("sent=%ld errors=%ld\n", sent, errors);
	close(fd);
	return 0;
}

static int tcp(const char *ip, const char *port)
{
	struct sockaddr_in sa;
	struct pollfd p;
	int fd, err = 0;
	socklen_t len = sizeof(err);

	if (address(ip, port, &sa) < 0)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		fprintf(stderr, "ip_probe: socket: %s\n", strerror(errno));
		return 1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		puts("connected");
		return 0;
	}
	if (errno != EINPROGRESS) {
		printf("%s\n", errno == ECONNREFUSED ? "refused" : strerror(errno));
		return 0;
	}
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, 1000) == 0) {
		puts("timeout");
		return 0;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	puts(err == 0 ? "connected" : err == ECONNREFUSED ? "refused" : strerror(err));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "udp-options") == 0)
		return udp_options(argv[2], argv[3], atol(argv[4]));
	if (argc == 4 && strcmp(argv[1], "tcp") == 0)
		return tcp(argv[2], argv[3]);
	fprintf(stderr, "usage: %s udp-options <ip> <port> <count> | tcp <ip> <port>\n", argv[0]);
	return 2;
}
