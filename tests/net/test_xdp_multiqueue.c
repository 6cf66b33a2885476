/* SPDX-License-Identifier: MIT */
/*
 * ferryd on several queues: the fixture's namespaces with the veth pair
 * recreated with 2 or 4 queues a side, flows from many source ports of the peer.
 *
 * What veth does (measured here, kernel 6.18): the peer picks a TX queue per
 * flow (skb_tx_hash over the 4-tuple, or XPS when the CPU is mapped), and the
 * host receives the frame on the RX queue of the same number: the XDP
 * program's rx_queue_index follows the peer's TX queue. 64 flows spread over
 * all 4 queues; an XPS map on the peer steers every flow to one chosen queue.
 */
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "ferryd.h"
#include "ferryd_proc.h"
#include "netns.h"
#include "xsk.h"

#define NPORTS 64	   /* flows: peer source ports PEER_PORT_BASE .. + NPORTS - 1 */
#define ROUNDS 16	   /* datagrams per flow */
#define PEER_PORT_BASE 41000
#define SVC_PORT 9300
#define HDR_LEN 8	   /* 'F' 'Q' flow(2) round(2) len(2) */
#define MAX_LEN 1200
#define ROUND_WAIT_MS 2000 /* how long the peer waits for one round's echoes */
#define RUN_MS 30000	   /* how long the reactor runs for one peer */
#define READY_TIMEOUT_MS 15000
#define EXIT_TIMEOUT_MS 10000

static struct ferry_test_engine_fx fx = FERRY_TEST_ENGINE_FX_INIT; /* child: the peer, for in-process engines */
static int result_fd = -1;					    /* the peer's report */
static struct ferry_test_ferryd ferryd = FERRY_TEST_FERRYD_INIT;    /* the binary, for the end-to-end tests */

/* What the service callback saw. */
static struct {
	uint8_t count[NPORTS][ROUNDS];
	uint64_t total, bad, echo_accepted;
	char first_bad[160];
} seen;

/* What the peer saw. */
struct peer_result {
	uint32_t sent, echoed, bad, missing;
	char msg[160];
};

static size_t payload_len(unsigned int flow, unsigned int round)
{
	if ((flow + round) % 16 == 0)
		return MAX_LEN;
	return HDR_LEN + (flow * 37 + round * 11) % 200;
}

static uint8_t pattern(unsigned int flow, unsigned int round, size_t j)
{
	return (uint8_t)(flow * 7 + round * 131 + j * 13);
}

static void make_payload(uint8_t *p, unsigned int flow, unsigned int round, size_t len)
{
	p[0] = 'F';
	p[1] = 'Q';
	p[2] = (uint8_t)(flow >> 8);
	p[3] = (uint8_t)flow;
	p[4] = (uint8_t)(round >> 8);
	p[5] = (uint8_t)round;
	p[6] = (uint8_t)(len >> 8);
	p[7] = (uint8_t)len;
	for (size_t j = HDR_LEN; j < len; j++)
		p[j] = pattern(flow, round, j);
}

/* ---- the veth pair with queues ----------------------------------------------------------- */

/* Maps every CPU of the peer to fp0's TX queue q (XPS): all flows leave on q, arrive on the host's RX queue q. */
static int steer_peer_to(unsigned int nq, unsigned int q)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	char all[256] = "", part[16];

	if (ncpu < 1 || ncpu > 256)
		return -1;
	/* the bitmap in 32-bit groups, highest first, comma-separated */
	for (long g = (ncpu - 1) / 32; g >= 0; g--) {
		long bits = ncpu - g * 32 > 32 ? 32 : ncpu - g * 32;
		uint32_t m = bits == 32 ? 0xffffffffu : (uint32_t)((1u << bits) - 1);

		snprintf(part, sizeof(part), "%s%x", g == (ncpu - 1) / 32 ? "" : ",", m);
		strncat(all, part, sizeof(all) - strlen(all) - 1);
	}
	for (unsigned int i = 0; i < nq; i++)
		if (ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER,
				     "echo %s > /sys/class/net/" FERRY_TESTNS_PEER_IF "/queues/tx-%u/xps_cpus",
				     i == q ? all : "0", i))
			return -1;
	return 0;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void setup_queues(unsigned int nq)
{
	int err;

	memset(&seen, 0, sizeof(seen));
	ferry_test_ns_up_queues(&fx.ns, &fx.ns_up, "needs root for namespaces and AF_XDP", nq);
	err = ferry_testns_run(&fx.ns, FERRY_TESTNS_HOST,
			       "test $(ls -d /sys/class/net/" FERRY_TESTNS_HOST_IF "/queues/rx-* | wc -l) -eq %u", nq);
	cr_assert_eq(err, 0, "expected a veth pair with %u queues a side (exit status %d)", nq, err);
	ferry_test_engine_fx_host(&fx, false);
	fx.cfg.frames = 1024;
}

static void teardown(void)
{
	ferry_test_reap_child(&fx.child);
	if (result_fd >= 0)
		close(result_fd);
	result_fd = -1;
	ferry_test_ferryd_stop(&ferryd);
	ferry_test_engine_fx_teardown(&fx);
}

/* ---- the peer: NPORTS flows, ROUNDS datagrams each, every one echoed ----------------------------- */

static void fail_msg(struct peer_result *res, const char *fmt, unsigned int a, unsigned int b, long c)
{
	res->bad++;
	if (!res->msg[0])
		snprintf(res->msg, sizeof(res->msg), fmt, a, b, c);
}

/*
 * In the current namespace (the peer's): each round sends one datagram per
 * flow, then waits (bounded) for all their echoes and checks each: from the
 * service's address, on the flow's own socket, byte-exact (the peer's kernel
 * also checked the UDP checksum).
 */
static void peer_traffic(int family, uint16_t svc_port, struct peer_result *res)
{
	static uint8_t out[MAX_LEN], in[MAX_LEN + 1];
	union ferry_sockaddr host;
	struct pollfd pfd[NPORTS];
	bool got[NPORTS];

	memset(res, 0, sizeof(*res));
	for (unsigned int i = 0; i < NPORTS; i++)
		pfd[i].fd = -1;
	ferry_testns_addr(FERRY_TESTNS_HOST, family, svc_port, &host);
	for (unsigned int i = 0; i < NPORTS; i++) {
		union ferry_sockaddr a;

		ferry_testns_addr(FERRY_TESTNS_PEER, family, (uint16_t)(PEER_PORT_BASE + i), &a);
		pfd[i] = (struct pollfd){ .fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
					  .events = POLLIN };
		if (pfd[i].fd < 0 || bind(pfd[i].fd, &a.sa, ferry_sockaddr_len(&a))) {
			fail_msg(res, "peer: socket for flow %u (port %u): errno %ld", i, PEER_PORT_BASE + i, errno);
			goto out;
		}
	}
	for (unsigned int r = 0; r < ROUNDS; r++) {
		unsigned int pending = NPORTS;
		uint64_t deadline;

		for (unsigned int i = 0; i < NPORTS; i++) {
			size_t len = payload_len(i, r);

			make_payload(out, i, r, len);
			if (sendto(pfd[i].fd, out, len, 0, &host.sa, ferry_sockaddr_len(&host)) != (ssize_t)len) {
				fail_msg(res, "peer: sendto of flow %u round %u: errno %ld", i, r, errno);
				goto out;
			}
			res->sent++;
			got[i] = false;
		}
		deadline = ferry_test_now_ms() + ROUND_WAIT_MS;
		while (pending && ferry_test_now_ms() < deadline) {
			if (poll(pfd, NPORTS, (int)(deadline - ferry_test_now_ms())) <= 0)
				continue;
			for (unsigned int i = 0; i < NPORTS; i++) {
				union ferry_sockaddr from;
				socklen_t fl = sizeof(from);
				size_t len = payload_len(i, r);
				ssize_t n;

				if (!(pfd[i].revents & POLLIN))
					continue;
				while ((n = recvfrom(pfd[i].fd, in, sizeof(in), 0, &from.sa, &fl)) >= 0) {
					make_payload(out, i, r, len);
					if (got[i])
						fail_msg(res, "peer: a second echo on flow %u in round %u (%ld bytes)", i, r, n);
					else if (!ferry_sockaddr_equal(&from, &host))
						fail_msg(res, "peer: echo on flow %u round %u from another address (%ld)", i,
							 r, 0);
					else if ((size_t)n != len || memcmp(in, out, len))
						fail_msg(res, "peer: echo on flow %u round %u not byte-exact (%ld bytes)", i,
							 r, n);
					else
						res->echoed++;
					if (!got[i])
						pending--;
					got[i] = true;
					fl = sizeof(from);
				}
			}
		}
		for (unsigned int i = 0; i < NPORTS; i++)
			if (!got[i]) {
				res->missing++;
				if (!res->msg[0])
					snprintf(res->msg, sizeof(res->msg), "peer: no echo on flow %u in round %u", i, r);
			}
	}
out:
	for (unsigned int i = 0; i < NPORTS; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
}

/* Forks the peer; its result comes back through result_fd. */
static void start_peer(int family, uint16_t svc_port)
{
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "a pipe");
	fx.child = fork();
	cr_assert_geq(fx.child, 0, "fork: %s", strerror(errno));
	if (fx.child == 0) {
		struct peer_result res;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		if (ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER))
			_exit(10);
		usleep(50 * 1000); /* let the parent enter its reactor loop */
		peer_traffic(family, svc_port, &res);
		_exit(write(p[1], &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 11);
	}
	close(p[1]);
	result_fd = p[0];
}

/* Runs the reactor until the peer exits (bounded); returns its report. */
static void run_peer(struct peer_result *res)
{
	int st = -1;

	ferry_test_engine_fx_run_peer(&fx, RUN_MS, &st);
	cr_assert_eq(fx.child, -1, "expected the peer to finish within %d ms", RUN_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected the peer to exit 0, status 0x%x", st);
	cr_assert_eq(read(result_fd, res, sizeof(*res)), (ssize_t)sizeof(*res), "expected the peer's report");
	cr_log_info("peer: sent %u, echoed %u, bad %u, missing %u", res->sent, res->echoed, res->bad, res->missing);
}

static void expect_peer_all_echoed(const struct peer_result *res)
{
	cr_expect_eq(res->sent, NPORTS * ROUNDS, "expected the peer to send %d datagrams, it sent %u (%s)",
		     NPORTS * ROUNDS, res->sent, res->msg);
	cr_expect_eq(res->echoed, NPORTS * ROUNDS,
		     "expected all %d datagrams echoed byte-exact, %u were (bad %u, missing %u; first: %s)",
		     NPORTS * ROUNDS, res->echoed, res->bad, res->missing, res->msg);
}

/* ---- the service side ------------------------------------------------------------------------ */

/* Checks each datagram against its source port, counts it, and echoes the batch from the service. */
static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int n)
{
	const struct ferryd_service *svc = user;
	static uint8_t want[MAX_LEN];

	for (unsigned int k = 0; k < n; k++) {
		const uint8_t *p = ferry_iobuf_window(bufs[k]);
		size_t len = ferry_iobuf_length(bufs[k]);
		unsigned int flow, round, port;

		port = srcs[k].sa.sa_family == AF_INET ? ntohs(srcs[k].in4.sin_port) : ntohs(srcs[k].in6.sin6_port);
		if (len < HDR_LEN || p[0] != 'F' || p[1] != 'Q') {
			seen.bad++;
			continue;
		}
		flow = (unsigned int)p[2] << 8 | p[3];
		round = (unsigned int)p[4] << 8 | p[5];
		if (flow >= NPORTS || round >= ROUNDS || port != PEER_PORT_BASE + flow || len != payload_len(flow, round)) {
			if (!seen.bad++)
				snprintf(seen.first_bad, sizeof(seen.first_bad),
					 "flow %u round %u from port %u, %zu bytes", flow, round, port, len);
			continue;
		}
		make_payload(want, flow, round, len);
		if (memcmp(p, want, len)) {
			if (!seen.bad++)
				snprintf(seen.first_bad, sizeof(seen.first_bad), "flow %u round %u: payload differs",
					 flow, round);
			continue;
		}
		seen.count[flow][round]++;
		seen.total++;
	}
	seen.echo_accepted += fx.e->ops->send(fx.e, svc, bufs, srcs, n);
}

static void one_service(struct ferryd_service *svc, int family)
{
	memset(svc, 0, sizeof(*svc));
	snprintf(svc->name, sizeof(svc->name), "mq%d", family == AF_INET ? 4 : 6);
	ferry_testns_addr(FERRY_TESTNS_HOST, family, SVC_PORT, &svc->addr);
	svc->cb = on_batch;
	svc->user = svc;
}

static void expect_every_datagram_once(void)
{
	unsigned int missing = 0, dup = 0;

	for (unsigned int i = 0; i < NPORTS; i++)
		for (unsigned int r = 0; r < ROUNDS; r++) {
			missing += seen.count[i][r] == 0;
			dup += seen.count[i][r] > 1;
		}
	cr_expect_eq(seen.bad, 0, "expected every datagram intact and from its flow's port, %" PRIu64 " were not (%s)",
		     seen.bad, seen.first_bad);
	cr_expect_eq(missing, 0, "expected every one of %d datagrams received, %u missing", NPORTS * ROUNDS, missing);
	cr_expect_eq(dup, 0, "expected each datagram received once, %u came twice", dup);
	cr_expect_eq(seen.echo_accepted, seen.total, "expected every echo accepted by the engine: %" PRIu64 " of %" PRIu64,
		     seen.echo_accepted, seen.total);
}

/* Drains, checks the frames, reads every queue; frees the engine and checks nothing is left on fh0. */
static void finish_xdp(struct ferryd_xdp_queue_stats *qs, unsigned int nq, struct ferryd_stats *st, uint64_t *xdp)
{
	int ifindex = (int)if_nametoindex(FERRY_TESTNS_HOST_IF);
	__u32 prog_id = 1;

	fx.e->ops->drain(fx.e);
	fx.e->ops->get_stats(fx.e, st);
	cr_expect_eq(fx.e->ops->xdp_counters(fx.e, xdp), 0, "expected the XDP program's counters");
	cr_expect_eq(ferryd_engine_check_frames(fx.e), 0, "expected the frame accounting of every queue balanced");
	for (unsigned int q = 0; q < nq; q++) {
		cr_assert_eq(ferryd_xdp_queue_stats(fx.e, q, &qs[q]), 0, "expected counters of queue %u", q);
		cr_expect_eq(qs[q].frames_free + qs[q].frames_kernel + qs[q].frames_user + qs[q].frames_tx,
			     qs[q].frames_total, "expected queue %u's frames to add up", q);
		cr_expect_eq(qs[q].frames_user + qs[q].frames_tx, 0,
			     "expected no frame of queue %u with a handler or on TX after drain", q);
		cr_log_info("queue %u: rx %" PRIu64 " in %" PRIu64 " batches, tx completed %" PRIu64, q,
			    qs[q].rx_packets, qs[q].rx_batches, qs[q].tx_completed);
	}
	cr_expect_eq(ferryd_xdp_queue_stats(fx.e, nq, &qs[0]) == -ENOENT && ferryd_xdp_queue_stats(fx.e, 0, &qs[0]) == 0,
		     true, "expected no queue %u", nq);
	fx.e->ops->free(fx.e);
	fx.e = NULL;
	cr_assert_gt(ifindex, 0);
	cr_assert_eq(bpf_xdp_query_id(ifindex, 0, &prog_id), 0, "querying XDP on fh0");
	cr_expect_eq(prog_id, 0, "expected no XDP program left on fh0 after free (found id %u)", prog_id);
}

static void start_xdp(struct ferryd_service *svc, unsigned int nq)
{
	char why[256] = "";
	int err;

	fx.cfg.queues = nq;
	err = ferryd_xdp_engine_new(fx.r, fx.iface, &fx.cfg, svc, 1, &fx.e, why, sizeof(why));
	cr_assert_eq(err, 0, "expected the AF_XDP engine on %u queues: %s (%s)", nq, strerror(-err), why);
	cr_log_info("engine: %s", fx.e->describe);
}

/* ---- (1) the engine on every queue --------------------------------------------------------- */

struct mq_case {
	unsigned int queues;
	int family;
};

static struct mq_case mq_cases[] = {
	{ 2, AF_INET },
	{ 2, AF_INET6 },
	{ 4, AF_INET },
	{ 4, AF_INET6 },
};

ParameterizedTestParameters(xdp_multiqueue, flows_spread_over_every_queue)
{
	return cr_make_param_array(struct mq_case, mq_cases, sizeof(mq_cases) / sizeof(mq_cases[0]));
}

/* The peer's hash spreads 64 flows over the queues: every queue's socket receives, each echo leaves on its queue. */
ParameterizedTest(struct mq_case *c, xdp_multiqueue, flows_spread_over_every_queue, .fini = teardown, .timeout = 90)
{
	struct ferryd_xdp_queue_stats qs[4];
	uint64_t xdp[FERRY_XDP_NCOUNTERS], sum = 0;
	struct ferryd_service svc;
	struct peer_result res;
	struct ferryd_stats st;

	setup_queues(c->queues);
	ferry_test_need_af_xdp();
	one_service(&svc, c->family);
	start_xdp(&svc, c->queues);
	start_peer(c->family, SVC_PORT);
	run_peer(&res);
	finish_xdp(qs, c->queues, &st, xdp);

	expect_peer_all_echoed(&res);
	expect_every_datagram_once();
	for (unsigned int q = 0; q < c->queues; q++) {
		sum += qs[q].rx_packets;
		cr_expect_gt(qs[q].rx_packets, 0, "expected queue %u of %u to receive some of the %d flows, it got none",
			     q, c->queues, NPORTS);
		cr_expect_eq(qs[q].tx_completed, qs[q].rx_packets,
			     "expected queue %u to send as many echoes (%" PRIu64 ") as it received (%" PRIu64 ")", q,
			     qs[q].tx_completed, qs[q].rx_packets);
	}
	cr_expect_eq(sum, NPORTS * ROUNDS, "expected the queues' receive counts to add up to %d, got %" PRIu64,
		     NPORTS * ROUNDS, sum);
	cr_expect_eq(st.rx_via_socket, 0, "expected nothing through the kernel's socket, got %" PRIu64, st.rx_via_socket);
	cr_expect_eq(st.tx_via_socket, 0, "expected no echo through the kernel, got %" PRIu64, st.tx_via_socket);
	cr_expect_eq(xdp[FERRY_XDP_PASS_NO_SOCKET], 0, "expected a socket on every queue that received, "
		     "the program passed %" PRIu64 " for lack of one", xdp[FERRY_XDP_PASS_NO_SOCKET]);
	cr_expect_eq(xdp[FERRY_XDP_REDIRECTED], NPORTS * ROUNDS, "expected %d redirected by the program, got %" PRIu64,
		     NPORTS * ROUNDS, xdp[FERRY_XDP_REDIRECTED]);
}

/* XPS on the peer sends every flow out of TX queue 3: the host's queue 3 alone receives and answers. */
Test(xdp_multiqueue, xps_steers_every_flow_to_queue_3, .fini = teardown, .timeout = 90)
{
	struct ferryd_xdp_queue_stats qs[4];
	uint64_t xdp[FERRY_XDP_NCOUNTERS];
	struct ferryd_service svc;
	struct peer_result res;
	struct ferryd_stats st;

	setup_queues(4);
	ferry_test_need_af_xdp();
	cr_assert_eq(steer_peer_to(4, 3), 0, "expected to map every CPU of the peer to fp0's TX queue 3");
	one_service(&svc, AF_INET);
	start_xdp(&svc, 4);
	start_peer(AF_INET, SVC_PORT);
	run_peer(&res);
	finish_xdp(qs, 4, &st, xdp);

	expect_peer_all_echoed(&res);
	expect_every_datagram_once();
	for (unsigned int q = 0; q < 3; q++)
		cr_expect_eq(qs[q].rx_packets, 0, "expected nothing on queue %u (XPS sends all to 3), got %" PRIu64, q,
			     qs[q].rx_packets);
	cr_expect_eq(qs[3].rx_packets, NPORTS * ROUNDS, "expected all %d datagrams on queue 3, got %" PRIu64,
		     NPORTS * ROUNDS, qs[3].rx_packets);
	cr_expect_eq(qs[3].tx_completed, NPORTS * ROUNDS, "expected all echoes sent on queue 3, got %" PRIu64,
		     qs[3].tx_completed);
}

/* Sockets on queues 0-1 of a 4-queue veth: what arrives on 2-3 the program passes, the kernel socket delivers. */
Test(xdp_multiqueue, queues_without_socket_go_through_the_kernel, .fini = teardown, .timeout = 90)
{
	struct ferryd_xdp_queue_stats qs[2];
	uint64_t xdp[FERRY_XDP_NCOUNTERS];
	struct ferryd_service svc;
	struct peer_result res;
	struct ferryd_stats st;

	setup_queues(4);
	ferry_test_need_af_xdp();
	one_service(&svc, AF_INET);
	start_xdp(&svc, 2);
	start_peer(AF_INET, SVC_PORT);
	run_peer(&res);
	finish_xdp(qs, 2, &st, xdp);

	expect_peer_all_echoed(&res);
	expect_every_datagram_once();
	cr_expect_gt(xdp[FERRY_XDP_PASS_NO_SOCKET], 0, "expected flows on queues 2-3 passed for lack of a socket");
	cr_expect_eq(st.rx_via_socket, xdp[FERRY_XDP_PASS_NO_SOCKET],
		     "expected the kernel socket to deliver each passed datagram: %" PRIu64 " of %" PRIu64,
		     st.rx_via_socket, xdp[FERRY_XDP_PASS_NO_SOCKET]);
	cr_expect_eq(qs[0].rx_packets + qs[1].rx_packets + st.rx_via_socket, NPORTS * ROUNDS,
		     "expected queue 0 (%" PRIu64 ") + queue 1 (%" PRIu64 ") + kernel (%" PRIu64 ") == %d",
		     qs[0].rx_packets, qs[1].rx_packets, st.rx_via_socket, NPORTS * ROUNDS);
}

/* ---- (3) more queues than the interface has --------------------------------------------------- */

Test(xdp_multiqueue, more_queues_than_the_interface_names_the_queue, .fini = teardown, .timeout = 60)
{
	struct ferryd_service svc;
	int ifindex, err;
	__u32 prog_id = 1;
	char why[256] = "";

	setup_queues(2);
	ferry_test_need_af_xdp();
	one_service(&svc, AF_INET);
	fx.cfg.queues = 3;
	err = ferryd_xdp_engine_new(fx.r, fx.iface, &fx.cfg, &svc, 1, &fx.e, why, sizeof(why));
	cr_assert_lt(err, 0, "expected the engine to refuse 3 queues on a 2-queue veth");
	cr_assert_null(fx.e, "expected no engine on failure");
	cr_log_info("refused: %s", why);
	cr_expect(strstr(why, "queue 2"), "expected the reason to name queue 2: %s", why);
	cr_expect(strstr(why, FERRY_TESTNS_HOST_IF " has 2 receive queues"),
		  "expected the reason to say how many queues fh0 has: %s", why);
	ifindex = (int)if_nametoindex(FERRY_TESTNS_HOST_IF);
	cr_assert_eq(bpf_xdp_query_id(ifindex, 0, &prog_id), 0, "querying XDP on fh0");
	cr_expect_eq(prog_id, 0, "expected no XDP program left on fh0 after the refusal (found id %u)", prog_id);
}

/* ---- the socket engine: N SO_REUSEPORT sockets ------------------------------------------------- */

/* How many UDP sockets of this namespace are bound to port (/proc/net/udp of the calling thread's namespace). */
static int sockets_on_port(uint16_t port)
{
	char line[512], want[16];
	FILE *f = fopen("/proc/thread-self/net/udp", "r");
	int n = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), ":%04X ", port);
	while (fgets(line, sizeof(line), f)) {
		char *local = strchr(line, ':'); /* "  sl: local rem ..." */

		if (local && (local = strchr(local + 1, ':')) && !strncmp(local, want, strlen(want)))
			n++;
	}
	fclose(f);
	return n;
}

Test(xdp_multiqueue, socket_engine_reuseport_group_receives_every_flow, .fini = teardown, .timeout = 90)
{
	struct ferryd_service svc;
	struct peer_result res;
	struct ferryd_stats st;
	char why[256] = "";
	int err;

	setup_queues(4);
	one_service(&svc, AF_INET);
	fx.cfg.mode = FERRYD_MODE_SOCKET;
	fx.cfg.queues = 4;
	err = ferryd_sock_engine_new(fx.r, fx.iface, &fx.cfg, &svc, 1, &fx.e, why, sizeof(why));
	cr_assert_eq(err, 0, "expected the socket engine with 4 queues: %s (%s)", strerror(-err), why);
	cr_log_info("engine: %s", fx.e->describe);
	cr_expect_eq(sockets_on_port(SVC_PORT), 4, "expected 4 SO_REUSEPORT sockets on port %d, found %d", SVC_PORT,
		     sockets_on_port(SVC_PORT));
	start_peer(AF_INET, SVC_PORT);
	run_peer(&res);
	fx.e->ops->drain(fx.e);
	fx.e->ops->get_stats(fx.e, &st);
	expect_peer_all_echoed(&res);
	expect_every_datagram_once();
	cr_expect_eq(st.rx_packets, NPORTS * ROUNDS, "expected the engine to count %d, got %" PRIu64, NPORTS * ROUNDS,
		     st.rx_packets);
}

/* ---- (2) ferryd --queues 2 ------------------------------------------------------------------- */

static const char *read_log(void)
{
	return ferry_test_ferryd_log(&ferryd);
}

Test(xdp_multiqueue, ferryd_two_queues_echoes_and_leaves_nothing, .fini = teardown, .timeout = 90)
{
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--queues", "2", "--frames", "1024",
			       "--handler", "echo", "--service", "mq=198.18.0.1:9300", NULL };
	struct peer_result res;
	const char *log;
	char cmd[256];
	pid_t pid;

	setup_queues(2);
	ferry_test_need_af_xdp();
	ferry_test_ferryd_spawn(&ferryd, &fx.ns, "mq", args);
	ferry_test_ferryd_wait_ready(&ferryd, READY_TIMEOUT_MS);
	cr_assert(strstr(read_log(), "ferryd: ready"), "expected ferryd to start on 2 queues; log:\n%s", read_log());
	cr_assert(strstr(read_log(), "AF_XDP on " FERRY_TESTNS_HOST_IF ", 2 queues"),
		  "expected ferryd to run AF_XDP on 2 queues; log:\n%s", read_log());
	cr_assert_null(strstr(read_log(), "receive queues and only"),
		       "expected no warning about unserved queues with a socket on each; log:\n%s", read_log());
	pid = ferryd.pid;

	/* the flows as the peer's hash spreads them, then all of them steered to queue 1 */
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "entering the peer namespace");
	peer_traffic(AF_INET, SVC_PORT, &res);
	cr_log_info("peer, spread: sent %u, echoed %u, bad %u, missing %u", res.sent, res.echoed, res.bad, res.missing);
	expect_peer_all_echoed(&res);
	cr_assert_eq(steer_peer_to(2, 1), 0, "expected to map every CPU of the peer to fp0's TX queue 1");
	peer_traffic(AF_INET, SVC_PORT, &res);
	cr_log_info("peer, queue 1: sent %u, echoed %u, bad %u, missing %u", res.sent, res.echoed, res.bad, res.missing);
	expect_peer_all_echoed(&res);

	ferry_test_ferryd_signal(&ferryd, SIGTERM);
	ferry_test_ferryd_wait_exit(&ferryd, EXIT_TIMEOUT_MS);
	log = read_log();
	cr_assert_eq(ferryd.pid, -1, "expected ferryd to exit within %d ms of SIGTERM; log:\n%s", EXIT_TIMEOUT_MS, log);
	cr_assert(WIFEXITED(ferryd.status) && WEXITSTATUS(ferryd.status) == 0,
		  "expected exit 0 (frames balanced on both queues), status 0x%x; log:\n%s", ferryd.status, log);
	cr_expect_eq(ferry_test_stats_value(log, "rx_packets"), 2 * NPORTS * ROUNDS, "expected %d received; log:\n%s",
		     2 * NPORTS * ROUNDS, log);
	cr_expect_eq(ferry_test_stats_value(log, "tx_packets"), 2 * NPORTS * ROUNDS, "expected %d echoed; log:\n%s",
		     2 * NPORTS * ROUNDS, log);
	cr_expect_eq(ferry_test_stats_value(log, "rx_via_socket"), 0, "expected every datagram by AF_XDP; log:\n%s",
		     log);
	cr_expect_eq(ferry_test_stats_value(log, "xdp_pass_no_socket"), 0,
		     "expected a socket on both queues (none passed for lack of one); log:\n%s", log);
	cr_expect_eq(ferry_test_stats_value(log, "xdp_redirected"), 2 * NPORTS * ROUNDS,
		     "expected %d redirected; log:\n%s", 2 * NPORTS * ROUNDS, log);
	cr_expect(kill(pid, 0) == -1 && errno == ESRCH, "expected no ferryd process left");

	/* nothing on fh0, nothing of ours pinned */
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_HOST), 0, "entering the host namespace");
	{
		int ifindex = (int)if_nametoindex(FERRY_TESTNS_HOST_IF);
		__u32 prog_id = 1;

		cr_assert_gt(ifindex, 0);
		cr_assert_eq(bpf_xdp_query_id(ifindex, 0, &prog_id), 0, "querying XDP on fh0");
		cr_expect_eq(prog_id, 0, "expected no XDP program on fh0 after SIGTERM (found id %u)", prog_id);
		snprintf(cmd, sizeof(cmd),
			 "test -z \"$(find /sys/fs/bpf -name \"*ferry*\" -o -name \"dispatch-%d-*\" 2>/dev/null)\"",
			 ifindex);
		cr_expect_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_ROOT, "%s", cmd), 0,
			     "expected nothing of ours pinned in /sys/fs/bpf");
	}
}

Test(xdp_multiqueue, fewer_queues_than_the_interface_warns, .fini = teardown, .timeout = 60)
{
	const char *args[] = { "--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--queues", "1", "--frames", "1024",
			       "--handler", "count", "--service", "mq=198.18.0.1:9301", NULL };

	setup_queues(2);
	ferry_test_need_af_xdp();
	ferry_test_ferryd_spawn(&ferryd, &fx.ns, "mq", args);
	ferry_test_ferryd_wait_ready(&ferryd, READY_TIMEOUT_MS);
	cr_assert(strstr(read_log(), "ferryd: ready"), "expected ferryd to start on 1 of 2 queues; log:\n%s",
		  read_log());
	cr_expect(strstr(read_log(), FERRY_TESTNS_HOST_IF " has 2 receive queues and only 1 has an AF_XDP socket"),
		  "expected a warning that queue 1 is served only through the kernel; log:\n%s", read_log());
	ferry_test_ferryd_signal(&ferryd, SIGTERM);
	ferry_test_ferryd_wait_exit(&ferryd, EXIT_TIMEOUT_MS);
	cr_assert_eq(ferryd.pid, -1, "expected ferryd to exit after SIGTERM; log:\n%s", read_log());
	cr_expect(WIFEXITED(ferryd.status) && WEXITSTATUS(ferryd.status) == 0, "expected exit 0, status 0x%x",
		  ferryd.status);
}
