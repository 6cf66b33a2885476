/* SPDX-License-Identifier: MIT */
/*
 * rttprobe: round-trip times through an echo server. Sends requests at a
 * fixed rate (open loop: the schedule does not wait for replies), each
 * carrying its sequence number and send time; every reply's round trip goes
 * into a histogram; prints p50/p90/p99/p99.9 and losses as one JSON line.
 *
 *   rttprobe --dst ADDR:PORT [--rate RPS] [--count N] [--duration S] [--size BYTES]
 *            [--warmup S] [--wait S]
 *
 * Replies to requests sent in the first --warmup seconds are not recorded
 * (first-packet costs: caches, neighbour look-ups); --wait is how long to
 * wait for the last replies.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "hist.h"
#include "udpsock.h"

#define PROG "rttprobe"
#define MIN_SIZE 16
#define BATCH 64

struct probe {
	int fd;
	uint64_t sent;
	uint64_t received;
	uint64_t recorded;
	uint64_t bad;
	uint64_t record_from; /* sequence number of the first recorded request */
	struct hist h;
	struct udpsock_batch b;
};

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --dst ADDR:PORT [--rate RPS] [--count N] [--duration S] [--size BYTES]\n"
			"       [--warmup S] [--wait S]\n");
	exit(2);
}

static int open_socket(const union ferry_sockaddr *dst)
{
	int fd = socket(dst->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, &dst->sa, ferry_sockaddr_len(dst))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Takes every reply waiting on the socket. */
static void take_replies(struct probe *p)
{
	for (;;) {
		int n = recvmmsg(p->fd, p->b.msgs, p->b.n, MSG_DONTWAIT, NULL);
		uint64_t now = bench_now_ns();

		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			uint64_t seq, ts;

			if (p->b.msgs[i].msg_len < MIN_SIZE) {
				p->bad++;
				continue;
			}
			memcpy(&seq, p->b.bufs[i], 8);
			memcpy(&ts, p->b.bufs[i] + 8, 8);
			if (seq >= p->sent || ts > now) {
				p->bad++;
				continue;
			}
			p->received++;
			if (seq >= p->record_from) {
				hist_add(&p->h, now - ts);
				p->recorded++;
			}
		}
		udpsock_batch_rearm(&p->b, (unsigned int)n);
		if ((unsigned int)n < p->b.n)
			return;
	}
}

/* Waits for a reply until t_ns at most. */
static void wait_until(struct probe *p, uint64_t t_ns, uint64_t now)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	struct timespec ts;

	if (t_ns <= now)
		return;
	ts.tv_sec = (time_t)((t_ns - now) / NSEC_PER_SEC);
	ts.tv_nsec = (long)((t_ns - now) % NSEC_PER_SEC);
	ppoll(&pfd, 1, &ts, NULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dst", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 'l' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	static struct probe p;
	static uint8_t req[UDPSOCK_BUFSIZE];
	uint64_t rate = 10000, size = 18, warmup_ns = NSEC_PER_SEC / 4, wait_ns = NSEC_PER_SEC / 5;
	uint64_t interval, next, now, end, send_errors = 0;
	struct bench_limit lim = { 0 };
	union ferry_sockaddr dst;
	bool have_dst = false;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (ferry_sockaddr_parse(optarg, &dst))
				usage();
			have_dst = true;
			break;
		case 'r':
			if (bench_parse_u64(optarg, &rate) || !rate || rate > 10000000)
				usage();
			break;
		case 'c':
			if (bench_parse_u64(optarg, &lim.count))
				usage();
			break;
		case 't':
			if (bench_parse_seconds(optarg, &lim.duration_ns))
				usage();
			break;
		case 'l':
			if (bench_parse_u64(optarg, &size) || size < MIN_SIZE || size > UDPSOCK_BUFSIZE)
				usage();
			break;
		case 'W':
			if (bench_parse_seconds(optarg, &warmup_ns))
				usage();
			break;
		case 'w':
			if (bench_parse_seconds(optarg, &wait_ns))
				usage();
			break;
		default:
			usage();
		}
	}
	if (!have_dst || optind != argc)
		usage();
	if (!lim.count && !lim.duration_ns)
		bench_die(PROG, "give --count and/or --duration: every run must end by itself");
	p.fd = open_socket(&dst);
	if (p.fd < 0)
		bench_die(PROG, "socket to the echo server: %s", strerror(-p.fd));
	hist_init(&p.h);
	udpsock_batch_init(&p.b, BATCH);
	p.record_from = warmup_ns * rate / NSEC_PER_SEC;
	for (size_t i = MIN_SIZE; i < size; i++)
		req[i] = (uint8_t)('a' + i % 26);
	bench_catch_signals();

	interval = NSEC_PER_SEC / rate;
	lim.start_ns = next = now = bench_now_ns();
	while (!bench_limit_reached(&lim, p.sent, now)) {
		if (now >= next) {
			memcpy(req, &p.sent, 8);
			memcpy(req + 8, &now, 8);
			if (send(p.fd, req, size, 0) == (ssize_t)size)
				p.sent++;
			else if (errno != EINTR && ++send_errors > 1000)
				bench_die(PROG, "send: %s", strerror(errno));
			/* the schedule, not the last send, sets the next time (open loop) */
			next += interval;
		} else {
			wait_until(&p, next, now);
		}
		take_replies(&p);
		now = bench_now_ns();
	}
	/* the last replies */
	end = now + wait_ns;
	while (p.received < p.sent && now < end && !bench_signalled) {
		wait_until(&p, end, now);
		take_replies(&p);
		now = bench_now_ns();
	}
	printf("{\"prog\":\"" PROG "\",\"family\":%d,\"size\":%llu,\"rate\":%llu,\"sent\":%llu,\"received\":%llu,"
	       "\"lost\":%llu,\"bad\":%llu,\"send_errors\":%llu,\"recorded\":%llu,\"min_us\":%.2f,\"mean_us\":%.2f,"
	       "\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f}\n",
	       dst.sa.sa_family == AF_INET6 ? 6 : 4, (unsigned long long)size, (unsigned long long)rate,
	       (unsigned long long)p.sent, (unsigned long long)p.received,
	       (unsigned long long)(p.sent - p.received), (unsigned long long)p.bad,
	       (unsigned long long)send_errors, (unsigned long long)p.recorded,
	       p.h.count ? (double)p.h.min / 1e3 : 0.0, p.h.count ? (double)p.h.sum / (double)p.h.count / 1e3 : 0.0,
	       (double)hist_quantile(&p.h, 0.50) / 1e3, (double)hist_quantile(&p.h, 0.90) / 1e3,
	       (double)hist_quantile(&p.h, 0.99) / 1e3, (double)hist_quantile(&p.h, 0.999) / 1e3,
	       (double)p.h.max / 1e3);
	close(p.fd);
	return p.received ? 0 : 1;
}
