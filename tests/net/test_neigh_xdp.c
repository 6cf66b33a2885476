/* SPDX-License-Identifier: MIT */
/*
 * The AF_XDP engine echoing to more peers than the old 256-slot next-hop cache
 * held: 300 peer addresses (198.18.1.x, 198.18.2.x on the peer's veth) send a
 * datagram each per round. The first replies go the kernel's way (it resolves
 * the next hops, ARP); once resolved, every later reply leaves on the TX ring:
 * tx_via_socket stops growing, where a thrashing cache would keep sending by
 * socket and asking the kernel for nearly every datagram.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "ferryd.h"
#include "netns.h"

#define PEERS 300
#define ROUNDS 6
#define SVC_PORT 41301
#define PEER_PORT 51301

static struct ferry_test_engine_fx fx = FERRY_TEST_ENGINE_FX_INIT;

/* The test's own: the peers' address batch file, what the echo callback counted per round. */
static struct {
	char batch[64];
	uint64_t echoed[ROUNDS], via[ROUNDS], bad;
} nx;

static void setup(void)
{
	ferry_test_engine_fx_setup(&fx);
}

static void teardown(void)
{
	if (nx.batch[0])
		unlink(nx.batch);
	nx.batch[0] = '\0';
	ferry_test_engine_fx_teardown(&fx);
}

TestSuite(neigh_xdp, .init = setup, .fini = teardown, .timeout = 90);

static void peer_addr(unsigned int i, union ferry_sockaddr *out)
{
	char s[32];

	snprintf(s, sizeof(s), "198.18.%u.%u:%u", 1 + i / 254, 1 + i % 254, PEER_PORT + i % 7);
	cr_assert_eq(ferry_sockaddr_parse(s, out), 0);
}

/* Each reply batch: what it sent by socket, by round (the first payload byte). */
static void echo_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_service *svc = user;
	struct ferryd_stats a, b;
	unsigned int round = ferry_iobuf_length(bufs[0]) ? ((const uint8_t *)ferry_iobuf_window(bufs[0]))[0] : ROUNDS;

	if (round >= ROUNDS) {
		nx.bad += n;
		round = ROUNDS - 1;
	}
	fx.e->ops->get_stats(fx.e, &a);
	cr_assert_eq(fx.e->ops->send(fx.e, svc, bufs, srcs, n), n, "every echo accepted");
	fx.e->ops->get_stats(fx.e, &b);
	nx.echoed[round] += n;
	nx.via[round] += b.tx_via_socket - a.tx_via_socket;
}

/* The peer: one socket per address; per round one datagram from each, then every echo back (bounded waits). */
static int peer_main(void)
{
	static int fds[PEERS];
	static struct pollfd pfd[PEERS];
	union ferry_sockaddr host;

	if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
		return 10;
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, SVC_PORT, &host);
	for (unsigned int i = 0; i < PEERS; i++) {
		union ferry_sockaddr a;

		peer_addr(i, &a);
		fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], &a.sa, ferry_sockaddr_len(&a))) {
			fprintf(stderr, "peer: socket %u: %s\n", i, strerror(errno));
			return 11;
		}
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	}
	usleep(100 * 1000); /* let the parent enter its reactor loop */
	for (unsigned int round = 0; round < ROUNDS; round++) {
		unsigned int got = 0;
		uint64_t deadline = ferry_test_now_ms() + 3000;
		bool back[PEERS] = { false };

		for (unsigned int i = 0; i < PEERS; i++) {
			uint8_t out[3] = { (uint8_t)round, (uint8_t)(i >> 8), (uint8_t)i };

			if (sendto(fds[i], out, sizeof(out), 0, &host.sa, ferry_sockaddr_len(&host)) != sizeof(out)) {
				fprintf(stderr, "peer: round %u sendto %u: %s\n", round, i, strerror(errno));
				return 12;
			}
		}
		while (got < PEERS && ferry_test_now_ms() < deadline) {
			if (poll(pfd, PEERS, 100) < 0)
				return 13;
			for (unsigned int i = 0; i < PEERS; i++) {
				uint8_t in[16];
				union ferry_sockaddr from;
				socklen_t fromlen = sizeof(from);
				ssize_t n;

				if (!(pfd[i].revents & POLLIN))
					continue;
				while ((n = recvfrom(fds[i], in, sizeof(in), 0, &from.sa, &fromlen)) >= 0) {
					if (n != 3 || in[0] != round || in[1] != (uint8_t)(i >> 8) || in[2] != (uint8_t)i ||
					    !ferry_sockaddr_equal(&from, &host)) {
						fprintf(stderr, "peer: round %u socket %u: a wrong echo\n", round, i);
						return 14;
					}
					if (!back[i])
						got++;
					back[i] = true;
					fromlen = sizeof(from);
				}
			}
		}
		if (got < PEERS) {
			fprintf(stderr, "peer: round %u: %u of %d echoes came back\n", round, got, PEERS);
			return 15;
		}
		usleep(100 * 1000); /* the kernel's neighbour notifications arrive meanwhile */
	}
	return 0;
}

Test(neigh_xdp, echo_to_300_peers_leaves_the_socket_path)
{
	struct ferryd_service svc;
	struct ferryd_stats st;
	char why[256] = "";
	uint64_t total = 0;
	unsigned int rounds_by_socket = 0;
	int status = -1, err;
	FILE *f;

	/* the peer's 300 extra addresses, on-link for the host */
	snprintf(nx.batch, sizeof(nx.batch), "/tmp/ferry-neigh-xdp-%d.batch", (int)getpid());
	f = fopen(nx.batch, "w");
	cr_assert_not_null(f);
	for (unsigned int i = 0; i < PEERS; i++)
		fprintf(f, "addr add 198.18.%u.%u/32 dev " FERRY_TESTNS_PEER_IF "\n", 1 + i / 254, 1 + i % 254);
	fclose(f);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER, "ip -batch %s", nx.batch), 0, "the peer's addresses");
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
				      "ip route add 198.18.1.0/24 dev " FERRY_TESTNS_HOST_IF " && ip route add 198.18.2.0/24 dev "
				      FERRY_TESTNS_HOST_IF),
		     0, "on-link routes to them");

	memset(&svc, 0, sizeof(svc));
	snprintf(svc.name, sizeof(svc.name), "echo");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, SVC_PORT, &svc.addr);
	svc.cb = echo_cb;
	svc.user = &svc;
	err = ferryd_xdp_engine_new(fx.r, fx.iface, &fx.cfg, &svc, 1, &fx.e, why, sizeof(why));
	cr_assert_eq(err, 0, "ferryd_xdp_engine_new: %s (%s)", strerror(-err), why);

	if (ferry_test_engine_fx_fork(&fx) == 0)
		_exit(peer_main());
	ferry_test_engine_fx_run_peer(&fx, 60000, &status);
	cr_assert_eq(fx.child, -1, "the peer finished in time");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the peer got every echo of every round (status %#x)",
		  status);
	fx.e->ops->drain(fx.e);
	fx.e->ops->get_stats(fx.e, &st);
	cr_expect_eq(ferryd_engine_check_frames(fx.e), 0, "frame accounting balanced");
	for (unsigned int r = 0; r < ROUNDS; r++) {
		cr_log_info("round %u: %llu echoes, %llu by socket", r, (unsigned long long)nx.echoed[r],
			    (unsigned long long)nx.via[r]);
		fprintf(stderr, "neigh_xdp: round %u: %llu echoes, %llu by socket\n", r, (unsigned long long)nx.echoed[r],
			(unsigned long long)nx.via[r]);
		cr_expect_eq(nx.echoed[r], PEERS, "round %u: expected %d echoes, %llu", r, PEERS,
			     (unsigned long long)nx.echoed[r]);
		rounds_by_socket += nx.via[r] != 0;
		total += nx.echoed[r];
	}
	cr_expect_eq(nx.bad, 0, "no datagram of an unknown round");
	cr_expect_gt(nx.via[0], 0, "expected the first replies by the kernel's path (nothing resolved yet)");
	cr_expect_geq(st.tx_neigh_miss, nx.via[0], "expected those counted as neighbour misses");
	cr_expect_leq(rounds_by_socket, 2, "expected replies by socket only until the next hops resolved");
	for (unsigned int r = 2; r < ROUNDS; r++)
		cr_expect_eq(nx.via[r], 0, "round %u: expected every reply on the TX ring, %llu by socket", r,
			     (unsigned long long)nx.via[r]);
	cr_expect_eq(st.tx_packets, total, "tx_packets %llu, expected %llu", (unsigned long long)st.tx_packets,
		     (unsigned long long)total);
	cr_expect_eq(st.tx_dropped, 0, "nothing dropped");
}
