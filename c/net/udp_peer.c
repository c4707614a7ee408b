// SPDX-License-Identifier: GPL-2.0
/*
 * udp_peer: the two ends of the UDP datagrams the net labs follow through
 * the stack. Students never edit it; it only sends datagrams of known ports
 * and lengths that the kernel can be watched on.
 *
 * Build: gcc -O2 -Wall -o udp_peer udp_peer.c
 * Run:   udp_peer recv <count> <reply_len> <port>[/lite] [<port>[/lite]…]   (receiver's namespace)
 *        udp_peer send <ip> <gap_ms>[/<end_ms>] [-r <cpu>:<ip>:<port>:<len>[-<len2>]] <port>:<len>[:opt<n>|:lite|:to<ip>|:sport<n>|:from<ip>][:race] […]
 *                                                                          (sender's namespace)
 *        udp_peer frame <ifname> <dst_mac> <ethertype> <ipproto> <port> <len> [<src_ip> <dst_ip>]  (sender's namespace)
 *        udp_peer bypass <ifname> <dst_mac> <ip> <port>:<len> <len>…            (sender's namespace)
 *
 * recv: bind one UDP socket per port (a UDP-Lite socket for <port>/lite),
 * print "listening", then receive <count> datagrams in all (poll), printing
 * "got <port> <len>" for each. A datagram to the first port is answered with
 * <reply_len> bytes from that port (0: no answer). Gives up after
 * RECV_TIMEOUT_MS without a datagram.
 * send: from one UDP socket, send each datagram (<len> random bytes to
 * <ip>:<port>) in the order given, <gap_ms> apart, printing
 * "sent <port> <len> sport=<source port>"; then wait <gap_ms> once more
 * (or <end_ms>; answers land in the open socket) and close. ":opt<n>" sends that one
 * with <n> bytes (a multiple of 4, at most 40) of IP options (NOPs, set
 * with IP_OPTIONS for this datagram only: its IPv4 header is 20 + <n>
 * bytes); ":lite" sends it from a second socket, a UDP-Lite one (IPv4
 * protocol 136, the same header layout as UDP); ":to<ip>" sends it to
 * that address instead of <ip>; ":sport<n>" sends it from a second socket
 * bound to source port <n> (kept open to the end, where its answer lands); ":from<ip>" from a third socket
 * bound to that local address (a second address of the sender's device; kept open to the end the same way). ":race" (with -r) sends it while another
 * thread, on CPU <cpu> and from a socket of its own, sends datagrams of
 * random bytes to the -r <ip>:<port> back to back (<len>, <len> + 1, …
 * <len2>, <len> again…: each a length of its own among its neighbours, though
 * the slab gives them one address after another): the thread starts
 * first, the datagram goes out once the thread has sent RACE_LEAD of them,
 * and the thread stops RACE_TAIL after this datagram's sendto() returned
 * (at most RACE_MAX in all), so the kernel has both threads' skbs on their
 * way at once; the line then ends with " raced=<how many the thread sent>".
 * Flags combine (e.g. <port>:<len>:opt8:race).
 * frame: send one Ethernet frame through a packet socket on <ifname> (it
 * passes the device's queue like any other) to <dst_mac>, of EtherType
 * <ethertype> (hex), laid out as an IPv4 header of protocol <ipproto>
 * (decimal) followed by an 8-byte header with <port> as its destination
 * port at the same offset as UDP's (and TCP's), then <len> zero bytes; a
 * bad transport checksum, so the peer's stack drops it without an answer.
 * Prints "framed <ethertype> <ipproto> <port> <len>". A frame that is not
 * IPv4 (EtherType other than 0800), or not UDP, for a tracer that reads the
 * bytes where a UDP datagram's would be. With <src_ip> <dst_ip> the IPv4
 * header carries them and a UDP header (protocol 17) is a good one: source
 * port 9, length 8 + <len>, no checksum (0, RFC 768): a UDP datagram that no
 * UDP socket sent (the skb's socket is the packet socket).
 * bypass: send one UDP datagram (<len> random bytes to <ip>:<port>), then at
 * once, from the same thread, one frame per further <len> through a packet
 * socket on <ifname> with PACKET_QDISC_BYPASS (dev_direct_xmit(): no qdisc,
 * so no net_dev_queue nor net_dev_xmit; the driver's xmit is called
 * directly) to <dst_mac>, EtherType 0x88b5, 28 + <len> zero bytes after the
 * Ethernet header (as long as a UDP datagram of <len> bytes: the peer's stack
 * has no handler for it and drops it). Prints "sent <port> <len>" and
 * "bypassed <len>" for each frame. Both sockets are opened first, so the
 * kernel allocates nothing for this process between the datagram's skb and
 * the frames' (a datagram the peer drops gives its skb back to this CPU's
 * slab, and one of the next skbs allocated here gets its address).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

#define MAX_PORTS 16
#define MAX_LEN 1400
#define RECV_TIMEOUT_MS 20000
#define RACE_LEAD 2
#define RACE_TAIL 4
#define RACE_MAX 400

/* The racing thread of ":race": its CPU, where it sends, how long, and how far it got. */
struct race {
	int cpu, len, len2, fd, err;
	struct sockaddr_in to;
	char buf[MAX_LEN];
	atomic_int sent, stop;
};

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

static void *race_run(void *arg)
{
	struct race *r = arg;
	int stop_at = -1;

	for (;;) {
		int n;

		int len = r->len + atomic_load(&r->sent) % (r->len2 - r->len + 1);

		if (sendto(r->fd, r->buf, len, 0, (struct sockaddr *)&r->to, sizeof(r->to)) != len) {
			r->err = errno;
			atomic_store(&r->sent, RACE_MAX);
			return NULL;
		}
		n = atomic_fetch_add(&r->sent, 1) + 1;
		if (stop_at < 0 && atomic_load(&r->stop))
			stop_at = n;
		if ((stop_at >= 0 && n >= stop_at + RACE_TAIL) || n >= RACE_MAX)
			return NULL;
	}
}

/* Parse <port>:<len>[:flag…]; returns 0 when the spec is good. */
static int parse_spec(const char *spec, int *port, int *len, int *opt, int *lite, int *race, struct in_addr *dst, int *sport, struct in_addr *src)
{
	const char *p;
	int n = 0;

	*opt = *lite = *race = *sport = 0;
	src->s_addr = htonl(INADDR_ANY);
	if (sscanf(spec, "%d:%d%n", port, len, &n) != 2 || *len < 0 || *len > MAX_LEN)
		return -1;
	for (p = spec + n; *p; ) {
		char flag[24];
		size_t k;

		if (*p != ':')
			return -1;
		p++;
		k = strcspn(p, ":");
		if (k == 0 || k >= sizeof(flag))
			return -1;
		memcpy(flag, p, k);
		flag[k] = '\0';
		p += k;
		if (strcmp(flag, "lite") == 0)
			*lite = 1;
		else if (strcmp(flag, "race") == 0)
			*race = 1;
		else if (strncmp(flag, "to", 2) == 0 && inet_pton(AF_INET, flag + 2, dst) == 1)
			;
		else if (strncmp(flag, "from", 4) == 0 && inet_pton(AF_INET, flag + 4, src) == 1 && src->s_addr != htonl(INADDR_ANY))
			;
		else if (sscanf(flag, "sport%d", sport) == 1 && *sport > 0 && *sport <= 65535)
			;
		else if (sscanf(flag, "opt%d", opt) != 1 || *opt <= 0 || *opt > 40 || *opt % 4)
			return -1;
	}
	return 0;
}

static int send_all(const char *ip, const char *gap, int n, char **specs, struct race *race)
{
	int gap_ms = 0, end_ms;
	struct sockaddr_in to = { .sin_family = AF_INET }, me;
	socklen_t mlen = sizeof(me);
	char buf[MAX_LEN];
	int i, fd, lite = -1, bound = -1, from = -1, ret = 1;
	struct in_addr from_addr = { 0 };

	if (sscanf(gap, "%d/%d", &gap_ms, &end_ms) < 2)
		end_ms = gap_ms;
	if (gap_ms < 0 || end_ms < 0) {
		fprintf(stderr, "bad gap %s (want <gap_ms>[/<end_ms>])\n", gap);
		return 1;
	}
	if (inet_pton(AF_INET, ip, &to.sin_addr) != 1) {
		fprintf(stderr, "not an IPv4 address: %s\n", ip);
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		return 1;
	}
	/* Each datagram in order, gap_ms apart: the kernel sees them one at a time (but for a ":race" one's racer). */
	for (i = 0; i < n; i++) {
		int port, len, opt, is_lite, is_race, sport, s = fd, raced = -1;
		struct sockaddr_in dst = to;
		struct in_addr src;
		unsigned char nops[40];
		pthread_t th;
		pthread_attr_t attr;
		cpu_set_t racer_cpus;

		if (parse_spec(specs[i], &port, &len, &opt, &is_lite, &is_race, &dst.sin_addr, &sport, &src) < 0 || (is_race && !race) ||
		    (sport && (is_lite || opt)) || (src.s_addr != htonl(INADDR_ANY) && (is_lite || opt || sport))) {
			fprintf(stderr, "bad datagram %s (want <port>:<len>[:opt<n>|:lite|:to<ip>|:sport<n>|:from<ip>][:race], len 0..%d, n 4..40 by 4, :race with -r, :sport and :from alone)\n", specs[i], MAX_LEN);
			goto cleanup;
		}
		if (getrandom(buf, len, 0) != len) {
			fprintf(stderr, "getrandom failed: %s\n", strerror(errno));
			goto cleanup;
		}
		if (is_lite) {
			if (lite < 0)
				lite = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
			if (lite < 0) {
				fprintf(stderr, "UDP-Lite socket failed: %s\n", strerror(errno));
				goto cleanup;
			}
			s = lite;
		}
		if (sport) {
			struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(sport) };

			if (bound < 0 && ((bound = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || bind(bound, (struct sockaddr *)&me, sizeof(me)) < 0)) {
				fprintf(stderr, "socket bound to port %d failed: %s\n", sport, strerror(errno));
				goto cleanup;
			}
			s = bound;
		}
		if (src.s_addr != htonl(INADDR_ANY)) {
			struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr = src };

			/* One socket for ":from", bound to the first such address: the others must name the same. */
			if (from >= 0 && from_addr.s_addr != src.s_addr) {
				fprintf(stderr, "bad datagram %s: one :from address per run\n", specs[i]);
				goto cleanup;
			}
			if (from < 0 && ((from = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || bind(from, (struct sockaddr *)&me, sizeof(me)) < 0)) {
				fprintf(stderr, "socket bound to %s failed: %s\n", inet_ntoa(src), strerror(errno));
				goto cleanup;
			}
			from_addr = src;
			s = from;
		}
		/* IP options for this datagram only: NOPs (RFC 791 type 1), which every hop keeps as they are. */
		memset(nops, 1, sizeof(nops));
		if (opt && setsockopt(fd, IPPROTO_IP, IP_OPTIONS, nops, opt) < 0) {
			fprintf(stderr, "setsockopt IP_OPTIONS failed: %s\n", strerror(errno));
			goto cleanup;
		}
		dst.sin_port = htons(port);
		if (is_race) {
			/* The racer runs first: this datagram goes out while the racer's skbs are on their way. */
			atomic_store(&race->sent, 0);
			atomic_store(&race->stop, 0);
			race->err = 0;
			/* Started on its CPU (not on this one, which the loop below keeps busy). */
			CPU_ZERO(&racer_cpus);
			CPU_SET(race->cpu, &racer_cpus);
			if ((errno = pthread_attr_init(&attr)) != 0 || (errno = pthread_attr_setaffinity_np(&attr, sizeof(racer_cpus), &racer_cpus)) != 0 ||
			    (errno = pthread_create(&th, &attr, race_run, race)) != 0) {
				fprintf(stderr, "racer on CPU %d: %s\n", race->cpu, strerror(errno));
				goto cleanup;
			}
			pthread_attr_destroy(&attr);
			while (atomic_load(&race->sent) < RACE_LEAD)
				;
		}
		if (sendto(s, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) != len) {
			fprintf(stderr, "sendto failed: %s\n", strerror(errno));
			if (is_race) {
				atomic_store(&race->stop, 1);
				pthread_join(th, NULL);
			}
			goto cleanup;
		}
		if (is_race) {
			atomic_store(&race->stop, 1);
			pthread_join(th, NULL);
			if (race->err) {
				fprintf(stderr, "racer on CPU %d failed: %s\n", race->cpu, strerror(race->err));
				goto cleanup;
			}
			raced = atomic_load(&race->sent);
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
		printf("sent %d %d sport=%d%s%s", port, len, ntohs(me.sin_port), strchr(strchr(specs[i], ':') + 1, ':') ? " " : "",
		       strchr(strchr(specs[i], ':') + 1, ':') ? strchr(strchr(specs[i], ':') + 1, ':') + 1 : "");
		if (raced >= 0)
			printf(" raced=%d", raced);
		printf("\n");
		fflush(stdout);
		usleep(gap_ms * 1000);
	}
	usleep(end_ms * 1000);
	ret = 0;
cleanup:
	if (lite >= 0)
		close(lite);
	if (bound >= 0)
		close(bound);
	if (from >= 0)
		close(from);
	close(fd);
	return ret;
}

/* The Internet checksum (RFC 1071) of an IPv4 header. */
static unsigned short ip_checksum(const unsigned char *h, int n)
{
	unsigned long sum = 0;
	int i;

	for (i = 0; i < n; i += 2)
		sum += (unsigned long)h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (unsigned short)~sum;
}

/* frame <ifname> <dst_mac> <ethertype> <ipproto> <port> <len>: one frame through a packet socket (see the top). */
static int send_frame(int argc, char **argv)
{
	unsigned char frame[14 + 20 + 8 + MAX_LEN] = { 0 }, *ip = frame + 14, *l4 = ip + 20, mac[6];
	unsigned int ethertype, proto, port, len, sum;
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_halen = 6 };
	struct ifreq ifr = { 0 };
	int fd, total, ret = 1, good = argc == 8;

	if ((good && (inet_pton(AF_INET, argv[6], ip + 12) != 1 || inet_pton(AF_INET, argv[7], ip + 16) != 1)) ||
	    sscanf(argv[1], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6 ||
	    sscanf(argv[2], "%x", &ethertype) != 1 || ethertype > 0xffff || sscanf(argv[3], "%u", &proto) != 1 || proto > 255 ||
	    sscanf(argv[4], "%u", &port) != 1 || port > 65535 || sscanf(argv[5], "%u", &len) != 1 || len > MAX_LEN ||
	    strlen(argv[0]) >= IFNAMSIZ) {
		fprintf(stderr, "bad frame (want <ifname> <dst_mac> <ethertype hex> <ipproto> <port> <len 0..%d> [<src_ip> <dst_ip>])\n", MAX_LEN);
		return 1;
	}
	fd = socket(AF_PACKET, SOCK_RAW, htons(ethertype));
	if (fd < 0) {
		fprintf(stderr, "packet socket failed: %s\n", strerror(errno));
		return 1;
	}
	strcpy(ifr.ifr_name, argv[0]);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		fprintf(stderr, "no device %s: %s\n", argv[0], strerror(errno));
		goto out;
	}
	to.sll_ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		fprintf(stderr, "no address of %s: %s\n", argv[0], strerror(errno));
		goto out;
	}
	to.sll_protocol = htons(ethertype);
	memcpy(to.sll_addr, mac, 6);
	/* Ethernet: destination, source, EtherType. */
	memcpy(frame, mac, 6);
	memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
	frame[12] = ethertype >> 8;
	frame[13] = ethertype & 0xff;
	/* IPv4 without options, from 0.0.0.0 to 0.0.0.0 (the peer's stack drops it) or the addresses given, protocol <ipproto>. */
	total = 20 + 8 + len;
	ip[0] = 0x45;
	ip[2] = total >> 8;
	ip[3] = total & 0xff;
	ip[8] = 64;
	ip[9] = proto;
	sum = ip_checksum(ip, 20);
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;
	/* Source port 9 (discard), destination <port>; a length and checksum no stack accepts. */
	l4[1] = 9;
	l4[2] = port >> 8;
	l4[3] = port & 0xff;
	l4[4] = 0xff;
	l4[5] = 0xff;
	l4[6] = 0xde;
	l4[7] = 0xad;
	/* Or a good UDP header: its length, no checksum. */
	if (good && proto == 17) {
		l4[4] = (8 + len) >> 8;
		l4[5] = (8 + len) & 0xff;
		l4[6] = l4[7] = 0;
	}
	if (sendto(fd, frame, 14 + total, 0, (struct sockaddr *)&to, sizeof(to)) != 14 + total) {
		fprintf(stderr, "sendto (frame) failed: %s\n", strerror(errno));
		goto out;
	}
	printf("framed %04x %u %u %u\n", ethertype, proto, port, len);
	fflush(stdout);
	ret = 0;
out:
	close(fd);
	return ret;
}

/* bypass <ifname> <dst_mac> <ip> <port>:<len> <len>…: a datagram, then frames past the qdisc (see the top). */
static int send_bypass(int n, char **argv)
{
	unsigned char frame[14 + 28 + MAX_LEN] = { 0 }, mac[6];
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_halen = 6, .sll_protocol = htons(0x88b5) };
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct ifreq ifr = { 0 };
	char buf[MAX_LEN];
	int port, len, i, one = 1, fd = -1, pfd = -1, ret = 1;

	if (sscanf(argv[1], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6 ||
	    inet_pton(AF_INET, argv[2], &to.sin_addr) != 1 || sscanf(argv[3], "%d:%d", &port, &len) != 2 || port <= 0 ||
	    port > 65535 || len < 0 || len > MAX_LEN || strlen(argv[0]) >= IFNAMSIZ) {
		fprintf(stderr, "bad bypass (want <ifname> <dst_mac> <ip> <port>:<len> <len>…, len 0..%d)\n", MAX_LEN);
		return 1;
	}
	for (i = 4; i < n; i++)
		if (atoi(argv[i]) < 0 || atoi(argv[i]) > MAX_LEN) {
			fprintf(stderr, "bad frame length %s (0..%d)\n", argv[i], MAX_LEN);
			return 1;
		}
	to.sin_port = htons(port);
	/* Both sockets first: nothing allocated between the datagram and the frames but their own skbs. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	pfd = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
	if (fd < 0 || pfd < 0) {
		fprintf(stderr, "socket failed: %s\n", strerror(errno));
		goto out;
	}
	if (setsockopt(pfd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		fprintf(stderr, "setsockopt PACKET_QDISC_BYPASS failed: %s\n", strerror(errno));
		goto out;
	}
	strcpy(ifr.ifr_name, argv[0]);
	if (ioctl(pfd, SIOCGIFINDEX, &ifr) < 0) {
		fprintf(stderr, "no device %s: %s\n", argv[0], strerror(errno));
		goto out;
	}
	ll.sll_ifindex = ifr.ifr_ifindex;
	memcpy(ll.sll_addr, mac, 6);
	if (ioctl(pfd, SIOCGIFHWADDR, &ifr) < 0) {
		fprintf(stderr, "no address of %s: %s\n", argv[0], strerror(errno));
		goto out;
	}
	memcpy(frame, mac, 6);
	memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
	frame[12] = 0x88;
	frame[13] = 0xb5;
	if (getrandom(buf, len, 0) != len) {
		fprintf(stderr, "getrandom failed: %s\n", strerror(errno));
		goto out;
	}
	if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) != len) {
		fprintf(stderr, "sendto failed: %s\n", strerror(errno));
		goto out;
	}
	for (i = 4; i < n; i++) {
		int flen = 14 + 28 + atoi(argv[i]);

		if (sendto(pfd, frame, flen, 0, (struct sockaddr *)&ll, sizeof(ll)) != flen) {
			fprintf(stderr, "sendto (bypass frame) failed: %s\n", strerror(errno));
			goto out;
		}
	}
	printf("sent %d %d\n", port, len);
	for (i = 4; i < n; i++)
		printf("bypassed %s\n", argv[i]);
	fflush(stdout);
	ret = 0;
out:
	if (pfd >= 0)
		close(pfd);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* -r <cpu>:<ip>:<port>:<len>[-<len2>]: the racer's settings (its socket opened here). */
static int race_setup(struct race *r, const char *arg)
{
	char ip[32];
	int port, n;

	memset(r, 0, sizeof(*r));
	r->to.sin_family = AF_INET;
	n = sscanf(arg, "%d:%31[0-9.]:%d:%d-%d", &r->cpu, ip, &port, &r->len, &r->len2);
	if (n == 4)
		r->len2 = r->len;
	if (n < 4 || r->cpu < 0 || r->cpu >= CPU_SETSIZE || inet_pton(AF_INET, ip, &r->to.sin_addr) != 1 || port <= 0 ||
	    port > 65535 || r->len < 0 || r->len2 < r->len || r->len2 > MAX_LEN) {
		fprintf(stderr, "bad -r %s (want <cpu>:<ip>:<port>:<len>[-<len2>], 0 <= len <= len2 <= %d)\n", arg, MAX_LEN);
		return -1;
	}
	r->to.sin_port = htons(port);
	if (getrandom(r->buf, r->len2, 0) != r->len2) {
		fprintf(stderr, "getrandom failed: %s\n", strerror(errno));
		return -1;
	}
	r->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (r->fd < 0) {
		fprintf(stderr, "socket (racer) failed: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "recv") == 0)
		return recv_all(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
	if (argc >= 7 && strcmp(argv[1], "send") == 0 && strcmp(argv[4], "-r") == 0) {
		static struct race race;
		int ret;

		if (race_setup(&race, argv[5]) < 0)
			return 1;
		ret = send_all(argv[2], argv[3], argc - 6, argv + 6, &race);
		close(race.fd);
		return ret;
	}
	if (argc >= 5 && strcmp(argv[1], "send") == 0)
		return send_all(argv[2], argv[3], argc - 4, argv + 4, NULL);
	if ((argc == 8 || argc == 10) && strcmp(argv[1], "frame") == 0)
		return send_frame(argc - 2, argv + 2);
	if (argc >= 7 && strcmp(argv[1], "bypass") == 0)
		return send_bypass(argc - 2, argv + 2);
	fprintf(stderr, "usage: udp_peer recv <count> <reply_len> <port>[/lite]…\n"
			"       udp_peer send <ip> <gap_ms>[/<end_ms>] [-r <cpu>:<ip>:<port>:<len>[-<len2>]] <port>:<len>[:opt<n>|:lite|:to<ip>|:sport<n>|:from<ip>][:race]…\n"
			"       udp_peer frame <ifname> <dst_mac> <ethertype hex> <ipproto> <port> <len> [<src_ip> <dst_ip>]\n"
			"       udp_peer bypass <ifname> <dst_mac> <ip> <port>:<len> <len>…\n");
	return 2;
}
