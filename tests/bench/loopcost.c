/* SPDX-License-Identifier: MIT */
/*
 * loopcost: the program callgrind counts instructions of (figure d). Queues
 * N datagrams on a loopback UDP socket, then drains them with one of:
 *   ferry  libferry's ferry_udp_recvmmsg_loop: default config, source
 *          addresses on, batches of 64, a counting callback;
 *   ferry-nosrc  ferry_udp_recvmmsg_no_sources_loop, otherwise the same;
 *   bare   a bare recvmmsg(64) loop with source addresses, poll() when
 *          empty, a counting callback per batch: the least any loop does.
 * Only measure_loop() and what it calls is meant to be counted: run it under
 *   valgrind --tool=callgrind --toggle-collect=measure_loop loopcost --loop L --count N
 * and take (Ir at 2N - Ir at N) / N as the cost per datagram without fixed costs.
 *
 *   loopcost --loop ferry|ferry-nosrc|bare --count N [--size BYTES]
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "bench.h"
#include "udpsock.h"

#define PROG "loopcost"
#define BATCH 64
#define SEND_BATCH 64
#define TIMEOUT_S 120

struct counter {
	uint64_t want;
	uint64_t got;
	struct ferry_stop *stop;
};

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --loop ferry|ferry-nosrc|bare --count N [--size BYTES]\n");
	exit(2);
}

static void count_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct counter *c = user;

	c->got += count;
	if (c->got >= c->want)
		ferry_stop_fire(c->stop);
}

static int ferry_loop(int fd, struct counter *c, bool srcs)
{
	struct ferry_udp_loop_opts opts;
	struct ferry_udp_config cfg;
	int ret;

	ferry_udp_config_init(&cfg);
	c->stop = ferry_stop_new();
	if (!c->stop)
		return -errno;
	cfg.stop = c->stop;
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.max_count = BATCH;
	opts.create_srcs = srcs;
	ret = srcs ? ferry_udp_recvmmsg_loop(&cfg, fd, &opts, count_cb, c)
		   : ferry_udp_recvmmsg_no_sources_loop(&cfg, fd, &opts, count_cb, c);
	ferry_stop_free(c->stop);
	return ret == FERRY_END_STOPPED ? 0 : ret < 0 ? ret : -EPIPE;
}

/* The bare loop's callback: as count_cb, one call per batch, through a pointer. */
static void count_mmsg(void *user, struct mmsghdr *msgs, unsigned int count)
{
	struct counter *c = user;

	c->got += count;
}

static int bare_loop(int fd, struct counter *c)
{
	static struct udpsock_batch b;
	void (*volatile cb)(void *, struct mmsghdr *, unsigned int) = count_mmsg;

	udpsock_batch_init(&b, BATCH);
	while (c->got < c->want) {
		int n = recvmmsg(fd, b.msgs, b.n, MSG_DONTWAIT, NULL);

		if (n > 0) {
			cb(c, b.msgs, (unsigned int)n);
			udpsock_batch_rearm(&b, (unsigned int)n);
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			poll(&pfd, 1, -1);
		} else if (n < 0 && errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* What callgrind counts (--toggle-collect=measure_loop): not inlined, not static. */
enum loop_kind { LOOP_FERRY, LOOP_FERRY_NOSRC, LOOP_BARE };

int measure_loop(enum loop_kind kind, int fd, struct counter *c);
__attribute__((noinline)) int measure_loop(enum loop_kind kind, int fd, struct counter *c)
{
	return kind == LOOP_BARE ? bare_loop(fd, c) : ferry_loop(fd, c, kind == LOOP_FERRY);
}

/* Queues n datagrams of size bytes on rx's socket from tx. */
static int queue_datagrams(int tx, uint64_t n, uint64_t size)
{
	static uint8_t payload[UDPSOCK_BUFSIZE];
	struct mmsghdr msgs[SEND_BATCH];
	struct iovec iov = { .iov_base = payload, .iov_len = size };
	uint64_t sent = 0;

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < SEND_BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < n) {
		unsigned int k = n - sent < SEND_BATCH ? (unsigned int)(n - sent) : SEND_BATCH;
		int r = sendmmsg(tx, msgs, k, 0);

		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			sent += (uint64_t)r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "loop", required_argument, NULL, 'L' },
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 18;
	struct counter cnt = { 0 };
	union ferry_sockaddr addr;
	socklen_t alen = sizeof(addr);
	const char *loop = NULL;
	enum loop_kind kind;
	int c, rx, tx, err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			loop = optarg;
			break;
		case 'c':
			if (bench_parse_u64(optarg, &cnt.want) || !cnt.want)
				usage();
			break;
		case 'l':
			if (bench_parse_u64(optarg, &size) || size > FERRY_UDP_DEFAULT_CAPACITY)
				usage();
			break;
		default:
			usage();
		}
	}
	if (!loop || !cnt.want || optind != argc)
		usage();
	if (!strcmp(loop, "ferry"))
		kind = LOOP_FERRY;
	else if (!strcmp(loop, "ferry-nosrc"))
		kind = LOOP_FERRY_NOSRC;
	else if (!strcmp(loop, "bare"))
		kind = LOOP_BARE;
	else
		usage();
	alarm(TIMEOUT_S); /* a datagram lost on loopback would otherwise hang the loop */

	memset(&addr, 0, sizeof(addr));
	addr.in4.sin_family = AF_INET;
	addr.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* room for every datagram at once: each costs a whole skb of receive buffer */
	rx = udpsock_bind(&addr, 256 << 20);
	if (rx < 0)
		bench_die(PROG, "bind: %s", strerror(-rx));
	if (getsockname(rx, &addr.sa, &alen))
		bench_die(PROG, "getsockname: %s", strerror(errno));
	tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tx < 0 || connect(tx, &addr.sa, sizeof(addr.in4)))
		bench_die(PROG, "sender socket: %s", strerror(errno));
	err = queue_datagrams(tx, cnt.want, size);
	if (err)
		bench_die(PROG, "queueing datagrams: %s", strerror(-err));

	err = measure_loop(kind, rx, &cnt);
	if (err)
		bench_die(PROG, "%s loop: %s", loop, strerror(-err));
	printf("{\"prog\":\"" PROG "\",\"loop\":\"%s\",\"count\":%llu,\"received\":%llu,\"size\":%llu}\n",
	       loop, (unsigned long long)cnt.want, (unsigned long long)cnt.got, (unsigned long long)size);
	close(tx);
	close(rx);
	return cnt.got == cnt.want ? 0 : 1;
}
