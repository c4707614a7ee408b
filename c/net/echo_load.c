// SPDX-License-Identifier: GPL-2.0
/*
 * echo_load: the clients of Net Lab 1 (the epoll echo server). Students
 * never edit it.
 *
 * Build: gcc -O2 -Wall -o echo_load echo_load.c
 *
 * echo_load check <ip> <port> <clients> <rounds> <chunk>
 *   <clients> connections at once, each sends <rounds> chunks of <chunk>
 *   bytes (a pattern unique to the client, round and offset) and reads each
 *   chunk back before sending the next. The clients keep a 4 KiB receive
 *   buffer and read lazily (only once the chunk is sent or their socket is
 *   full), so the server's writes come back short and must be finished
 *   later. One poll(2) loop drives them all. Prints one line
 *     clients=C rounds=R bytes_sent=S bytes_echoed=E mismatches=M stalled=T starved=V
 *   where starved counts clients whose first echo arrived only after some
 *   other client had finished all its rounds (a server serving clients one
 *   after another), then a line per problem (first mismatch, stalled
 *   clients). Exit 0 when every byte came back right and nobody starved.
 *
 * echo_load scale <ip> <port> <idle> <exchanges> <size>
 *   Open <idle> connections that never send, print "idle=<n>", wait for
 *   SIGUSR1; then on one more connection do <exchanges> round trips of
 *   <size> bytes, print "done exchanges=<n> us=<time>", wait for SIGUSR1
 *   again and exit (so the server's work can be read before the idle
 *   connections close).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_RCVBUF 4096
#define STALL_MS 5000
#define BUF 65536

struct client {
	int fd;
	int round;
	size_t sent, received;
	int first_echo_seen;
	int blocked;	/* the last write was short: the server is not reading */
	int done;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static unsigned char pattern(int client, int round, size_t off)
{
	return (unsigned char)(client * 31 + round * 7 + off * 13 + off / 251);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int dial(const char *ip, int port, int rcvbuf)
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
	return fd;
}

static int check(const char *ip, int port, int nclients, int rounds, size_t chunk)
{
	struct client *cl = calloc(nclients, sizeof(*cl));
	struct pollfd *pfds = calloc(nclients, sizeof(*pfds));
	unsigned char *out = malloc(BUF), *in = malloc(BUF);
	long long bytes_sent = 0, bytes_echoed = 0, mismatches = 0;
	int i, left = nclients, finished = 0, starved = 0, stalled = 0;
	double last_progress;
	char first_bad[160] = "";
	ssize_t n;
	size_t k, len;

	if (!cl || !pfds || !out || !in)
		return 1;
	for (i = 0; i < nclients; i++) {
		cl[i].fd = dial(ip, port, CLIENT_RCVBUF);
		if (cl[i].fd < 0) {
			fprintf(stderr, "connect %d failed: %s\n", i, strerror(errno));
			return 1;
		}
		fcntl(cl[i].fd, F_SETFL, fcntl(cl[i].fd, F_GETFL) | O_NONBLOCK);
	}
	last_progress = now_ms();
	while (left > 0) {
		for (i = 0; i < nclients; i++) {
			pfds[i].fd = cl[i].done ? -1 : cl[i].fd;
			pfds[i].events = POLLIN | (cl[i].sent < chunk ? POLLOUT : 0);
		}
		if (poll(pfds, nclients, 200) < 0 && errno != EINTR) {
			fprintf(stderr, "poll failed: %s\n", strerror(errno));
			return 1;
		}
		if (now_ms() - last_progress > STALL_MS)
			break;
		for (i = 0; i < nclients; i++) {
			struct client *c = &cl[i];

			if (c->done || !pfds[i].revents)
				continue;
			if ((pfds[i].revents & POLLOUT) && c->sent < chunk) {
				len = chunk - c->sent < BUF ? chunk - c->sent : BUF;
				for (k = 0; k < len; k++)
					out[k] = pattern(i, c->round, c->sent + k);
				n = write(c->fd, out, len);
				c->blocked = n < (ssize_t)len;
				if (n > 0) {
					c->sent += n;
					bytes_sent += n;
					last_progress = now_ms();
				}
			}
			/*
			 * A lazy reader: read only once the chunk is sent or the
			 * socket is full, so echoes pile up in the server's send
			 * buffer and its writes come back short.
			 */
			if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    (c->sent >= chunk || !(pfds[i].revents & POLLOUT) || c->blocked)) {
				n = read(c->fd, in, BUF);
				if (n == 0 || (n < 0 && errno != EAGAIN)) {
					/* The server closed on us: this client is stuck. */
					c->done = 2;
					left--;
					continue;
				}
				if (n < 0)
					continue;
				if (!c->first_echo_seen) {
					c->first_echo_seen = 1;
					if (finished)
						starved++;
				}
				for (k = 0; k < (size_t)n; k++) {
					if (in[k] != pattern(i, c->round, c->received + k)) {
						if (!mismatches)
							snprintf(first_bad, sizeof(first_bad),
								 "mismatch client=%d round=%d offset=%zu expected=%u got=%u",
								 i, c->round, c->received + k,
								 pattern(i, c->round, c->received + k), in[k]);
						mismatches++;
					}
				}
				c->received += n;
				bytes_echoed += n;
				last_progress = now_ms();
				if (c->received >= chunk) {
					c->round++;
					c->sent = c->received = 0;
					if (c->round == rounds) {
						c->done = 1;
						finished++;
						left--;
						close(c->fd);
					}
				}
			}
		}
	}
	for (i = 0; i < nclients; i++)
		if (cl[i].done != 1)
			stalled++;
	printf("clients=%d rounds=%d bytes_sent=%lld bytes_echoed=%lld mismatches=%lld stalled=%d starved=%d\n",
	       nclients, rounds, bytes_sent, bytes_echoed, mismatches, stalled, starved);
	if (first_bad[0])
		printf("%s\n", first_bad);
	for (i = 0, k = 0; i < nclients && k < 5; i++) {
		if (cl[i].done == 1)
			continue;
		printf("stalled client=%d round=%d sent=%zu received=%zu%s\n", i, cl[i].round,
		       cl[i].sent, cl[i].received, cl[i].done == 2 ? " (server closed the connection)" : "");
		k++;
	}
	return mismatches || stalled || starved ? 3 : 0;
}

static int scale(const char *ip, int port, int idle, int exchanges, size_t size)
{
	unsigned char *buf = malloc(size);
	sigset_t set;
	double start;
	int i, fd, sig;
	size_t got;
	ssize_t n;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (!buf)
		return 1;
	memset(buf, 'x', size);
	for (i = 0; i < idle; i++) {
		if (dial(ip, port, 0) < 0) {
			fprintf(stderr, "idle connection %d failed: %s\n", i, strerror(errno));
			return 1;
		}
	}
	printf("idle=%d\n", idle);
	fflush(stdout);
	sigwait(&set, &sig);

	fd = dial(ip, port, 0);
	if (fd < 0) {
		fprintf(stderr, "busy connection failed: %s\n", strerror(errno));
		return 1;
	}
	start = now_ms();
	for (i = 0; i < exchanges; i++) {
		if (write(fd, buf, size) != (ssize_t)size) {
			fprintf(stderr, "write failed: %s\n", strerror(errno));
			return 1;
		}
		for (got = 0; got < size; got += n) {
			n = read(fd, buf + got, size - got);
			if (n <= 0) {
				fprintf(stderr, "read failed after %d exchanges: %s\n", i, n ? strerror(errno) : "server closed");
				return 1;
			}
		}
	}
	printf("done exchanges=%d us=%.0f\n", exchanges, (now_ms() - start) * 1e3);
	fflush(stdout);
	sigwait(&set, &sig);
	return 0;
}

int main(int argc, char **argv)
{
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if (argc == 7 && !strcmp(argv[1], "check"))
		return check(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), strtoul(argv[6], NULL, 0));
	if (argc == 7 && !strcmp(argv[1], "scale"))
		return scale(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), strtoul(argv[6], NULL, 0));
	fprintf(stderr, "usage: %s check <ip> <port> <clients> <rounds> <chunk> | scale <ip> <port> <idle> <exchanges> <size>\n", argv[0]);
	return 1;
}
