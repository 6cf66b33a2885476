/* SPDX-License-Identifier: MIT */
/*
 * ferry-echo: a consumer of one ferryd service that sends every datagram
 * back to where it came from (or, with --count, only counts them). The same
 * batch callback runs on ferryd's shared-memory rings (the default) or on a
 * plain UDP socket (--socket ADDR:PORT): only the source changes.
 *
 * Usage: ferry-echo [--control PATH] [--reconnect] [--zero-copy] [--count] [--quiet] SERVICE
 *        ferry-echo --socket ADDR:PORT [--count] [--quiet]
 * Runs until SIGINT or SIGTERM; SIGUSR1 prints its counters; they are
 * printed at the end too, as one "ferry-echo ..." line.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/client.h>
#include <ferry/udp.h>

struct echo {
	struct ferry_client *client; /* the source: ferryd's rings, or */
	int fd;			     /* a socket */
	bool count_only;
	uint64_t datagrams, bytes, sent, unsent;
};

static struct ferry_stop *stop;
static volatile sig_atomic_t want_stats;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_stats = 1;
	else
		ferry_stop_fire(stop);
}

static void print_stats(const struct echo *e)
{
	struct ferry_client_stats cs;

	printf("ferry-echo datagrams=%llu bytes=%llu sent=%llu unsent=%llu", (unsigned long long)e->datagrams,
	       (unsigned long long)e->bytes, (unsigned long long)e->sent, (unsigned long long)e->unsent);
	if (e->client && !ferry_client_stats(e->client, &cs))
		printf(" session=%u workers=%u rx_dropped_full=%llu rx_dropped_big=%llu rx_zero_copy=%llu tx_dropped=%llu "
		       "reconnects=%llu",
		       cs.session, cs.workers, (unsigned long long)cs.rx_dropped_full,
		       (unsigned long long)cs.rx_dropped_big, (unsigned long long)cs.rx_zero_copy,
		       (unsigned long long)cs.tx_dropped, (unsigned long long)cs.reconnects);
	printf("\n");
	fflush(stdout);
}

/* The one callback, whatever the source. */
static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct echo *e = user;
	unsigned int done = 0;

	for (unsigned int i = 0; i < count; i++)
		e->bytes += ferry_iobuf_length(bufs[i]);
	e->datagrams += count;
	if (want_stats) {
		want_stats = 0;
		print_stats(e);
	}
	if (e->count_only)
		return;
	if (e->client) {
		int n = ferry_client_send(e->client, bufs, srcs, count);

		done = n > 0 ? (unsigned int)n : 0;
	} else {
		for (unsigned int i = 0; i < count; i++)
			done += ferry_udp_sendto_sync(e->fd, bufs[i], &srcs[i]) == FERRY_OK;
	}
	/* an echo that finds no room drops the reply, as a UDP server does */
	e->sent += done;
	e->unsent += count - done;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: ferry-echo [--control PATH] [--reconnect] [--zero-copy] [--count] [--quiet] SERVICE\n"
		     "       ferry-echo --socket ADDR:PORT [--count] [--quiet]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"control", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
		{"reconnect", no_argument, NULL, 'r'},	   {"count", no_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},	   {"help", no_argument, NULL, 'h'},
		{"zero-copy", no_argument, NULL, 'z'},
		{NULL, 0, NULL, 0},
	};
	const char *control = NULL, *sock = NULL;
	struct echo e = { .fd = -1 };
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts lo = { .sz = sizeof(lo), .create_srcs = true };
	bool reconnect = false, quiet = false, zero_copy = false;
	char why[160] = "";
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:s:rnqhz", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': control = optarg; break;
		case 's': sock = optarg; break;
		case 'r': reconnect = true; break;
		case 'n': e.count_only = true; break;
		case 'q': quiet = true; break;
		case 'z': zero_copy = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((sock != NULL) == (optind < argc) || argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	stop = ferry_stop_new();
	if (!stop)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	ferry_udp_config_init(&cfg);
	cfg.stop = stop;

	if (sock) {
		union ferry_sockaddr addr;

		if (ferry_sockaddr_parse(sock, &addr)) {
			fprintf(stderr, "ferry-echo: --socket: '%s': expected ADDR:PORT\n", sock);
			return 2;
		}
		e.fd = ferry_udp_bind(&addr, NULL);
		if (e.fd < 0) {
			fprintf(stderr, "ferry-echo: binding %s: %s\n", sock, strerror(-e.fd));
			return 1;
		}
		if (!quiet)
			fprintf(stderr, "ferry-echo: on the socket %s\n", sock);
		rc = ferry_udp_recvmmsg_loop(&cfg, e.fd, &lo, on_batch, &e);
	} else {
		struct ferry_client_opts o = {
			.sz = sizeof(o), .socket_path = control, .service = argv[optind], .reconnect = reconnect,
			.why = why, .whylen = sizeof(why), .zero_copy = zero_copy,
		};

		rc = ferry_client_connect(&o, &e.client);
		if (rc) {
			fprintf(stderr, "ferry-echo: attaching to %s: %s\n", argv[optind], why);
			return 1;
		}
		if (!quiet)
			fprintf(stderr, "ferry-echo: attached to service %s\n", argv[optind]);
		fflush(stderr);
		rc = ferry_client_recvmmsg_loop(&cfg, e.client, &lo, on_batch, &e);
	}
	print_stats(&e);
	if (rc != FERRY_END_STOPPED) {
		if (e.client)
			ferry_client_status(e.client, why, sizeof(why));
		fprintf(stderr, "ferry-echo: the loop ended: %s%s%s\n",
			rc == FERRY_END_CLOSED ? "the session ended" : strerror(-rc), why[0] ? ": " : "", why);
	}
	ferry_client_close(e.client);
	if (e.fd >= 0)
		close(e.fd);
	ferry_stop_free(stop);
	return rc == FERRY_END_STOPPED ? 0 : 1;
}
