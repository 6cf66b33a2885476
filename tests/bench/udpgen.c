/* SPDX-License-Identifier: MIT */
/*
 * udpgen: a sendmmsg generator. Sends fixed UDP datagrams through the kernel
 * stack from a connected socket, in bursts of sendmmsg, paced to a rate or
 * unpaced, for a count and/or a duration, then prints one JSON line.
 *
 *   udpgen --dst ADDR:PORT [--src ADDR:PORT] [--size N] [--rate PPS]
 *          [--count N] [--duration S] [--burst N]
 *
 * IP_RECVERR is on, so a datagram the device refused (veth: the peer's
 * queue was full) comes back as ENOBUFS: counted in driver_drops, not sent.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "bench.h"

#define PROG "udpgen"
#define MAX_BURST 1024
#define MAX_SIZE 65507

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " --dst ADDR:PORT [--src ADDR:PORT] [--size BYTES] [--rate PPS (0 = unpaced)]\n"
			"       [--count N] [--duration S] [--burst N]\n");
	exit(2);
}

static int open_socket(const union ferry_sockaddr *src, bool have_src, const union ferry_sockaddr *dst)
{
	int fd, one = 1, sndbuf = 4 << 20;
	int family = dst->sa.sa_family;

	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	else
		setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if ((have_src && bind(fd, &src->sa, ferry_sockaddr_len(src))) ||
	    connect(fd, &dst->sa, ferry_sockaddr_len(dst))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* ICMP errors queued by IP_RECVERR would fail every later send: take them off. */
static void drain_errors(int fd)
{
	char buf[256], ctl[512];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };

	while (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0)
		m.msg_controllen = sizeof(ctl);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 'l' },
		{ "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' },
		{ "burst", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	static struct mmsghdr msgs[MAX_BURST];
	static uint8_t payload[MAX_SIZE];
	uint64_t size = 18, rate = 0, burst = 32, now, wake = 0, sent = 0, drops = 0, errors = 0, calls = 0;
	struct bench_limit lim = { 0 };
	struct bench_pacer pacer;
	union ferry_sockaddr src, dst;
	bool have_src = false, have_dst = false;
	struct iovec iov;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (ferry_sockaddr_parse(optarg, &src))
				usage();
			have_src = true;
			break;
		case 'd':
			if (ferry_sockaddr_parse(optarg, &dst))
				usage();
			have_dst = true;
			break;
		case 'l':
			if (bench_parse_u64(optarg, &size) || size > MAX_SIZE)
				usage();
			break;
		case 'r':
			if (bench_parse_u64(optarg, &rate))
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
		case 'b':
			if (bench_parse_u64(optarg, &burst) || !burst || burst > MAX_BURST)
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
	fd = open_socket(&src, have_src, &dst);
	if (fd < 0)
		bench_die(PROG, "socket to the destination: %s", strerror(-fd));
	for (size_t i = 0; i < size; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	iov = (struct iovec){ .iov_base = payload, .iov_len = size };
	for (unsigned int i = 0; i < MAX_BURST; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	bench_catch_signals();

	pacer = (struct bench_pacer){ .rate = rate, .burst = (uint32_t)burst };
	lim.start_ns = pacer.start_ns = now = bench_now_ns();
	while (!bench_limit_reached(&lim, sent + drops, now)) {
		uint64_t want = burst;
		uint32_t n;
		int r;

		if (lim.count && lim.count - sent - drops < want)
			want = lim.count - sent - drops;
		n = bench_pacer_allow(&pacer, sent + drops, (uint32_t)want, now, &wake);
		if (!n) {
			bench_sleep_until(wake);
			now = bench_now_ns();
			continue;
		}
		calls++;
		r = sendmmsg(fd, msgs, n, 0);
		if (r > 0) {
			sent += (uint64_t)r;
		} else if (errno == ENOBUFS || errno == ECONNREFUSED || errno == EAGAIN) {
			/* The first datagram of the burst was refused: it is lost. */
			drops++;
			if (errno == ECONNREFUSED)
				drain_errors(fd);
		} else if (errno != EINTR) {
			errors++;
			if (errors > 1000)
				bench_die(PROG, "sendmmsg: %s", strerror(errno));
		}
		now = bench_now_ns();
	}
	printf("{\"prog\":\"" PROG "\",\"family\":%d,\"size\":%llu,\"rate\":%llu,\"sent\":%llu,"
	       "\"driver_drops\":%llu,\"errors\":%llu,\"calls\":%llu,\"duration_s\":%.6f,\"pps\":%.0f}\n",
	       dst.sa.sa_family == AF_INET6 ? 6 : 4, (unsigned long long)size, (unsigned long long)rate,
	       (unsigned long long)sent, (unsigned long long)drops, (unsigned long long)errors,
	       (unsigned long long)calls, bench_secs(lim.start_ns, now), (double)sent / bench_secs(lim.start_ns, now));
	close(fd);
	return 0;
}
