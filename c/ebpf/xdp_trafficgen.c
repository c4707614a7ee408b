// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_trafficgen: an in-kernel UDP traffic generator for Lab 1.3's
 * XDP-vs-nftables measurement (the harness's program; the student never
 * edits it). A user-space sender pays for a socket, an sk_buff and the IP
 * output path per datagram and cannot outrun the receiving veth end; this
 * one lets the kernel replay one prebuilt frame:
 *
 *   BPF_PROG_TEST_RUN (bpf_prog_test_run_opts) with the flag
 *   BPF_F_TEST_XDP_LIVE_FRAMES (kernel >= 5.18) runs the XDP program of
 *   xdp_trafficgen.bpf.c `repeat` times on a frame built from data_in, and
 *   every XDP_REDIRECT it returns really happens: the frame leaves through
 *   the interface the program names, as if a NIC had received and forwarded
 *   it. On a veth end the frame lands in the peer's receive ring (xdp_frame,
 *   no sk_buff yet), which needs NAPI on the peer: an XDP program attached
 *   there, or GRO switched on (`--gro`).
 *
 * Bounded: at most <count> frames and <max seconds> (checked between calls,
 * each sized to end within the bound; the kernel also stops a call on a signal).
 *
 * Build: gcc -O2 -g -Wall xdp_trafficgen.c -o xdp_trafficgen -lbpf
 * Usage: xdp_trafficgen <xdp_trafficgen.bpf.o> <out ifname> <dst mac> <dst ip> <dst port> <count> <max seconds>
 *        prints: sent=<frames> calls=<n> elapsed_ns=<ns> pps=<rate> cpu_ns=<this process's user+system time>
 *                wait_ns=<time it was runnable but another task had its CPU>
 *        xdp_trafficgen --gro <ifname> on|off   (run in the namespace of <ifname>: NAPI on a veth end without XDP)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/sockios.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif

/*
 * Frames per bpf_prog_test_run_opts() call: the first call sends FIRST_CHUNK,
 * each later one as many as the last call's rate fills in CALL_NS (capped by
 * what is left of the count and of the time bound). Each call ends with the
 * kernel tearing down its page pool, which waits for an RCU grace period
 * (milliseconds, the task asleep in synchronize_rcu): with short calls the
 * generator would spend most of its time there instead of sending.
 */
#define FIRST_CHUNK (1ull << 14)
#define MAX_CHUNK (1ull << 30)
#define CALL_NS 200000000ull
/* UDP payload bytes: 14 + 20 + 8 + 18 = 60, the shortest Ethernet frame. */
#define PAYLOAD 18
#define SRC_PORT 40000

struct frame {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	unsigned char payload[PAYLOAD];
} __attribute__((packed));

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Time this task spent runnable but waiting for a CPU (second field of /proc/self/schedstat), ns; 0 if unknown. */
static unsigned long long wait_ns(void)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

static unsigned long long cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* The IPv4 header checksum: ones' complement of the ones' complement sum of its 16-bit words. */
static unsigned short ip_checksum(const void *hdr, size_t len)
{
	const unsigned short *w = hdr;
	unsigned long sum = 0;

	for (; len > 1; len -= 2)
		sum += *w++;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static int parse_mac(const char *s, unsigned char mac[ETH_ALEN])
{
	unsigned int b[ETH_ALEN];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != ETH_ALEN)
		return -1;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = b[i];
	return 0;
}

/* The MAC and IPv4 address of <ifname>, read with SIOCGIFHWADDR / SIOCGIFADDR. */
static int if_addresses(const char *ifname, unsigned char mac[ETH_ALEN], struct in_addr *ip)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret = -1;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		fprintf(stderr, "SIOCGIFHWADDR %s: %s\n", ifname, strerror(errno));
		goto out;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	if (ioctl(fd, SIOCGIFADDR, &ifr) < 0) {
		fprintf(stderr, "SIOCGIFADDR %s: %s\n", ifname, strerror(errno));
		goto out;
	}
	*ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	ret = 0;
out:
	close(fd);
	return ret;
}

/* Switch GRO of <ifname> on or off (the legacy ETHTOOL_SGRO request; no ethtool binary needed). */
static int set_gro(const char *ifname, const char *state)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_SGRO, .data = strcmp(state, "on") == 0 };
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return 1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
		fprintf(stderr, "ETHTOOL_SGRO %s %s: %s\n", ifname, state, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	printf("gro %s %s\n", ifname, state);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bpf_map *cfg;
	struct frame f = {};
	struct in_addr src_ip, dst_ip;
	unsigned long long count, sent = 0, calls = 0, t0, t1, c0, w0, dt, elapsed, limit_ns, chunk;
	double max_s;
	__u32 key = 0, ifindex;
	int prog_fd, err, port, ret = 1;

	if (argc == 4 && strcmp(argv[1], "--gro") == 0)
		return set_gro(argv[2], argv[3]);
	if (argc != 8) {
		fprintf(stderr, "usage: %s <object.o> <out ifname> <dst mac> <dst ip> <dst port> <count> <max seconds>\n"
				"       %s --gro <ifname> on|off\n", argv[0], argv[0]);
		return 2;
	}
	ifindex = if_nametoindex(argv[2]);
	port = atoi(argv[5]);
	count = strtoull(argv[6], NULL, 10);
	max_s = atof(argv[7]);
	if (!ifindex || parse_mac(argv[3], f.eth.h_dest) || inet_pton(AF_INET, argv[4], &dst_ip) != 1 ||
	    port <= 0 || port > 65535 || count == 0 || max_s <= 0) {
		fprintf(stderr, "bad arguments (interface %s: index %u)\n", argv[2], ifindex);
		return 2;
	}
	if (if_addresses(argv[2], f.eth.h_source, &src_ip))
		return 1;

	/* Ethernet + IPv4 (checksummed; ip_rcv checks it) + UDP (checksum 0: none, allowed over IPv4). */
	f.eth.h_proto = htons(ETH_P_IP);
	f.ip.version = 4;
	f.ip.ihl = 5;
	f.ip.tot_len = htons(sizeof(f) - sizeof(f.eth));
	f.ip.frag_off = htons(0x4000);
	f.ip.ttl = 64;
	f.ip.protocol = IPPROTO_UDP;
	f.ip.saddr = src_ip.s_addr;
	f.ip.daddr = dst_ip.s_addr;
	f.ip.check = ip_checksum(&f.ip, sizeof(f.ip));
	f.udp.source = htons(SRC_PORT);
	f.udp.dest = htons(port);
	f.udp.len = htons(sizeof(f.udp) + PAYLOAD);
	memset(f.payload, 'x', PAYLOAD);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "bpf_object__open_file %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_object__load %s: %s\n", argv[1], strerror(-err));
		goto out;
	}
	prog = bpf_object__find_program_by_name(obj, "xdp_gen_redirect");
	cfg = bpf_object__find_map_by_name(obj, "gen_cfg");
	if (!prog || !cfg) {
		fprintf(stderr, "%s lacks xdp_gen_redirect or gen_cfg\n", argv[1]);
		goto out;
	}
	prog_fd = bpf_program__fd(prog);
	if (bpf_map_update_elem(bpf_map__fd(cfg), &key, &ifindex, BPF_ANY)) {
		fprintf(stderr, "writing gen_cfg: %s\n", strerror(errno));
		goto out;
	}

	limit_ns = (unsigned long long)(max_s * 1e9);
	t0 = now_ns();
	c0 = cpu_ns();
	w0 = wait_ns();
	chunk = FIRST_CHUNK;
	while (sent < count && (t1 = now_ns()) - t0 < limit_ns) {
		unsigned long long n = count - sent < chunk ? count - sent : chunk;
		LIBBPF_OPTS(bpf_test_run_opts, opts,
			    .data_in = &f,
			    .data_size_in = sizeof(f),
			    .repeat = n,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

		err = bpf_prog_test_run_opts(prog_fd, &opts);
		if (err) {
			fprintf(stderr, "bpf_prog_test_run_opts (live frames, repeat %llu) after %llu frames: %s\n",
				n, sent, strerror(errno));
			goto out;
		}
		sent += n;
		calls++;
		/* Size the next call from this one's rate: CALL_NS long, and never past the time bound. */
		dt = now_ns() - t1;
		if (dt > 0) {
			double rate = n * 1e9 / dt;
			unsigned long long left_ns = now_ns() - t0 < limit_ns ? limit_ns - (now_ns() - t0) : 0;
			unsigned long long want = rate * (CALL_NS < left_ns ? CALL_NS : left_ns) / 1e9;

			chunk = want < 1 ? 1 : want > MAX_CHUNK ? MAX_CHUNK : want;
		}
	}
	elapsed = now_ns() - t0;
	printf("sent=%llu calls=%llu elapsed_ns=%llu pps=%.0f cpu_ns=%llu wait_ns=%llu\n", sent, calls, elapsed,
	       elapsed ? sent * 1e9 / elapsed : 0.0, cpu_ns() - c0, wait_ns() - w0);
	ret = 0;
out:
	bpf_object__close(obj);
	return ret;
}
