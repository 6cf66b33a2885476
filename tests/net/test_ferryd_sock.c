/* SPDX-License-Identifier: MIT */
/*
 * The socket engine in-process (daemon/sock.c), on loopback of a private
 * network namespace: batches reach the service callback, kept buffers are
 * replaced and given back, sends are counted, truncation is flagged, the
 * built-in handlers do what they say.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ferryd.h"
#include "handlers.h"
#include "iface.h"
#include "netns.h"

#define PORT 9300

static struct ferry_reactor *r;
static struct ferryd_iface *ifc; /* host-wide: no interface */
static unsigned int base_watches;  /* what is on the reactor before any engine: the watch's own */
static struct ferryd_engine *eng;
static struct ferryd_config cfg;

static void setup(void)
{
	char why[256] = "";

	if (!ferry_test_is_root())
		cr_skip_test("needs root for a private network namespace");
	/* Criterion runs each test in its own process: the namespace dies with it. */
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "expected a private network namespace: %s", strerror(errno));
	cr_assert_eq(system("ip link set lo up"), 0, "expected loopback up");
	r = ferry_reactor_new();
	cr_assert_not_null(r, "expected a reactor");
	cr_assert_eq(ferryd_iface_new(r, NULL, &ifc, why, sizeof(why)), 0, "expected the address watch: %s", why);
	base_watches = ferry_reactor_watches(r);
	ferryd_config_defaults(&cfg);
	cfg.mode = FERRYD_MODE_SOCKET;
	cfg.workers = 1; /* the test's own thread runs the engine */
}

static void teardown(void)
{
	if (eng)
		eng->ops->free(eng);
	eng = NULL;
	ferryd_iface_free(ifc);
	ifc = NULL;
	ferry_reactor_free(r);
	r = NULL;
}

static void add_service(const char *name, const char *addr)
{
	struct ferryd_service *s = &cfg.services[cfg.nservices];

	snprintf(s->name, sizeof(s->name), "%s", name);
	cr_assert_eq(ferry_sockaddr_parse(addr, &s->addr), 0, "test bug: bad address %s", addr);
	s->id = cfg.nservices++;
}

static void start(void)
{
	char why[256] = "";
	int err = ferryd_sock_engine_new(r, ifc, &cfg, cfg.services, cfg.nservices, &eng, why, sizeof(why));

	cr_assert_eq(err, 0, "expected the socket engine to start: %s", why);
	cr_assert_str_eq(eng->ops->name, "socket", "expected the socket engine");
	cr_assert(strstr(eng->describe, "socket mode"), "expected a description, got '%s'", eng->describe);
}

/* Runs the reactor until cond() or ms pass. */
static void run_until(bool (*cond)(void), int ms)
{
	uint64_t end = ferry_test_now_ms() + (uint64_t)ms;

	while (!cond() && ferry_test_now_ms() < end)
		ferry_reactor_run_once(r, 10);
}

static int client(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "expected a client socket");
	return fd;
}

static void send_to(int fd, const char *addr, const void *data, size_t len)
{
	union ferry_sockaddr a;

	ferry_sockaddr_parse(addr, &a);
	cr_assert_eq(sendto(fd, data, len, 0, &a.sa, ferry_sockaddr_len(&a)), (ssize_t)len, "expected to send");
}

/* --- a handler that keeps every other buffer and releases them later --- */

static struct ferry_iobuf *kept[64];
static unsigned int nkept, seen;
static uint8_t last_byte;

static void keeping_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		cr_assert_not_null(srcs, "expected source addresses");
		cr_assert_eq(srcs[i].sa.sa_family, AF_INET, "expected an IPv4 source");
		last_byte = ferry_iobuf_window(bufs[i])[0];
		if (seen++ % 2 == 0 && nkept < 64) {
			kept[nkept++] = bufs[i];
			bufs[i] = NULL; /* keep it: the engine puts a fresh one in */
		}
	}
}

static bool seen_10(void)
{
	return seen >= 10;
}

Test(ferryd_sock, kept_buffers_are_replaced_and_released, .init = setup, .fini = teardown, .timeout = 30)
{
	struct ferryd_stats st;
	int fd;

	add_service("k", "127.0.0.1:9300");
	cfg.services[0].cb = keeping_cb;
	start();
	fd = client(AF_INET);
	for (int i = 0; i < 10; i++) {
		uint8_t b = (uint8_t)(i + 1);

		send_to(fd, "127.0.0.1:9300", &b, 1);
	}
	run_until(seen_10, 3000);
	cr_assert_eq(seen, 10, "expected 10 datagrams at the handler, got %u", seen);
	cr_assert_eq(nkept, 5, "expected the handler to have kept 5 buffers");
	for (unsigned int i = 0; i < nkept; i++)
		for (unsigned int j = i + 1; j < nkept; j++)
			cr_assert_neq(kept[i], kept[j], "expected every kept buffer to be a distinct one");
	/* the kept buffers still hold their datagrams: the loop did not reuse them */
	for (unsigned int i = 0; i < nkept; i++)
		cr_assert_eq(ferry_iobuf_window(kept[i])[0], 2 * i + 1, "expected kept buffer %u to keep its byte", i);
	eng->ops->release(eng, kept, nkept);
	nkept = 0;
	/* more traffic after the release still works */
	seen = 0;
	for (int i = 0; i < 10; i++)
		send_to(fd, "127.0.0.1:9300", "z", 1);
	run_until(seen_10, 3000);
	cr_assert_eq(seen, 10, "expected 10 more datagrams after the release");
	eng->ops->get_stats(eng, &st);
	cr_assert_eq(st.rx_packets, 20, "expected rx_packets 20, got %" PRIu64, st.rx_packets);
	cr_assert_eq(st.rx_bytes, 20, "expected rx_bytes 20");
	cr_assert_geq(st.rx_batches, 1, "expected at least one batch");
	cr_assert_eq(ferryd_engine_check_frames(eng), 0, "expected the socket engine's frame check to pass");
	close(fd);
}

/* --- release takes back only what was handed out as kept --- */

static struct ferry_iobuf *loop_buf; /* a buffer seen in a callback and left in the loop */
static bool keep_all;

static void checking_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++, seen++) {
		if (!keep_all && seen == 1) {
			loop_buf = bufs[i]; /* not replaced: still the loop's */
			continue;
		}
		if (nkept < 64) {
			kept[nkept++] = bufs[i];
			bufs[i] = NULL;
		}
	}
}

static bool seen_1(void)
{
	return seen >= 1;
}

static bool seen_2(void)
{
	return seen >= 2;
}

Test(ferryd_sock, release_refuses_what_is_not_kept, .init = setup, .fini = teardown, .timeout = 30)
{
	struct ferry_iobuf fake, *bogus[2];
	int fd;

	add_service("r", "127.0.0.1:9306");
	cfg.services[0].cb = checking_cb;
	start();
	fd = client(AF_INET);
	send_to(fd, "127.0.0.1:9306", "\x01", 1);
	run_until(seen_1, 3000); /* one at a time: each lands in the first slot of the batch */
	send_to(fd, "127.0.0.1:9306", "\x02", 1);
	run_until(seen_2, 3000);
	cr_assert_eq(seen, 2, "expected 2 datagrams at the handler, got %u", seen);
	cr_assert_eq(nkept, 1, "expected one kept buffer");
	cr_assert_not_null(loop_buf, "expected a buffer left in the loop");

	/* a foreign iobuf, a buffer still in the loop, and a kept one twice: only the first of the last is taken */
	ferry_iobuf_init(&fake, kept, sizeof(kept));
	bogus[0] = &fake;
	bogus[1] = loop_buf;
	eng->ops->release(eng, bogus, 2);
	eng->ops->release(eng, kept, 1);
	eng->ops->release(eng, kept, 1);

	/* Had any of those been taken, a receive slot would get a buffer the
	 * handler or the loop still holds: two kept buffers would be one. */
	keep_all = true;
	nkept = 0;
	for (int i = 0; i < 8; i++) {
		uint8_t b = (uint8_t)(0x10 + i);
		unsigned int want = seen + 1;

		send_to(fd, "127.0.0.1:9306", &b, 1);
		for (uint64_t end = ferry_test_now_ms() + 3000; seen < want && ferry_test_now_ms() < end;)
			ferry_reactor_run_once(r, 10);
	}
	cr_assert_eq(nkept, 8, "expected 8 more kept buffers, got %u", nkept);
	for (unsigned int i = 0; i < nkept; i++) {
		cr_assert_eq(ferry_iobuf_window(kept[i])[0], 0x10 + i, "expected kept buffer %u to keep its byte", i);
		for (unsigned int j = 0; j < i; j++)
			cr_assert_neq(kept[i], kept[j], "expected kept buffers %u and %u to be distinct", j, i);
	}
	eng->ops->release(eng, kept, nkept);
	close(fd);
}

/* --- every datagram whole --- */

static unsigned int whole_seen, whole_bad, whole_want;
static size_t whole_len[8];

static void whole_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		const uint8_t *w = ferry_iobuf_window(bufs[i]);
		size_t n = ferry_iobuf_length(bufs[i]);

		if (bufs[i]->flags & FERRY_IOBUF_TRUNCATED)
			whole_bad++;
		for (size_t k = 0; k < n; k++)
			if (w[k] != (uint8_t)(k * 7 + n))
				whole_bad++;
		if (whole_seen < 8)
			whole_len[whole_seen] = n;
		whole_seen++;
	}
}

static bool enough_whole(void)
{
	return whole_seen >= whole_want;
}

/* The kernel's path takes any UDP datagram, up to 64 KiB: none is cut, whatever the frame size. */
Test(ferryd_sock, datagrams_of_any_size_arrive_whole, .init = setup, .fini = teardown, .timeout = 30)
{
	static const size_t sizes[4] = { 3000, 20000, 65507, 65527 };
	static uint8_t big[65527];
	struct ferryd_stats st;
	int fd4, fd6;

	cfg.frame_size = 2048;
	add_service("w4", "127.0.0.1:9301");
	add_service("w6", "[::1]:9301");
	cfg.services[0].cb = cfg.services[1].cb = whole_cb;
	start();
	fd4 = client(AF_INET);
	fd6 = client(AF_INET6);
	for (int i = 0; i < 4; i++) {
		for (size_t k = 0; k < sizes[i]; k++)
			big[k] = (uint8_t)(k * 7 + sizes[i]);
		/* 65527 bytes is IPv6's largest; IPv4's is 65507 */
		send_to(i == 3 ? fd6 : fd4, i == 3 ? "[::1]:9301" : "127.0.0.1:9301", big, sizes[i]);
		whole_want = (unsigned int)i + 1;
		run_until(enough_whole, 3000); /* one at a time: the order of arrival is the order sent */
	}
	cr_assert_eq(whole_seen, 4, "expected the four datagrams, got %u", whole_seen);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(whole_len[i], sizes[i], "expected datagram %d whole: %zu bytes, got %zu", i, sizes[i],
			     whole_len[i]);
	cr_assert_eq(whole_bad, 0, "expected every byte as sent, none flagged truncated (%u wrong)", whole_bad);
	eng->ops->get_stats(eng, &st);
	cr_assert_eq(st.rx_truncated, 0, "expected rx_truncated 0, got %" PRIu64, st.rx_truncated);
	close(fd4);
	close(fd6);
}

/* --- built-in handlers --- */

static struct ferryd_handler_ctx hctx;

static bool echoed_4(void)
{
	return hctx.datagrams >= 4;
}

Test(ferryd_sock, echo_handler_over_queues_and_families, .init = setup, .fini = teardown, .timeout = 30)
{
	struct ferryd_stats st;
	char buf[64];
	int fd4, fd6;

	cfg.queues = 3; /* three SO_REUSEPORT sockets per service */
	cfg.handler = FERRYD_HANDLER_ECHO;
	add_service("e4", "127.0.0.1:9302");
	add_service("e6", "[::1]:9302");
	ferryd_handlers_install(&hctx, cfg.handler, cfg.services, cfg.nservices);
	start();
	ferryd_handlers_set_engine(&hctx, eng);
	fd4 = client(AF_INET);
	fd6 = client(AF_INET6);
	send_to(fd4, "127.0.0.1:9302", "four", 4);
	send_to(fd4, "127.0.0.1:9302", "", 0);
	send_to(fd6, "[::1]:9302", "six", 3);
	send_to(fd6, "[::1]:9302", "x", 1);
	run_until(echoed_4, 3000);
	cr_assert_eq(hctx.datagrams, 4, "expected the echo handler to see 4 datagrams");
	cr_assert_eq(hctx.bytes, 8, "expected 8 bytes at the handler");
	for (int i = 0; i < 4; i++) {
		int fd = i < 2 ? fd4 : fd6;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		static const int want[] = {4, 0, 3, 1};

		cr_assert_eq(poll(&p, 1, 2000), 1, "expected echo %d to arrive", i);
		cr_assert_eq(recv(fd, buf, sizeof(buf), 0), want[i], "expected echo %d of %d bytes", i, want[i]);
	}
	eng->ops->get_stats(eng, &st);
	cr_assert_eq(st.tx_packets, 4, "expected tx_packets 4, got %" PRIu64, st.tx_packets);
	cr_assert_eq(st.tx_bytes, 8, "expected tx_bytes 8");
	cr_assert_eq(st.tx_dropped, 0, "expected nothing dropped");
	close(fd4);
	close(fd6);
}

Test(ferryd_sock, send_failures_are_counted_not_silent, .init = setup, .fini = teardown, .timeout = 30)
{
	struct ferry_iobuf *bufs[2];
	union ferry_sockaddr dsts[2];
	struct ferryd_stats st;
	unsigned int n;

	add_service("s6", "[::1]:9303");
	start();
	bufs[0] = ferry_iobuf_new(16);
	bufs[1] = ferry_iobuf_new(16);
	/* an IPv4 destination on an IPv6-only socket cannot be sent to */
	ferry_sockaddr_parse("127.0.0.1:9", &dsts[0]);
	ferry_sockaddr_parse("[::1]:9", &dsts[1]);
	n = eng->ops->send(eng, &cfg.services[0], bufs, dsts, 2);
	eng->ops->get_stats(eng, &st);
	cr_assert_eq(n, 1, "expected one of two sends accepted, got %u", n);
	cr_assert_eq(st.tx_packets, 1, "expected tx_packets 1");
	cr_assert_eq(st.tx_dropped, 1, "expected the refused datagram counted as dropped");
	cr_assert_eq(st.tx_errors + st.tx_too_big, 1, "expected the refused datagram counted by reason");
	ferry_iobuf_free(bufs[0]);
	ferry_iobuf_free(bufs[1]);
}

Test(ferryd_sock, bind_conflict_gives_a_reason, .init = setup, .fini = teardown, .timeout = 30)
{
	union ferry_sockaddr a;
	char why[256] = "";
	int fd, err;

	ferry_sockaddr_parse("127.0.0.1:9304", &a);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(bind(fd, &a.sa, ferry_sockaddr_len(&a)), 0, "expected to take the port first");
	add_service("busy", "127.0.0.1:9304");
	err = ferryd_sock_engine_new(r, ifc, &cfg, cfg.services, cfg.nservices, &eng, why, sizeof(why));
	cr_assert_eq(err, -EADDRINUSE, "expected -EADDRINUSE, got %d (%s)", err, why);
	cr_assert(strstr(why, "busy") && strstr(why, "127.0.0.1:9304"), "expected the service and address in: %s",
		  why);
	cr_assert_eq(ferry_reactor_watches(r), base_watches, "expected nothing left on the reactor after a failed start");
	eng = NULL;
	close(fd);
}

Test(ferryd_sock, drain_ends_every_loop, .init = setup, .fini = teardown, .timeout = 30)
{
	cfg.queues = 2;
	add_service("a", "127.0.0.1:9305");
	add_service("b", "[::1]:9305");
	start();
	cr_assert_geq(ferry_reactor_watches(r), base_watches + 4, "expected the four loops on the reactor");
	eng->ops->drain(eng);
	cr_assert_eq(ferry_reactor_watches(r), base_watches, "expected no watch left after drain");
}

/* Traffic that goes on through drain (a sender that does not stop) still lets every loop end. */
Test(ferryd_sock, drain_ends_every_loop_under_traffic, .init = setup, .fini = teardown, .timeout = 30)
{
	pid_t child;
	int status;

	add_service("t", "127.0.0.1:9306");
	start();
	fflush(NULL);
	child = fork();
	cr_assert_geq(child, 0, "expected to fork a sender");
	if (child == 0) {
		/* bounded: 3 s or 5 million datagrams, whichever comes first; dies with the test */
		uint64_t end = ferry_test_now_ms() + 3000;
		union ferry_sockaddr a;
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		ferry_sockaddr_parse("127.0.0.1:9306", &a);
		for (unsigned int i = 0; i < 5000000 && ferry_test_now_ms() < end; i++)
			sendto(fd, "x", 1, 0, &a.sa, ferry_sockaddr_len(&a));
		_exit(0);
	}
	usleep(200 * 1000);
	eng->ops->drain(eng);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	cr_assert_eq(ferry_reactor_watches(r), base_watches, "expected no watch left after drain under traffic, %u left",
		     ferry_reactor_watches(r) - base_watches);
}

/*
 * A service removed while the kernel still holds datagrams for its socket:
 * each one is handed to the handler before the removal, or counted as
 * rx_no_service; none is freed with the socket uncounted. The datagrams are
 * queued while the reactor (the worker) does not run, so all of them are in
 * the socket when the removal comes.
 */
static unsigned int counted;

static void counting_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	counted += count;
}

Test(ferryd_sock, removed_service_counts_what_its_socket_held, .init = setup, .fini = teardown, .timeout = 30)
{
	const unsigned int n = 200;
	struct ferryd_stats st;
	int fd;

	add_service("keep", "127.0.0.1:9308");
	add_service("gone", "127.0.0.1:9307");
	cfg.services[0].cb = counting_cb;
	cfg.services[1].cb = counting_cb;
	start();
	fd = client(AF_INET);
	for (unsigned int i = 0; i < n; i++)
		send_to(fd, "127.0.0.1:9307", "q", 1);
	cr_assert_eq(eng->ops->remove_service(eng, &cfg.services[1]), 0, "expected the service removed");
	/* After the removal, what arrives finds no socket: the kernel counts it (UDP NoPorts), not ferryd. */
	for (unsigned int i = 0; i < 10; i++)
		send_to(fd, "127.0.0.1:9307", "q", 1);
	for (int i = 0; i < 20; i++)
		ferry_reactor_run_once(r, 10);
	eng->ops->get_stats(eng, &st);
	cr_log_info("handed to the handler %u (rx_packets %" PRIu64 "), rx_no_service %" PRIu64, counted, st.rx_packets,
		    st.rx_no_service);
	cr_assert_eq(st.rx_packets, counted, "expected rx_packets to count what the handler saw");
	cr_assert_eq(st.rx_packets + st.rx_no_service, n,
		     "expected each of the %u datagrams queued for the removed service handed on or counted in "
		     "rx_no_service, got %" PRIu64 " + %" PRIu64,
		     n, st.rx_packets, st.rx_no_service);
	cr_assert_eq(ferryd_engine_check_frames(eng), 0, "expected the frame check to pass");
	close(fd);
}
