/* SPDX-License-Identifier: MIT */
/*
 * udpecho: the plain socket echo the round-trip figure compares ferryd with.
 * recvmmsg() of up to 64 datagrams, sendmmsg() of the same buffers back to
 * their sources; poll() when the socket is empty.
 *
 *   udpecho --bind ADDR:PORT [--count N] [--duration S] [--batch N]
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "udpsock.h"

#define PROG "udpecho"
#define POLL_MS 50

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --bind ADDR:PORT [--count N] [--duration S] [--batch N]\n");
	exit(2);
}

/* Sends the n received datagrams back; returns how many the socket refused. */
static unsigned int echo(int fd, struct udpsock_batch *b, unsigned int n)
{
	unsigned int done = 0, refused = 0;

	for (unsigned int i = 0; i < n; i++)
		b->iov[i].iov_len = b->msgs[i].msg_len;
	while (done < n) {
		int r = sendmmsg(fd, b->msgs + done, n - done, 0);

		if (r > 0) {
			done += (unsigned int)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			/* full or refused: this one is lost, go on with the rest */
			done++;
			refused++;
		}
	}
	return refused;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bind", required_argument, NULL, 'B' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	static struct udpsock_batch b;
	uint64_t batch = 64, packets = 0, refused = 0, now;
	struct bench_limit lim = { 0 };
	union ferry_sockaddr addr;
	bool have_addr = false;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'B':
			if (ferry_sockaddr_parse(optarg, &addr))
				usage();
			have_addr = true;
			break;
		case 'c':
			if (bench_parse_u64(optarg, &lim.count))
				usage();
			break;
		case 't':
			if (bench_parse_seconds(optarg, &lim.duration_ns))
				usage();
			break;
		case 'b':
			if (bench_parse_u64(optarg, &batch) || !batch || batch > UDPSOCK_MAX_BATCH)
				usage();
			break;
		default:
			usage();
		}
	}
	if (!have_addr || optind != argc)
		usage();
	if (!lim.count && !lim.duration_ns)
		bench_die(PROG, "give --count and/or --duration: every run must end by itself");
	fd = udpsock_bind(&addr, 4 << 20);
	if (fd < 0)
		bench_die(PROG, "bind: %s", strerror(-fd));
	udpsock_batch_init(&b, (unsigned int)batch);
	bench_catch_signals();
	bench_ready(PROG);

	lim.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, packets, now)) {
		int n = recvmmsg(fd, b.msgs, b.n, MSG_DONTWAIT, NULL);

		if (n > 0) {
			packets += (uint64_t)n;
			refused += echo(fd, &b, (unsigned int)n);
			udpsock_batch_rearm(&b, (unsigned int)n);
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			poll(&pfd, 1, POLL_MS);
		} else if (n < 0 && errno != EINTR) {
			bench_die(PROG, "recvmmsg: %s", strerror(errno));
		}
		now = bench_now_ns();
	}
	printf("{\"prog\":\"" PROG "\",\"received\":%llu,\"echoed\":%llu,\"refused\":%llu,\"duration_s\":%.6f}\n",
	       (unsigned long long)packets, (unsigned long long)(packets - refused), (unsigned long long)refused,
	       bench_secs(lim.start_ns, now));
	close(fd);
	return 0;
}
