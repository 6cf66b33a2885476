/* SPDX-License-Identifier: MIT */
/*
 * udp-ping: sends COUNT datagrams of SIZE bytes to an echo service and checks
 * that every reply comes back byte-exact, using libferry's sendto_sync and
 * recvfrom loop. At most WINDOW datagrams are in flight, so neither side's
 * socket buffer overflows. Exit 0 only if all replies arrived intact within
 * the timeout.
 * Usage: udp-ping ADDR:PORT [COUNT [SIZE [TIMEOUT_S]]]   e.g. udp-ping 198.18.0.1:7777 10 64
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/udp.h>

#define WINDOW 32

struct ping {
	struct ferry_stop *stop;
	union ferry_sockaddr dst;
	int fd, err;
	unsigned int count, size, sent, got, bad;
	double sent_at;
};

static struct ferry_stop *alarm_stop;

static void on_alarm(int sig)
{
	(void)sig;
	ferry_stop_fire(alarm_stop);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Datagram seq: its first 4 bytes are seq (when it has 4), every byte after is (seq + j) & 0xff. */
static void fill(uint8_t *p, unsigned int size, unsigned int seq)
{
	for (unsigned int j = 0; j < size; j++)
		p[j] = (uint8_t)(seq + j);
	if (size >= 4) {
		struct ferry_iobuf b;

		ferry_iobuf_init(&b, p, size);
		ferry_iobuf_unsafe_poke_be32(&b, 0, seq);
	}
}

/* Sends datagram p->sent; 0 or -errno. */
static int send_next(struct ping *p)
{
	uint8_t msg[65536];
	struct ferry_iobuf b;
	int ret;

	fill(msg, p->size, p->sent);
	ferry_iobuf_init(&b, msg, p->size);
	do
		ret = ferry_udp_sendto_sync(p->fd, &b, &p->dst);
	while (ret == FERRY_NOT_READY);
	if (ret < 0)
		return ret;
	p->sent++;
	return 0;
}

static void on_reply(void *user, struct ferry_iobuf *buf, const union ferry_sockaddr *src)
{
	struct ping *p = user;
	uint8_t want[65536];
	unsigned int seq = p->got;

	if (p->size >= 4 && ferry_iobuf_length(buf) >= 4)
		seq = ferry_iobuf_unsafe_peek_be32(buf, 0);
	fill(want, p->size, seq);
	if (!ferry_sockaddr_equal(src, &p->dst) || ferry_iobuf_length(buf) != p->size ||
	    memcmp(ferry_iobuf_window(buf), want, p->size))
		p->bad++;
	if (++p->got == p->count) {
		ferry_stop_fire(p->stop);
	} else if (p->sent < p->count) {
		p->err = send_next(p);
		if (p->err)
			ferry_stop_fire(p->stop);
	}
}

int main(int argc, char **argv)
{
	struct ping p = { 0 };
	struct ferry_udp_config cfg;
	char name[64];
	int fd, ret, timeout;

	if (argc < 2 || ferry_sockaddr_parse(argv[1], &p.dst)) {
		fprintf(stderr, "usage: udp-ping ADDR:PORT [COUNT [SIZE [TIMEOUT_S]]]\n");
		return 2;
	}
	p.count = argc > 2 ? (unsigned int)atoi(argv[2]) : 10;
	p.size = argc > 3 ? (unsigned int)atoi(argv[3]) : 64;
	timeout = argc > 4 ? atoi(argv[4]) : 5;
	if (p.size > FERRY_UDP_DEFAULT_CAPACITY || !p.count) {
		fprintf(stderr, "udp-ping: COUNT must be > 0 and SIZE <= %d\n", FERRY_UDP_DEFAULT_CAPACITY);
		return 2;
	}
	p.fd = fd = ferry_udp_bind_any(p.dst.sa.sa_family);
	p.stop = alarm_stop = ferry_stop_new();
	if (fd < 0 || !p.stop) {
		fprintf(stderr, "udp-ping: setup: %s\n", strerror(fd < 0 ? -fd : 12));
		return 1;
	}
	ferry_sockaddr_format(&p.dst, name, sizeof(name));
	p.sent_at = now_us();
	while (p.sent < p.count && p.sent < WINDOW && !p.err)
		p.err = send_next(&p);
	signal(SIGALRM, on_alarm);
	alarm((unsigned int)timeout);
	ferry_udp_config_init(&cfg);
	cfg.stop = p.stop;
	ret = ferry_udp_recvfrom_loop(&cfg, fd, NULL, on_reply, &p);
	alarm(0);
	printf("udp-ping: %s: %u sent, %u replies, %u wrong, %.0f us for all\n", name, p.sent, p.got, p.bad,
	       now_us() - p.sent_at);
	if (ret < 0)
		fprintf(stderr, "udp-ping: receive: %s\n", strerror(-ret));
	if (p.err)
		fprintf(stderr, "udp-ping: send to %s: %s\n", name, strerror(-p.err));
	close(fd);
	ferry_stop_free(p.stop);
	return p.got == p.count && !p.bad && !p.err ? 0 : 1;
}
