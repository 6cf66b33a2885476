/* SPDX-License-Identifier: MIT */
/*
 * ferryd's client sessions end to end: the real ferryd in the fixture's host
 * namespace with --handler clients, consumer processes attached through its
 * control socket (client_proc.h), traffic from the peer namespace. What one
 * client receives (every datagram, bytes and sources exact, both engines,
 * both families, one and two workers), how a service spreads over four
 * (hash, round-robin, all), what a client sends (and the destinations ferryd
 * refuses to send to), the bounds on clients and on the frames zero-copy
 * clients hold, and what happens to the others when one is killed, is slow,
 * is not allowed, or outlives ferryd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "client_proc.h"
#include "ferryd_proc.h"
#include "hostile_client.h"
#include "netns.h"
#include "testutil.h"

#define PORT 9000
#define PEER_PORT 9500
#define READY_MS 15000
#define EXIT_MS 15000
#define ATTACH_MS 5000
#define DELIVER_MS 10000
#define NCLIENTS 4
#define FLOWS 32
#define BURST_PPS 20000
/* Under valgrind (tests/valgrind.sh sets FERRY_TEST_VALGRIND) the clients run 20-50 times slower. */
#define BURST_PPS_VALGRIND 1000
#define BURST_MAX 16384

static struct {
	struct ferry_testns ns;
	struct ferry_test_ferryd d;
	struct ferry_test_client c[NCLIENTS];
} fx = {.d = FERRY_TEST_FERRYD_INIT};

static void teardown(void)
{
	for (int i = 0; i < NCLIENTS; i++)
		ferry_test_client_free(&fx.c[i]);
	ferry_test_ferryd_stop(&fx.d);
	ferry_testns_teardown(&fx.ns);
}

static void env_up(unsigned int queues)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	for (int i = 0; i < NCLIENTS; i++)
		fx.c[i].pid = -1;
	err = queues > 1 ? ferry_testns_setup_queues(&fx.ns, queues) : ferry_testns_setup(&fx.ns);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up, got %s", strerror(-err));
}

static const char *ferryd_log(void)
{
	return ferry_test_ferryd_log(&fx.d);
}

static void start_ferryd(const char *const *args)
{
	ferry_test_ferryd_start(&fx.d, &fx.ns, "clients", args, READY_MS);
}

/* SIGTERM: ferryd drains and exits 0 only when every UMEM frame is accounted for. */
static void stop_ferryd(void)
{
	ferry_test_ferryd_stop_clean(&fx.d, EXIT_MS);
}

/* Client i attached to service with flags (and cfg's other fields, when given). */
static void start_client(int i, const char *service, unsigned int flags, const struct ferry_test_client_cfg *more)
{
	struct ferry_test_client_cfg cfg = {0};

	if (more)
		cfg = *more;
	cfg.control = fx.d.control;
	cfg.service = service;
	cfg.flags |= flags;
	ferry_test_client_start(&fx.c[i], &cfg);
	cr_assert(ferry_test_client_wait(&fx.c[i], FERRY_TEST_CLIENT_ATTACHED, ATTACH_MS),
		  "expected client %d to attach to %s (state %d, err %d: %s); ferryd log:\n%s", i, service,
		  fx.c[i].sh->state, fx.c[i].sh->err, fx.c[i].sh->why, ferryd_log());
	/* a client told to send may be done with it already: SENT comes only after ATTACHED */
	cr_assert(fx.c[i].sh->state == FERRY_TEST_CLIENT_ATTACHED || fx.c[i].sh->state == FERRY_TEST_CLIENT_SENT,
		  "expected client %d attached, state %d (%s)", i, fx.c[i].sh->state, fx.c[i].sh->why);
}

static uint64_t delivered(int i)
{
	return ferry_test_client_delivered(&fx.c[i]);
}

/* Waits (bounded) until client i has delivered at least n; true if it did. */
static bool wait_delivered(int i, uint64_t n, int ms)
{
	return ferry_test_client_wait_delivered(&fx.c[i], n, ms);
}

/* ---- the peer's burst ---------------------------------------------------------------------------- */

/* What the peer sent: datagram seq went from flow seq % FLOWS, len bytes, hash of its bytes. */
struct burst {
	int family;
	unsigned int count;
	uint16_t port[FLOWS]; /* each flow's source port, in the last burst_send() */
	uint16_t *sport;      /* per datagram: the port it left from */
	uint32_t *len, *hash;
	uint8_t *seen; /* per datagram: how many times a client had it */
};

static size_t burst_len(uint32_t seq)
{
	return 20 + (seq * 37) % 1400;
}

static void burst_free(struct burst *b)
{
	free(b->sport);
	free(b->len);
	free(b->hash);
	free(b->seen);
}

/*
 * From the peer namespace (the calling thread stays there: the clients are
 * other processes and reach ferryd by a path): count datagrams, numbered
 * from first_seq, to the host's service port, from FLOWS sockets in turn (so
 * veth spreads them over its queues), paced at BURST_PPS (BURST_PPS_VALGRIND
 * under valgrind, so that the clients keep up), bounded in time.
 */
static void burst_send(struct burst *b, int family, unsigned int count, unsigned int first_seq)
{
	uint64_t pps = getenv("FERRY_TEST_VALGRIND") ? BURST_PPS_VALGRIND : BURST_PPS;
	union ferry_sockaddr dst;
	int fds[FLOWS];
	uint8_t buf[2048];
	uint64_t start, deadline;
	unsigned int sent = 0;

	cr_assert_leq(first_seq + count, BURST_MAX, "a burst numbers at most %d datagrams", BURST_MAX);
	if (!b->len) {
		b->len = calloc(BURST_MAX, sizeof(*b->len));
		b->hash = calloc(BURST_MAX, sizeof(*b->hash));
		b->seen = calloc(BURST_MAX, 1);
		b->sport = calloc(BURST_MAX, sizeof(*b->sport));
		cr_assert(b->len && b->hash && b->seen && b->sport, "out of memory");
	}
	b->family = family;
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, family, PORT, &dst);
	for (int f = 0; f < FLOWS; f++) {
		union ferry_sockaddr me;
		socklen_t len = sizeof(me);

		fds[f] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[f], 0, "socket: %s", strerror(errno));
		cr_assert_eq(connect(fds[f], &dst.sa, ferry_sockaddr_len(&dst)), 0, "connect: %s", strerror(errno));
		getsockname(fds[f], &me.sa, &len);
		b->port[f] = ntohs(family == AF_INET ? me.in4.sin_port : me.in6.sin6_port);
	}
	start = ferry_test_now_ms();
	deadline = start + 20000;
	while (sent < count && ferry_test_now_ms() < deadline) {
		uint32_t seq = first_seq + sent;
		size_t len = burst_len(seq);

		if (ferry_test_now_ms() < start + (uint64_t)sent * 1000 / pps) {
			usleep(500);
			continue;
		}
		ferry_test_client_payload(buf, len, seq);
		if (send(fds[seq % FLOWS], buf, len, 0) == (ssize_t)len) {
			b->len[seq] = (uint32_t)len;
			b->hash[seq] = ferry_test_hash(buf, len);
			b->sport[seq] = b->port[seq % FLOWS];
			sent++;
		} else {
			cr_assert(errno == EAGAIN || errno == ENOBUFS || errno == EINTR, "send: %s", strerror(errno));
			usleep(200);
		}
	}
	for (int f = 0; f < FLOWS; f++)
		close(fds[f]);
	cr_assert_eq(sent, count, "expected to send %u datagrams, sent %u", count, sent);
	b->count = first_seq + count;
}

/* Datagram seq of the burst, by its first bytes (its seq), or -1. */
static int64_t rec_seq(const struct burst *b, const struct ferry_test_client_rec *r)
{
	/* the payload starts with seq; the hash says the rest is the same */
	for (uint32_t guess = 0; guess < b->count; guess++)
		if (b->hash[guess] == r->hash && b->len[guess] == r->len)
			return guess;
	return -1;
}

/*
 * Checks client i's records against the burst: every one a datagram of it,
 * byte-exact, from the peer's address and its flow's port; marks them seen.
 * Returns how many it had; flow_of (FLOWS entries, -1 initially) learns which
 * client each flow went to when given.
 */
static unsigned int check_records(struct burst *b, int i, int *flow_of)
{
	const struct ferry_test_client_shared *sh = fx.c[i].sh;
	union ferry_sockaddr peer;

	ferry_testns_addr(FERRY_TESTNS_PEER, b->family, 0, &peer);
	for (uint32_t k = 0; k < sh->nrec; k++) {
		const struct ferry_test_client_rec *r = &sh->rec[k];
		int64_t seq = rec_seq(b, r);
		uint16_t port;
		bool addr_ok;

		cr_assert_geq(seq, 0, "client %d: datagram %u (%u bytes) is none the peer sent (or its bytes changed)", i,
			      k, r->len);
		if (b->family == AF_INET) {
			addr_ok = r->src.sa.sa_family == AF_INET && r->src.in4.sin_addr.s_addr == peer.in4.sin_addr.s_addr;
			port = ntohs(r->src.in4.sin_port);
		} else {
			addr_ok = r->src.sa.sa_family == AF_INET6 &&
				  !memcmp(&r->src.in6.sin6_addr, &peer.in6.sin6_addr, sizeof(peer.in6.sin6_addr));
			port = ntohs(r->src.in6.sin6_port);
		}
		cr_assert(addr_ok, "client %d: datagram %" PRId64 " has a source other than the peer's address", i, seq);
		cr_assert_eq(port, b->sport[seq], "client %d: datagram %" PRId64 " from port %u, sent from %u", i, seq,
			     port, b->sport[seq]);
		b->seen[seq]++;
		if (flow_of) {
			int f = (int)(seq % FLOWS);

			cr_assert(flow_of[f] < 0 || flow_of[f] == i,
				  "flow %d went to client %d and to client %d: hash must keep a flow on one client", f,
				  flow_of[f], i);
			flow_of[f] = i;
		}
	}
	return sh->nrec;
}

static const char *const base_args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--service", "s4=198.18.0.1:9000",
					"--service", "s6=[2001:2::1]:9000"};

/* argv: base_args, then more (NULL-terminated), in out (64 entries). */
static const char **argv_with(const char **out, const char *const *more)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(base_args) / sizeof(base_args[0]); i++)
		out[n++] = base_args[i];
	for (; more && *more && n < 62; more++)
		out[n++] = *more;
	out[n] = NULL;
	return out;
}

/* ---- one client ------------------------------------------------------------------------------- */

struct one_case {
	char mode[8];
	int family;
	unsigned int workers;
	bool zero_copy;
};

static struct one_case one_cases[] = {
	{"xdp", AF_INET, 1, false},    {"xdp", AF_INET6, 1, false}, {"socket", AF_INET, 1, false},
	{"socket", AF_INET6, 1, false}, {"xdp", AF_INET, 2, false},  {"xdp", AF_INET6, 2, false},
	{"socket", AF_INET, 2, false},	{"socket", AF_INET6, 2, false},
	{"xdp", AF_INET, 1, true},     {"xdp", AF_INET6, 1, true},  {"xdp", AF_INET, 2, true},
	{"xdp", AF_INET6, 2, true},
};

ParameterizedTestParameters(clients, one_client_gets_every_datagram)
{
	return cr_make_param_array(struct one_case, one_cases, sizeof(one_cases) / sizeof(one_cases[0]));
}

#define ONE_COUNT 3000

/*
 * A bounded burst over FLOWS flows: the one client has every datagram, once,
 * byte-exact, from its source; zero-copy: in the frames they arrived in.
 */
ParameterizedTest(struct one_case *c, clients, one_client_gets_every_datagram, .fini = teardown, .timeout = 90)
{
	char workers[8];
	const char *more[] = {"--mode", c->mode, "--queues", workers, "--workers", workers,
			      c->zero_copy ? "--client-zero-copy" : NULL, "s4", "--client-zero-copy", "s6", NULL};
	const char *argv[64];
	struct burst b = {0};
	unsigned int got;

	snprintf(workers, sizeof(workers), "%u", c->workers);
	env_up(c->workers);
	start_ferryd(argv_with(argv, more));
	start_client(0, c->family == AF_INET ? "s4" : "s6", c->zero_copy ? FERRY_TEST_CLIENT_ZERO_COPY : 0, NULL);
	cr_assert_eq(fx.c[0].sh->stats.workers, c->workers, "expected a ring set per worker (%u), got %u", c->workers,
		     fx.c[0].sh->stats.workers);
	burst_send(&b, c->family, ONE_COUNT, 0);
	wait_delivered(0, ONE_COUNT, DELIVER_MS);
	ferry_test_client_stop(&fx.c[0]);
	got = check_records(&b, 0, NULL);
	for (unsigned int s = 0; s < ONE_COUNT; s++)
		cr_assert_eq(b.seen[s], 1, "expected datagram %u exactly once, had it %u times (%u of %d delivered); "
					   "ferryd log:\n%s",
			     s, b.seen[s], got, ONE_COUNT, ferryd_log());
	cr_assert_eq(fx.c[0].sh->loop_result, FERRY_END_STOPPED, "expected the loop to end by its stop, got %d",
		     fx.c[0].sh->loop_result);
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_full + fx.c[0].sh->stats.rx_dropped_big, 0,
		     "expected no drop for the client");
	cr_log_info("%s IPv%d %u worker(s)%s: %u datagrams (%" PRIu64 " zero-copy), %" PRIu64 " batches, %" PRIu64
		    " wake-ups",
		    c->mode, c->family == AF_INET ? 4 : 6, c->workers, c->zero_copy ? " zero-copy" : "", got,
		    fx.c[0].sh->stats.rx_zero_copy, fx.c[0].sh->batches, fx.c[0].sh->stats.wakeups);
	if (c->zero_copy)
		/* all but what the kernel's path delivered (none here: every datagram fits a frame) */
		cr_assert_eq(fx.c[0].sh->stats.rx_zero_copy, fx.c[0].sh->stats.rx_packets,
			     "expected every datagram handed zero-copy, %" PRIu64 " of %" PRIu64,
			     fx.c[0].sh->stats.rx_zero_copy, fx.c[0].sh->stats.rx_packets);
	else
		cr_assert_eq(fx.c[0].sh->stats.rx_zero_copy, 0, "expected copies only");
	stop_ferryd();
	burst_free(&b);
}

/*
 * A client whose slots are 256 bytes: datagrams of 256 and 100 bytes arrive
 * whole; one of 257 or 300 bytes is dropped and counted as too big for the
 * client, never cut to the slot nor spilled into the next one.
 */
Test(clients, datagrams_longer_than_a_slot_are_dropped_and_counted, .fini = teardown, .timeout = 60)
{
	static const unsigned int sizes[] = { 256, 257, 300, 100 };
	enum { ROUNDS = 10, FIT = 2 * ROUNDS, BIG = 2 * ROUNDS };
	const char *more[] = {"--mode", "socket", NULL};
	const char *argv[64];
	struct ferry_test_client_cfg cfg = {.slot_size = FERRY_RING_MIN_SLOT_SIZE};
	union ferry_sockaddr dst;
	uint8_t buf[512];
	int fd;

	env_up(1);
	start_ferryd(argv_with(argv, more));
	start_client(0, "s4", 0, &cfg);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	memset(buf, 'b', sizeof(buf));
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			cr_assert_eq(sendto(fd, buf, sizes[i], 0, &dst.sa, ferry_sockaddr_len(&dst)), (ssize_t)sizes[i],
				     "sending %u bytes: %s", sizes[i], strerror(errno));
		usleep(2000); /* 10 rounds of 4: a short pause between rounds, no queue fills */
	}
	close(fd);
	cr_assert(wait_delivered(0, FIT, DELIVER_MS), "expected the %d datagrams that fit, got %" PRIu64 "; log:\n%s", FIT,
		  delivered(0), ferryd_log());
	usleep(200000); /* anything wrongly delivered would be here by now */
	ferry_test_client_stop(&fx.c[0]);
	cr_assert_eq(delivered(0), FIT, "expected exactly the %d datagrams that fit, got %" PRIu64, FIT, delivered(0));
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_big, BIG, "expected the %d longer ones counted as too big, got %" PRIu64,
		     BIG, fx.c[0].sh->stats.rx_dropped_big);
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_full, 0, "expected nothing dropped for room");
	for (uint32_t i = 0; i < fx.c[0].sh->nrec && i < FERRY_TEST_CLIENT_RECS; i++)
		cr_assert(fx.c[0].sh->rec[i].len == 256 || fx.c[0].sh->rec[i].len == 100,
			  "datagram %u: expected 256 or 100 bytes, got %u", i, fx.c[0].sh->rec[i].len);
	stop_ferryd();
}

/* ---- four clients: the fanout policies ------------------------------------------------------------ */

#define FAN_COUNT 4000

static void four_clients(const char *fanout, unsigned int workers)
{
	char w[8], fan[32];
	const char *more[] = {"--mode", "xdp", "--queues", w, "--workers", w, "--fanout", fan, NULL};
	const char *argv[64];

	snprintf(w, sizeof(w), "%u", workers);
	snprintf(fan, sizeof(fan), "s4=%s", fanout);
	env_up(workers);
	start_ferryd(argv_with(argv, more));
	for (int i = 0; i < NCLIENTS; i++)
		start_client(i, "s4", 0, NULL);
}

/* hash: each flow's datagrams all on one client, flows on several clients, nothing lost. */
Test(clients, fanout_hash_keeps_flows_on_one_client, .fini = teardown, .timeout = 90)
{
	struct burst b = {0};
	int flow_of[FLOWS], users = 0, per[NCLIENTS] = {0};
	uint64_t total;

	four_clients("hash", 2);
	burst_send(&b, AF_INET, FAN_COUNT, 0);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS; ferry_test_now_ms() < deadline; usleep(5000)) {
		total = 0;
		for (int i = 0; i < NCLIENTS; i++)
			total += delivered(i);
		if (total >= FAN_COUNT)
			break;
	}
	for (int i = 0; i < NCLIENTS; i++)
		ferry_test_client_stop(&fx.c[i]);
	memset(flow_of, -1, sizeof(flow_of));
	for (int i = 0; i < NCLIENTS; i++)
		per[i] = (int)check_records(&b, i, flow_of);
	for (unsigned int s = 0; s < FAN_COUNT; s++)
		cr_assert_eq(b.seen[s], 1, "expected datagram %u on exactly one client, on %u", s, b.seen[s]);
	for (int i = 0; i < NCLIENTS; i++)
		users += per[i] > 0;
	cr_log_info("hash: %d %d %d %d datagrams per client", per[0], per[1], per[2], per[3]);
	/* 32 flows on 4 clients: one left without any would be a broken hash (odds about 4 * 0.75^32) */
	cr_assert_eq(users, NCLIENTS, "expected the flows spread over all %d clients, %d had some", NCLIENTS, users);
	stop_ferryd();
	burst_free(&b);
}

/* round-robin: each client a quarter (each worker turns on its own: within a datagram per worker). */
Test(clients, fanout_round_robin_balances, .fini = teardown, .timeout = 90)
{
	struct burst b = {0};
	int per[NCLIENTS];

	four_clients("round-robin", 1);
	burst_send(&b, AF_INET, FAN_COUNT, 0);
	for (int i = 0; i < NCLIENTS; i++)
		wait_delivered(i, FAN_COUNT / NCLIENTS, DELIVER_MS);
	for (int i = 0; i < NCLIENTS; i++)
		ferry_test_client_stop(&fx.c[i]);
	for (int i = 0; i < NCLIENTS; i++)
		per[i] = (int)check_records(&b, i, NULL);
	for (unsigned int s = 0; s < FAN_COUNT; s++)
		cr_assert_eq(b.seen[s], 1, "expected datagram %u on exactly one client, on %u", s, b.seen[s]);
	cr_log_info("round-robin: %d %d %d %d datagrams per client", per[0], per[1], per[2], per[3]);
	for (int i = 0; i < NCLIENTS; i++)
		cr_assert_eq(per[i], FAN_COUNT / NCLIENTS, "expected client %d to have %d, it had %d", i,
			     FAN_COUNT / NCLIENTS, per[i]);
	stop_ferryd();
	burst_free(&b);
}

/* all: every client a full copy, byte-exact. */
Test(clients, fanout_all_copies_to_each, .fini = teardown, .timeout = 90)
{
	struct burst b = {0};

	four_clients("all", 2);
	burst_send(&b, AF_INET, FAN_COUNT, 0);
	for (int i = 0; i < NCLIENTS; i++)
		wait_delivered(i, FAN_COUNT, DELIVER_MS);
	for (int i = 0; i < NCLIENTS; i++)
		ferry_test_client_stop(&fx.c[i]);
	for (int i = 0; i < NCLIENTS; i++)
		cr_assert_eq(check_records(&b, i, NULL), FAN_COUNT, "expected client %d to have all %d, it had %u", i,
			     FAN_COUNT, fx.c[i].sh->nrec);
	for (unsigned int s = 0; s < FAN_COUNT; s++)
		cr_assert_eq(b.seen[s], NCLIENTS, "expected datagram %u on every client, on %u", s, b.seen[s]);
	stop_ferryd();
	burst_free(&b);
}

#define FAN_ZC_COUNT 2000

/*
 * all, two clients that asked for zero-copy: a frame has several readers, so
 * each gets a copy (none the frame itself), every datagram byte-exact.
 */
Test(clients, fanout_all_zero_copy_clients_get_copies, .fini = teardown, .timeout = 90)
{
	const char *more[] = {"--mode", "xdp", "--client-zero-copy", "s4", "--fanout", "s4=all", NULL};
	const char *argv[64];
	struct burst b = {0};

	env_up(1);
	start_ferryd(argv_with(argv, more));
	for (int i = 0; i < 2; i++)
		start_client(i, "s4", FERRY_TEST_CLIENT_ZERO_COPY, NULL);
	burst_send(&b, AF_INET, FAN_ZC_COUNT, 0);
	for (int i = 0; i < 2; i++)
		wait_delivered(i, FAN_ZC_COUNT, DELIVER_MS);
	for (int i = 0; i < 2; i++)
		ferry_test_client_stop(&fx.c[i]);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(check_records(&b, i, NULL), FAN_ZC_COUNT, "expected client %d to have all %d, it had %u", i,
			     FAN_ZC_COUNT, fx.c[i].sh->nrec);
		cr_assert_eq(fx.c[i].sh->stats.rx_zero_copy, 0,
			     "expected client %d to get copies of frames it shares, %" PRIu64 " came zero-copy", i,
			     fx.c[i].sh->stats.rx_zero_copy);
	}
	for (unsigned int s = 0; s < FAN_ZC_COUNT; s++)
		cr_assert_eq(b.seen[s], 2, "expected datagram %u on both clients, on %u", s, b.seen[s]);
	stop_ferryd();
	burst_free(&b);
}

#define NO_CLIENT_COUNT 50

/* Datagrams for a service no client is attached to: dropped, each counted in rx_no_client. */
Test(clients, no_client_drops_are_counted, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "xdp", NULL};
	const char *argv[64];
	union ferry_sockaddr dst;
	int fd;

	env_up(1);
	start_ferryd(argv_with(argv, more));
	start_client(0, "s4", 0, NULL); /* s4 has one; s6 none */
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "rx_no_client"), 0, "expected nothing dropped yet");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET6, PORT, &dst);
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	for (int i = 0; i < NO_CLIENT_COUNT; i++) {
		cr_assert_eq(sendto(fd, "nobody", 6, 0, &dst.sa, ferry_sockaddr_len(&dst)), 6, "sendto: %s",
			     strerror(errno));
		usleep(1000);
	}
	close(fd);
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "rx_no_client", NO_CLIENT_COUNT, 3000), NO_CLIENT_COUNT,
		     "expected each of the %d datagrams for s6 counted in rx_no_client; log:\n%s", NO_CLIENT_COUNT,
		     ferryd_log());
	ferry_test_client_stop(&fx.c[0]);
	cr_assert_eq(delivered(0), 0, "expected none of s6's datagrams on s4's client");
	stop_ferryd();
}

/* ---- a client's sends --------------------------------------------------------------------------- */

struct send_case {
	char mode[8];
	int family;
	unsigned int len;
};

static struct send_case send_cases[] = {
	{"xdp", AF_INET, 18}, {"xdp", AF_INET6, 1472}, {"socket", AF_INET, 1472}, {"socket", AF_INET6, 18},
	{"xdp", AF_INET, 2000},
};

ParameterizedTestParameters(clients, sends_arrive_byte_exact_from_the_service)
{
	return cr_make_param_array(struct send_case, send_cases, sizeof(send_cases) / sizeof(send_cases[0]));
}

#define SEND_COUNT 2000

/* The client sends SEND_COUNT datagrams to the peer: each arrives once, byte-exact, from the service's address and port. */
ParameterizedTest(struct send_case *c, clients, sends_arrive_byte_exact_from_the_service, .fini = teardown,
		  .timeout = 90)
{
	const char *more[] = {"--mode", c->mode, NULL};
	const char *argv[64];
	struct ferry_test_client_cfg cfg = {.send_count = SEND_COUNT, .send_len = c->len, .slot_size = 2048};
	union ferry_sockaddr me, svc;
	uint8_t *seen = calloc(SEND_COUNT, 1), buf[4096], want[4096];
	unsigned int got = 0;
	int fd, big = 8 << 20;

	cr_assert(seen, "out of memory");
	env_up(1);
	start_ferryd(argv_with(argv, more));
	/* the peer listens before the client sends */
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_PEER, c->family, PEER_PORT, &me);
	ferry_testns_addr(FERRY_TESTNS_HOST, c->family, PORT, &svc);
	fd = socket(c->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	cr_assert_eq(bind(fd, &me.sa, ferry_sockaddr_len(&me)), 0, "bind: %s", strerror(errno));
	cfg.send_to = me;
	start_client(0, c->family == AF_INET ? "s4" : "s6", 0, &cfg);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS; got < SEND_COUNT && ferry_test_now_ms() < deadline;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		union ferry_sockaddr from;
		socklen_t flen = sizeof(from);
		ssize_t n;
		uint32_t seq;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &from.sa, &flen);
		if (n < 0)
			continue;
		cr_assert(ferry_sockaddr_equal(&from, &svc), "expected every datagram from the service's address");
		cr_assert_eq((size_t)n, c->len, "expected %u bytes, got %zd", c->len, n);
		memcpy(&seq, buf, sizeof(seq));
		cr_assert_lt(seq, SEND_COUNT, "expected a sequence number below %d, got %u", SEND_COUNT, seq);
		ferry_test_client_payload(want, c->len, seq);
		cr_assert_eq(memcmp(buf, want, c->len), 0, "expected datagram %u byte-exact", seq);
		cr_assert_eq(seen[seq], 0, "datagram %u arrived twice", seq);
		seen[seq] = 1;
		got++;
	}
	close(fd);
	cr_assert(ferry_test_client_wait(&fx.c[0], FERRY_TEST_CLIENT_SENT, 1000), "expected the client to have sent all");
	cr_assert_eq(got, SEND_COUNT, "expected all %d datagrams at the peer, got %u (client queued %" PRIu64
				      ", %" PRIu64 " retries); ferryd log:\n%s",
		     SEND_COUNT, got, fx.c[0].sh->sent, fx.c[0].sh->send_retries, ferryd_log());
	ferry_test_client_stop(&fx.c[0]);
	cr_assert_eq(fx.c[0].sh->stats.tx_dropped, 0, "expected ferryd to drop none of the client's sends");
	free(seen);
	stop_ferryd();
}

/* A destination a client may not send to, and the counter that says so. */
struct refused_dst {
	const char *addr;
	uint16_t port;
	const char *counter;
};

static const struct refused_dst refused4[] = {
	{FERRY_TESTNS_PEER4, 0, "tx_to_port0"},	  {"0.0.0.0", PEER_PORT, "tx_to_unspec"},
	{"224.0.0.1", PEER_PORT, "tx_to_multicast"}, {"255.255.255.255", PEER_PORT, "tx_to_broadcast"},
	{"198.18.0.255", PEER_PORT, "tx_to_broadcast"}, {"127.0.0.1", PEER_PORT, "tx_to_loopback"},
	{FERRY_TESTNS_HOST4, PEER_PORT, "tx_to_local"}, {FERRY_TESTNS_HOST4, PORT, "tx_to_self"},
};

static const struct refused_dst refused6[] = {
	{FERRY_TESTNS_PEER6, 0, "tx_to_port0"},   {"::", PEER_PORT, "tx_to_unspec"},
	{"ff02::1", PEER_PORT, "tx_to_multicast"}, {"::1", PEER_PORT, "tx_to_loopback"},
	{FERRY_TESTNS_HOST6, PEER_PORT, "tx_to_local"}, {FERRY_TESTNS_HOST6, PORT, "tx_to_self"},
};

static const char *const refusal_counters[] = {"tx_to_port0",	  "tx_to_unspec",  "tx_to_multicast", "tx_to_broadcast",
					       "tx_to_loopback", "tx_to_local", "tx_to_self"};

struct refused_case {
	char mode[8];
	int family;
};

static struct refused_case refused_cases[] = {{"xdp", AF_INET}, {"socket", AF_INET}, {"xdp", AF_INET6}, {"socket", AF_INET6}};

ParameterizedTestParameters(clients, sends_to_refused_destinations_are_counted)
{
	return cr_make_param_array(struct refused_case, refused_cases, sizeof(refused_cases) / sizeof(refused_cases[0]));
}

/*
 * A client asks ferryd to send to port 0, the unspecified address, a
 * multicast group, a broadcast address, loopback, the host's own address and
 * the service itself, between two datagrams to the peer: ferryd sends the
 * two only, and counts each refusal by its reason, in its counters and as the
 * session's tx_dropped.
 */
ParameterizedTest(struct refused_case *c, clients, sends_to_refused_destinations_are_counted, .fini = teardown,
		  .timeout = 60)
{
	const char *more[] = {"--mode", c->mode, NULL};
	const char *argv[64];
	const struct refused_dst *bad = c->family == AF_INET ? refused4 : refused6;
	unsigned int nbad = c->family == AF_INET ? sizeof(refused4) / sizeof(refused4[0])
						 : sizeof(refused6) / sizeof(refused6[0]);
	struct ferry_iobuf views[16], *bufs[16];
	union ferry_sockaddr dsts[16], me;
	struct ferry_client_stats st;
	struct ferry_client *cl = NULL;
	char why[160], payload[16][8];
	struct ferry_client_opts o = {.sz = sizeof(o), .service = c->family == AF_INET ? "s4" : "s6", .why = why,
				      .whylen = sizeof(why)};
	unsigned int n = 0, got = 0;
	int fd, err;

	env_up(1);
	start_ferryd(argv_with(argv, more));
	o.socket_path = fx.d.control;
	err = ferry_client_connect(&o, &cl);
	cr_assert_eq(err, 0, "expected to attach: %s", why);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_PEER, c->family, PEER_PORT, &me);
	fd = socket(c->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(fd, &me.sa, ferry_sockaddr_len(&me)), 0, "bind: %s", strerror(errno));
	/* the peer, every refused destination, the peer again */
	dsts[n++] = me;
	for (unsigned int i = 0; i < nbad; i++, n++) {
		memset(&dsts[n], 0, sizeof(dsts[n]));
		if (c->family == AF_INET) {
			dsts[n].in4.sin_family = AF_INET;
			dsts[n].in4.sin_port = htons(bad[i].port);
			cr_assert_eq(inet_pton(AF_INET, bad[i].addr, &dsts[n].in4.sin_addr), 1, "test bug: %s", bad[i].addr);
		} else {
			dsts[n].in6.sin6_family = AF_INET6;
			dsts[n].in6.sin6_port = htons(bad[i].port);
			cr_assert_eq(inet_pton(AF_INET6, bad[i].addr, &dsts[n].in6.sin6_addr), 1, "test bug: %s", bad[i].addr);
		}
	}
	dsts[n++] = me;
	for (unsigned int i = 0; i < n; i++) {
		snprintf(payload[i], sizeof(payload[i]), "dst %u", i);
		ferry_iobuf_init(&views[i], payload[i], strlen(payload[i]));
		bufs[i] = &views[i];
	}
	cr_assert_eq(ferry_client_send(cl, bufs, dsts, n), (int)n, "expected all %u queued", n);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS; got < 2 && ferry_test_now_ms() < deadline;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char buf[64];
		ssize_t len;

		if (poll(&p, 1, 100) <= 0)
			continue;
		len = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (len < 0)
			continue;
		buf[len] = '\0';
		cr_assert(!strcmp(buf, "dst 0") || !strcmp(buf, payload[n - 1]),
			  "expected only the datagrams to the peer at the peer, got '%s'", buf);
		got++;
	}
	cr_assert_eq(got, 2, "expected the two datagrams to the peer there, got %u; log:\n%s", got, ferryd_log());
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "tx_dropped", nbad, 3000), nbad,
		     "expected ferryd to drop the %u to refused destinations; log:\n%s", nbad, ferryd_log());
	for (size_t k = 0; k < sizeof(refusal_counters) / sizeof(refusal_counters[0]); k++) {
		int64_t want = 0;

		for (unsigned int i = 0; i < nbad; i++)
			want += !strcmp(bad[i].counter, refusal_counters[k]);
		cr_assert_eq(ferry_test_ferryd_ask(&fx.d, refusal_counters[k]), want, "expected %s=%" PRId64 "; log:\n%s",
			     refusal_counters[k], want, ferryd_log());
	}
	for (uint64_t deadline = ferry_test_now_ms() + 3000;; usleep(10000)) {
		cr_assert_eq(ferry_client_stats(cl, &st), 0, "expected the session's stats");
		if ((st.tx_dropped == nbad && st.tx_packets == 2) || ferry_test_now_ms() >= deadline)
			break;
	}
	cr_assert_eq(st.tx_dropped, nbad, "expected the session's tx_dropped to be %u, got %" PRIu64, nbad, st.tx_dropped);
	cr_assert_eq(st.tx_packets, 2, "expected the session to have sent 2, got %" PRIu64, st.tx_packets);
	/* nothing more comes to the peer */
	{
		struct pollfd p = {.fd = fd, .events = POLLIN};

		cr_assert_eq(poll(&p, 1, 200), 0, "expected nothing more at the peer");
	}
	close(fd);
	ferry_client_close(cl);
	stop_ferryd();
}

/* ---- faults ------------------------------------------------------------------------------------ */

#define KILL_COUNT 4000

/* fanout all, three clients; one SIGKILLed mid-stream: ferryd ends its session, the others lose nothing. */
Test(clients, kill_one_mid_stream_the_others_lose_nothing, .fini = teardown, .timeout = 90)
{
	const char *more[] = {"--mode", "xdp", "--fanout", "s4=all", NULL};
	const char *argv[64];
	struct burst b = {0};
	char said[80];

	env_up(1);
	start_ferryd(argv_with(argv, more));
	for (int i = 0; i < 3; i++)
		start_client(i, "s4", i == 1 ? FERRY_TEST_CLIENT_KEEP : 0, NULL);
	burst_send(&b, AF_INET, KILL_COUNT / 2, 0);
	cr_assert(wait_delivered(0, 100, DELIVER_MS), "expected the first client to receive");
	snprintf(said, sizeof(said), "(service s4, pid %d) ended: the client detached", (int)fx.c[0].pid);
	ferry_test_client_kill(&fx.c[0]);
	burst_send(&b, AF_INET, KILL_COUNT / 2, KILL_COUNT / 2);
	for (int i = 1; i < 3; i++)
		wait_delivered(i, KILL_COUNT, DELIVER_MS);
	for (int i = 1; i < 3; i++)
		ferry_test_client_stop(&fx.c[i]);
	for (int i = 1; i < 3; i++) {
		memset(b.seen, 0, b.count);
		cr_assert_eq(check_records(&b, i, NULL), KILL_COUNT, "expected client %d to have all %d, it had %u", i,
			     KILL_COUNT, fx.c[i].sh->nrec);
		for (unsigned int s = 0; s < KILL_COUNT; s++)
			cr_assert_eq(b.seen[s], 1, "client %d: expected datagram %u once, had it %u times", i, s, b.seen[s]);
	}
	/* the others were stopped since: the killed one's own line, not theirs */
	cr_assert(strstr(ferryd_log(), said), "expected ferryd to end the killed client's session; log:\n%s",
		  ferryd_log());
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "clients_failed"), 0, "a killed client broke no rule");
	stop_ferryd();
	burst_free(&b);
}

#define SLOW_COUNT 3000

/* fanout all: a slow client with a small ring drops, counted for it alone; the fast one has everything. */
Test(clients, slow_client_drops_are_its_own, .fini = teardown, .timeout = 90)
{
	const char *more[] = {"--mode", "xdp", "--fanout", "s4=all", NULL};
	const char *argv[64];
	struct ferry_test_client_cfg slow = {.slow_us = 20000, .rx_slots = 16};
	struct burst b = {0};
	uint64_t dropped;
	int64_t full;

	env_up(1);
	start_ferryd(argv_with(argv, more));
	start_client(0, "s4", 0, NULL);
	start_client(1, "s4", 0, &slow);
	burst_send(&b, AF_INET, SLOW_COUNT, 0);
	wait_delivered(0, SLOW_COUNT, DELIVER_MS);
	/* the slow one empties its ring too: what it had and what ferryd dropped for it add up */
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS;
	     delivered(1) + fx.c[1].sh->stats.rx_dropped_full < SLOW_COUNT && ferry_test_now_ms() < deadline;)
		usleep(10000);
	full = ferry_test_ferryd_ask(&fx.d, "rx_client_full");
	ferry_test_client_stop(&fx.c[0]);
	ferry_test_client_stop(&fx.c[1]);
	cr_assert_eq(check_records(&b, 0, NULL), SLOW_COUNT, "expected the fast client to have all %d, it had %u",
		     SLOW_COUNT, fx.c[0].sh->nrec);
	cr_assert_eq(fx.c[0].sh->stats.rx_dropped_full, 0, "expected no drop for the fast client");
	dropped = fx.c[1].sh->stats.rx_dropped_full;
	cr_log_info("slow client: %u delivered, %" PRIu64 " dropped (ferryd: rx_client_full=%" PRId64 ")",
		    fx.c[1].sh->nrec, dropped, full);
	cr_assert_gt(dropped, 0, "expected the slow client to fall behind and ferryd to count its drops");
	cr_assert_eq((int64_t)dropped, full, "expected ferryd's rx_client_full (%" PRId64 ") to be the slow client's "
					     "drops (%" PRIu64 ")",
		     full, dropped);
	cr_assert_eq(fx.c[1].sh->nrec + dropped, SLOW_COUNT,
		     "expected the slow client's delivered and dropped to add up to the burst: %u + %" PRIu64, fx.c[1].sh->nrec,
		     dropped);
	stop_ferryd();
	burst_free(&b);
}

/* ---- who may attach ------------------------------------------------------------------------------ */

#define NOBODY 65534

/* A user that is neither root nor in ferryd's group is refused, with a reason that says who may. */
Test(clients, cred_refused_with_a_reason, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "socket", "--control-mode", "0666", NULL};
	const char *argv[64];
	struct ferry_test_client_cfg cfg = {.control = NULL, .uid = NOBODY, .gid = NOBODY};

	env_up(1);
	start_ferryd(argv_with(argv, more));
	cfg.control = fx.d.control;
	cfg.service = "s4";
	ferry_test_client_start(&fx.c[0], &cfg);
	cr_assert(ferry_test_client_wait(&fx.c[0], FERRY_TEST_CLIENT_REFUSED, ATTACH_MS),
		  "expected the client to be refused (state %d)", fx.c[0].sh->state);
	cr_assert_eq(fx.c[0].sh->state, FERRY_TEST_CLIENT_REFUSED, "expected a refusal, state %d", fx.c[0].sh->state);
	cr_assert_eq(fx.c[0].sh->err, -EACCES, "expected -EACCES, got %d (%s)", fx.c[0].sh->err, fx.c[0].sh->why);
	cr_assert(strstr(fx.c[0].sh->why, "may not attach to service s4") && strstr(fx.c[0].sh->why, "allowed: root"),
		  "expected a reason naming the service and who may attach, got '%s'", fx.c[0].sh->why);
	stop_ferryd();
}

/* --allow names the user: then it attaches; another service keeps the default and refuses it. */
Test(clients, cred_allowed_by_name, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "socket", "--control-mode", "0666", "--allow", "s4=nobody", NULL};
	const char *argv[64];
	struct ferry_test_client_cfg cfg = {.uid = NOBODY, .gid = NOBODY};

	env_up(1);
	start_ferryd(argv_with(argv, more));
	start_client(0, "s4", 0, &cfg);
	cfg.control = fx.d.control;
	cfg.service = "s6";
	ferry_test_client_start(&fx.c[1], &cfg);
	cr_assert(ferry_test_client_wait(&fx.c[1], FERRY_TEST_CLIENT_REFUSED, ATTACH_MS) &&
			  fx.c[1].sh->state == FERRY_TEST_CLIENT_REFUSED && fx.c[1].sh->err == -EACCES,
		  "expected s6 to refuse nobody (state %d, err %d: %s)", fx.c[1].sh->state, fx.c[1].sh->err,
		  fx.c[1].sh->why);
	ferry_test_client_stop(&fx.c[0]);
	stop_ferryd();
}

/* ---- reconnect ---------------------------------------------------------------------------------- */

#define RECONNECT_COUNT 1000

/* ferryd restarted under a client with reconnect on: the client's loop goes on and has the new traffic. */
Test(clients, reconnect_after_ferryd_restarts, .fini = teardown, .timeout = 120)
{
	const char *more[] = {"--mode", "xdp", NULL};
	const char *argv[64];
	struct burst b = {0};
	union ferry_sockaddr dst;
	uint64_t before;
	int fd;

	env_up(1);
	argv_with(argv, more);
	start_ferryd(argv);
	start_client(0, "s4", FERRY_TEST_CLIENT_RECONNECT, NULL);
	burst_send(&b, AF_INET, RECONNECT_COUNT, 0);
	cr_assert(wait_delivered(0, RECONNECT_COUNT, DELIVER_MS), "expected the first burst delivered");
	stop_ferryd();
	start_ferryd(argv); /* the same control socket path */
	/* probes until the client has one: then it is attached again */
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	before = delivered(0);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS; delivered(0) == before && ferry_test_now_ms() < deadline;
	     usleep(20000))
		sendto(fd, "probe", 5, 0, &dst.sa, ferry_sockaddr_len(&dst));
	close(fd);
	cr_assert_gt(delivered(0), before, "expected the client to receive again after ferryd restarted; log:\n%s",
		     ferryd_log());
	before = delivered(0);
	burst_free(&b);
	memset(&b, 0, sizeof(b));
	burst_send(&b, AF_INET, RECONNECT_COUNT, 0);
	cr_assert(wait_delivered(0, before + RECONNECT_COUNT, DELIVER_MS),
		  "expected the second burst delivered in full: %" PRIu64 " of %d", delivered(0) - before,
		  RECONNECT_COUNT);
	ferry_test_client_stop(&fx.c[0]);
	cr_assert_eq(fx.c[0].sh->loop_result, FERRY_END_STOPPED, "expected the loop to run until stopped, got %d (%s)",
		     fx.c[0].sh->loop_result, fx.c[0].sh->why);
	cr_assert_geq(fx.c[0].sh->stats.reconnects, 1, "expected the client to count its reconnect");
	stop_ferryd();
	burst_free(&b);
}

/* Without reconnect, ferryd's end ends the loop: FERRY_END_CLOSED, with what ferryd said. */
Test(clients, without_reconnect_the_loop_ends_closed, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "socket", NULL};
	const char *argv[64];

	env_up(1);
	start_ferryd(argv_with(argv, more));
	start_client(0, "s4", 0, NULL);
	stop_ferryd();
	cr_assert(ferry_test_client_wait(&fx.c[0], FERRY_TEST_CLIENT_ENDED, 5000), "expected the client's loop to end");
	cr_assert_eq(fx.c[0].sh->loop_result, FERRY_END_CLOSED, "expected FERRY_END_CLOSED, got %d",
		     fx.c[0].sh->loop_result);
	cr_assert(strstr(fx.c[0].sh->why, "shutting down"), "expected ferryd's reason, got '%s'", fx.c[0].sh->why);
}

/* ferryd's bound on a service's clients (FERRYD_MAX_CLIENTS) */
#define MAX_CLIENTS 64

/* Attach errors: each cause its own errno and a reason. */
Test(clients, attach_errors_are_distinct, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "socket", NULL};
	const char *argv[64];
	struct ferry_client *c = NULL, *many[MAX_CLIENTS];
	char why[160];
	struct ferry_client_opts o = {.sz = sizeof(o), .service = "s4", .why = why, .whylen = sizeof(why)};

	env_up(1);
	o.socket_path = "/tmp/ferryt-no-such-ferryd.sock";
	cr_assert_eq(ferry_client_connect(&o, &c), -ENOENT, "expected -ENOENT with no socket (%s)", why);
	start_ferryd(argv_with(argv, more));
	o.socket_path = fx.d.control;
	o.service = "nope";
	cr_assert_eq(ferry_client_connect(&o, &c), -ESRCH, "expected -ESRCH for an unknown service (%s)", why);
	cr_assert(strstr(why, "s4") && strstr(why, "s6"), "expected the reason to list the services, got '%s'", why);
	o.service = "s4";
	o.rx_slots = 1000;
	cr_assert_eq(ferry_client_connect(&o, &c), -EINVAL, "expected -EINVAL for 1000 slots (%s)", why);
	o.rx_slots = 65536;
	o.slot_size = 65536;
	cr_assert_eq(ferry_client_connect(&o, &c), -E2BIG, "expected -E2BIG for 4 GiB (%s)", why);
	o.rx_slots = 0;
	o.slot_size = 0;
	cr_assert_eq(ferry_client_connect(&o, &c), 0, "expected to attach (%s)", why);
	ferry_client_close(c);
	/* a service's clients are bounded: one more than FERRYD_MAX_CLIENTS is refused, and says why */
	o.rx_slots = o.tx_slots = FERRY_RING_MIN_SLOTS;
	o.slot_size = FERRY_RING_MIN_SLOT_SIZE;
	for (int i = 0; i < MAX_CLIENTS; i++)
		cr_assert_eq(ferry_client_connect(&o, &many[i]), 0, "expected client %d of %d to attach (%s)", i + 1,
			     MAX_CLIENTS, why);
	cr_assert_eq(ferry_client_connect(&o, &c), -ENOSPC, "expected -ENOSPC for client %d (%s)", MAX_CLIENTS + 1, why);
	cr_assert(strstr(why, "has its 64 clients already"), "expected the reason to give the bound, got '%s'", why);
	o.service = "s6";
	cr_assert_eq(ferry_client_connect(&o, &c), 0, "expected another service to take clients still (%s)", why);
	ferry_client_close(c);
	for (int i = 0; i < MAX_CLIENTS; i++)
		ferry_client_close(many[i]);
	stop_ferryd();
}

/*
 * A control socket that answers an attach as a ferryd of the next ring
 * version would (status 0, a ring set's fds): libferry refuses the session
 * with -EPROTO and says which version it got, rather than map rings laid out
 * in a way it does not know.
 */
Test(clients, an_answer_of_another_ring_version_is_refused, .timeout = 30)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ferry_client *c = NULL;
	char why[160] = "", want[32];
	struct ferry_client_opts o = {.sz = sizeof(o), .service = "s4", .why = why, .whylen = sizeof(why),
				      .socket_path = sa.sun_path};
	int lfd, err, st;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/ferryt-%d-next-version.sock", (int)getpid());
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(lfd, 1), 0, "listen: %s", strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* the other ferryd: one attach, answered as served, with a memfd and three pipe ends */
		struct ferry_ctl_attach a;
		struct ferry_ctl_reply rep = {.magic = FERRY_CTL_MAGIC, .version = FERRY_RING_VERSION + 1,
					      .op = FERRY_CTL_REPLY, .region_size = 1 << 20, .nworkers = 1, .session = 1};
		int fd, p1[2], p2[2], fds[4];

		alarm(10);
		fd = accept(lfd, NULL, NULL);
		if (fd < 0 || read(fd, &a, sizeof(a)) != (ssize_t)sizeof(a) || pipe(p1) || pipe(p2))
			_exit(1);
		fds[0] = memfd_create("ferryt-region", 0);
		if (fds[0] < 0 || ftruncate(fds[0], 1 << 20))
			_exit(1);
		fds[1] = p1[0];
		fds[2] = p2[1];
		fds[3] = p1[1];
		_exit(ferry_test_ctl_send(fd, &rep, sizeof(rep), fds, 3) ? 1 : 0);
	}
	err = ferry_client_connect(&o, &c);
	cr_assert_eq(waitpid(pid, &st, 0), pid, "waitpid");
	close(lfd);
	unlink(sa.sun_path);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected the fake ferryd to answer, status 0x%x", st);
	cr_assert_eq(err, -EPROTO, "expected -EPROTO for an answer of ring version %u, got %d (%s)",
		     FERRY_RING_VERSION + 1, err, why);
	cr_assert_null(c, "expected no client");
	snprintf(want, sizeof(want), "version %u", FERRY_RING_VERSION + 1);
	cr_assert(strstr(why, want), "expected '%s' in the reason, got '%s'", want, why);
}

/* ---- zero-copy ---------------------------------------------------------------------------------- */

#define ZC_COUNT 4000

/*
 * A zero-copy client that keeps frames, then is killed holding some: ferryd
 * takes them back (its queue's frames all accounted for at exit), and a
 * client attached after it has every datagram of the next burst.
 */
Test(clients, zero_copy_kill_holding_frames_they_come_back, .fini = teardown, .timeout = 90)
{
	const char *more[] = {"--mode", "xdp", "--client-zero-copy", "s4", NULL};
	const char *argv[64];
	struct burst b = {0};

	env_up(1);
	start_ferryd(argv_with(argv, more));
	start_client(0, "s4", FERRY_TEST_CLIENT_ZERO_COPY | FERRY_TEST_CLIENT_KEEP, NULL);
	burst_send(&b, AF_INET, ZC_COUNT / 2, 0);
	cr_assert(wait_delivered(0, ZC_COUNT / 2, DELIVER_MS), "expected the first half delivered: %" PRIu64,
		  delivered(0));
	cr_assert_gt(fx.c[0].sh->stats.rx_zero_copy, 0, "expected frames handed zero-copy");
	cr_assert_gt(ferry_test_ferryd_ask(&fx.d, "frames_user"), 0, "expected the client to hold frames");
	ferry_test_client_kill(&fx.c[0]);
	start_client(1, "s4", FERRY_TEST_CLIENT_ZERO_COPY, NULL);
	burst_send(&b, AF_INET, ZC_COUNT / 2, ZC_COUNT / 2);
	wait_delivered(1, ZC_COUNT / 2, DELIVER_MS);
	ferry_test_client_stop(&fx.c[1]);
	memset(b.seen, 0, b.count);
	cr_assert_eq(check_records(&b, 1, NULL), ZC_COUNT / 2, "expected the second client to have all %d, it had %u",
		     ZC_COUNT / 2, fx.c[1].sh->nrec);
	/* the client's end reaches ferryd as its control connection closes: ferryd settles it on its own time */
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "frames_user", 0, 3000), 0,
		     "expected every frame back once both sessions ended; log:\n%s", ferryd_log());
	stop_ferryd(); /* exit 0: frames balanced */
	burst_free(&b);
}

/*
 * ferryd with 1024 frames a queue, s4 zero-copy and round-robin; clients 0 to
 * nhoard - 1 zero-copy hoarders, client nhoard one that takes copies.
 */
static void start_hoarders(int nhoard)
{
	const char *more[] = {"--mode", "xdp", "--client-zero-copy", "s4", "--fanout", "s4=round-robin", "--frames",
			      "1024", "--batch", "32", NULL};
	const char *argv[64];
	struct ferry_test_client_cfg hoard = {.rx_slots = 4096, .slow_us = 0};

	env_up(1);
	start_ferryd(argv_with(argv, more));
	/* each keeps every slot it gets for good: with 4096 slots one would take every frame of the queue */
	for (int i = 0; i < nhoard; i++)
		start_client(i, "s4", FERRY_TEST_CLIENT_ZERO_COPY | FERRY_TEST_CLIENT_HOARD, &hoard);
	start_client(nhoard, "s4", 0, NULL);
}

/* A zero-copy client that never gives frames back gets copies: its queue never runs dry for the others. */
Test(clients, zero_copy_hoarder_gets_copies_the_queue_keeps_working, .fini = teardown, .timeout = 90)
{
	struct burst b = {0};
	uint64_t zc;

	start_hoarders(1);
	burst_send(&b, AF_INET, ZC_COUNT, 0);
	wait_delivered(1, ZC_COUNT / 2, DELIVER_MS);
	for (uint64_t deadline = ferry_test_now_ms() + DELIVER_MS;
	     delivered(0) < ZC_COUNT / 2 && ferry_test_now_ms() < deadline;)
		usleep(5000);
	ferry_test_client_stop(&fx.c[0]);
	ferry_test_client_stop(&fx.c[1]);
	zc = fx.c[0].sh->stats.rx_zero_copy;
	cr_log_info("hoarder: %u delivered, %" PRIu64 " zero-copy", fx.c[0].sh->nrec, zc);
	cr_assert_eq(check_records(&b, 0, NULL) + check_records(&b, 1, NULL), ZC_COUNT,
		     "expected every datagram delivered to one of the two");
	cr_assert_eq(zc, 1024 / 4, "expected a quarter of the queue's frames handed zero-copy, then copies; got %" PRIu64,
		     zc);
	stop_ferryd();
	burst_free(&b);
}

/*
 * Three zero-copy clients that never give frames back, beside one that takes
 * copies: together they hold half the queue's frames, no more (each less
 * than its quarter), the rest are copies, and nothing is lost.
 */
Test(clients, zero_copy_hoarders_together_hold_half_the_queue, .fini = teardown, .timeout = 90)
{
	struct burst b = {0};
	uint64_t zc = 0;
	unsigned int total = 0;

	start_hoarders(3);
	burst_send(&b, AF_INET, ZC_COUNT, 0);
	for (int i = 0; i < NCLIENTS; i++)
		wait_delivered(i, ZC_COUNT / NCLIENTS, DELIVER_MS);
	for (int i = 0; i < NCLIENTS; i++)
		ferry_test_client_stop(&fx.c[i]);
	for (int i = 0; i < NCLIENTS; i++)
		total += check_records(&b, i, NULL);
	cr_assert_eq(total, ZC_COUNT, "expected every datagram delivered to one of the four");
	for (int i = 0; i < 3; i++) {
		cr_log_info("hoarder %d: %u delivered, %" PRIu64 " zero-copy", i, fx.c[i].sh->nrec,
			    fx.c[i].sh->stats.rx_zero_copy);
		cr_assert_leq(fx.c[i].sh->stats.rx_zero_copy, 1024 / 4, "expected hoarder %d to hold a quarter at most", i);
		zc += fx.c[i].sh->stats.rx_zero_copy;
	}
	cr_assert_eq(zc, 1024 / 2, "expected the hoarders to hold half the queue's frames together, no more; got %" PRIu64,
		     zc);
	cr_assert_eq(fx.c[3].sh->stats.rx_zero_copy, 0, "expected copies for the client that did not ask");
	stop_ferryd();
	burst_free(&b);
}

/* Zero-copy only where the service shares its frames (-EPERM), and only with frames to share (-EOPNOTSUPP). */
Test(clients, zero_copy_refused_where_not_offered, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "xdp", "--client-zero-copy", "s4", NULL};
	const char *more_socket[] = {"--mode", "socket", "--client-zero-copy", "s4", NULL};
	const char *argv[64];
	struct ferry_client *c = NULL;
	char why[160];
	struct ferry_client_opts o = {.sz = sizeof(o), .service = "s6", .zero_copy = true, .why = why,
				      .whylen = sizeof(why)};

	env_up(1);
	start_ferryd(argv_with(argv, more));
	o.socket_path = fx.d.control;
	cr_assert_eq(ferry_client_connect(&o, &c), -EPERM, "expected -EPERM for s6 (%s)", why);
	cr_assert(strstr(why, "--client-zero-copy s6"), "expected the reason to say how, got '%s'", why);
	o.service = "s4";
	cr_assert_eq(ferry_client_connect(&o, &c), 0, "expected s4 to share its frames (%s)", why);
	ferry_client_close(c);
	stop_ferryd();
	start_ferryd(argv_with(argv, more_socket));
	cr_assert_eq(ferry_client_connect(&o, &c), -EOPNOTSUPP, "expected -EOPNOTSUPP in socket mode (%s)", why);
	stop_ferryd();
}

/*
 * What a zero-copy client is given cannot hurt ferryd: each queue's UMEM can
 * be mapped read-only and no other way (no writable mapping, no write(2), no
 * resizing, no hole punched), and the session's memory cannot be resized.
 */
Test(clients, zero_copy_areas_are_read_only, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "xdp", "--client-zero-copy", "s4", NULL};
	const char *argv[64];
	struct ferry_ctl_attach a;
	struct ferry_ctl_reply rep;
	int fds[8], ctl, area;
	unsigned int nfds = 0;
	struct stat st;
	void *p;

	env_up(1);
	start_ferryd(argv_with(argv, more));
	ctl = ferry_test_ctl_connect(fx.d.control);
	cr_assert_geq(ctl, 0, "expected to connect: %s", strerror(-ctl));
	ferry_test_ctl_attach_msg(&a, "s4", 0, 0, 0);
	a.flags = FERRY_CTL_ZEROCOPY;
	cr_assert_eq(ferry_test_ctl_send(ctl, &a, sizeof(a), NULL, 0), 0, "expected to send the attach");
	cr_assert_eq(ferry_test_ctl_recv(ctl, &rep, sizeof(rep), fds, 8, &nfds, 3000), (ssize_t)sizeof(rep),
		     "expected ferryd's answer");
	cr_assert_eq(rep.status, 0, "expected the attach served: %s", rep.why);
	cr_assert_eq(rep.nareas, 1, "expected one area (one queue), got %u", rep.nareas);
	cr_assert_eq(nfds, 2 + rep.nworkers + rep.nareas, "expected memfd, pipe, %u kick pipes, %u area fds; got %u",
		     rep.nworkers, rep.nareas, nfds);
	area = fds[nfds - 1];
	cr_assert_eq(fstat(area, &st), 0, "fstat");
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, area, 0);
	cr_assert_eq(p, MAP_FAILED, "expected no writable mapping of the UMEM");
	cr_assert_eq(errno, EPERM, "expected EPERM, got %s", strerror(errno));
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, area, 0);
	cr_assert_neq(p, MAP_FAILED, "expected a read-only mapping: %s", strerror(errno));
	cr_assert_neq(mprotect(p, 4096, PROT_READ | PROT_WRITE), 0, "expected no write permission added later");
	munmap(p, (size_t)st.st_size);
	cr_assert_lt(pwrite(area, "x", 1, 0), 0, "expected write(2) refused");
	cr_assert_neq(ftruncate(area, 4096), 0, "expected the UMEM not to shrink");
	cr_assert_neq(fallocate(area, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), 0,
		      "expected no hole punched into the UMEM");
	cr_assert_neq(ftruncate(fds[0], 4096), 0, "expected the session's memory not to shrink");
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	close(ctl);
	stop_ferryd();
}

/* ---- a zero-copy client that lies about its frames ---------------------------------------------- */

enum zc_lie { ZC_NOT_HELD, ZC_OUT_OF_RANGE, ZC_BAD_AREA, ZC_TWICE };

struct zc_lie_case {
	enum zc_lie lie;
	char why[48];
};

static struct zc_lie_case zc_lie_cases[] = {
	{ZC_NOT_HELD, "which it did not hold"},
	{ZC_OUT_OF_RANGE, "out of range"},
	{ZC_BAD_AREA, "never carried"},
	{ZC_TWICE, "which it did not hold"},
};

ParameterizedTestParameters(clients, zero_copy_garbage_frame_returns)
{
	return cr_make_param_array(struct zc_lie_case, zc_lie_cases, sizeof(zc_lie_cases) / sizeof(zc_lie_cases[0]));
}

/* One datagram from the peer to s4. */
static void peer_one(void)
{
	union ferry_sockaddr dst;
	int fd;

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, PORT, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(sendto(fd, "zero-copy", 9, 0, &dst.sa, ferry_sockaddr_len(&dst)), 9, "sendto: %s", strerror(errno));
	close(fd);
}

/*
 * A raw zero-copy client (ring.h by hand) gives back a frame it does not
 * hold, one out of range, one of an area its ring never carried, or one
 * twice: ferryd ends the session with the reason, and every frame is its
 * queue's again (exit 0).
 */
ParameterizedTest(struct zc_lie_case *c, clients, zero_copy_garbage_frame_returns, .fini = teardown, .timeout = 60)
{
	const char *more[] = {"--mode", "xdp", "--client-zero-copy", "s4", NULL};
	const char *argv[64];
	struct ferry_test_raw r;
	struct ferry_ctl_attach a;
	struct ferry_ctl_reply rep;
	struct ferry_test_raw_wk *w;
	struct ferry_rx_desc d;
	char why[160];
	uint32_t prod = 0;
	int err;

	env_up(1);
	start_ferryd(argv_with(argv, more));
	ferry_test_ctl_attach_msg(&a, "s4", 16, 16, 0);
	a.flags = FERRY_CTL_ZEROCOPY;
	err = ferry_test_raw_attach(&r, fx.d.control, &a, why, sizeof(why));
	cr_assert_eq(err, 0, "expected a zero-copy attach: %s", why);
	cr_assert_eq(r.nareas, 1, "expected one area");
	w = &r.w[0];
	peer_one();
	for (uint64_t t = ferry_test_now_ms() + 3000;
	     !(prod = __atomic_load_n(&w->rx->producer, __ATOMIC_ACQUIRE)) && ferry_test_now_ms() < t;)
		usleep(2000);
	cr_assert_eq(prod, 1, "expected one datagram on rx; log:\n%s", ferryd_log());
	d = w->rx_desc[0];
	cr_assert_eq(d.area, 1, "expected it in its frame (area 1), got area %u", d.area);
	cr_assert_eq(d.len, 9, "expected 9 bytes");
	if (c->lie == ZC_TWICE) {
		/* two entries need two frames held: hold a second one, then return the first twice */
		peer_one();
		for (uint64_t t = ferry_test_now_ms() + 3000;
		     __atomic_load_n(&w->rx->producer, __ATOMIC_ACQUIRE) < 2 && ferry_test_now_ms() < t;)
			usleep(2000);
		cr_assert_eq(w->rx_desc[1].area, 1, "expected the second in its frame too");
	}
	switch (c->lie) {
	case ZC_NOT_HELD:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){.slot = d.slot + 1, .area = 1};
		break;
	case ZC_OUT_OF_RANGE:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){.slot = 1u << 19, .area = 1};
		break;
	case ZC_BAD_AREA:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){.slot = d.slot, .area = 2};
		break;
	case ZC_TWICE:
		w->rx_ret_desc[0] = (struct ferry_ret_desc){.slot = d.slot, .area = 1};
		w->rx_ret_desc[1] = (struct ferry_ret_desc){.slot = d.slot, .area = 1};
		break;
	}
	__atomic_store_n(&w->rx_ret->producer, c->lie == ZC_TWICE ? 2 : 1, __ATOMIC_RELEASE);
	peer_one(); /* ferryd reads the returns of a zero-copy client as a batch comes */
	cr_assert_eq(ferry_test_ctl_recv(r.ctl, &rep, sizeof(rep), NULL, 0, NULL, 3000), (ssize_t)sizeof(rep),
		     "expected ferryd to end the session; log:\n%s", ferryd_log());
	rep.why[sizeof(rep.why) - 1] = '\0';
	cr_assert_eq(rep.op, FERRY_CTL_END, "expected an END, got op %u", rep.op);
	cr_assert(strstr(rep.why, c->why), "expected '%s' in the reason '%s'", c->why, rep.why);
	ferry_test_raw_close(&r);
	cr_assert_eq(ferry_test_ferryd_wait_value(&fx.d, "frames_user", 0, 3000), 0, "expected the frames back");
	cr_assert_eq(ferry_test_ferryd_ask(&fx.d, "clients_failed"), 1, "expected the session counted as failed");
	stop_ferryd();
}
