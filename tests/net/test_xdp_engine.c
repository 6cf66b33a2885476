/* SPDX-License-Identifier: MIT */
/*
 * ferryd's AF_XDP engine in-process, in the host namespace of tests/lib/netns.h,
 * with a forked child in the peer namespace sending (and receiving echoes).
 */
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "ferryd.h"
#include "netns.h"

#define MTU 1600 /* so a 1472-byte payload fits IPv6 too (1472 + 48 > 1500) */
#define REC_MAX 4096 /* the largest datagram a test records: a frame */
#define PEER_PORT_BASE 50000

static const size_t SIZES[] = { 0, 1, 18, 1472 };
static unsigned int echo_gap_ms; /* the peer's pause after each echo */
static bool wildcard;		  /* services() makes wildcard services */
static bool mapped;		  /* services() gives the IPv4 service as ::ffff:a.b.c.d */
#define NSIZES (sizeof(SIZES) / sizeof(SIZES[0]))

static struct ferry_test_engine_fx fx = FERRY_TEST_ENGINE_FX_INIT;

/* ---- what the callbacks saw --------------------------------------------------- */

struct rec {
	unsigned int svc;
	size_t len;
	uint8_t data[REC_MAX];
	union ferry_sockaddr src;
};

static struct {
	struct rec recs[64];
	unsigned int nrecs;
	uint64_t count;
	uint64_t first_ms, last_ms;
	struct ferry_iobuf *kept[64];
	uint8_t kept_copy[64][32];
	size_t kept_len[64];
	unsigned int nkept;
	bool bad_window;
} seen;

static uint8_t pattern(size_t size, size_t j, int family)
{
	return (uint8_t)(size * 31 + j * 13 + (unsigned int)family);
}

/* ---- fixture ------------------------------------------------------------------ */

static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	ferry_test_engine_fx_ns(&fx);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link set " FERRY_TESTNS_HOST_IF " mtu %d", MTU), 0);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER, "ip link set " FERRY_TESTNS_PEER_IF " mtu %d", MTU), 0);
	ferry_test_engine_fx_host(&fx, true);
}

static void teardown(void)
{
	ferry_test_engine_fx_teardown(&fx);
}

/* Two services: 198.18.0.1:port4 and [2001:2::1]:port6, both calling cb. */
static void services(struct ferryd_service *svcs, uint16_t port4, uint16_t port6, ferry_udp_batch_cb cb)
{
	memset(svcs, 0, 2 * sizeof(*svcs));
	snprintf(svcs[0].name, sizeof(svcs[0].name), "v4");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, port4, &svcs[0].addr);
	svcs[0].id = 0;
	svcs[0].cb = cb;
	snprintf(svcs[1].name, sizeof(svcs[1].name), "v6");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET6, port6, &svcs[1].addr);
	if (wildcard) {
		svcs[0].addr.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		svcs[1].addr.in6.sin6_addr = in6addr_any;
	}
	if (mapped) {
		char s[64];

		snprintf(s, sizeof(s), "[::ffff:" FERRY_TESTNS_HOST4 "]:%u", port4);
		cr_assert_eq(ferry_sockaddr_parse(s, &svcs[0].addr), 0, "parse %s", s);
		cr_assert_eq(svcs[0].addr.sa.sa_family, AF_INET6, "a mapped service is given as IPv6");
	}
	svcs[1].id = 1;
	svcs[1].cb = cb;
}

static void start_engine(struct ferryd_service *svcs, unsigned int n)
{
	char why[256] = "";
	int err;

	for (unsigned int i = 0; i < n; i++)
		svcs[i].user = &svcs[i];
	err = ferryd_xdp_engine_new(fx.r, fx.iface, &fx.cfg, svcs, n, &fx.e, why, sizeof(why));
	cr_assert_eq(err, 0, "ferryd_xdp_engine_new: %s (%s)", strerror(-err), why);
	cr_log_info("engine: %s", fx.e->describe);
	fprintf(stderr, "xdp_engine: %s\n", fx.e->describe);
}

/* Runs the reactor until done() or the child has exited and a grace period passed, or timeout_ms. */
static void run_until(bool (*done)(void), int timeout_ms, int *child_status)
{
	uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms, exited_at = 0;

	while (ferry_test_now_ms() < deadline) {
		cr_assert_geq(ferry_reactor_run_once(fx.r, 10), 0, "reactor");
		if (fx.child > 0 && waitpid(fx.child, child_status, WNOHANG) == fx.child) {
			fx.child = -1;
			exited_at = ferry_test_now_ms();
		}
		if (done && done() && fx.child < 0)
			return;
		if (exited_at && ferry_test_now_ms() > exited_at + 1000)
			return;
	}
}

/* The end of every test: drain, frames balanced, stats, free, nothing left on fh0. */
static void finish(struct ferryd_stats *st)
{
	__u32 prog_id = 1;
	int ifindex = (int)if_nametoindex(FERRY_TESTNS_HOST_IF);

	fx.e->ops->drain(fx.e);
	fx.e->ops->get_stats(fx.e, st);
	cr_expect_eq(ferryd_engine_check_frames(fx.e), 0, "frame accounting balanced");
	cr_expect_eq(st->frames_free + st->frames_kernel + st->frames_user + st->frames_tx, st->frames_total,
		     "free %llu + kernel %llu + user %llu + tx %llu == total %llu", (unsigned long long)st->frames_free,
		     (unsigned long long)st->frames_kernel, (unsigned long long)st->frames_user,
		     (unsigned long long)st->frames_tx, (unsigned long long)st->frames_total);
	/* the drain waits for the TX completions: every frame sent is back on the free list */
	cr_expect_eq(st->frames_tx, 0, "after the drain, no frame still on TX (%llu)", (unsigned long long)st->frames_tx);
	fx.e->ops->free(fx.e);
	fx.e = NULL;
	cr_assert_gt(ifindex, 0);
	cr_assert_eq(bpf_xdp_query_id(ifindex, 0, &prog_id), 0, "querying XDP on fh0");
	cr_expect_eq(prog_id, 0, "no XDP program left on fh0 after free (found id %u)", prog_id);
	cr_assert_eq(bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &prog_id), 0);
	cr_expect_eq(prog_id, 0, "no generic-mode XDP program left on fh0 (found id %u)", prog_id);
}

/* ---- the peer side (a forked child; exit status 0 = all well) ----------------------- */

static int peer_socket(int family, uint16_t port)
{
	union ferry_sockaddr a;
	struct timeval tv = { .tv_sec = 3 };
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), sz = 4 << 20;

	if (fd < 0)
		return -1;
	ferry_testns_addr(FERRY_TESTNS_PEER, family, port, &a);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(fd, &a.sa, ferry_sockaddr_len(&a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sends out[0..len) to host from fd; with echo, reads the reply and checks it is
 * the same bytes from the service's own address. 0, or the peer's exit code
 * naming what went wrong (12 send, 13 no echo, 14 other bytes, 15 other source).
 */
static int send_expect_echo(int fd, const uint8_t *out, size_t len, const union ferry_sockaddr *host, bool echo)
{
	uint8_t in[REC_MAX + 1];
	union ferry_sockaddr from;
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	if (sendto(fd, out, len, 0, &host->sa, ferry_sockaddr_len(host)) != (ssize_t)len) {
		fprintf(stderr, "peer: sendto %zu bytes: %s\n", len, strerror(errno));
		return 12;
	}
	if (!echo)
		return 0;
	n = recvfrom(fd, in, sizeof(in), 0, &from.sa, &fromlen);
	if (n < 0) {
		fprintf(stderr, "peer: no echo of %zu bytes (IPv%d): %s\n", len, host->sa.sa_family == AF_INET ? 4 : 6,
			strerror(errno));
		return 13;
	}
	if ((size_t)n != len || memcmp(in, out, len)) {
		fprintf(stderr, "peer: echo of %zu bytes came back as %zd different bytes\n", len, n);
		return 14;
	}
	if (!ferry_sockaddr_equal(&from, host)) {
		char b[64];

		ferry_sockaddr_format(&from, b, sizeof(b));
		fprintf(stderr, "peer: echo came from %s, not from the service\n", b);
		return 15;
	}
	return 0;
}

/* Sends every size once to the host's address of each family; with echo, waits for each reply and checks it. */
static int peer_sizes(uint16_t port4, uint16_t port6, uint16_t peer_port, bool echo)
{
	int families[2] = { AF_INET, AF_INET6 };
	uint16_t ports[2] = { port4, port6 };

	if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
		return 10;
	usleep(100 * 1000); /* let the parent enter its reactor loop */
	for (int f = 0; f < 2; f++) {
		int fd = peer_socket(families[f], peer_port);
		union ferry_sockaddr host;

		if (fd < 0)
			return 11;
		ferry_testns_addr(FERRY_TESTNS_HOST, families[f], ports[f], &host);
		for (size_t k = 0; k < NSIZES; k++) {
			uint8_t out[MTU];
			int err;

			for (size_t j = 0; j < SIZES[k]; j++)
				out[j] = pattern(SIZES[k], j, families[f]);
			err = send_expect_echo(fd, out, SIZES[k], &host, echo);
			if (err)
				return err;
			if (!echo) {
				usleep(2000);
				continue;
			}
			if (echo_gap_ms)
				usleep(echo_gap_ms * 1000);
		}
		close(fd);
	}
	return 0;
}

static void fork_peer(int (*fn)(uint16_t, uint16_t, uint16_t, bool), uint16_t p4, uint16_t p6, uint16_t pp, bool echo)
{
	if (ferry_test_engine_fx_fork(&fx) == 0)
		_exit(fn(p4, p6, pp, echo));
}

/* ---- callbacks -------------------------------------------------------------------- */

static void record_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_service *svc = user;

	for (unsigned int i = 0; i < n; i++) {
		struct rec *r;

		if (bufs[i]->lo_min > bufs[i]->lo || bufs[i]->lo > bufs[i]->hi || bufs[i]->hi > bufs[i]->hi_max)
			seen.bad_window = true;
		if (seen.nrecs == sizeof(seen.recs) / sizeof(seen.recs[0]))
			continue;
		r = &seen.recs[seen.nrecs++];
		r->svc = svc->id;
		r->len = ferry_iobuf_length(bufs[i]);
		if (r->len <= sizeof(r->data))
			memcpy(r->data, ferry_iobuf_window(bufs[i]), r->len);
		r->src = srcs[i];
	}
	seen.count += n;
}

static void echo_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_service *svc = user;

	seen.count += n;
	cr_assert_eq(fx.e->ops->send(fx.e, svc, bufs, srcs, n), n, "every echo accepted");
}

static void count_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	uint64_t now = ferry_test_now_ms();

	if (!seen.count)
		seen.first_ms = now;
	seen.last_ms = now;
	seen.count += n;
}

/* Keeps the first 8 datagrams' frames (replacing them with NULL), lets the rest go. */
static void keep_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (seen.nkept < 8) {
			size_t len = ferry_iobuf_length(bufs[i]);

			seen.kept_len[seen.nkept] = len;
			memcpy(seen.kept_copy[seen.nkept], ferry_iobuf_window(bufs[i]), len < 32 ? len : 32);
			seen.kept[seen.nkept++] = bufs[i];
			bufs[i] = NULL;
		}
	}
	seen.count += n;
}

/* ---- tests -------------------------------------------------------------------------- */

static bool got_8(void)
{
	return seen.count >= 2 * NSIZES;
}

TestSuite(xdp_engine, .init = setup, .fini = teardown, .timeout = 90);

static void receive_test(void);

Test(xdp_engine, receives_payloads_with_sources)
{
	receive_test();
}

/* Generic (skb) XDP: the same frames, the same callbacks. */
Test(xdp_engine, receives_in_skb_mode)
{
	fx.cfg.xdp_mode = FERRYD_XDP_SKB;
	receive_test();
}

/* veth has no zero-copy: requiring it fails with a reason and leaves nothing attached. */
Test(xdp_engine, zero_copy_required_fails_cleanly)
{
	struct ferryd_service svcs[2];
	char why[256] = "";
	__u32 prog_id = 1;
	unsigned int watches = ferry_reactor_watches(fx.r); /* fh0's own watch */
	int err;

	services(svcs, 41061, 41062, record_cb);
	fx.cfg.zero_copy = FERRYD_ZC_ON;
	err = ferryd_xdp_engine_new(fx.r, fx.iface, &fx.cfg, svcs, 2, &fx.e, why, sizeof(why));
	cr_assert_lt(err, 0, "zero-copy on veth must be refused");
	cr_assert_null(fx.e);
	cr_assert_not_null(strstr(why, "zero-copy"), "the reason says zero-copy: %s", why);
	cr_log_info("refused: %s", why);
	cr_assert_eq(bpf_xdp_query_id((int)if_nametoindex(FERRY_TESTNS_HOST_IF), 0, &prog_id), 0);
	cr_assert_eq(prog_id, 0, "no XDP program left after a failed start (found id %u)", prog_id);
	cr_assert_eq(ferry_reactor_watches(fx.r), watches, "no watch of the engine left on the reactor");
}

static void receive_test(void)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	union ferry_sockaddr peer4, peer6;
	uint64_t bytes = 0;
	int status = -1;

	services(svcs, 41001, 41002, record_cb);
	start_engine(svcs, 2);
	fork_peer(peer_sizes, 41001, 41002, PEER_PORT_BASE + 1, false);
	run_until(got_8, 10000, &status);
	cr_assert_eq(status, 0, "the peer sent everything (status %#x)", status);
	cr_assert_eq(seen.count, 2 * NSIZES, "the callbacks saw %llu datagrams, expected %zu",
		     (unsigned long long)seen.count, 2 * NSIZES);
	cr_assert_not(seen.bad_window, "every iobuf keeps lo_min <= lo <= hi <= hi_max");
	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET, PEER_PORT_BASE + 1, &peer4);
	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET6, PEER_PORT_BASE + 1, &peer6);
	for (unsigned int i = 0; i < seen.nrecs; i++) {
		struct rec *r = &seen.recs[i];
		int family = i < NSIZES ? AF_INET : AF_INET6;
		size_t size = SIZES[i % NSIZES];

		cr_assert_eq(r->svc, family == AF_INET ? 0u : 1u, "datagram %u went to service %u", i, r->svc);
		cr_assert_eq(r->len, size, "datagram %u: %zu bytes, expected %zu", i, r->len, size);
		for (size_t j = 0; j < size; j++)
			cr_assert_eq(r->data[j], pattern(size, j, family), "datagram %u byte %zu", i, j);
		cr_assert(ferry_sockaddr_equal(&r->src, family == AF_INET ? &peer4 : &peer6),
			  "datagram %u: source is the peer's address and port", i);
		bytes += size;
	}
	finish(&st);
	cr_expect_eq(st.rx_packets, 2 * NSIZES, "rx_packets %llu", (unsigned long long)st.rx_packets);
	cr_expect_eq(st.rx_bytes, bytes, "rx_bytes %llu, expected %llu", (unsigned long long)st.rx_bytes,
		     (unsigned long long)bytes);
	cr_expect_eq(st.rx_bad_header + st.rx_no_service, 0, "no frame refused");
}

static void echo_test(uint16_t p4, uint16_t p6, uint16_t pp, bool expect_miss)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	int status = -1;

	services(svcs, p4, p6, echo_cb);
	start_engine(svcs, 2);
	fork_peer(peer_sizes, p4, p6, pp, true);
	run_until(NULL, 20000, &status);
	cr_assert_eq(status, 0, "the peer got every echo byte-exact from the service's address (status %#x)", status);
	finish(&st);
	cr_expect_eq(seen.count, 2 * NSIZES, "echoed %llu", (unsigned long long)seen.count);
	cr_expect_eq(st.tx_packets, 2 * NSIZES, "tx_packets %llu", (unsigned long long)st.tx_packets);
	cr_expect_eq(st.tx_dropped, 0, "nothing dropped");
	if (expect_miss) {
		cr_expect_geq(st.tx_neigh_miss, 1, "the first replies found no neighbour entry");
		cr_expect_geq(st.tx_via_socket, 1, "and went through the kernel");
		cr_expect_lt(st.tx_via_socket, 2 * NSIZES, "later ones went by AF_XDP once resolved");
	} else {
		cr_expect_eq(st.tx_via_socket, 0, "every echo went out on the AF_XDP TX ring (%llu by socket)",
			     (unsigned long long)st.tx_via_socket);
	}
	cr_expect_eq(st.rx_via_socket, 0, "every datagram came by AF_XDP, none through the kernel (%llu)",
		     (unsigned long long)st.rx_via_socket);
	cr_log_info("echo: tx %llu via socket %llu neigh miss %llu kicks %llu", (unsigned long long)st.tx_packets,
		    (unsigned long long)st.tx_via_socket, (unsigned long long)st.tx_neigh_miss,
		    (unsigned long long)st.kicks);
}

Test(xdp_engine, echo_arrives_byte_exact)
{
	echo_test(41011, 41012, PEER_PORT_BASE + 11, false);
}

/* 0.0.0.0:port and [::]:port: replies leave from the interface's address, as the peer checks. */
Test(xdp_engine, echo_from_wildcard_services)
{
	wildcard = true;
	fx.cfg.busy_poll = true; /* and busy polling on: only a hint, the same results */
	echo_test(41051, 41052, PEER_PORT_BASE + 51, false);
}

/*
 * The IPv4 service given as [::ffff:198.18.0.1]:port: the XDP program's key, the
 * engine's look-up and the kernel socket's bind must all take it as IPv4
 * (ferryd_sockaddr_canon), or its datagrams would pass to the kernel instead.
 */
Test(xdp_engine, echo_from_ipv4_mapped_service)
{
	mapped = true;
	echo_test(41061, 41062, PEER_PORT_BASE + 61, false);
}

/* Without the fixture's static neighbour entries: the first replies go through the kernel, which resolves. */
Test(xdp_engine, echo_after_neighbour_miss)
{
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
				      "ip neigh del " FERRY_TESTNS_PEER4 " dev " FERRY_TESTNS_HOST_IF
				      " && ip -6 neigh del " FERRY_TESTNS_PEER6 " dev " FERRY_TESTNS_HOST_IF),
		     0, "removing the host's static neighbour entries");
	echo_gap_ms = 300; /* longer than the engine caches a miss */
	echo_test(41021, 41022, PEER_PORT_BASE + 21, true);
}

#define BURST 100000u
#define BURST_BATCH 64

static int peer_burst(uint16_t port4, uint16_t unused, uint16_t peer_port, bool unused2)
{
	struct mmsghdr msgs[BURST_BATCH];
	struct iovec iov[BURST_BATCH];
	uint8_t payload[BURST_BATCH][18];
	union ferry_sockaddr host;
	uint64_t start, deadline;
	unsigned int sent = 0;
	long pace_us = 300;
	int fd;

	if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
		return 10;
	fd = peer_socket(AF_INET, peer_port);
	if (fd < 0)
		return 11;
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, port4, &host);
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BURST_BATCH; i++) {
		memset(payload[i], i, sizeof(payload[i]));
		iov[i] = (struct iovec){ .iov_base = payload[i], .iov_len = sizeof(payload[i]) };
		msgs[i].msg_hdr = (struct msghdr){ .msg_name = &host, .msg_namelen = ferry_sockaddr_len(&host),
						    .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	if (getenv("FERRY_XDP_BURST_PACE_US")) /* for measuring: the pause after each batch */
		pace_us = atol(getenv("FERRY_XDP_BURST_PACE_US"));
	usleep(100 * 1000);
	start = ferry_test_now_ms();
	deadline = start + 20000;
	while (sent < BURST && ferry_test_now_ms() < deadline) {
		unsigned int n = BURST - sent < BURST_BATCH ? BURST - sent : BURST_BATCH;
		int r = sendmmsg(fd, msgs, n, 0);

		if (r < 0) {
			if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)
				continue;
			fprintf(stderr, "peer: sendmmsg: %s\n", strerror(errno));
			return 12;
		}
		sent += (unsigned int)r;
		/* pace: a batch, then a short sleep */
		if (pace_us > 0)
			nanosleep(&(struct timespec){ .tv_nsec = pace_us * 1000 }, NULL);
	}
	fprintf(stderr, "xdp_engine: peer sent %u datagrams in %llu ms\n", sent,
		(unsigned long long)(ferry_test_now_ms() - start));
	return sent == BURST ? 0 : 13;
}

static bool got_burst(void)
{
	return seen.count >= BURST;
}

Test(xdp_engine, burst_of_100k_loses_nothing)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	int status = -1;
	double secs;

	services(svcs, 41031, 41032, count_cb);
	start_engine(svcs, 2);
	fork_peer(peer_burst, 41031, 41032, PEER_PORT_BASE + 31, false);
	run_until(got_burst, 40000, &status);
	cr_assert_eq(status, 0, "the peer sent all %u datagrams within 20 s (status %#x)", BURST, status);
	finish(&st);
	secs = (double)(seen.last_ms - seen.first_ms) / 1000.0;
	fprintf(stderr,
		"xdp_engine: burst: counted %llu of %u in %.2f s (%.0f pps), batches %llu (%.1f per batch), "
		"fill_empty %llu, kicks %llu\n",
		(unsigned long long)seen.count, BURST, secs, secs > 0 ? (double)seen.count / secs : 0.0,
		(unsigned long long)st.rx_batches,
		st.rx_batches ? (double)st.rx_packets / (double)st.rx_batches : 0.0,
		(unsigned long long)st.rx_fill_empty, (unsigned long long)st.kicks);
	cr_expect_eq(seen.count, BURST, "every datagram counted: %llu of %u", (unsigned long long)seen.count, BURST);
	cr_expect_eq(st.rx_packets, BURST, "rx_packets %llu", (unsigned long long)st.rx_packets);
	cr_expect_eq(st.rx_bytes, (uint64_t)BURST * 18, "rx_bytes");
}

static bool got_all_kept_test(void)
{
	return seen.count >= 2 * NSIZES;
}

Test(xdp_engine, kept_frames_stay_valid_until_released)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	struct ferry_iobuf fake, *bogus[2];
	int status = -1;

	services(svcs, 41041, 41042, keep_cb);
	start_engine(svcs, 2);
	fork_peer(peer_sizes, 41041, 41042, PEER_PORT_BASE + 41, false);
	run_until(got_all_kept_test, 10000, &status);
	cr_assert_eq(status, 0, "the peer sent everything");
	cr_assert_eq(seen.count, 2 * NSIZES);
	cr_assert_eq(seen.nkept, 8, "the callback kept 8 frames");

	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 8, "8 frames held by the handler, %llu counted", (unsigned long long)st.frames_user);
	cr_assert_eq(ferryd_engine_check_frames(fx.e), 0, "balanced while frames are kept");

	/* more traffic through the engine must not reuse the kept frames */
	fork_peer(peer_sizes, 41041, 41042, PEER_PORT_BASE + 42, false);
	run_until(NULL, 10000, &status);
	cr_assert_eq(status, 0);
	cr_assert_eq(seen.count, 4 * NSIZES);
	for (unsigned int i = 0; i < seen.nkept; i++) {
		size_t len = seen.kept_len[i];

		cr_assert_eq(ferry_iobuf_length(seen.kept[i]), len, "kept frame %u keeps its window", i);
		cr_assert_eq(memcmp(ferry_iobuf_window(seen.kept[i]), seen.kept_copy[i], len < 32 ? len : 32), 0,
			     "kept frame %u keeps its bytes", i);
	}

	/* release refuses what is not a kept frame of ours */
	ferry_iobuf_init(&fake, seen.kept_copy, sizeof(seen.kept_copy));
	bogus[0] = &fake;
	bogus[1] = (struct ferry_iobuf *)((uint8_t *)seen.kept[0] + 1);
	fx.e->ops->release(fx.e, bogus, 2);
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 8, "bogus releases change nothing");

	fx.e->ops->release(fx.e, seen.kept, 4);
	fx.e->ops->release(fx.e, seen.kept, 4); /* twice: the second is refused */
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 4, "4 released, 4 still kept (%llu)", (unsigned long long)st.frames_user);
	fx.e->ops->release(fx.e, seen.kept + 4, 4);
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 0, "all released");
	finish(&st);
}

/* Replaces each frame, then releases it before returning: freed once the batch is done. */
static void keep_release_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs,
			    unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct ferry_iobuf *b = bufs[i];

		bufs[i] = NULL;
		fx.e->ops->release(fx.e, &b, 1);
	}
	seen.count += n;
}

Test(xdp_engine, release_inside_the_callback)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	int status = -1;

	services(svcs, 41071, 41072, keep_release_cb);
	start_engine(svcs, 2);
	fork_peer(peer_sizes, 41071, 41072, PEER_PORT_BASE + 71, false);
	run_until(got_8, 10000, &status);
	cr_assert_eq(status, 0, "the peer sent everything");
	cr_assert_eq(seen.count, 2 * NSIZES);
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 0, "frames released inside their callback are not held (%llu)",
		     (unsigned long long)st.frames_user);
	finish(&st);
}

/* ---- what XDP passes to the kernel, at the default MTU of 1500 ------------------------------ */

/*
 * Datagrams for a service that arrive in fragments (the XDP program passes
 * fragments to the kernel, which reassembles them) and small ones (AF_XDP)
 * from the peer; each is echoed and checked byte-exact. The big replies are
 * larger than the MTU: the kernel fragments them.
 */
struct frag_case {
	int family;
	size_t size;
	bool fragmented; /* more than one 1500-byte packet on the wire */
};

static const struct frag_case FRAGS[] = {
	{ AF_INET6, 1472, true }, /* 1520 bytes over IPv6 */
	{ AF_INET6, 18, false },
	{ AF_INET6, 1472, true },
	{ AF_INET6, 3000, true },
	{ AF_INET, 3000, true },
	{ AF_INET, 1473, true }, /* one byte over */
	{ AF_INET, 1472, false }, /* exactly 1500 */
	{ AF_INET, 18, false },
};
#define NFRAGS (sizeof(FRAGS) / sizeof(FRAGS[0]))
#define FRAG_PEER_PORT (PEER_PORT_BASE + 81)

static uint8_t frag_pattern(size_t k, size_t j)
{
	return (uint8_t)(k * 53 + j * 13 + 7);
}

static int peer_frags(uint16_t port4, uint16_t port6, uint16_t peer_port, bool echo)
{
	int fds[2] = { -1, -1 }, dont = IP_PMTUDISC_DONT, dont6 = IPV6_PMTUDISC_DONT;

	if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
		return 10;
	usleep(100 * 1000); /* let the parent enter its reactor loop */
	fds[0] = peer_socket(AF_INET, peer_port);
	fds[1] = peer_socket(AF_INET6, peer_port);
	if (fds[0] < 0 || fds[1] < 0)
		return 11;
	/* fragment, whatever the path MTU discovery settings of this machine */
	if (setsockopt(fds[0], IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont)) ||
	    setsockopt(fds[1], IPPROTO_IPV6, IPV6_MTU_DISCOVER, &dont6, sizeof(dont6)))
		return 16;
	for (size_t k = 0; k < NFRAGS; k++) {
		const struct frag_case *c = &FRAGS[k];
		int fd = fds[c->family == AF_INET6];
		uint8_t out[REC_MAX];
		union ferry_sockaddr host;
		int err;

		ferry_testns_addr(FERRY_TESTNS_HOST, c->family, c->family == AF_INET ? port4 : port6, &host);
		for (size_t j = 0; j < c->size; j++)
			out[j] = frag_pattern(k, j);
		err = send_expect_echo(fd, out, c->size, &host, echo);
		if (err)
			return err;
	}
	close(fds[0]);
	close(fds[1]);
	return 0;
}

/* Records each datagram (as record_cb), then echoes the batch. */
static void record_echo_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_service *svc = user;

	record_cb(user, bufs, srcs, n);
	cr_assert_eq(fx.e->ops->send(fx.e, svc, bufs, srcs, n), n, "every echo accepted");
}

static bool got_frags(void)
{
	return seen.count >= NFRAGS;
}

/* Back to the fixture's default MTU (the suite's setup raises it for the AF_XDP path). */
static void default_mtu(void)
{
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST, "ip link set " FERRY_TESTNS_HOST_IF " mtu 1500"), 0);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER, "ip link set " FERRY_TESTNS_PEER_IF " mtu 1500"), 0);
}

Test(xdp_engine, fragments_reach_the_service_through_the_kernel)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	union ferry_sockaddr peer4, peer6;
	uint64_t xdp[FERRY_XDP_NCOUNTERS], bytes = 0, nfrag = 0;
	int status = -1;

	default_mtu();
	services(svcs, 41081, 41082, record_echo_cb);
	start_engine(svcs, 2);
	fork_peer(peer_frags, 41081, 41082, FRAG_PEER_PORT, true);
	run_until(got_frags, 20000, &status);
	cr_assert_eq(status, 0, "the peer got every echo byte-exact from the service's address (status %#x)", status);
	cr_assert_eq(seen.count, NFRAGS, "the callbacks saw %llu datagrams, expected %zu",
		     (unsigned long long)seen.count, NFRAGS);
	cr_assert_not(seen.bad_window, "every iobuf keeps lo_min <= lo <= hi <= hi_max");
	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET, FRAG_PEER_PORT, &peer4);
	ferry_testns_addr(FERRY_TESTNS_PEER, AF_INET6, FRAG_PEER_PORT, &peer6);
	for (unsigned int i = 0; i < seen.nrecs; i++) {
		const struct frag_case *c = &FRAGS[i];
		struct rec *r = &seen.recs[i];

		cr_assert_eq(r->svc, c->family == AF_INET ? 0u : 1u, "datagram %u went to service %u", i, r->svc);
		cr_assert_eq(r->len, c->size, "datagram %u: %zu bytes, expected %zu", i, r->len, c->size);
		for (size_t j = 0; j < c->size; j++)
			cr_assert_eq(r->data[j], frag_pattern(i, j), "datagram %u byte %zu", i, j);
		cr_assert(ferry_sockaddr_equal(&r->src, c->family == AF_INET ? &peer4 : &peer6),
			  "datagram %u: source is the peer's address and port", i);
		bytes += c->size;
		nfrag += c->fragmented;
	}
	cr_assert_eq(fx.e->ops->xdp_counters ? fx.e->ops->xdp_counters(fx.e, xdp) : -ENOSYS, 0,
		     "the engine reads the XDP program's counters");
	/* 1472 over IPv6: 2 fragments, 3000: 3 over either family, 1473 over IPv4: 2 */
	cr_expect_geq(xdp[FERRY_XDP_PASS_FRAGMENT], 12, "the program passed %llu fragments to the kernel, expected 12",
		      (unsigned long long)xdp[FERRY_XDP_PASS_FRAGMENT]);
	cr_expect_geq(xdp[FERRY_XDP_REDIRECTED], NFRAGS - nfrag, "the program redirected %llu, expected %llu",
		      (unsigned long long)xdp[FERRY_XDP_REDIRECTED], (unsigned long long)(NFRAGS - nfrag));
	finish(&st);
	cr_expect_eq(st.rx_packets, NFRAGS, "rx_packets %llu", (unsigned long long)st.rx_packets);
	cr_expect_eq(st.rx_bytes, bytes, "rx_bytes %llu, expected %llu", (unsigned long long)st.rx_bytes,
		     (unsigned long long)bytes);
	cr_expect_eq(st.rx_via_socket, nfrag, "rx_via_socket %llu, expected the %llu fragmented datagrams",
		     (unsigned long long)st.rx_via_socket, (unsigned long long)nfrag);
	cr_expect_eq(st.tx_packets, NFRAGS, "tx_packets %llu", (unsigned long long)st.tx_packets);
	cr_expect_eq(st.tx_bytes, bytes, "tx_bytes %llu, expected %llu", (unsigned long long)st.tx_bytes,
		     (unsigned long long)bytes);
	cr_expect_eq(st.tx_via_socket, nfrag, "tx_via_socket %llu: the replies larger than the MTU, %llu",
		     (unsigned long long)st.tx_via_socket, (unsigned long long)nfrag);
	cr_expect_eq(st.tx_dropped + st.tx_too_big + st.tx_errors, 0, "nothing dropped");
	cr_expect_eq(st.rx_truncated + st.rx_bad_header + st.rx_no_service, 0, "nothing refused or cut");
}

/* Keeps every buffer of the kernel's path (replacing it with NULL), records the rest as record_cb. */
static void keep_all_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		size_t len = ferry_iobuf_length(bufs[i]);

		if (seen.nkept < 64 && len > 1000) {
			seen.kept_len[seen.nkept] = len;
			memcpy(seen.kept_copy[seen.nkept], ferry_iobuf_window(bufs[i]), 32);
			seen.kept[seen.nkept++] = bufs[i];
			bufs[i] = NULL;
		}
	}
	seen.count += n;
}

/* Kernel-path buffers kept by the handler: released through the AF_XDP engine, which hands them to their owner. */
Test(xdp_engine, kept_socket_buffers_are_released_through_the_engine)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	struct ferry_iobuf fake;
	int status = -1;
	unsigned int first;

	default_mtu();
	services(svcs, 41091, 41092, keep_all_cb);
	start_engine(svcs, 2);
	fork_peer(peer_frags, 41091, 41092, FRAG_PEER_PORT + 10, false);
	run_until(got_frags, 20000, &status);
	cr_assert_eq(status, 0, "the peer sent everything");
	cr_assert_eq(seen.count, NFRAGS, "the callbacks saw %llu datagrams", (unsigned long long)seen.count);
	first = seen.nkept;
	cr_assert_eq(first, 6, "the callback kept the 6 big ones (5 by the kernel, 1472 over IPv4 by AF_XDP): %u",
		     first);
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 1, "one UMEM frame held (the 1472-byte IPv4 one): %llu",
		     (unsigned long long)st.frames_user);
	cr_assert_eq(st.rx_via_socket, 5, "5 by the kernel's socket: %llu", (unsigned long long)st.rx_via_socket);

	/* a second round: the kept buffers are not reused */
	fork_peer(peer_frags, 41091, 41092, FRAG_PEER_PORT + 11, false);
	seen.count = 0;
	run_until(got_frags, 20000, &status);
	cr_assert_eq(status, 0, "the peer sent everything again");
	cr_assert_eq(seen.nkept, 2 * first, "kept %u", seen.nkept);
	for (unsigned int i = 0; i < seen.nkept; i++) {
		cr_assert_eq(ferry_iobuf_length(seen.kept[i]), seen.kept_len[i], "kept buffer %u keeps its window", i);
		cr_assert_eq(memcmp(ferry_iobuf_window(seen.kept[i]), seen.kept_copy[i], 32), 0,
			     "kept buffer %u keeps its bytes", i);
		for (unsigned int j = 0; j < i; j++)
			cr_assert_neq(seen.kept[i], seen.kept[j], "kept buffers %u and %u are distinct", j, i);
	}

	/* both kinds go back through the one release; twice, or a foreign pointer, is refused */
	ferry_iobuf_init(&fake, seen.kept_copy, sizeof(seen.kept_copy));
	{
		struct ferry_iobuf *bogus[1] = { &fake };

		fx.e->ops->release(fx.e, bogus, 1);
	}
	fx.e->ops->release(fx.e, seen.kept, seen.nkept);
	fx.e->ops->release(fx.e, seen.kept, seen.nkept);
	/* last, the socket buffer released last once more: were it taken, it would be on the free list's top twice */
	for (unsigned int i = seen.nkept; i-- > 0;)
		if (seen.kept_len[i] == 1473) {
			fx.e->ops->release(fx.e, &seen.kept[i], 1);
			break;
		}
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 0, "every UMEM frame released: %llu", (unsigned long long)st.frames_user);

	/* more rounds: had a release been taken twice, two receive slots would share a buffer, two kept ones be equal */
	seen.nkept = 0;
	seen.count = 0;
	fork_peer(peer_frags, 41091, 41092, FRAG_PEER_PORT + 12, false);
	run_until(got_frags, 20000, &status);
	cr_assert_eq(status, 0, "the peer sent everything a third time");
	fork_peer(peer_frags, 41091, 41092, FRAG_PEER_PORT + 13, false);
	seen.count = 0;
	run_until(got_frags, 20000, &status);
	cr_assert_eq(status, 0, "and a fourth");
	cr_assert_eq(seen.nkept, 2 * first, "kept %u", seen.nkept);
	for (unsigned int i = 0; i < seen.nkept; i++) {
		cr_assert_eq(memcmp(ferry_iobuf_window(seen.kept[i]), seen.kept_copy[i], 32), 0,
			     "kept buffer %u keeps its bytes", i);
		for (unsigned int j = 0; j < i; j++)
			cr_assert_neq(seen.kept[i], seen.kept[j], "kept buffers %u and %u are distinct", j, i);
	}
	fx.e->ops->release(fx.e, seen.kept, seen.nkept);
	finish(&st);
	cr_expect_eq(st.rx_via_socket, 20, "rx_via_socket %llu", (unsigned long long)st.rx_via_socket);
}

/* The kernel's path, released inside the callback (as release_inside_the_callback), then kept: no buffer twice. */
Test(xdp_engine, release_inside_the_callback_on_the_kernel_path)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	int status = -1;

	default_mtu();
	services(svcs, 41101, 41102, keep_release_cb);
	start_engine(svcs, 2);
	for (uint16_t round = 0; round < 2; round++) {
		seen.count = 0;
		fork_peer(peer_frags, 41101, 41102, FRAG_PEER_PORT + 20 + round, false);
		run_until(got_frags, 20000, &status);
		cr_assert_eq(status, 0, "the peer sent everything (round %u)", round);
		cr_assert_eq(seen.count, NFRAGS, "round %u: the callbacks saw %llu", round, (unsigned long long)seen.count);
	}
	fx.e->ops->get_stats(fx.e, &st);
	cr_assert_eq(st.frames_user, 0, "frames released inside their callback are not held (%llu)",
		     (unsigned long long)st.frames_user);
	cr_assert_eq(st.rx_via_socket, 10, "10 by the kernel's socket: %llu", (unsigned long long)st.rx_via_socket);

	/* now keep them: had a buffer gone back twice, two would be one */
	svcs[0].cb = svcs[1].cb = keep_all_cb;
	for (uint16_t round = 0; round < 2; round++) {
		seen.count = 0;
		fork_peer(peer_frags, 41101, 41102, FRAG_PEER_PORT + 22 + round, false);
		run_until(got_frags, 20000, &status);
		cr_assert_eq(status, 0, "the peer sent everything (keeping round %u)", round);
	}
	cr_assert_eq(seen.nkept, 12, "kept %u", seen.nkept);
	for (unsigned int i = 0; i < seen.nkept; i++) {
		cr_assert_eq(memcmp(ferry_iobuf_window(seen.kept[i]), seen.kept_copy[i], 32), 0,
			     "kept buffer %u keeps its bytes", i);
		for (unsigned int j = 0; j < i; j++)
			cr_assert_neq(seen.kept[i], seen.kept[j], "kept buffers %u and %u are distinct", j, i);
	}
	fx.e->ops->release(fx.e, seen.kept, seen.nkept);
	finish(&st);
}

/*
 * Datagrams still on the RX ring when drain starts (the reactor did not run
 * since they arrived) are delivered by drain, not left in the ring: frames
 * balance either way, so only the count tells.
 */
Test(xdp_engine, drain_delivers_what_is_on_the_rx_ring)
{
	struct ferryd_service svcs[2];
	struct ferryd_stats st;
	uint64_t deadline;
	int status = -1;

	services(svcs, 41111, 41112, record_cb);
	start_engine(svcs, 2);
	fork_peer(peer_sizes, 41111, 41112, PEER_PORT_BASE + 111, false);
	/* the peer sends everything while this process never runs the reactor */
	deadline = ferry_test_now_ms() + 10000;
	while (fx.child > 0 && ferry_test_now_ms() < deadline) {
		if (waitpid(fx.child, &status, WNOHANG) == fx.child)
			fx.child = -1;
		else
			usleep(10 * 1000);
	}
	cr_assert_eq(fx.child, -1, "the peer finished within 10 s");
	cr_assert_eq(status, 0, "the peer sent everything (status %#x)", status);
	usleep(50 * 1000);
	cr_assert_eq(seen.count, 0, "nothing delivered before drain: the reactor did not run");
	finish(&st);
	cr_expect_eq(seen.count, 2 * NSIZES, "drain delivered the %zu datagrams left on the RX ring, saw %llu",
		     2 * NSIZES, (unsigned long long)seen.count);
	cr_expect_eq(st.rx_packets, 2 * NSIZES, "rx_packets %llu", (unsigned long long)st.rx_packets);
	cr_expect_not(seen.bad_window, "every iobuf keeps lo_min <= lo <= hi <= hi_max");
}
