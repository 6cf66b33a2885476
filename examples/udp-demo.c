/* SPDX-License-Identifier: MIT */
/*
 * udp-demo: the smallest complete use of libferry. Binds a UDP socket on
 * loopback, sends it a few datagrams, receives them with
 * ferry_udp_recvmmsg_loop and prints what arrived, then stops the loop from
 * the callback. Usage: udp-demo [COUNT] [ADDR]   (default 8, 127.0.0.1:0)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/udp.h>

struct demo {
	struct ferry_stop *stop;
	unsigned int want, got, batches;
};

static struct ferry_stop *alarm_stop;

static void on_alarm(int sig)
{
	(void)sig;
	ferry_stop_fire(alarm_stop); /* async-signal-safe */
}

static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct demo *d = user;
	char from[64];

	d->batches++;
	for (unsigned int i = 0; i < count; i++) {
		ferry_sockaddr_format(&srcs[i], from, sizeof(from));
		printf("  got %4zu bytes from %s: \"%.*s\"%s\n", ferry_iobuf_length(bufs[i]), from,
		       (int)ferry_iobuf_length(bufs[i]), (const char *)ferry_iobuf_window(bufs[i]),
		       bufs[i]->flags & FERRY_IOBUF_TRUNCATED ? " (truncated)" : "");
	}
	d->got += count;
	if (d->got >= d->want)
		ferry_stop_fire(d->stop);
}

int main(int argc, char **argv)
{
	struct demo d = { .want = argc > 1 ? (unsigned int)atoi(argv[1]) : 8 };
	const char *where = argc > 2 ? argv[2] : "127.0.0.1:0";
	union ferry_sockaddr addr;
	socklen_t alen = sizeof(addr);
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts = { .sz = sizeof(opts), .create_srcs = true };
	char name[64];
	int rx, tx, ret;

	if (ferry_sockaddr_parse(where, &addr)) {
		fprintf(stderr, "udp-demo: bad address '%s'\n", where);
		return 2;
	}
	rx = ferry_udp_bind(&addr, NULL);
	if (rx < 0) {
		fprintf(stderr, "udp-demo: bind %s: %s\n", where, strerror(-rx));
		return 1;
	}
	getsockname(rx, &addr.sa, &alen);
	tx = ferry_udp_bind_any(addr.sa.sa_family);
	d.stop = alarm_stop = ferry_stop_new();
	if (tx < 0 || !d.stop) {
		fprintf(stderr, "udp-demo: setup failed\n");
		return 1;
	}
	ferry_sockaddr_format(&addr, name, sizeof(name));
	printf("udp-demo: sending %u datagrams to %s\n", d.want, name);
	for (unsigned int i = 0; i < d.want; i++) {
		char msg[64];
		struct ferry_iobuf b;

		ferry_iobuf_init(&b, msg, (size_t)snprintf(msg, sizeof(msg), "datagram %u of %u", i + 1, d.want));
		ret = ferry_udp_sendto_sync(tx, &b, &addr);
		if (ret != FERRY_OK) {
			fprintf(stderr, "udp-demo: send: %s\n", ret < 0 ? strerror(-ret) : "not ready");
			return 1;
		}
	}

	signal(SIGALRM, on_alarm);
	alarm(5); /* never wait forever for a datagram that will not come */
	ferry_udp_config_init(&cfg);
	cfg.stop = d.stop;
	printf("udp-demo: receiving with ferry_udp_recvmmsg_loop (max %zu per batch)\n", 65536 / cfg.capacity);
	ret = ferry_udp_recvmmsg_loop(&cfg, rx, &opts, on_batch, &d);
	alarm(0);
	printf("udp-demo: loop ended (%s): %u of %u datagrams in %u batches\n",
	       ret == FERRY_END_STOPPED ? "stopped" : ret == FERRY_END_CLOSED ? "closed" : strerror(-ret), d.got,
	       d.want, d.batches);
	close(tx);
	close(rx);
	ferry_stop_free(d.stop);
	return d.got == d.want ? 0 : 1;
}
