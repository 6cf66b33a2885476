/* SPDX-License-Identifier: MIT */
/*
 * The next-hop cache (daemon/neigh.c) in the host namespace of tests/lib/netns.h:
 * a lookup never asks the kernel itself, answers follow the kernel's tables
 * through notifications (no expiry), thousands of peers stay cached, and a
 * peer that never resolves is asked about rarely, not per datagram.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <ferry/reactor.h>

#include "engine_fixture.h"
#include "neigh.h"
#include "netns.h"

#define MANY 2000 /* peers of the many-peers test: 198.19.0.0/16 */

static struct {
	struct ferry_testns ns;
	bool ns_up;
	struct ferry_reactor *r;
	struct ferryd_neigh *nb;
	unsigned int ifindex;
	char batch[64];
} fx;

static void setup(void)
{
	ferry_test_ns_up(&fx.ns, &fx.ns_up, "needs root for namespaces");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_HOST), 0, "entering the host namespace");
	fx.ifindex = if_nametoindex(FERRY_TESTNS_HOST_IF);
	cr_assert_gt(fx.ifindex, 0, "expected " FERRY_TESTNS_HOST_IF " in the host namespace");
	fx.r = ferry_reactor_new();
	cr_assert_not_null(fx.r, "a reactor");
}

static void teardown(void)
{
	ferryd_neigh_free(fx.nb);
	fx.nb = NULL;
	ferry_reactor_free(fx.r);
	fx.r = NULL;
	if (fx.batch[0])
		unlink(fx.batch);
	fx.batch[0] = '\0';
	ferry_test_ns_down(&fx.ns, &fx.ns_up);
}

TestSuite(neigh_cache, .init = setup, .fini = teardown, .timeout = 60);

static void new_resolver(unsigned int capacity)
{
	int err = ferryd_neigh_new(fx.r, fx.ifindex, capacity, &fx.nb);

	cr_assert_eq(err, 0, "expected a resolver: %s", strerror(-err));
}

static struct ferryd_neigh_stats stats(void)
{
	struct ferryd_neigh_stats st;

	ferryd_neigh_get_stats(fx.nb, &st);
	return st;
}

static void addr4(const char *s, union ferry_sockaddr *out)
{
	cr_assert_eq(ferry_sockaddr_parse(s, out), 0, "parsing %s", s);
}

/* 198.19.x.y of peer i of the many (198.19.1.1 on; 198.19.0.1 is the host's), and its MAC. */
static void many_addr(unsigned int i, union ferry_sockaddr *out, uint8_t mac[6])
{
	char s[32];

	snprintf(s, sizeof(s), "198.19.%u.%u:7", 1 + i / 250, 1 + i % 250);
	addr4(s, out);
	if (mac) {
		uint8_t m[6] = { 0x02, 0, 0, 0x01, (uint8_t)(i >> 8), (uint8_t)i };

		memcpy(mac, m, 6);
	}
}

/* Adds permanent neighbours 198.19.x.y (the first count of the many) on fh0, in one ip -batch. */
static void add_many(unsigned int count)
{
	FILE *f;

	snprintf(fx.batch, sizeof(fx.batch), "/tmp/ferry-neigh-cache-%d.batch", (int)getpid());
	f = fopen(fx.batch, "w");
	cr_assert_not_null(f, "a batch file");
	for (unsigned int i = 0; i < count; i++)
		fprintf(f, "neigh add 198.19.%u.%u lladdr 02:00:00:01:%02x:%02x dev " FERRY_TESTNS_HOST_IF " nud permanent\n",
			1 + i / 250, 1 + i % 250, (i >> 8) & 0xff, i & 0xff);
	fclose(f);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
				      "ip addr add 198.19.0.1/16 dev " FERRY_TESTNS_HOST_IF " && ip -batch %s", fx.batch),
		     0, "expected %u neighbour entries on 198.19.0.0/16", count);
}

/* Lets the resolver send its questions and take answers and notifications for a few rounds. */
static void pump(uint64_t now, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		ferryd_neigh_submit(fx.nb, now);
		ferry_reactor_run_once(fx.r, 5);
	}
}

/* Looks dst up at a fixed now, pumping in between, until the answer is not MISS or 3 s pass. */
static enum ferryd_neigh_result wait_answer(const union ferry_sockaddr *dst, uint64_t now, uint8_t mac[6])
{
	uint64_t deadline = ferry_test_now_ms() + 3000;
	enum ferryd_neigh_result res;

	while ((res = ferryd_neigh_lookup(fx.nb, dst, now, mac, NULL)) == FERRYD_NEIGH_MISS &&
	       ferry_test_now_ms() < deadline)
		pump(now, 1);
	return res;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A miss comes back at once and sends nothing; the answer comes once the questions went out and the reactor ran. */
Test(neigh_cache, lookup_never_blocks)
{
	union ferry_sockaddr peer, other;
	uint8_t mac[6];
	uint64_t now = ferry_test_now_ms(), t0, dt;
	enum ferryd_neigh_result res;

	new_resolver(0);
	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET, 9, &peer);
	t0 = mono_ns();
	res = ferryd_neigh_lookup(fx.nb, &peer, now, mac, NULL);
	/* 500 more destinations nobody has resolved (on-link, no neighbour entry) */
	for (unsigned int i = 0; i < 500; i++) {
		char s[32];

		snprintf(s, sizeof(s), "198.18.0.%u:9", 10 + i % 200);
		addr4(s, &other);
		if (i >= 200)
			other.in4.sin_addr.s_addr ^= htonl(0x100 * (i / 200)); /* 198.18.1.x, 198.18.2.x */
		cr_assert_eq(ferryd_neigh_lookup(fx.nb, &other, now, mac, NULL), FERRYD_NEIGH_MISS,
			     "expected a miss for an unresolved destination");
	}
	dt = mono_ns() - t0;
	cr_assert_eq(res, FERRYD_NEIGH_MISS, "expected a miss before anything was asked, got %d", res);
	cr_assert_eq(stats().queries, 0, "expected no question sent by a lookup (sent %llu)",
		     (unsigned long long)stats().queries);
	cr_expect_lt(dt, 50 * 1000000ull, "501 missing lookups took %llu us: expected no waiting",
		     (unsigned long long)(dt / 1000));
	cr_log_info("501 lookups that missed: %llu us", (unsigned long long)(dt / 1000));

	/* one submit asks and takes the answers the kernel already gave (the static entry of the fixture) */
	ferryd_neigh_submit(fx.nb, now);
	cr_assert_gt(stats().queries, 0, "expected the queued questions sent by submit");
	res = wait_answer(&peer, now, mac);
	cr_assert_eq(res, FERRYD_NEIGH_OK, "expected the peer resolved after submit and the reactor, got %d", res);
	cr_assert_eq(memcmp(mac, fx.ns.peer_mac, 6), 0, "expected the peer's MAC");
}

/* A MAC change, a deletion and a new entry in the kernel's table reach the cache by notification, with no question asked. */
Test(neigh_cache, neighbour_change_without_expiry)
{
	static const uint8_t mac_new[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee }, mac_back[6] = { 0x02, 0x11, 0, 0, 0, 0x22 };
	union ferry_sockaddr peer;
	uint8_t mac[6];
	uint64_t now = ferry_test_now_ms(), queries;
	enum ferryd_neigh_result res;

	new_resolver(0);
	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET, 9, &peer);
	cr_assert_eq(wait_answer(&peer, now, mac), FERRYD_NEIGH_OK, "expected the peer resolved");
	cr_assert_eq(memcmp(mac, fx.ns.peer_mac, 6), 0, "expected the peer's MAC");
	queries = stats().queries;

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
				      "ip neigh replace " FERRY_TESTNS_PEER4 " lladdr 02:aa:bb:cc:dd:ee dev " FERRY_TESTNS_HOST_IF
				      " nud permanent"),
		     0, "changing the peer's MAC in the kernel's table");
	/* the same now throughout: nothing expires, nothing is due for asking again */
	for (uint64_t end = ferry_test_now_ms() + 3000; ferry_test_now_ms() < end;) {
		pump(now, 1);
		res = ferryd_neigh_lookup(fx.nb, &peer, now, mac, NULL);
		if (res == FERRYD_NEIGH_OK && !memcmp(mac, mac_new, 6))
			break;
	}
	cr_assert_eq(memcmp(mac, mac_new, 6), 0, "expected the new MAC from the kernel's notification");

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip neigh del " FERRY_TESTNS_PEER4 " dev " FERRY_TESTNS_HOST_IF),
		     0, "deleting the peer's neighbour entry");
	for (uint64_t end = ferry_test_now_ms() + 3000; ferry_test_now_ms() < end;) {
		pump(now, 1);
		if (ferryd_neigh_lookup(fx.nb, &peer, now, mac, NULL) == FERRYD_NEIGH_MISS)
			break;
	}
	cr_assert_eq(ferryd_neigh_lookup(fx.nb, &peer, now, mac, NULL), FERRYD_NEIGH_MISS,
		     "expected a miss once the kernel deleted the entry");

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
				      "ip neigh replace " FERRY_TESTNS_PEER4 " lladdr 02:11:00:00:00:22 dev " FERRY_TESTNS_HOST_IF
				      " nud permanent"),
		     0, "adding the entry back");
	res = wait_answer(&peer, now, mac);
	cr_assert_eq(res, FERRYD_NEIGH_OK, "expected the peer resolved again from the notification, got %d", res);
	cr_assert_eq(memcmp(mac, mac_back, 6), 0, "expected the MAC of the new entry");
	cr_expect_eq(stats().queries, queries, "expected every change learnt by notification (%llu questions, %llu before)",
		     (unsigned long long)stats().queries, (unsigned long long)queries);
	cr_expect_geq(stats().neigh_events, 3, "expected three neighbour notifications applied");
}

/* 2000 peers resolve, and then every lookup of every one of them is a hit with no question asked. */
Test(neigh_cache, many_peers_all_hit)
{
	union ferry_sockaddr a;
	uint8_t mac[6], want[6];
	uint64_t now = ferry_test_now_ms(), deadline = ferry_test_now_ms() + 20000, t0, dt;
	struct ferryd_neigh_stats before, after;
	unsigned int ok = 0, rounds = 0;

	add_many(MANY);
	new_resolver(0);
	while (ok < MANY && ferry_test_now_ms() < deadline) {
		ok = 0;
		for (unsigned int i = 0; i < MANY; i++) {
			many_addr(i, &a, NULL);
			ok += ferryd_neigh_lookup(fx.nb, &a, now, mac, NULL) == FERRYD_NEIGH_OK;
		}
		pump(now, 1);
		rounds++;
	}
	cr_assert_eq(ok, MANY, "expected all %d peers resolved, %u were after %u rounds", MANY, ok, rounds);
	before = stats();
	cr_log_info("%d peers resolved in %u rounds with %llu questions", MANY, rounds, (unsigned long long)before.queries);
	cr_expect_leq(before.queries, 2 * MANY + 64, "expected about two questions per peer, not %llu",
		      (unsigned long long)before.queries);

	t0 = mono_ns();
	for (int pass = 0; pass < 5; pass++)
		for (unsigned int i = 0; i < MANY; i++) {
			many_addr(i, &a, want);
			cr_assert_eq(ferryd_neigh_lookup(fx.nb, &a, now + 60000, mac, NULL), FERRYD_NEIGH_OK,
				     "expected peer %u a hit", i);
			cr_assert_eq(memcmp(mac, want, 6), 0, "expected peer %u's MAC", i);
		}
	dt = mono_ns() - t0;
	ferryd_neigh_submit(fx.nb, now + 60000);
	pump(now + 60000, 3);
	after = stats();
	cr_assert_eq(after.queries, before.queries, "expected no question after everything resolved (%llu more)",
		     (unsigned long long)(after.queries - before.queries));
	cr_assert_eq(after.hits - before.hits, 5 * MANY, "expected %d hits, got %llu", 5 * MANY,
		     (unsigned long long)(after.hits - before.hits));
	cr_assert_eq(after.misses, before.misses, "expected no miss");
	cr_assert_eq(after.evictions, 0, "expected nothing evicted");
	cr_log_info("%d lookups (with parsing addresses) in %llu us", 5 * MANY, (unsigned long long)(dt / 1000));
	fprintf(stderr, "neigh_cache: %d peers: %llu questions to resolve, %d hits in %llu us\n", MANY,
		(unsigned long long)before.queries, 5 * MANY, (unsigned long long)(dt / 1000));
}

/* A destination nobody answers for is asked about about once a second, not for every datagram. */
Test(neigh_cache, dead_peer_asked_rarely)
{
	union ferry_sockaddr dead;
	uint8_t mac[6];
	uint64_t now = ferry_test_now_ms();
	unsigned int misses = 0;

	new_resolver(0);
	addr4("198.18.0.77:9", &dead);
	for (int i = 0; i < 1000; i++, now += 3) { /* 3 s of a datagram every 3 ms */
		misses += ferryd_neigh_lookup(fx.nb, &dead, now, mac, NULL) == FERRYD_NEIGH_MISS;
		ferryd_neigh_submit(fx.nb, now);
		if (i % 50 == 0)
			ferry_reactor_run_once(fx.r, 0);
	}
	cr_assert_eq(misses, 1000, "expected every lookup of a dead peer a miss");
	cr_expect_leq(stats().queries, 8, "expected a route question and a few neighbour questions in 3 s, not %llu",
		      (unsigned long long)stats().queries);
	cr_expect_geq(stats().queries, 3, "expected it asked about again after a while (%llu questions)",
		      (unsigned long long)stats().queries);
}

/*
 * A route change makes the answers of its family asked again: `add` makes a
 * route toward far through the peer and a second gateway whose MAC is mac_gw2,
 * `move` moves it to that gateway (its MAC is used), `del` removes it.
 */
static void route_change_case(const char *add, const char *far_s, const char *move, const char *del,
			      const uint8_t mac_gw2[6])
{
	union ferry_sockaddr far;
	uint8_t mac[6];
	uint64_t now = ferry_test_now_ms();
	enum ferryd_neigh_result res;

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "%s", add), 0, "%s", add);
	new_resolver(0);
	addr4(far_s, &far);
	res = wait_answer(&far, now, mac);
	cr_assert_eq(res, FERRYD_NEIGH_OK, "expected %s resolved to its gateway, got %d", far_s, res);
	cr_assert_eq(memcmp(mac, fx.ns.peer_mac, 6), 0, "expected the gateway's (the peer's) MAC");

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "%s", move), 0, "%s", move);
	for (uint64_t end = ferry_test_now_ms() + 3000; ferry_test_now_ms() < end;) {
		pump(now, 1);
		res = ferryd_neigh_lookup(fx.nb, &far, now, mac, NULL);
		if (res == FERRYD_NEIGH_OK && !memcmp(mac, mac_gw2, 6))
			break;
	}
	cr_assert_eq(res, FERRYD_NEIGH_OK, "expected %s resolved again, got %d", far_s, res);
	cr_assert_eq(memcmp(mac, mac_gw2, 6), 0, "expected the new gateway's MAC after '%s'", move);
	cr_expect_geq(stats().route_events, 1, "expected the route notification seen");

	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "%s", del), 0, "%s", del);
	for (uint64_t end = ferry_test_now_ms() + 3000; ferry_test_now_ms() < end;) {
		pump(now, 1);
		if ((res = ferryd_neigh_lookup(fx.nb, &far, now, mac, NULL)) == FERRYD_NEIGH_NO_ROUTE)
			break;
	}
	cr_assert_eq(res, FERRYD_NEIGH_NO_ROUTE, "expected no route once it was removed ('%s'), got %d", del, res);
}

Test(neigh_cache, route_change_is_followed)
{
	static const uint8_t mac_gw2[6] = { 0x02, 0, 0, 0, 0x33, 0x33 };

	route_change_case("ip neigh replace 198.18.0.3 lladdr 02:00:00:00:33:33 dev " FERRY_TESTNS_HOST_IF
			  " nud permanent && ip route add 198.19.128.0/24 via " FERRY_TESTNS_PEER4,
			  "198.19.128.5:9", "ip route replace 198.19.128.0/24 via 198.18.0.3",
			  "ip route del 198.19.128.0/24", mac_gw2);
}

/* The same for IPv6, whose routes have their own generation and their gateways 16 bytes. */
Test(neigh_cache, ipv6_route_change_is_followed)
{
	static const uint8_t mac_gw2[6] = { 0x02, 0, 0, 0, 0x66, 0x66 };

	route_change_case("ip -6 neigh replace 2001:2::3 lladdr 02:00:00:00:66:66 dev " FERRY_TESTNS_HOST_IF
			  " nud permanent && ip -6 route add 2001:2:0:80::/64 via " FERRY_TESTNS_PEER6,
			  "[2001:2:0:80::5]:9", "ip -6 route replace 2001:2:0:80::/64 via 2001:2::3",
			  "ip -6 route del 2001:2:0:80::/64", mac_gw2);
}

/* A cache smaller than the set of peers evicts what is not used and keeps what is. */
Test(neigh_cache, full_cache_keeps_what_is_used)
{
	union ferry_sockaddr a;
	uint8_t mac[6], want[6];
	uint64_t now = ferry_test_now_ms(), queries;
	struct ferryd_neigh_stats st;

	add_many(300);
	new_resolver(64);
	for (unsigned int i = 0; i < 300; i++) {
		many_addr(i, &a, want);
		cr_assert_eq(wait_answer(&a, now, mac), FERRYD_NEIGH_OK, "expected peer %u resolved", i);
		cr_assert_eq(memcmp(mac, want, 6), 0, "expected peer %u's MAC", i);
	}
	st = stats();
	cr_assert_leq(st.entries, 64, "expected at most 64 destinations cached, %llu are", (unsigned long long)st.entries);
	cr_assert_geq(st.evictions, 300 - 64, "expected evictions (%llu)", (unsigned long long)st.evictions);

	/* a working set of 40 (the last ones, cached) used again and again, with strangers in between */
	queries = stats().queries;
	for (int round = 0; round < 20; round++) {
		for (unsigned int i = 260; i < 300; i++) {
			many_addr(i, &a, want);
			cr_assert_eq(ferryd_neigh_lookup(fx.nb, &a, now, mac, NULL), FERRYD_NEIGH_OK,
				     "round %d: expected peer %u of the working set a hit", round, i);
		}
		many_addr((unsigned int)round, &a, NULL); /* one stranger per round */
		wait_answer(&a, now, mac);
	}
	cr_expect_leq(stats().queries - queries, 2 * 20, "expected questions only for the strangers (%llu)",
		      (unsigned long long)(stats().queries - queries));
}
