/* SPDX-License-Identifier: MIT */
/*
 * recvmmsg_rx: the baseline receiver. A plain UDP socket, recvmmsg() of up to
 * 64 datagrams with their source addresses, nothing done with them but
 * counting; poll() when the socket is empty. --busy-poll sets the socket options
 * ferryd's --busy-poll sets on its AF_XDP sockets (SO_PREFER_BUSY_POLL,
 * SO_BUSY_POLL 20 us, SO_BUSY_POLL_BUDGET = the batch) and waits in a blocking
 * recvmmsg(MSG_WAITFORONE) instead of poll(): the receive that SO_BUSY_POLL
 * busy-polls (poll() would need the net.core.busy_poll sysctl).
 *
 *   recvmmsg_rx --bind ADDR:PORT [--count N] [--duration S] [--batch N] [--rcvbuf BYTES] [--busy-poll]
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"
#include "udpsock.h"

#define PROG "recvmmsg_rx"
#define POLL_MS 50
#define BUSY_POLL_USEC 20 /* as ferryd's */

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --bind ADDR:PORT [--count N] [--duration S] [--batch N] [--rcvbuf BYTES]"
			" [--busy-poll]\n");
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
		{ "busy-poll", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	static struct udpsock_batch b;
	uint64_t batch = 64, rcvbuf = 4 << 20, packets = 0, bytes = 0, calls = 0, wakeups = 0, now;
	struct bench_limit lim = { 0 };
	union ferry_sockaddr addr;
	bool have_addr = false, busy_poll = false;
	int c, fd, flags = MSG_DONTWAIT;

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
		case 'P':
			busy_poll = true;
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
	if (busy_poll) {
		/* a blocking receive, woken every POLL_MS to check the limits */
		int one = 1, usec = BUSY_POLL_USEC, budget = (int)batch;
		struct timeval tv = { .tv_sec = 0, .tv_usec = POLL_MS * 1000 };

		if (setsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) ||
		    setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof(usec)) ||
		    setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)) ||
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
			bench_die(PROG, "busy polling: %s", strerror(errno));
		flags = MSG_WAITFORONE;
	}
	udpsock_batch_init(&b, (unsigned int)batch);
	bench_catch_signals();
	bench_ready(PROG);

	lim.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, packets, now)) {
		int n = recvmmsg(fd, b.msgs, b.n, flags, NULL);

		if (n > 0) {
			calls++;
			packets += (uint64_t)n;
			for (int i = 0; i < n; i++)
				bytes += b.msgs[i].msg_len;
			udpsock_batch_rearm(&b, (unsigned int)n);
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			wakeups++;
			if (!busy_poll) /* else the receive waited (SO_RCVTIMEO) */
				poll(&pfd, 1, POLL_MS);
		} else if (n < 0 && errno != EINTR) {
			bench_die(PROG, "recvmmsg: %s", strerror(errno));
		}
		now = bench_now_ns();
	}
	printf("{\"prog\":\"" PROG "\",\"received\":%llu,\"bytes\":%llu,\"calls\":%llu,\"wakeups\":%llu,"
	       "\"busy_poll\":%s,\"duration_s\":%.6f}\n",
	       (unsigned long long)packets, (unsigned long long)bytes, (unsigned long long)calls,
	       (unsigned long long)wakeups, busy_poll ? "true" : "false", bench_secs(lim.start_ns, now));
	close(fd);
	return 0;
}
