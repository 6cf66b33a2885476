/* SPDX-License-Identifier: MIT */
/*
 * ferryd with several workers, and what the control thread changes under
 * them: queues spread over worker threads (every datagram echoed, each
 * worker's counters and frames its own), a peer that stalls one flow's sends
 * while another flow runs, services added and removed while traffic flows,
 * the MTU lowered and an address added while ferryd runs. These are also
 * the tests `make tsan` runs under ThreadSanitizer.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "engine_fixture.h"
#include "ferryd_proc.h"
#include "handlers.h"
#include "netns.h"
#include "testutil.h"

#define READY_MS 15000
#define EXIT_MS 15000

static struct ferry_test_engine_fx fx = FERRY_TEST_ENGINE_FX_INIT;
static struct ferry_test_ferryd d = FERRY_TEST_FERRYD_INIT;

static void teardown(void)
{
	ferry_test_ferryd_stop(&d);
	ferry_test_engine_fx_teardown(&fx);
}

static void start_ferryd(const char *const *args)
{
	ferry_test_ferryd_start(&d, &fx.ns, "workers", args, READY_MS);
}

static void stop_ferryd(void)
{
	ferry_test_ferryd_stop_clean(&d, EXIT_MS);
}

/* A value of worker i's line ("worker <i> key=value ...") in the last stats block of the log; -1 if none. */
static int64_t worker_value(const char *log, unsigned int i, const char *key)
{
	char head[32], pat[64];
	const char *line = NULL, *p, *v;

	snprintf(head, sizeof(head), "worker %u ", i);
	for (p = log; (p = strstr(p, head)); p++)
		if (p == log || p[-1] == '\n')
			line = p;
	if (!line)
		return -1;
	snprintf(pat, sizeof(pat), " %s=", key);
	v = strstr(line, pat);
	if (!v || v > line + strcspn(line, "\n"))
		return -1;
	return strtoll(v + strlen(pat), NULL, 10);
}

/* ------------------------------------------------------------ queues over workers */

struct spread_case {
	unsigned int queues, workers;
};

static struct spread_case spread_cases[] = {{2, 2}, {4, 2}};

ParameterizedTestParameters(ferryd_workers, every_queue_echoed)
{
	return cr_make_param_array(struct spread_case, spread_cases, sizeof(spread_cases) / sizeof(spread_cases[0]));
}

#define FLOWS 64
#define PER_FLOW 16

/* The peer: FLOWS sockets (so veth's hash spreads them over its queues), PER_FLOW datagrams each, each echoed. */
static int peer_flows(void)
{
	union ferry_sockaddr dst;
	int fds[FLOWS], bad = 0, got = 0;
	uint8_t out[256], in[512];

	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9000, &dst);
	for (int f = 0; f < FLOWS; f++) {
		int big = 1 << 20;

		fds[f] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[f] < 0 || connect(fds[f], &dst.sa, ferry_sockaddr_len(&dst)))
			return 10;
		setsockopt(fds[f], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	for (int r = 0; r < PER_FLOW; r++) {
		for (int f = 0; f < FLOWS; f++) {
			size_t len = 20 + (size_t)((f * 7 + r * 13) % 200);

			for (size_t j = 0; j < len; j++)
				out[j] = (uint8_t)(f ^ (r << 3) ^ j);
			if (send(fds[f], out, len, 0) != (ssize_t)len)
				return 11;
		}
		usleep(2000);
	}
	for (int f = 0; f < FLOWS; f++) {
		for (int r = 0; r < PER_FLOW; r++) {
			struct pollfd p = {.fd = fds[f], .events = POLLIN};
			size_t len = 20 + (size_t)((f * 7 + r * 13) % 200);
			ssize_t n;

			if (poll(&p, 1, 3000) != 1)
				return 12;
			n = recv(fds[f], in, sizeof(in), 0);
			for (size_t j = 0; j < len; j++)
				if (n != (ssize_t)len || in[j] != (uint8_t)(f ^ (r << 3) ^ j)) {
					bad++;
					break;
				}
			got++;
		}
	}
	return bad ? 13 : got == FLOWS * PER_FLOW ? 0 : 14;
}

ParameterizedTest(struct spread_case *c, ferryd_workers, every_queue_echoed, .fini = teardown, .timeout = 120)
{
	char q[8], w[8];
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", "--queues", q,
			      "--workers", w, "--frames", "1024", "--service", "e=198.18.0.1:9000", NULL};
	int64_t rx = 0, total;
	const char *log;
	int st;

	snprintf(q, sizeof(q), "%u", c->queues);
	snprintf(w, sizeof(w), "%u", c->workers);
	ferry_test_ns_up_queues(&fx.ns, &fx.ns_up, "needs root for namespaces and AF_XDP", c->queues);
	start_ferryd(args);
	cr_assert(strstr(ferry_test_ferryd_log(&d), "workers,"), "expected ferryd to say it runs workers; log:\n%s",
		  ferry_test_ferryd_log(&d));
	fflush(NULL);
	fx.child = fork();
	cr_assert_geq(fx.child, 0, "fork");
	if (fx.child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER) ? 9 : peer_flows());
	}
	cr_assert_eq(waitpid(fx.child, &st, 0), fx.child, "expected the peer to finish");
	fx.child = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		ferry_test_ferryd_ask(&d, "rx_packets"); /* the stats line into the log below */
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "expected every datagram of every flow echoed byte-exact (peer status %d); log:\n%s",
		  WIFEXITED(st) ? WEXITSTATUS(st) : -1, ferry_test_ferryd_log(&d));
	stop_ferryd();
	log = ferry_test_ferryd_log(&d);
	total = ferry_test_stats_value(log, "rx_packets");
	cr_assert_eq(total, FLOWS * PER_FLOW, "expected %d received; log:\n%s", FLOWS * PER_FLOW, log);
	for (unsigned int i = 0; i < c->workers; i++) {
		int64_t wrx = worker_value(log, i, "rx_packets"), wtx = worker_value(log, i, "tx_packets");
		int64_t sum = worker_value(log, i, "frames_free") + worker_value(log, i, "frames_kernel") +
			      worker_value(log, i, "frames_user") + worker_value(log, i, "frames_tx");

		cr_assert_gt(wrx, 0, "expected worker %u to serve some flows; log:\n%s", i, log);
		cr_assert_eq(wtx, wrx, "expected worker %u to send what it received", i);
		cr_assert_eq(sum, worker_value(log, i, "frames_total"), "expected worker %u's frames to add up", i);
		cr_assert_eq(worker_value(log, i, "frames_user") + worker_value(log, i, "frames_tx"), 0,
			     "expected no frame of worker %u in a callback or on TX after the drain", i);
		rx += wrx;
	}
	cr_assert_eq(rx, total, "expected the workers' counts to add up to the total %" PRId64, total);
}

/* ------------------------------------------------------------ a stalled peer */

/*
 * Every socket of ours bound to port: found by its address, so a test can
 * shrink a buffer of the engine's own socket.
 */
static int fd_bound_to(uint16_t port, int type, int proto)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	cr_assert_not_null(dir, "expected /proc/self/fd");
	while ((e = readdir(dir)) && found < 0) {
		int fd = atoi(e->d_name), t = 0, pr = 0;
		socklen_t l = sizeof(t), lp = sizeof(pr);
		union ferry_sockaddr a;
		socklen_t al = sizeof(a);

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) || t != type)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &pr, &lp) || pr != proto)
			continue;
		if (type == SOCK_RAW) {
			found = fd;
			break;
		}
		if (!getsockname(fd, &a.sa, &al) && a.sa.sa_family == AF_INET && ntohs(a.in4.sin_port) == port)
			found = fd;
	}
	closedir(dir);
	return found;
}

static struct ferryd_handler_ctx hctx;

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

struct stall_case {
	char mode[8];
};

static struct stall_case stall_cases[] = {{"socket"}, {"xdp"}};

ParameterizedTestParameters(ferryd_workers, a_stalled_peer_costs_the_others_nothing)
{
	return cr_make_param_array(struct stall_case, stall_cases, sizeof(stall_cases) / sizeof(stall_cases[0]));
}

#define ROUNDS 400
#define RTT_BOUND_MS 15 /* the 99th percentile of the flowing peer's round trips while the other flow stalls
			  * (a send that waited for a full socket, as ferryd once did for 20 ms, shows at once) */

/*
 * Service "stalled" sends to 198.18.0.77, a neighbour that never answers ARP:
 * the kernel holds its datagrams (on a socket shrunk to the smallest send
 * buffer, two fill it), so every send meets a full socket. Service "flowing"
 * echoes a peer meanwhile: no round trip may wait for the stalled sends, and
 * every stalled datagram is sent, waits or is counted as dropped.
 */
ParameterizedTest(struct stall_case *c, ferryd_workers, a_stalled_peer_costs_the_others_nothing, .fini = teardown,
		  .timeout = 90)
{
	struct ferryd_service svcs[2];
	union ferry_sockaddr stalled_dst;
	struct ferry_iobuf *bufs[8];
	union ferry_sockaddr dsts[8];
	struct ferryd_stats before, after;
	char why[256] = "";
	uint64_t attempted = 0, accepted = 0;
	int tiny = 1, fd, st = -1, result_pipe[2];
	int64_t p99_us = -1;
	bool xdp = c->mode[0] == 'x';

	ferry_test_engine_fx_ns(&fx);
	ferry_test_engine_fx_host(&fx, xdp);
	fx.cfg.mode = xdp ? FERRYD_MODE_XDP : FERRYD_MODE_SOCKET;
	memset(svcs, 0, sizeof(svcs));
	snprintf(svcs[0].name, sizeof(svcs[0].name), "stalled");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9400, &svcs[0].addr);
	svcs[0].id = 0;
	snprintf(svcs[1].name, sizeof(svcs[1].name), "flowing");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9401, &svcs[1].addr);
	svcs[1].id = 1;
	ferryd_handlers_install(&hctx, FERRYD_HANDLER_ECHO, svcs, 2);
	svcs[0].cb = NULL; /* nothing to answer there: the test sends for it */
	cr_assert_eq((xdp ? ferryd_xdp_engine_new : ferryd_sock_engine_new)(fx.r, fx.iface, &fx.cfg, svcs, 2, &fx.e, why,
									   sizeof(why)),
		     0, "expected the %s engine: %s", c->mode, why);
	ferryd_handlers_set_engine(&hctx, fx.e);
	/* the socket the stalled sends leave by: the service's own in socket mode, the raw one in xdp mode */
	fd = xdp ? fd_bound_to(0, SOCK_RAW, IPPROTO_RAW) : fd_bound_to(9400, SOCK_DGRAM, IPPROTO_UDP);
	cr_assert_geq(fd, 0, "expected to find the engine's socket");
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny)), 0, "shrinking its send buffer");
	stalled_dst.in4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(7)};
	inet_pton(AF_INET, "198.18.0.77", &stalled_dst.in4.sin_addr);
	for (int i = 0; i < 8; i++) {
		bufs[i] = ferry_iobuf_new(1200);
		cr_assert_not_null(bufs[i]);
		memset(ferry_iobuf_window(bufs[i]), 's', 1200);
		dsts[i] = stalled_dst;
	}
	fx.e->ops->get_stats(fx.e, &before);

	cr_assert_eq(pipe(result_pipe), 0, "a pipe");
	if (ferry_test_engine_fx_fork(&fx) == 0) {
		/* the flowing peer: ROUNDS round trips, the 99th percentile written to the pipe */
		static int64_t rtt[ROUNDS];
		union ferry_sockaddr dst;
		int64_t p99;
		char buf[64];
		int s;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
			_exit(9);
		ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9401, &dst);
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, &dst.sa, ferry_sockaddr_len(&dst)))
			_exit(10);
		for (int r = 0; r < ROUNDS; r++) {
			struct pollfd p = {.fd = s, .events = POLLIN};
			struct timespec a, b;

			clock_gettime(CLOCK_MONOTONIC, &a);
			snprintf(buf, sizeof(buf), "round %d", r);
			if (send(s, buf, strlen(buf), 0) < 0)
				_exit(11);
			if (poll(&p, 1, 2000) != 1 || recv(s, buf, sizeof(buf), 0) <= 0)
				_exit(12); /* lost */
			clock_gettime(CLOCK_MONOTONIC, &b);
			rtt[r] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
			usleep(2000);
		}
		qsort(rtt, ROUNDS, sizeof(rtt[0]), cmp_i64);
		p99 = rtt[ROUNDS * 99 / 100];
		if (write(result_pipe[1], &p99, sizeof(p99)) != sizeof(p99))
			_exit(13);
		_exit(0);
	}
	close(result_pipe[1]);
	/* meanwhile: the stalled service keeps sending (bounded: until the peer is done, or 30 s) */
	for (uint64_t end = ferry_test_now_ms() + 30000; fx.child > 0 && ferry_test_now_ms() < end;) {
		accepted += fx.e->ops->send(fx.e, &svcs[0], bufs, dsts, 8);
		attempted += 8;
		cr_assert_geq(ferry_reactor_run_once(fx.r, 1), 0, "reactor");
		if (waitpid(fx.child, &st, WNOHANG) == fx.child)
			fx.child = -1;
	}
	cr_assert_eq(fx.child, -1, "expected the flowing peer to finish within 30 s");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected every round trip answered (peer status %d)",
		  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	cr_assert_eq(read(result_pipe[0], &p99_us, sizeof(p99_us)), (ssize_t)sizeof(p99_us),
		     "the peer's round trips");
	close(result_pipe[0]);
	cr_log_info("%s mode: %" PRIu64 " stalled sends, %" PRIu64 " accepted; the other flow's round trips: p99 %"
		    PRId64 " us", c->mode, attempted, accepted, p99_us);
	cr_assert_lt(p99_us, RTT_BOUND_MS * 1000, "expected the flowing peer's round trips under %d ms (p99), got %"
		     PRId64 " us", RTT_BOUND_MS, p99_us);
	fx.e->ops->drain(fx.e);
	fx.e->ops->get_stats(fx.e, &after);
	/* every stalled datagram: sent, or dropped and counted by a reason */
	cr_assert_eq((after.tx_packets - before.tx_packets) - ROUNDS + (after.tx_dropped - before.tx_dropped), attempted,
		     "expected all %" PRIu64 " stalled datagrams sent or counted as dropped (sent %" PRIu64 ", dropped %"
		     PRIu64 ")", attempted, after.tx_packets - before.tx_packets - ROUNDS, after.tx_dropped - before.tx_dropped);
	cr_assert_gt(after.tx_backlog_full + after.tx_waited, 0, "expected the stall to show in the counters");
	for (int i = 0; i < 8; i++)
		ferry_iobuf_free(bufs[i]);
}

/* ------------------------------------------------------------ services while traffic flows */

struct svc_case {
	unsigned int queues, workers;
};

static struct svc_case svc_cases[] = {{1, 1}, {2, 2}};

ParameterizedTestParameters(ferryd_workers, services_come_and_go)
{
	return cr_make_param_array(struct svc_case, svc_cases, sizeof(svc_cases) / sizeof(svc_cases[0]));
}

static uint64_t stream_seen; /* atomic: every worker counts */

static void count_cb(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	(void)user, (void)bufs, (void)srcs;
	__atomic_add_fetch(&stream_seen, count, __ATOMIC_RELAXED);
}

#define STREAM 20000

/* Peer child: STREAM datagrams to port 9500 from 8 sockets (every queue), paced over about 2 s. */
static int peer_stream(void)
{
	union ferry_sockaddr dst;
	int fds[8];

	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9500, &dst);
	for (int f = 0; f < 8; f++) {
		fds[f] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[f] < 0 || connect(fds[f], &dst.sa, ferry_sockaddr_len(&dst)))
			return 10;
	}
	for (int i = 0; i < STREAM; i++) {
		if (send(fds[i % 8], "stream", 6, 0) != 6)
			return 11;
		if (i % 100 == 99)
			usleep(10000);
	}
	return 0;
}

/* Peer child: 50 datagrams to port 9501, each echoed. */
static int peer_echo(uint16_t port, int n)
{
	union ferry_sockaddr dst;
	char buf[32];
	int s;

	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, port, &dst);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, &dst.sa, ferry_sockaddr_len(&dst)))
		return 10;
	for (int i = 0; i < n; i++) {
		struct pollfd p = {.fd = s, .events = POLLIN};

		if (send(s, "new service", 11, 0) != 11 || poll(&p, 1, 2000) != 1 || recv(s, buf, sizeof(buf), 0) != 11)
			return 12;
	}
	return 0;
}

/* Runs the reactor until child exits (bounded); its exit status. */
static int run_until_exit(pid_t child, int ms)
{
	uint64_t end = ferry_test_now_ms() + (uint64_t)ms;
	int st = -1;

	while (ferry_test_now_ms() < end) {
		cr_assert_geq(ferry_reactor_run_once(fx.r, 5), 0, "reactor");
		if (waitpid(child, &st, WNOHANG) == child)
			return st;
	}
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	cr_assert_fail("expected a peer to finish within %d ms", ms);
	return -1;
}

ParameterizedTest(struct svc_case *c, ferryd_workers, services_come_and_go, .fini = teardown, .timeout = 90)
{
	struct ferryd_service svcs[2];
	uint64_t xdp[FERRY_XDP_NCOUNTERS], xdp2[FERRY_XDP_NCOUNTERS];
	union ferry_sockaddr b;
	pid_t stream, echo;
	char why[256] = "";
	int st, fd;

	ferry_test_ns_up_queues(&fx.ns, &fx.ns_up, "needs root for namespaces and AF_XDP", c->queues);
	ferry_test_engine_fx_host(&fx, true);
	fx.cfg.queues = c->queues;
	fx.cfg.workers = c->workers;
	fx.cfg.frames = 1024;
	memset(svcs, 0, sizeof(svcs));
	stream_seen = 0;
	snprintf(svcs[0].name, sizeof(svcs[0].name), "old");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9500, &svcs[0].addr);
	svcs[0].cb = count_cb;
	cr_assert_eq(ferryd_xdp_engine_new(fx.r, fx.iface, &fx.cfg, svcs, 1, &fx.e, why, sizeof(why)), 0,
		     "expected the engine: %s", why);
	ferryd_handlers_install(&hctx, FERRYD_HANDLER_ECHO, &svcs[1], 1);
	ferryd_handlers_set_engine(&hctx, fx.e);

	fflush(NULL);
	stream = fork();
	cr_assert_geq(stream, 0, "fork");
	if (stream == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER) ? 9 : peer_stream());
	}
	fx.child = stream;
	for (uint64_t t = ferry_test_now_ms() + 300; ferry_test_now_ms() < t;)
		ferry_reactor_run_once(fx.r, 5);

	/* a new service while the stream flows */
	snprintf(svcs[1].name, sizeof(svcs[1].name), "new");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9501, &svcs[1].addr);
	svcs[1].id = (unsigned int)ferryd_engine_free_id(fx.e);
	cr_assert_neq(svcs[1].id, 0, "expected a free id other than the old service's");
	cr_assert_eq(fx.e->ops->add_service(fx.e, &svcs[1], why, sizeof(why)), 0, "expected to add a service: %s", why);
	fflush(NULL);
	echo = fork();
	cr_assert_geq(echo, 0, "fork");
	if (echo == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER) ? 9 : peer_echo(9501, 50));
	}
	st = run_until_exit(echo, 20000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected the new service to answer (peer status %d)",
		  WIFEXITED(st) ? WEXITSTATUS(st) : -1);

	/* and gone again: its port free in the kernel and in the program */
	cr_assert_eq(fx.e->ops->remove_service(fx.e, &svcs[1]), 0, "expected to remove the service");
	cr_assert_eq(fx.e->ops->remove_service(fx.e, &svcs[1]), -ENOENT, "expected a second removal refused");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 9501, &b);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(fd, &b.sa, ferry_sockaddr_len(&b)), 0, "expected port 9501 free again: %s", strerror(errno));
	close(fd);
	cr_assert_eq(fx.e->ops->xdp_counters(fx.e, xdp), 0, "the program's counters");
	fflush(NULL);
	echo = fork();
	cr_assert_geq(echo, 0, "fork");
	if (echo == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER) ? 9 : peer_echo(9501, 1));
	}
	st = run_until_exit(echo, 10000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 12, "expected no answer from the removed service");
	cr_assert_eq(fx.e->ops->xdp_counters(fx.e, xdp2), 0, "the program's counters");
	cr_assert_geq(xdp2[FERRY_XDP_PASS_NO_SERVICE] - xdp[FERRY_XDP_PASS_NO_SERVICE], 1,
		      "expected the program to steer the removed service's port no more");

	st = run_until_exit(stream, 30000);
	fx.child = -1;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected the stream sent");
	for (uint64_t t = ferry_test_now_ms() + 3000;
	     __atomic_load_n(&stream_seen, __ATOMIC_RELAXED) < STREAM && ferry_test_now_ms() < t;)
		ferry_reactor_run_once(fx.r, 5);
	fx.e->ops->drain(fx.e);
	cr_assert_eq(__atomic_load_n(&stream_seen, __ATOMIC_RELAXED), STREAM,
		     "expected the old service to lose nothing while the other came and went");
	cr_assert_eq(ferryd_engine_check_frames(fx.e), 0, "expected every frame accounted for");
}

/* ------------------------------------------------------------ the interface changes */

static void peer_echo_from(const char *src, const char *dst, uint16_t port, size_t len, const char *why)
{
	union ferry_sockaddr s, t;

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "peer namespace");
	t.in4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
	cr_assert_eq(inet_pton(AF_INET, dst, &t.in4.sin_addr), 1, "test bug: %s", dst);
	if (src) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		uint8_t out[1500], in[1500];
		union ferry_sockaddr from;
		socklen_t fl = sizeof(from);
		struct pollfd p = {.fd = fd, .events = POLLIN};

		cr_assert_eq(ferry_sockaddr_parse(src, &s), 0, "test bug: %s", src);
		cr_assert_eq(bind(fd, &s.sa, ferry_sockaddr_len(&s)), 0, "binding the peer to %s", src);
		memset(out, 'a', len);
		cr_assert_eq(sendto(fd, out, len, 0, &t.sa, ferry_sockaddr_len(&t)), (ssize_t)len, "send");
		cr_assert_eq(poll(&p, 1, 3000), 1, "%s: expected an answer; log:\n%s", why, ferry_test_ferryd_log(&d));
		cr_assert_eq(recvfrom(fd, in, sizeof(in), 0, &from.sa, &fl), (ssize_t)len, "%s: the whole datagram", why);
		cr_assert(ferry_sockaddr_equal(&from, &t), "%s: expected the answer from %s", why, dst);
		close(fd);
	} else {
		ferry_test_expect_echo(&d, &t, len);
	}
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_ROOT), 0, "root namespace");
}

Test(ferryd_workers, the_mtu_lowered_while_running, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", "--service",
			      "e=198.18.0.1:9000", NULL};

	ferry_test_engine_fx_ns(&fx);
	start_ferryd(args);
	peer_echo_from(NULL, FERRY_TESTNS_HOST4, 9000, 1400, "1400 bytes at MTU 1500");
	cr_assert_eq(ferry_test_ferryd_ask(&d, "tx_via_socket"), 0, "expected the answer by AF_XDP");
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_ROOT,
				      "ip -n %s link set " FERRY_TESTNS_HOST_IF " mtu 1280 && "
				      "ip -n %s link set " FERRY_TESTNS_PEER_IF " mtu 1280",
				      fx.ns.host, fx.ns.peer),
		     0, "expected MTU 1280");
	/* now it comes in fragments, and the answer must leave in fragments: the kernel's path */
	for (uint64_t t = ferry_test_now_ms() + 3000;
	     !strstr(ferry_test_ferryd_log(&d), "MTU 1500 -> 1280") && ferry_test_now_ms() < t;)
		usleep(20000);
	cr_assert(strstr(ferry_test_ferryd_log(&d), "MTU 1500 -> 1280"), "expected the change seen; log:\n%s",
		  ferry_test_ferryd_log(&d));
	peer_echo_from(NULL, FERRY_TESTNS_HOST4, 9000, 1400, "1400 bytes at MTU 1280");
	cr_assert_geq(ferry_test_ferryd_ask(&d, "tx_via_socket"), 1, "expected the answer counted as the kernel's");
	peer_echo_from(NULL, FERRY_TESTNS_HOST4, 9000, 200, "200 bytes at MTU 1280");
	stop_ferryd();
}

Test(ferryd_workers, an_address_added_while_running, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo", "--service",
			      "w=0.0.0.0:9002", NULL};
	int64_t steered;

	ferry_test_engine_fx_ns(&fx);
	start_ferryd(args);
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_ROOT,
				      "ip -n %1$s addr add 198.18.1.1/24 dev " FERRY_TESTNS_HOST_IF " && "
				      "ip -n %2$s addr add 198.18.1.2/24 dev " FERRY_TESTNS_PEER_IF " && "
				      "ip -n %1$s neigh replace 198.18.1.2 lladdr %3$02x:%4$02x:%5$02x:%6$02x:%7$02x:%8$02x "
				      "dev " FERRY_TESTNS_HOST_IF " nud permanent",
				      fx.ns.host, fx.ns.peer, fx.ns.peer_mac[0], fx.ns.peer_mac[1], fx.ns.peer_mac[2],
				      fx.ns.peer_mac[3], fx.ns.peer_mac[4], fx.ns.peer_mac[5]),
		     0, "expected a second subnet on the pair");
	usleep(200000); /* the notification, the program's address map */
	steered = ferry_test_ferryd_ask(&d, "xdp_redirected");
	/* the route to 198.18.1.2 prefers 198.18.1.1: the wildcard answers from the new address */
	peer_echo_from("198.18.1.2:40000", "198.18.1.1", 9002, 64, "to the new address");
	cr_assert_gt(ferry_test_ferryd_ask(&d, "xdp_redirected"), steered,
		     "expected the datagram to the new address steered to AF_XDP");
	stop_ferryd();
}

/* ------------------------------------------------------------ under stress */

/* The engine with two worker threads under the control thread's changes (tests/stress/workers_stress.c). */
Test(ferryd_workers, stress_from_the_control_thread, .timeout = 120)
{
	char path[512], out[4096];
	const char *b = getenv("FERRY_BUILD");
	int st;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for namespaces and AF_XDP");
	snprintf(path, sizeof(path), "%s/tests/workers-stress", b && *b ? b : "build");
	cr_assert_eq(access(path, X_OK), 0, "expected %s (make all builds it)", path);
	st = ferry_test_capture(out, sizeof(out), "%s 2>&1", path);
	if (st == 77)
		cr_skip_test("workers-stress cannot run here: %s", out);
	cr_assert_eq(st, 0, "expected the stress to pass: %s", out);
	cr_log_info("%s", out);
}
