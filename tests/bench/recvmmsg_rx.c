/* SPDX-License-Identifier: MIT */
/*
 * recvmmsg_rx: the baseline receiver. A plain UDP socket, recvmmsg() of up to
 * 64 datagrams with their source addresses, nothing done with them but
 * counting; poll() when the socket is empty.
 *
 *   recvmmsg_rx --bind ADDR:PORT [--count N] [--duration S] [--batch N] [--rcvbuf BYTES]
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

#define PROG "recvmmsg_rx"
#define POLL_MS 50

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --bind ADDR:PORT [--count N] [--duration S] [--batch N] [--rcvbuf BYTES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bind", required_argument, NULL, 'B' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "rcvbuf", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	static struct udpsock_batch b;
	uint64_t batch = 64, rcvbuf = 4 << 20, packets = 0, bytes = 0, calls = 0, wakeups = 0, now;
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
		case 'R':
			if (bench_parse_u64(optarg, &rcvbuf) || rcvbuf > (1u << 30))
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
	fd = udpsock_bind(&addr, (int)rcvbuf);
	if (fd < 0)
		bench_die(PROG, "bind: %s", strerror(-fd));
	udpsock_batch_init(&b, (unsigned int)batch);
	bench_catch_signals();
	bench_ready(PROG);

	lim.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, packets, now)) {
		int n = recvmmsg(fd, b.msgs, b.n, MSG_DONTWAIT, NULL);

		if (n > 0) {
			calls++;
			packets += (uint64_t)n;
			for (int i = 0; i < n; i++)
				bytes += b.msgs[i].msg_len;
			udpsock_batch_rearm(&b, (unsigned int)n);
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			wakeups++;
			poll(&pfd, 1, POLL_MS);
		} else if (n < 0 && errno != EINTR) {
			bench_die(PROG, "recvmmsg: %s", strerror(errno));
		}
		now = bench_now_ns();
	}
	printf("{\"prog\":\"" PROG "\",\"received\":%llu,\"bytes\":%llu,\"calls\":%llu,\"wakeups\":%llu,"
	       "\"duration_s\":%.6f}\n",
	       (unsigned long long)packets, (unsigned long long)bytes, (unsigned long long)calls,
	       (unsigned long long)wakeups, bench_secs(lim.start_ns, now));
	close(fd);
	return 0;
}
