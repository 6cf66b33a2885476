/* SPDX-License-Identifier: MIT */
/*
 * ferry_udp_sendto_sync and ferry_udp_sendto: full sockets, real receivers on
 * loopback, waiting for room (blocking and on a reactor), backing off on
 * ENOBUFS, stop, and every kind of bad descriptor, with the window unchanged
 * on each error.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "../../libclient/src/test_hooks.h"
#include "netns.h"
#include "testutil.h"

#define DGRAM 1000
#define FILL_MAX 100000 /* bound on the datagrams a full socketpair can take */

/* The window and bytes of an iobuf, to check "unchanged". */
struct snap {
	size_t lo_min, lo, hi, hi_max;
	uint8_t bytes[DGRAM];
};

static void take(struct snap *s, const struct ferry_iobuf *b)
{
	s->lo_min = b->lo_min;
	s->lo = b->lo;
	s->hi = b->hi;
	s->hi_max = b->hi_max;
	memcpy(s->bytes, b->data, b->hi_max < DGRAM ? b->hi_max : DGRAM);
}

#define expect_unchanged(b, s, what)                                                                  \
	do {                                                                                          \
		cr_assert((b)->lo_min == (s)->lo_min && (b)->lo == (s)->lo && (b)->hi == (s)->hi &&    \
				  (b)->hi_max == (s)->hi_max,                                         \
			  "%s: expected the window unchanged (lo %zu hi %zu), got lo %zu hi %zu", what,  \
			  (s)->lo, (s)->hi, (b)->lo, (b)->hi);                                        \
		cr_assert(!memcmp((b)->data, (s)->bytes, (b)->hi_max < DGRAM ? (b)->hi_max : DGRAM),   \
			  "%s: expected the bytes unchanged", what);                                  \
	} while (0)

/* A datagram of DGRAM bytes filled with c, window = all of it. */
static void dgram(struct ferry_iobuf *b, uint8_t *mem, uint8_t c)
{
	memset(mem, c, DGRAM);
	ferry_iobuf_init(b, mem, DGRAM);
}

static void dgram_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0, "expected a socketpair: %s",
		     strerror(errno));
}

/* Sends 'F' datagrams into sv[0] until it says NOT_READY; returns how many went. */
static size_t fill(int fd)
{
	uint8_t mem[DGRAM];
	struct ferry_iobuf b;
	size_t n;

	for (n = 0; n < FILL_MAX; n++) {
		int r;

		dgram(&b, mem, 'F');
		r = ferry_udp_sendto_sync(fd, &b, NULL);
		if (r == FERRY_NOT_READY)
			return n;
		cr_assert_eq(r, FERRY_OK, "filling: expected FERRY_OK or FERRY_NOT_READY, got %d", r);
		cr_assert(ferry_iobuf_is_empty(&b), "filling: FERRY_OK must consume the whole datagram");
	}
	cr_assert_fail("a socketpair nobody reads took %d datagrams without saying NOT_READY", FILL_MAX);
	return n;
}

/* Receives one datagram within timeout_ms; its length, or -1 on timeout. */
static ssize_t recv_within(int fd, void *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return recv(fd, buf, len, MSG_DONTWAIT);
}

/* ---- sendto_sync ------------------------------------------------------------------------------ */

Test(send, sync_ok_consumes_the_window)
{
	uint8_t mem[DGRAM], got[DGRAM + 8];
	struct ferry_iobuf b;
	int sv[2];

	dgram_pair(sv);
	for (size_t i = 0; i < DGRAM; i++)
		mem[i] = (uint8_t)(i * 7);
	ferry_iobuf_init(&b, mem, DGRAM);
	b.lo = 100;
	b.hi = 900;
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_OK, "expected FERRY_OK with room");
	cr_assert_eq(b.lo, 900, "FERRY_OK: expected lo advanced by the 800 bytes sent, got lo %zu", b.lo);
	cr_assert_eq(b.hi, 900, "FERRY_OK: expected hi unchanged");
	cr_assert(ferry_iobuf_is_empty(&b), "FERRY_OK on a datagram socket: expected the window consumed");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), 800, "expected one 800-byte datagram");
	cr_assert(!memcmp(got, mem + 100, 800), "expected exactly the window's bytes");
	close(sv[0]);
	close(sv[1]);
}

Test(send, sync_empty_window_sends_an_empty_datagram)
{
	uint8_t mem[4], got[8];
	struct ferry_iobuf b;
	int sv[2];

	dgram_pair(sv);
	ferry_iobuf_init(&b, mem, 0);
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_OK, "expected an empty datagram sent");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), 0, "expected a 0-byte datagram to arrive");
	close(sv[0]);
	close(sv[1]);
}

Test(send, sync_not_ready_on_a_full_socket)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct snap s;
	size_t n;
	int sv[2];

	dgram_pair(sv);
	n = fill(sv[0]);
	cr_assert_gt(n, 0, "expected an empty socketpair to take at least one datagram");

	dgram(&b, mem, 'X');
	b.lo = 10;
	take(&s, &b);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_NOT_READY,
			     "full socket (after %zu datagrams): expected FERRY_NOT_READY", n);
		expect_unchanged(&b, &s, "FERRY_NOT_READY");
	}

	/* one read makes room for one more datagram */
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected a filler datagram");
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_OK, "after one read: expected FERRY_OK");
	cr_assert(ferry_iobuf_is_empty(&b), "expected the window consumed");
	close(sv[0]);
	close(sv[1]);
}

static void loopback_round_trip(int family)
{
	union ferry_sockaddr a, dst;
	socklen_t alen = sizeof(dst);
	uint8_t mem[1400], got[2048];
	struct ferry_iobuf b;
	int rx, tx;

	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		a.in4.sin_family = AF_INET;
		a.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_loopback;
	}
	rx = ferry_udp_bind(&a, NULL);
	cr_assert_geq(rx, 0, "expected a receiver bound on loopback, got %d", rx);
	cr_assert_eq(getsockname(rx, &dst.sa, &alen), 0, "expected getsockname to work");
	tx = ferry_udp_bind_any(family);
	cr_assert_geq(tx, 0, "expected a sender, got %d", tx);

	for (size_t i = 0; i < sizeof(mem); i++)
		mem[i] = (uint8_t)(i ^ 0x5a);
	for (int round = 0; round < 3; round++) {
		size_t lo = (size_t)round * 17, hi = sizeof(mem) - (size_t)round * 5;
		ssize_t n;

		ferry_iobuf_init(&b, mem, sizeof(mem));
		b.lo = lo;
		b.hi = hi;
		cr_assert_eq(ferry_udp_sendto_sync(tx, &b, &dst), FERRY_OK, "sendto_sync to loopback: expected FERRY_OK");
		cr_assert_eq(b.lo, hi, "expected the window consumed");
		n = recv_within(rx, got, sizeof(got), 2000);
		cr_assert_eq(n, (ssize_t)(hi - lo), "expected a datagram of %zu bytes, got %zd", hi - lo, n);
		cr_assert(!memcmp(got, mem + lo, hi - lo), "expected exactly the bytes of the window");
	}

	/* dst NULL: the connected peer */
	cr_assert_eq(connect(tx, &dst.sa, alen), 0, "expected connect to work: %s", strerror(errno));
	ferry_iobuf_init(&b, mem, 300);
	cr_assert_eq(ferry_udp_sendto_sync(tx, &b, NULL), FERRY_OK, "sendto_sync(NULL) when connected: expected FERRY_OK");
	cr_assert_eq(recv_within(rx, got, sizeof(got), 2000), 300, "expected the 300-byte datagram");
	cr_assert(!memcmp(got, mem, 300), "expected exactly the bytes sent to the connected peer");
	close(tx);
	close(rx);
}

Test(send, sync_to_loopback_ipv4)
{
	loopback_round_trip(AF_INET);
}

Test(send, sync_to_loopback_ipv6)
{
	loopback_round_trip(AF_INET6);
}

/* ---- sendto, blocking form -------------------------------------------------------------------- */

struct drainer {
	pthread_t tid;
	int fd;
	int delay_ms;
	size_t count;	 /* datagrams to read */
	size_t drained;	 /* of which were fillers */
	struct ferry_stop *stop; /* fired after delay_ms instead, if set */
};

static void *drain(void *arg)
{
	struct drainer *d = arg;
	uint8_t got[DGRAM];

	usleep((useconds_t)d->delay_ms * 1000);
	if (d->stop) {
		ferry_stop_fire(d->stop);
		return NULL;
	}
	for (size_t i = 0; i < d->count; i++)
		if (recv_within(d->fd, got, sizeof(got), 2000) == DGRAM && got[0] == 'F')
			d->drained++;
	return NULL;
}

static void start(struct drainer *d)
{
	cr_assert_eq(pthread_create(&d->tid, NULL, drain, d), 0, "expected a thread");
}

Test(send, sendto_blocking_waits_for_room, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct drainer d = { .delay_ms = 100 };
	uint64_t t0, waited;
	int sv[2], fds, r;

	dgram_pair(sv);
	fds = ferry_test_count_fds();
	d.count = fill(sv[0]);
	d.fd = sv[1];
	dgram(&b, mem, 'S');
	start(&d);
	t0 = ferry_test_now_ms();
	r = ferry_udp_sendto(NULL, sv[0], &b, NULL, NULL);
	waited = ferry_test_now_ms() - t0;
	pthread_join(d.tid, NULL);
	cr_assert_eq(r, FERRY_OK, "sendto on a full socket drained after 100 ms: expected FERRY_OK, got %d", r);
	cr_assert_geq(waited, 50, "expected sendto to wait for the drain (~100 ms), it returned after %llu ms",
		      (unsigned long long)waited);
	cr_assert(ferry_iobuf_is_empty(&b), "FERRY_OK: expected the window consumed");
	cr_assert_eq(d.drained, d.count, "expected the %zu fillers drained first, got %zu", d.count, d.drained);
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 2000), DGRAM, "expected our datagram to arrive");
	cr_assert_eq(got[0], 'S', "expected our datagram, after the fillers");
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the private reactor and its fds gone");
	close(sv[0]);
	close(sv[1]);
}

Test(send, sendto_blocking_with_room_returns_at_once)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_config cfg;
	int sv[2];

	dgram_pair(sv);
	ferry_udp_config_init(&cfg);
	dgram(&b, mem, 'S');
	cr_assert_eq(ferry_udp_sendto(&cfg, sv[0], &b, NULL, NULL), FERRY_OK, "expected FERRY_OK");
	cr_assert(ferry_iobuf_is_empty(&b), "expected the window consumed");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected the datagram");
	close(sv[0]);
	close(sv[1]);
}

struct ended {
	int calls;
	int result;
	struct ferry_iobuf *buf;
};

static void on_end(void *user, int result, struct ferry_iobuf *last)
{
	struct ended *e = user;

	e->calls++;
	e->result = result;
	e->buf = last;
}

Test(send, sendto_blocking_stopped, .timeout = 20)
{
	uint8_t mem[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts;
	struct drainer d = { .delay_ms = 100 };
	struct ended e = { 0 };
	struct snap s;
	uint64_t t0, waited;
	int sv[2], fds, r;

	dgram_pair(sv);
	fds = ferry_test_count_fds();
	fill(sv[0]);
	ferry_udp_config_init(&cfg);
	cfg.stop = d.stop = ferry_stop_new();
	cr_assert_not_null(cfg.stop, "expected a ferry_stop");
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.on_end = on_end;
	opts.end_user = &e;
	dgram(&b, mem, 'S');
	take(&s, &b);
	start(&d);
	t0 = ferry_test_now_ms();
	r = ferry_udp_sendto(&cfg, sv[0], &b, NULL, &opts);
	waited = ferry_test_now_ms() - t0;
	pthread_join(d.tid, NULL);
	cr_assert_eq(r, FERRY_END_STOPPED, "sendto on a full socket, stopped after 100 ms: expected "
					  "FERRY_END_STOPPED, got %d", r);
	cr_assert_geq(waited, 50, "expected sendto to wait until the stop, it returned after %llu ms",
		      (unsigned long long)waited);
	expect_unchanged(&b, &s, "stopped");
	cr_assert_eq(e.calls, 1, "blocking form: expected on_end called once, got %d", e.calls);
	cr_assert_eq(e.result, FERRY_END_STOPPED, "on_end: expected FERRY_END_STOPPED");
	cr_assert_eq(e.buf, &b, "on_end: expected our buffer");
	ferry_stop_free(cfg.stop);
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the private reactor and the stop's dup gone");
	close(sv[0]);
	close(sv[1]);
}

Test(send, sendto_already_stopped_sends_nothing)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_config cfg;
	struct snap s;
	int sv[2];

	dgram_pair(sv);
	ferry_udp_config_init(&cfg);
	cfg.stop = ferry_stop_new();
	cr_assert_not_null(cfg.stop, "expected a ferry_stop");
	ferry_stop_fire(cfg.stop);
	dgram(&b, mem, 'S');
	take(&s, &b);
	cr_assert_eq(ferry_udp_sendto(&cfg, sv[0], &b, NULL, NULL), FERRY_END_STOPPED,
		     "a fired stop: expected FERRY_END_STOPPED before any try");
	expect_unchanged(&b, &s, "already stopped");
	cr_assert_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1, "expected nothing sent");
	ferry_stop_free(cfg.stop);
	close(sv[0]);
	close(sv[1]);
}

/* ---- sendto, reactor form --------------------------------------------------------------------- */

/* Runs r until its watches are gone, at most ~5 s. */
static void run_until_empty(struct ferry_reactor *r)
{
	uint64_t end = ferry_test_now_ms() + 5000;

	while (ferry_reactor_watches(r) && ferry_test_now_ms() < end)
		cr_assert_geq(ferry_reactor_run_once(r, 100), 0, "expected run_once to work");
	cr_assert_eq(ferry_reactor_watches(r), 0, "expected every watch gone within 5 s");
}

Test(send, sendto_reactor_reports_via_on_end, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_loop_opts opts;
	struct ended e = { 0 };
	struct ferry_reactor *r = ferry_reactor_new();
	int sv[2];

	cr_assert_not_null(r, "expected a reactor");
	dgram_pair(sv);
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = r;
	opts.on_end = on_end;
	opts.end_user = &e;
	dgram(&b, mem, 'S');
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), 0, "reactor form: expected 0 once registered");
	cr_assert_eq(e.calls, 0, "expected on_end not called inside the registering call");
	cr_assert_gt(ferry_reactor_watches(r), 0, "expected a watch on the reactor");
	run_until_empty(r);
	cr_assert_eq(e.calls, 1, "expected on_end called once, got %d", e.calls);
	cr_assert_eq(e.result, FERRY_OK, "on_end: expected FERRY_OK, got %d", e.result);
	cr_assert_eq(e.buf, &b, "on_end: expected our buffer");
	cr_assert(ferry_iobuf_is_empty(&b), "expected the window consumed");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected the datagram");
	ferry_reactor_free(r);
	close(sv[0]);
	close(sv[1]);
}

Test(send, sendto_reactor_waits_for_room, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_loop_opts opts;
	struct ended e = { 0 };
	struct ferry_reactor *r = ferry_reactor_new();
	struct snap s;
	size_t n;
	int sv[2];

	cr_assert_not_null(r, "expected a reactor");
	dgram_pair(sv);
	n = fill(sv[0]);
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = r;
	opts.on_end = on_end;
	opts.end_user = &e;
	dgram(&b, mem, 'S');
	take(&s, &b);
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), 0, "reactor form: expected 0");
	for (int i = 0; i < 3; i++)
		cr_assert_geq(ferry_reactor_run_once(r, 30), 0, "expected run_once to work");
	cr_assert_eq(e.calls, 0, "full socket: expected the send still pending");
	expect_unchanged(&b, &s, "pending send");
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected filler %zu", i);
	run_until_empty(r);
	cr_assert_eq(e.calls, 1, "expected on_end once after the drain");
	cr_assert_eq(e.result, FERRY_OK, "expected FERRY_OK, got %d", e.result);
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected our datagram");
	cr_assert_eq(got[0], 'S', "expected our datagram");
	ferry_reactor_free(r);
	close(sv[0]);
	close(sv[1]);
}

/* Two pending sends share one stop on one reactor (each watches its own dup of the stop's fd). */
Test(send, sendto_reactor_stopped, .timeout = 20)
{
	uint8_t mem[2][DGRAM];
	struct ferry_iobuf b[2];
	struct ferry_udp_config cfg;
	struct ferry_udp_loop_opts opts;
	struct ended e[2] = { { 0 } };
	struct ferry_reactor *r = ferry_reactor_new();
	struct snap s[2];
	int sv[2][2], fds;

	cr_assert_not_null(r, "expected a reactor");
	ferry_udp_config_init(&cfg);
	cfg.stop = ferry_stop_new();
	cr_assert_not_null(cfg.stop, "expected a ferry_stop");
	for (int i = 0; i < 2; i++) {
		dgram_pair(sv[i]);
		fill(sv[i][0]);
	}
	fds = ferry_test_count_fds();
	for (int i = 0; i < 2; i++) {
		memset(&opts, 0, sizeof(opts));
		opts.sz = sizeof(opts);
		opts.reactor = r;
		opts.on_end = on_end;
		opts.end_user = &e[i];
		dgram(&b[i], mem[i], 'S');
		take(&s[i], &b[i]);
		cr_assert_eq(ferry_udp_sendto(&cfg, sv[i][0], &b[i], NULL, &opts), 0,
			     "send %d sharing the stop: expected 0", i);
	}
	cr_assert_eq(ferry_reactor_watches(r), 4, "expected a socket watch and a stop watch per send");
	cr_assert_geq(ferry_reactor_run_once(r, 30), 0, "expected run_once to work");
	cr_assert_eq(e[0].calls + e[1].calls, 0, "expected both sends pending on full sockets");
	ferry_stop_fire(cfg.stop);
	run_until_empty(r);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(e[i].calls, 1, "send %d: expected on_end once", i);
		cr_assert_eq(e[i].result, FERRY_END_STOPPED, "send %d: expected FERRY_END_STOPPED, got %d", i,
			     e[i].result);
		expect_unchanged(&b[i], &s[i], "stopped on a reactor");
	}
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the stop's dups closed");
	ferry_reactor_free(r);
	ferry_stop_free(cfg.stop);
	for (int i = 0; i < 2; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

static void never(void *user, uint32_t events)
{
}

/* A send on an fd the same reactor watches already (as a receive loop on it would). */
Test(send, sendto_reactor_on_an_fd_already_watched, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_loop_opts opts;
	struct ended e = { 0 };
	struct ferry_reactor *r = ferry_reactor_new();
	struct ferry_watch *w;
	int sv[2], fds;

	cr_assert_not_null(r, "expected a reactor");
	dgram_pair(sv);
	cr_assert_eq(ferry_reactor_add(r, sv[0], EPOLLIN, never, NULL, &w), 0, "expected sv[0] watched for input");
	fds = ferry_test_count_fds();
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = r;
	opts.on_end = on_end;
	opts.end_user = &e;
	dgram(&b, mem, 'S');
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), 0,
		     "reactor form on an fd the reactor watches: expected 0, not -EEXIST");
	for (int i = 0; i < 50 && !e.calls; i++)
		cr_assert_geq(ferry_reactor_run_once(r, 100), 0, "expected run_once to work");
	cr_assert_eq(e.calls, 1, "expected on_end once");
	cr_assert_eq(e.result, FERRY_OK, "expected FERRY_OK, got %d", e.result);
	cr_assert_eq(ferry_reactor_watches(r), 1, "expected only the first watch left");
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the send's dup closed");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected the datagram");
	ferry_reactor_del(r, w);
	ferry_reactor_free(r);
	close(sv[0]);
	close(sv[1]);
}

/* on_end may start the next send on the same fd from inside the callback. */
struct chain {
	struct ferry_reactor *r;
	int fd;
	int left;
	int ok;
	uint8_t mem[DGRAM];
	struct ferry_iobuf b;
};

static void chain_next(void *user, int result, struct ferry_iobuf *last)
{
	struct chain *c = user;
	struct ferry_udp_loop_opts opts;

	if (result == FERRY_OK)
		c->ok++;
	if (!c->left)
		return;
	c->left--;
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = c->r;
	opts.on_end = chain_next;
	opts.end_user = c;
	dgram(&c->b, c->mem, 'C');
	cr_assert_eq(ferry_udp_sendto(NULL, c->fd, &c->b, NULL, &opts), 0, "a send started from on_end: expected 0");
}

Test(send, sendto_reactor_chained_from_on_end, .timeout = 20)
{
	struct chain c = { .left = 5 };
	uint8_t got[DGRAM];
	int sv[2];

	dgram_pair(sv);
	c.r = ferry_reactor_new();
	cr_assert_not_null(c.r, "expected a reactor");
	c.fd = sv[0];
	chain_next(&c, 1, NULL);
	run_until_empty(c.r);
	cr_assert_eq(c.ok, 5, "expected 5 chained sends to end FERRY_OK, got %d", c.ok);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected chained datagram %d", i);
	ferry_reactor_free(c.r);
	close(sv[0]);
	close(sv[1]);
}

/* ---- ENOBUFS: the queue below the socket is full; retried on a backing-off timer -------------- */

/*
 * No socket returns ENOBUFS on demand (UDP reports a full device queue only
 * with IP_RECVERR, and when the device is full), so a test hook stands in for
 * sendto(2): ENOBUFS for the first `fail` tries, then the real call. It notes
 * when each try happened.
 */
#define TRIES_MAX 64

static struct {
	volatile unsigned int fail;
	volatile unsigned int tries;
	uint64_t at_us[TRIES_MAX];
	int fill_fd;		/* >= 0: fill this socket at try fill_at */
	unsigned int fill_at;
	size_t filled;
} g_nobufs;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static ssize_t nobufs_sendto(int fd, const void *p, size_t len, int flags, const struct sockaddr *addr,
			     socklen_t alen)
{
	unsigned int k = g_nobufs.tries++;

	if (k < TRIES_MAX)
		g_nobufs.at_us[k] = now_us();
	if (g_nobufs.fill_fd >= 0 && k == g_nobufs.fill_at) {
		uint8_t filler[DGRAM];

		memset(filler, 'F', sizeof(filler));
		while (send(g_nobufs.fill_fd, filler, sizeof(filler), MSG_DONTWAIT) == DGRAM)
			g_nobufs.filled++;
	}
	if (k < g_nobufs.fail) {
		errno = ENOBUFS;
		return -1;
	}
	return sendto(fd, p, len, flags, addr, alen);
}

static void nobufs_for(unsigned int fail)
{
	memset((void *)&g_nobufs, 0, sizeof(g_nobufs));
	g_nobufs.fail = fail;
	g_nobufs.fill_fd = -1;
	ferry__sendto = nobufs_sendto;
}

/* The wait before try k (k >= 1) after k ENOBUFS in a row: 1 ms doubling, at most 64 ms. */
static uint64_t backoff_us(unsigned int k)
{
	return k >= 7 ? 64000 : 1000ull << (k - 1);
}

#define LATE_US 30000 /* a timer's lateness on a loaded 2-core machine */

Test(send, sync_enobufs_is_not_ready)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct snap s;
	int sv[2];

	dgram_pair(sv);
	dgram(&b, mem, 'N');
	take(&s, &b);
	nobufs_for(1);
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_NOT_READY, "ENOBUFS: expected FERRY_NOT_READY");
	expect_unchanged(&b, &s, "ENOBUFS");
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_OK, "the next try: expected FERRY_OK");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected the datagram");
	close(sv[0]);
	close(sv[1]);
}

/*
 * 12 ENOBUFS in a row, blocking form: exactly 13 tries (no spin), the waits
 * between them 1, 2, 4, ... 64 ms, then 64 ms each (bounded), never shorter
 * and never much longer; then the datagram goes.
 */
Test(send, sendto_blocking_backs_off_on_enobufs, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	int sv[2], fds, r;
	enum { FAIL = 12 };

	dgram_pair(sv);
	fds = ferry_test_count_fds();
	dgram(&b, mem, 'N');
	nobufs_for(FAIL);
	r = ferry_udp_sendto(NULL, sv[0], &b, NULL, NULL);
	cr_assert_eq(r, FERRY_OK, "ENOBUFS %d times, then room: expected FERRY_OK, got %d", FAIL, r);
	cr_assert_eq(g_nobufs.tries, FAIL + 1, "one try per wait: expected %d tries, got %u (a spin makes thousands)",
		     FAIL + 1, g_nobufs.tries);
	for (unsigned int k = 1; k <= FAIL; k++) {
		uint64_t gap = g_nobufs.at_us[k] - g_nobufs.at_us[k - 1];

		cr_expect_geq(gap, backoff_us(k), "try %u came %llu us after the last, before its %llu us wait", k,
			      (unsigned long long)gap, (unsigned long long)backoff_us(k));
		cr_expect_lt(gap, backoff_us(k) + LATE_US, "try %u came %llu us after the last: the wait is %llu us", k,
			     (unsigned long long)gap, (unsigned long long)backoff_us(k));
	}
	cr_assert(ferry_iobuf_is_empty(&b), "expected the window consumed");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected the datagram");
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the private reactor gone");
	close(sv[0]);
	close(sv[1]);
}

/*
 * Reactor form: 3 ENOBUFS (the socket fills meanwhile), then the socket is
 * full for real (EAGAIN): from then on it waits for EPOLLOUT and tries
 * nothing until the reader drains.
 */
Test(send, sendto_reactor_enobufs_then_full_waits_for_room, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_loop_opts opts;
	struct ended e = { 0 };
	struct ferry_reactor *r = ferry_reactor_new();
	uint64_t t0;
	size_t n;
	int sv[2];

	cr_assert_not_null(r, "expected a reactor");
	dgram_pair(sv);
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = r;
	opts.on_end = on_end;
	opts.end_user = &e;
	dgram(&b, mem, 'S');
	nobufs_for(3);
	g_nobufs.fill_fd = sv[0];
	g_nobufs.fill_at = 2;
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), 0, "reactor form: expected 0");
	t0 = ferry_test_now_ms();
	while (ferry_test_now_ms() - t0 < 200)
		cr_assert_geq(ferry_reactor_run_once(r, 20), 0, "expected run_once to work");
	cr_assert_eq(e.calls, 0, "full socket: expected the send still pending");
	cr_assert_eq(g_nobufs.tries, 4, "3 ENOBUFS then one EAGAIN, then no try while full: expected 4, got %u",
		     g_nobufs.tries);
	cr_assert_eq(ferry_reactor_watches(r), 1, "waiting for EPOLLOUT again: one watch");
	cr_assert_eq(ferry_reactor_timeout(r), -1, "and no timer armed");
	n = g_nobufs.filled;
	cr_assert_gt(n, 0, "the socket was filled");
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected filler %zu", i);
	run_until_empty(r);
	cr_assert_eq(e.calls, 1, "expected on_end once after the drain");
	cr_assert_eq(e.result, FERRY_OK, "expected FERRY_OK, got %d", e.result);
	cr_assert_eq(g_nobufs.tries, 5, "one more try once writable, got %u", g_nobufs.tries);
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected our datagram");
	cr_assert_eq(got[0], 'S', "expected our datagram");
	ferry_reactor_free(r);
	close(sv[0]);
	close(sv[1]);
}

/* Reactor form on an fd the reactor watches already (its dup is dropped while backing off, then taken again). */
Test(send, sendto_reactor_enobufs_on_an_fd_already_watched, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_loop_opts opts;
	struct ended e = { 0 };
	struct ferry_reactor *r = ferry_reactor_new();
	struct ferry_watch *w;
	int sv[2], fds;

	cr_assert_not_null(r, "expected a reactor");
	dgram_pair(sv);
	cr_assert_eq(ferry_reactor_add(r, sv[0], EPOLLIN, never, NULL, &w), 0, "expected sv[0] watched for input");
	fds = ferry_test_count_fds();
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = r;
	opts.on_end = on_end;
	opts.end_user = &e;
	dgram(&b, mem, 'S');
	nobufs_for(4);
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), 0, "expected 0");
	for (int i = 0; i < 100 && !e.calls; i++)
		cr_assert_geq(ferry_reactor_run_once(r, 100), 0, "expected run_once to work");
	cr_assert_eq(e.calls, 1, "expected on_end once");
	cr_assert_eq(e.result, FERRY_OK, "expected FERRY_OK, got %d", e.result);
	cr_assert_eq(g_nobufs.tries, 5, "4 ENOBUFS and the send: expected 5 tries, got %u", g_nobufs.tries);
	cr_assert_eq(ferry_reactor_watches(r), 1, "expected only the first watch left");
	cr_assert_eq(ferry_reactor_timeout(r), -1, "expected no timer left armed");
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the send's dup closed");
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "expected the datagram");
	ferry_reactor_del(r, w);
	ferry_reactor_free(r);
	close(sv[0]);
	close(sv[1]);
}

/* ENOBUFS for good: the send keeps backing off (64 ms apart at most) until its stop fires. */
Test(send, sendto_persistent_enobufs_ends_on_stop, .timeout = 20)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_config cfg;
	struct drainer d = { .delay_ms = 300 };
	struct snap s;
	uint64_t t0, waited;
	int sv[2], fds, r;

	dgram_pair(sv);
	fds = ferry_test_count_fds();
	ferry_udp_config_init(&cfg);
	cfg.stop = d.stop = ferry_stop_new();
	cr_assert_not_null(cfg.stop, "expected a ferry_stop");
	dgram(&b, mem, 'S');
	take(&s, &b);
	nobufs_for(UINT32_MAX);
	start(&d);
	t0 = ferry_test_now_ms();
	r = ferry_udp_sendto(&cfg, sv[0], &b, NULL, NULL);
	waited = ferry_test_now_ms() - t0;
	pthread_join(d.tid, NULL);
	cr_assert_eq(r, FERRY_END_STOPPED, "persistent ENOBUFS, stopped after 300 ms: expected FERRY_END_STOPPED, got %d",
		     r);
	cr_assert(waited >= 250 && waited < 1000, "expected it to last until the stop (~300 ms), took %llu ms",
		  (unsigned long long)waited);
	/* waits 1+2+4+8+16+32 = 63 ms, then 64 ms each: 9 or 10 tries in 300 ms */
	cr_assert(g_nobufs.tries >= 7 && g_nobufs.tries <= 11, "a bounded backoff: expected 7..11 tries in 300 ms, got %u",
		  g_nobufs.tries);
	expect_unchanged(&b, &s, "stopped while backing off");
	cr_assert_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1, "expected nothing sent");
	ferry_stop_free(cfg.stop);
	cr_assert_eq(ferry_test_count_fds(), fds, "expected the private reactor and the stop's dup gone");
	close(sv[0]);
	close(sv[1]);
}

/* ---- a stream: short writes show as a non-empty window; sendto finishes the rest ------------- */

#define STREAM_BYTES (4u << 20)

struct reader {
	pthread_t tid;
	int fd;
	int delay_ms;
	size_t total, good;
};

static void *read_all(void *arg)
{
	struct reader *rd = arg;
	uint8_t buf[65536];
	uint64_t end;

	usleep((useconds_t)rd->delay_ms * 1000);
	end = ferry_test_now_ms() + 10000;
	while (rd->total < STREAM_BYTES && ferry_test_now_ms() < end) {
		struct pollfd p = { .fd = rd->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 500) != 1)
			continue;
		n = recv(rd->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == (uint8_t)((rd->total + (size_t)i) % 251))
				rd->good++;
		rd->total += (size_t)n;
	}
	return NULL;
}

static void tcp_pair(int *client, int *server)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 16384;

	cr_assert_geq(ls, 0, "expected a TCP socket");
	cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0, "expected bind on 127.0.0.1:0");
	cr_assert_eq(listen(ls, 1), 0, "expected listen");
	cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &alen), 0, "expected getsockname");
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*client, 0, "expected a TCP socket");
	setsockopt(*client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	cr_assert_eq(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0, "expected connect");
	*server = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*server, 0, "expected accept");
	setsockopt(*server, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	close(ls);
}

Test(send, stream_short_write_then_sendto_finishes, .timeout = 30)
{
	struct ferry_iobuf *b = ferry_iobuf_new(STREAM_BYTES);
	struct ferry_udp_config cfg;
	struct reader rd = { .delay_ms = 50 };
	int c, s, r;

	cr_assert_not_null(b, "expected a 4 MiB buffer");
	for (size_t i = 0; i < STREAM_BYTES; i++)
		b->data[i] = (uint8_t)(i % 251);
	tcp_pair(&c, &s);

	r = ferry_udp_sendto_sync(c, b, NULL);
	cr_assert_eq(r, FERRY_OK, "stream with room: expected FERRY_OK, got %d", r);
	cr_assert(b->lo > 0 && !ferry_iobuf_is_empty(b),
		  "4 MiB into a small stream buffer: expected a short write (lo %zu of %u)", b->lo, STREAM_BYTES);
	/* more tries take what the buffers still hold, until they are full */
	for (int i = 0; i < 10000 && r == FERRY_OK; i++) {
		size_t lo = b->lo;

		r = ferry_udp_sendto_sync(c, b, NULL);
		cr_assert(r == FERRY_NOT_READY || (r == FERRY_OK && b->lo > lo),
			  "a stream try: expected FERRY_OK with progress, or FERRY_NOT_READY; got %d", r);
		if (r == FERRY_NOT_READY)
			cr_assert_eq(b->lo, lo, "FERRY_NOT_READY: expected the window unchanged");
	}
	cr_assert_eq(r, FERRY_NOT_READY, "a stream nobody reads: expected FERRY_NOT_READY at last");
	cr_assert(!ferry_iobuf_is_empty(b), "expected part of the 4 MiB still in the window");

	rd.fd = s;
	cr_assert_eq(pthread_create(&rd.tid, NULL, read_all, &rd), 0, "expected a reader thread");
	ferry_udp_config_init(&cfg);
	cfg.max_ready = 2;
	r = ferry_udp_sendto(&cfg, c, b, NULL, NULL);
	pthread_join(rd.tid, NULL);
	cr_assert_eq(r, FERRY_OK, "sendto on a stream: expected FERRY_OK once all of it went, got %d", r);
	cr_assert(ferry_iobuf_is_empty(b), "expected the whole window consumed");
	cr_assert_eq(rd.total, STREAM_BYTES, "expected all %u bytes to arrive, got %zu", STREAM_BYTES, rd.total);
	cr_assert_eq(rd.good, STREAM_BYTES, "expected every byte in order");
	ferry_iobuf_free(b);
	close(c);
	close(s);
}

/* ---- bad descriptors and arguments: -errno, never a crash, window unchanged ------------------- */

/* Every form of the call on fd: sync, blocking, reactor. The reactor form
 * either refuses at once with want_reg, or registers and reports want via on_end. */
static void expect_error(int fd, const union ferry_sockaddr *dst, int want, int want_reg, const char *what)
{
	uint8_t mem[DGRAM];
	struct ferry_iobuf b;
	struct ferry_udp_loop_opts opts;
	struct ended e = { 0 };
	struct ferry_reactor *r;
	struct snap s;
	int ret;

	dgram(&b, mem, 'E');
	b.lo = 3;
	take(&s, &b);
	ret = ferry_udp_sendto_sync(fd, &b, dst);
	cr_assert_eq(ret, want, "sendto_sync on %s: expected %d (%s), got %d", what, want, strerror(-want), ret);
	expect_unchanged(&b, &s, what);

	ret = ferry_udp_sendto(NULL, fd, &b, dst, NULL);
	cr_assert_eq(ret, want, "sendto (blocking) on %s: expected %d (%s), got %d", what, want, strerror(-want), ret);
	expect_unchanged(&b, &s, what);

	r = ferry_reactor_new();
	cr_assert_not_null(r, "expected a reactor");
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = r;
	opts.on_end = on_end;
	opts.end_user = &e;
	ret = ferry_udp_sendto(NULL, fd, &b, dst, &opts);
	if (want_reg) {
		cr_assert_eq(ret, want_reg, "sendto (reactor) on %s: expected %d at once, got %d", what, want_reg, ret);
		cr_assert_eq(ferry_reactor_watches(r), 0, "refused: expected nothing registered");
		cr_assert_eq(e.calls, 0, "refused: expected on_end never called");
	} else {
		cr_assert_eq(ret, 0, "sendto (reactor) on %s: expected 0 (registered), got %d", what, ret);
		run_until_empty(r);
		cr_assert_eq(e.calls, 1, "%s: expected on_end once", what);
		cr_assert_eq(e.result, want, "%s: expected on_end with %d, got %d", what, want, e.result);
	}
	expect_unchanged(&b, &s, what);
	ferry_reactor_free(r);
}

Test(send, bad_fd)
{
	int sv[2], closed;

	expect_error(-1, NULL, -EBADF, -EBADF, "fd -1");
	dgram_pair(sv);
	/* a high number, so no fd the test opens meanwhile (the reactor's epoll fd) takes it */
	closed = fcntl(sv[0], F_DUPFD_CLOEXEC, 900);
	cr_assert_geq(closed, 900, "expected a dup at 900 or above");
	close(closed);
	close(sv[0]);
	close(sv[1]);
	expect_error(closed, NULL, -EBADF, -EBADF, "a closed fd");
}

Test(send, not_a_socket)
{
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "expected a pipe");
	expect_error(p[0], NULL, -ENOTSOCK, -ENOTSOCK, "a pipe's read end");
	expect_error(p[1], NULL, -ENOTSOCK, -ENOTSOCK, "a pipe's write end");
	close(p[0]);
	close(p[1]);
}

Test(send, unsupported_sockets)
{
	union ferry_sockaddr in4 = { .in4 = { .sin_family = AF_INET, .sin_port = htons(9),
					      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
	union ferry_sockaddr in6 = { .in6 = { .sin6_family = AF_INET6, .sin6_port = htons(9),
					      .sin6_addr = IN6ADDR_LOOPBACK_INIT } };
	int sv[2], fd;

	dgram_pair(sv);
	expect_error(sv[0], &in4, -EINVAL, 0, "an AF_UNIX socket given an IPv4 destination");
	close(sv[0]);
	close(sv[1]);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	cr_assert_geq(fd, 0, "expected a netlink socket");
	expect_error(fd, &in4, -EINVAL, 0, "a netlink socket");
	close(fd);

	fd = ferry_udp_bind_any(AF_INET);
	cr_assert_geq(fd, 0, "expected a UDP socket");
	expect_error(fd, NULL, -EDESTADDRREQ, 0, "an unconnected UDP socket without destination");
	expect_error(fd, &in6, -EAFNOSUPPORT, 0, "an IPv4 socket given an IPv6 destination");
	close(fd);

	/* EPIPE, and no SIGPIPE (which would kill this test) */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "expected a TCP socket");
	expect_error(fd, NULL, -EPIPE, 0, "an unconnected TCP socket");
	close(fd);
}

Test(send, bad_arguments)
{
	union ferry_sockaddr unix_family;
	struct ferry_udp_loop_opts opts;
	struct ferry_udp_config cfg;
	struct {
		struct ferry_udp_loop_opts o;
		uint64_t newer_field;
	} big;
	uint8_t mem[DGRAM];
	struct ferry_iobuf b;
	struct snap s;
	int sv[2];

	dgram_pair(sv);
	dgram(&b, mem, 'A');
	take(&s, &b);
	memset(&unix_family, 0, sizeof(unix_family));
	unix_family.sa.sa_family = AF_UNIX;
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], NULL, NULL), -EINVAL, "sendto_sync(NULL buf): expected -EINVAL");
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], NULL, NULL, NULL), -EINVAL, "sendto(NULL buf): expected -EINVAL");
	cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, &unix_family), -EAFNOSUPPORT,
		     "a destination neither IPv4 nor IPv6: expected -EAFNOSUPPORT");
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, &unix_family, NULL), -EAFNOSUPPORT,
		     "sendto to a destination neither IPv4 nor IPv6: expected -EAFNOSUPPORT");

	memset(&opts, 0, sizeof(opts));
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), -EINVAL, "opts.sz = 0: expected -EINVAL");
	ferry_udp_config_init(&cfg);
	cfg.sz = 0;
	cr_assert_eq(ferry_udp_sendto(&cfg, sv[0], &b, NULL, NULL), -EINVAL, "config.sz = 0: expected -EINVAL");

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.newer_field = 1;
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &big.o), -EINVAL,
		     "opts from a newer header with a field set: expected -EINVAL");
	expect_unchanged(&b, &s, "bad arguments");

	big.newer_field = 0;
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &big.o), FERRY_OK,
		     "opts from a newer header with the new field zero: expected FERRY_OK");
	/* an older caller's opts (only sz known): the rest takes defaults */
	dgram(&b, mem, 'A');
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(size_t);
	cr_assert_eq(ferry_udp_sendto(NULL, sv[0], &b, NULL, &opts), FERRY_OK,
		     "opts with sz = sizeof(size_t): expected the blocking default, FERRY_OK");
	close(sv[0]);
	close(sv[1]);
}

/* ---- errno by errno: what each failure of sendto(2) becomes ------------------------------------ */

/* sendto(2) failing `times` times with `err`, then the real call; counts the tries. */
static struct {
	int err;
	unsigned int times, tries;
} g_err;

static ssize_t errno_sendto(int fd, const void *p, size_t len, int flags, const struct sockaddr *addr,
			    socklen_t alen)
{
	g_err.tries++;
	if (g_err.times) {
		g_err.times--;
		errno = g_err.err;
		return -1;
	}
	return sendto(fd, p, len, flags, addr, alen);
}

static void fail_with(int err, unsigned int times)
{
	g_err.err = err;
	g_err.times = times;
	g_err.tries = 0;
	ferry__sendto = errno_sendto;
}

/* Errors that are neither "full" (EAGAIN, ENOBUFS) nor EINTR: each one is the result, as -errno. */
static const int hard_errnos[] = { ECONNREFUSED, EPERM,	 EACCES,   EMSGSIZE, ENETUNREACH, EHOSTUNREACH,
				   EINVAL,	 ENOTCONN, EPIPE,    EIO,      EDESTADDRREQ, ENOMEM };

/*
 * One send of a fresh datagram with sendto(2) failing `times` times with err,
 * by ferry_udp_sendto_sync or (waiting) the blocking ferry_udp_sendto; checks
 * what must hold for the result `want`.
 */
static void send_case(bool waiting, int err, unsigned int times, int want, const char *what)
{
	uint8_t mem[DGRAM], got[DGRAM];
	struct ferry_iobuf b;
	struct snap s;
	int sv[2], r;

	dgram_pair(sv);
	dgram(&b, mem, 'E');
	take(&s, &b);
	fail_with(err, times);
	r = waiting ? ferry_udp_sendto(NULL, sv[0], &b, NULL, NULL) : ferry_udp_sendto_sync(sv[0], &b, NULL);
	cr_assert_eq(r, want, "%s%s (%s): expected %d, got %d", waiting ? "waiting send: " : "", what, strerror(err),
		     want, r);
	if (want == FERRY_OK) {
		cr_assert_eq(g_err.tries, times + 1, "%s: expected %u tries, got %u", what, times + 1, g_err.tries);
		cr_assert(ferry_iobuf_is_empty(&b), "%s: the datagram sent, its window consumed", what);
	} else {
		cr_assert_eq(g_err.tries, 1, "%s: one try only, got %u", what, g_err.tries);
		expect_unchanged(&b, &s, what);
		cr_assert_eq(ferry_udp_sendto_sync(sv[0], &b, NULL), FERRY_OK, "%s: the next try sends", what);
	}
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 1000), DGRAM, "%s: expected the datagram once", what);
	cr_assert_eq(recv_within(sv[1], got, sizeof(got), 0), -1, "%s: expected no second datagram", what);
	close(sv[0]);
	close(sv[1]);
}

Test(send, sync_maps_each_errno)
{
	for (size_t i = 0; i < sizeof(hard_errnos) / sizeof(hard_errnos[0]); i++)
		send_case(false, hard_errnos[i], 1, -hard_errnos[i], "a hard error is -errno");
	send_case(false, EAGAIN, 1, FERRY_NOT_READY, "EAGAIN");
	send_case(false, EWOULDBLOCK, 1, FERRY_NOT_READY, "EWOULDBLOCK");
	send_case(false, ENOBUFS, 1, FERRY_NOT_READY, "ENOBUFS");
	send_case(false, EINTR, 3, FERRY_OK, "EINTR is retried inside");
}

/* The waiting send: a hard error ends it at once with -errno (no retry, window unchanged); EINTR is retried. */
Test(send, sendto_ends_on_a_hard_error_and_retries_eintr, .timeout = 20)
{
	for (size_t i = 0; i < sizeof(hard_errnos) / sizeof(hard_errnos[0]); i++)
		send_case(true, hard_errnos[i], 1, -hard_errnos[i], "a hard error ends it with -errno");
	send_case(true, EINTR, 5, FERRY_OK, "EINTR is retried inside");
}
