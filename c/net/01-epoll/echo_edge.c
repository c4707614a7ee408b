// SPDX-License-Identifier: GPL-2.0
/*
 * echo_edge: the clients of Net Lab 1 that take the paths echo_load does not
 * (a client that stops reading, a client that half-closes, clients that
 * leave without their echo). Students never edit it; the spec builds it from
 * the reference.
 *
 * Build: gcc -O2 -Wall -o echo_edge echo_edge.c
 *
 * Every byte a client sends comes from a stream seeded by <seed>, the
 * connection's number and the offset, so an echo is checked byte by byte and
 * nothing about it can be known in advance. Each client keeps a 4 KiB
 * receive buffer (but burst's, which keeps the namespace's default).
 *
 * echo_edge stall <ip> <port> <push> <rounds> <seed>
 *   Connection A sends up to <push> bytes and reads nothing. Once its writes
 *   have made no progress for 250 ms (the kernel took no more: TCP holds it
 *   back) it prints "stalled pushed=<bytes the kernel took from A>" and waits
 *   for SIGUSR1. Then, while A still reads nothing, connection B does
 *   <rounds> round trips of 1..2048 bytes, each within 2 s, and prints
 *     other rounds=<done> of <rounds> ms=<time>[ <what went wrong>]
 *   Then A reads its echo (until it has all of it, or 5 s without progress):
 *     slow echoed=<bytes> of <pushed> mismatches=<n>[ <what went wrong>]
 *   Exit 0 when both came back whole.
 *
 * echo_edge halfclose <ip> <port> <clients> <seed>
 *   <clients> connections at once; each sends 16..272 KiB (random), reading
 *   its echo lazily meanwhile (only when a write comes back short), then
 *   shutdown(SHUT_WR) right after its last byte,
 *   and reads on until the server closes (read() returns 0), for at most
 *   3 s without progress. Prints
 *     clients=<n> bytes_sent=<s> bytes_echoed=<e> mismatches=<m> short=<k> no_eof=<k> resets=<r>
 *   then a line per client that did not get all of its echo and the EOF.
 *   Exit 0 when every client got every byte back, then EOF.
 *
 * echo_edge leave <ip> <port> <clients> <seed>
 *   <clients> connections one after another; each sends 1..32 KiB and closes
 *   at once without reading its echo (every other one with SO_LINGER 0: a
 *   reset). The server's writes of those echoes fail (ECONNRESET, EPIPE).
 *   Prints "left=<n>"; exit 0 once all have connected, sent and closed.
 *
 * echo_edge burst <ip> <port> <bytes> <seed>
 *   One connection (TCP_NODELAY, the namespace's default buffers) sends
 *   <bytes> at once, reading nothing, and waits until the kernel has put
 *   all of it on the wire (SIOCOUTQNSD: no byte left unsent) or 2 s passed;
 *   prints "burst sent=<bytes written> unsent=<bytes still unsent>" and
 *   waits for SIGUSR1 (the spec meanwhile checks that all of it waits in
 *   the server's socket, ss -tni Recv-Q, and lets the server run). It then
 *   sends nothing more and reads its echo until it has all of it, or for
 *   BURST_MS without progress:
 *     burst echoed=<bytes> of <sent> mismatches=<n> ms=<time>[ <what went wrong>]
 *   and waits for SIGUSR1 again before it closes (the spec reads the
 *   server's socket meanwhile). Exit 0 when all of it came back.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_RCVBUF 4096
#define STALL_MS 250
#define ROUND_MS 2000
#define DRAIN_MS 5000
#define HALFCLOSE_MS 3000
#define CHUNK 16384
#define MAX_ROUND 2048
#define BURST_MS 2000
#define BURST_SENT_MS 2000

static uint64_t seed;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte <off> of connection <conn>'s stream. */
static unsigned char stream(int conn, size_t off)
{
	return (unsigned char)(mix(seed ^ ((uint64_t)conn << 48) ^ (off >> 3)) >> ((off & 7) * 8));
}

static void fill(unsigned char *buf, int conn, size_t off, size_t len)
{
	size_t k;

	for (k = 0; k < len; k++)
		buf[k] = stream(conn, off + k);
}

/* Compare <len> received bytes at <off>; the number that differ, the first in *first. */
static size_t verify(const unsigned char *buf, int conn, size_t off, size_t len, size_t *first)
{
	size_t k, bad = 0;

	for (k = 0; k < len; k++) {
		if (buf[k] != stream(conn, off + k)) {
			if (!bad && first)
				*first = off + k;
			bad++;
		}
	}
	return bad;
}

/* Connect; <rcvbuf> 0 keeps the namespace's default receive buffer. */
static int dial_buf(const char *ip, int port, int rcvbuf)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd;

	if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static int dial(const char *ip, int port)
{
	return dial_buf(ip, port, CLIENT_RCVBUF);
}

/* Wait up to <ms> for <events> on <fd>: 1 ready, 0 timed out, -1 error. */
static int wait_for(int fd, short events, double ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	if (ms <= 0)
		return 0;
	do
		r = poll(&p, 1, (int)ms + 1);
	while (r < 0 && errno == EINTR);
	return r;
}

/*
 * Read the echo of stream <conn> from <fd> until <expect> bytes are back, the server closes, or nothing
 * comes for <quiet_ms>. Bytes beyond <expect> count as mismatches. Adds the mismatches to *bad (the first
 * in *first) and returns the bytes echoed; *why says why it stopped early ("" when it did not).
 */
static size_t read_echo(int fd, int conn, size_t expect, int quiet_ms, size_t *bad, size_t *first, char *why, size_t whylen)
{
	unsigned char in[CHUNK];
	size_t echoed = 0;
	double last = now_ms();
	ssize_t n;

	why[0] = '\0';
	while (echoed < expect) {
		if (wait_for(fd, POLLIN, quiet_ms - (now_ms() - last)) <= 0) {
			snprintf(why, whylen, " (nothing more within %d ms)", quiet_ms);
			break;
		}
		n = read(fd, in, sizeof(in));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			snprintf(why, whylen, " (%s)", n ? strerror(errno) : "the server closed the connection");
			break;
		}
		if (n > 0) {
			if (echoed + n > expect) {
				*bad += echoed + n - expect;
				n = expect - echoed;
			}
			*bad += verify(in, conn, echoed, n, *bad ? NULL : first);
			echoed += n;
			last = now_ms();
		}
	}
	return echoed;
}

static int stall(const char *ip, int port, size_t push, int rounds)
{
	unsigned char *buf = malloc(CHUNK), *in = malloc(CHUNK);
	size_t pushed = 0, echoed = 0, bad = 0, first = 0, b_off = 0;
	double last, start;
	char why[160] = "";
	int a, b, i, done = 0, ok = 1, sig;
	sigset_t set;
	ssize_t n;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (!buf || !in)
		return 1;
	a = dial(ip, port);
	if (a < 0) {
		fprintf(stderr, "connect failed: %s\n", strerror(errno));
		return 1;
	}
	/* A sends and never reads: how much does the kernel take from it? */
	last = now_ms();
	while (pushed < push) {
		size_t len = push - pushed < CHUNK ? push - pushed : CHUNK;

		if (wait_for(a, POLLOUT, STALL_MS - (now_ms() - last)) <= 0)
			break;
		fill(buf, 0, pushed, len);
		n = write(a, buf, len);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, sizeof(why), " (write on the slow connection failed: %s)", strerror(errno));
			break;
		}
		if (n > 0) {
			pushed += n;
			last = now_ms();
		}
	}
	printf("stalled pushed=%zu%s\n", pushed, why);
	fflush(stdout);
	sigwait(&set, &sig);

	/* B: round trips while A still reads nothing. */
	start = now_ms();
	b = dial(ip, port);
	if (b < 0) {
		printf("other rounds=0 of %d ms=0 (connect failed: %s)\n", rounds, strerror(errno));
		ok = 0;
	}
	for (i = 0; b >= 0 && i < rounds && !why[0]; i++) {
		size_t size = 1 + mix(seed ^ 0xb0b ^ i) % MAX_ROUND, got = 0, sent = 0;
		double t0 = now_ms();

		fill(buf, 1, b_off, size);
		while (sent < size && !why[0]) {
			if (wait_for(b, POLLOUT, ROUND_MS - (now_ms() - t0)) <= 0) {
				snprintf(why, sizeof(why), " (round %d: the server took none of %zu bytes within %d ms)", i + 1, size, ROUND_MS);
				break;
			}
			n = write(b, buf + sent, size - sent);
			if (n > 0)
				sent += n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				snprintf(why, sizeof(why), " (round %d: write failed: %s)", i + 1, strerror(errno));
		}
		while (got < size && !why[0]) {
			if (wait_for(b, POLLIN, ROUND_MS - (now_ms() - t0)) <= 0) {
				snprintf(why, sizeof(why), " (round %d: %zu of %zu bytes echoed within %d ms)", i + 1, got, size, ROUND_MS);
				break;
			}
			n = read(b, in, size - got);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				snprintf(why, sizeof(why), " (round %d: %s)", i + 1, n ? strerror(errno) : "the server closed the connection");
				break;
			}
			if (n > 0) {
				if (verify(in, 1, b_off + got, n, NULL))
					snprintf(why, sizeof(why), " (round %d: the echo differs from what was sent)", i + 1);
				got += n;
			}
		}
		b_off += size;
		if (!why[0])
			done++;
	}
	printf("other rounds=%d of %d ms=%.0f%s\n", done, rounds, now_ms() - start, why);
	fflush(stdout);
	if (done < rounds)
		ok = 0;

	/* A reads at last: all of what the kernel took from it must come back. */
	echoed = read_echo(a, 0, pushed, DRAIN_MS, &bad, &first, why, sizeof(why));
	printf("slow echoed=%zu of %zu mismatches=%zu%s", echoed, pushed, bad, why);
	if (bad)
		printf(" first_mismatch=%zu", first);
	printf("\n");
	if (echoed != pushed || bad)
		ok = 0;
	close(a);
	if (b >= 0)
		close(b);
	return ok ? 0 : 3;
}

struct client {
	int fd;
	size_t total, sent, received, bad, first;
	int blocked;	/* the last write was short */
	int shut, eof, err;
};

static int halfclose(const char *ip, int port, int nclients)
{
	struct client *cl = calloc(nclients, sizeof(*cl));
	struct pollfd *p = calloc(nclients, sizeof(*p));
	unsigned char *buf = malloc(CHUNK);
	long long bytes_sent = 0, bytes_echoed = 0, bad = 0;
	int i, left = nclients, shortc = 0, no_eof = 0, resets = 0, shown = 0;
	double last;
	ssize_t n;

	if (!cl || !p || !buf)
		return 1;
	for (i = 0; i < nclients; i++) {
		cl[i].fd = dial(ip, port);
		if (cl[i].fd < 0) {
			fprintf(stderr, "connect %d failed: %s\n", i, strerror(errno));
			return 1;
		}
		cl[i].total = 16384 + mix(seed ^ 0xc1 ^ i) % (256 * 1024);
	}
	last = now_ms();
	while (left > 0 && now_ms() - last < HALFCLOSE_MS) {
		for (i = 0; i < nclients; i++) {
			struct client *c = &cl[i];

			p[i].fd = c->eof || c->err ? -1 : c->fd;
			p[i].events = POLLIN | (c->sent < c->total ? POLLOUT : 0);
		}
		if (poll(p, nclients, 100) < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < nclients; i++) {
			struct client *c = &cl[i];
			size_t len;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if ((p[i].revents & POLLOUT) && c->sent < c->total) {
				len = c->total - c->sent < CHUNK ? c->total - c->sent : CHUNK;
				fill(buf, 2 + i, c->sent, len);
				n = write(c->fd, buf, len);
				c->blocked = n < (ssize_t)len;
				if (n > 0) {
					c->sent += n;
					bytes_sent += n;
					last = now_ms();
				}
				/* The last byte is out: the FIN follows it at once. */
				if (c->sent == c->total && !c->shut) {
					shutdown(c->fd, SHUT_WR);
					c->shut = 1;
				}
			}
			/*
			 * A lazy reader (as echo_load's): read only once everything is
			 * sent or the socket is full, so the echo piles up in the
			 * server when the FIN comes.
			 */
			if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    (c->sent >= c->total || !(p[i].revents & POLLOUT) || c->blocked)) {
				n = read(c->fd, buf, CHUNK);
				if (n < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (n <= 0) {
					if (n == 0)
						c->eof = 1;
					else
						c->err = errno;
					left--;
					last = now_ms();
					continue;
				}
				if (c->received + n > c->total) {
					c->bad += c->received + n - c->total;
					n = c->total - c->received;
				}
				c->bad += verify(buf, 2 + i, c->received, n, c->bad ? NULL : &c->first);
				c->received += n;
				bytes_echoed += n;
				last = now_ms();
			}
		}
	}
	for (i = 0; i < nclients; i++) {
		struct client *c = &cl[i];

		bad += c->bad;
		shortc += c->received < c->total;
		no_eof += !c->eof;
		resets += c->err != 0;
	}
	printf("clients=%d bytes_sent=%lld bytes_echoed=%lld mismatches=%lld short=%d no_eof=%d resets=%d\n",
	       nclients, bytes_sent, bytes_echoed, bad, shortc, no_eof, resets);
	for (i = 0; i < nclients && shown < 5; i++) {
		struct client *c = &cl[i];

		if (c->received == c->total && !c->bad && c->eof)
			continue;
		printf("client=%d sent=%zu%s echoed=%zu", i, c->sent, c->shut ? " then shutdown(SHUT_WR)" : "", c->received);
		if (c->bad)
			printf(" mismatches=%zu first at %zu", c->bad, c->first);
		if (c->err)
			printf(" then %s", strerror(c->err));
		else if (c->eof)
			printf(" then EOF");
		else
			printf(" then nothing for %d ms (no EOF)", HALFCLOSE_MS);
		printf("\n");
		shown++;
	}
	for (i = 0; i < nclients; i++)
		close(cl[i].fd);
	return bad || shortc || no_eof || resets ? 3 : 0;
}

static int leave(const char *ip, int port, int nclients)
{
	unsigned char *buf = malloc(32768);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int i, fd;

	if (!buf)
		return 1;
	for (i = 0; i < nclients; i++) {
		size_t size = 1 + mix(seed ^ 0x1ea ^ i) % 32768, sent = 0;
		double t0 = now_ms();
		ssize_t n;

		fd = dial(ip, port);
		if (fd < 0) {
			fprintf(stderr, "connect %d failed: %s (is the server still running?)\n", i, strerror(errno));
			printf("left=%d\n", i);
			return 3;
		}
		fill(buf, 100 + i, 0, size);
		while (sent < size && wait_for(fd, POLLOUT, 200 - (now_ms() - t0)) > 0) {
			n = write(fd, buf + sent, size - sent);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			if (n > 0)
				sent += n;
		}
		if (i & 1)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	printf("left=%d\n", nclients);
	return 0;
}

static int burst(const char *ip, int port, size_t bytes)
{
	unsigned char *buf = malloc(bytes);
	size_t sent = 0, echoed = 0, bad = 0, first = 0;
	int fd, one = 1, unsent = -1, sig;
	double last, start;
	char why[160] = "";
	sigset_t set;
	ssize_t n;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (!buf)
		return 1;
	fd = dial_buf(ip, port, 0);
	if (fd < 0) {
		fprintf(stderr, "connect failed: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The whole burst at once, reading nothing. */
	fill(buf, 3, 0, bytes);
	last = now_ms();
	while (sent < bytes) {
		if (wait_for(fd, POLLOUT, BURST_SENT_MS - (now_ms() - last)) <= 0)
			break;
		n = write(fd, buf + sent, bytes - sent);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, sizeof(why), " (write failed: %s)", strerror(errno));
			break;
		}
		if (n > 0) {
			sent += n;
			last = now_ms();
		}
	}
	/* Until the kernel has sent every byte (on loopback: into the server's socket). */
	for (start = now_ms(); now_ms() - start < BURST_SENT_MS; ) {
		if (ioctl(fd, SIOCOUTQNSD, &unsent) < 0 || unsent == 0)
			break;
		usleep(5000);
	}
	printf("burst sent=%zu unsent=%d%s\n", sent, unsent, why);
	fflush(stdout);
	sigwait(&set, &sig);

	/* The echo: all of it, nothing more sent meanwhile. */
	start = now_ms();
	echoed = read_echo(fd, 3, sent, BURST_MS, &bad, &first, why, sizeof(why));
	printf("burst echoed=%zu of %zu mismatches=%zu ms=%.0f%s", echoed, sent, bad, now_ms() - start, why);
	if (bad)
		printf(" first_mismatch=%zu", first);
	printf("\n");
	fflush(stdout);
	sigwait(&set, &sig);
	close(fd);
	return echoed == sent && !bad ? 0 : 3;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 7 && !strcmp(argv[1], "stall")) {
		seed = strtoull(argv[6], NULL, 0);
		return stall(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0), atoi(argv[5]));
	}
	if (argc == 6 && !strcmp(argv[1], "halfclose")) {
		seed = strtoull(argv[5], NULL, 0);
		return halfclose(argv[2], atoi(argv[3]), atoi(argv[4]));
	}
	if (argc == 6 && !strcmp(argv[1], "leave")) {
		seed = strtoull(argv[5], NULL, 0);
		return leave(argv[2], atoi(argv[3]), atoi(argv[4]));
	}
	if (argc == 6 && !strcmp(argv[1], "burst")) {
		seed = strtoull(argv[5], NULL, 0);
		return burst(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0));
	}
	fprintf(stderr, "usage: %s stall <ip> <port> <push> <rounds> <seed> | halfclose <ip> <port> <clients> <seed> | leave <ip> <port> <clients> <seed> | burst <ip> <port> <bytes> <seed>\n", argv[0]);
	return 1;
}
