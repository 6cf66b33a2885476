/* SPDX-License-Identifier: MIT */
/*
 * Every receive loop across a veth pair: the sender runs in the peer namespace
 * (a forked child), the loop in the host namespace; IPv4 and IPv6.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "loops_harness.h"
#include "netns.h"

#define BURST 200
#define TIMEOUT_MS 5000
#define RX_PORT 9100
#define TX_PORT 9200

static struct ferry_testns ns;
static pid_t sender = -1;
static int rx_fd = -1, tx_fd = -1;

static void setup(void)
{
	int err;

	ns.root_fd = ns.host_fd = ns.peer_fd = -1;
	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces");
	err = ferry_testns_setup(&ns);
	if (err)
		cr_skip_test("namespace setup failed: %d", err);
}

static void teardown(void)
{
	if (sender > 0) {
		kill(sender, SIGKILL);
		waitpid(sender, NULL, 0);
		sender = -1;
	}
	if (rx_fd >= 0)
		close(rx_fd);
	if (tx_fd >= 0)
		close(tx_fd);
	rx_fd = tx_fd = -1;
	ferry_testns_teardown(&ns);
}

struct ns_param {
	int kind;
	int family;
};

#define NS_PARAMS(kind) { kind, AF_INET }, { kind, AF_INET6 }

ParameterizedTestParameters(loops_netns, veth_burst)
{
	static struct ns_param params[] = {
		NS_PARAMS(LH_RECVFROM), NS_PARAMS(LH_RECVFROM_REP), NS_PARAMS(LH_READ),
		NS_PARAMS(LH_READ_REP), NS_PARAMS(LH_MMSG),	    NS_PARAMS(LH_MMSG_NOSRC),
	};

	return cr_make_param_array(struct ns_param, params, sizeof(params) / sizeof(params[0]));
}

ParameterizedTest(struct ns_param *p, loops_netns, veth_burst, .init = setup, .fini = teardown)
{
	union ferry_sockaddr rx_addr, tx_addr;
	struct lh_burst b = { .want = BURST, .check_src = true };
	const char *name = lh_kind_name(p->kind);
	const char *fam = p->family == AF_INET6 ? "IPv6" : "IPv4";
	int ret, st;

	ferry_testns_addr(FERRY_TESTNS_HOST, p->family, RX_PORT, &rx_addr);
	ferry_testns_addr(FERRY_TESTNS_PEER, p->family, TX_PORT, &tx_addr);

	/* the sending socket belongs to the peer namespace, the receiving one to the host's */
	cr_assert_eq(ferry_testns_enter(&ns, FERRY_TESTNS_PEER), 0, "enter the peer namespace");
	tx_fd = lh_udp_socket(&tx_addr);
	cr_assert_eq(ferry_testns_enter(&ns, FERRY_TESTNS_HOST), 0, "enter the host namespace");
	rx_fd = lh_udp_socket(&rx_addr);
	cr_assert(tx_fd >= 0 && rx_fd >= 0, "%s sockets on the veth pair: expected fds, got %d %d", fam, tx_fd, rx_fd);
	b.src = tx_addr;

	sender = lh_spawn_sender(tx_fd, ns.peer_fd, &rx_addr, BURST);
	cr_assert(sender > 0, "fork of the sender: expected a pid, got %d", (int)sender);
	ret = lh_run_burst(p->kind, rx_fd, &b, false, TIMEOUT_MS);
	st = lh_reap(sender, TIMEOUT_MS);
	sender = -1;

	cr_expect_eq(st, 0, "%s %s: the peer sent all %d datagrams (exit %d)", name, fam, BURST, st);
	cr_expect_eq(ret, FERRY_END_STOPPED, "%s %s: loop should end by its stop, got %d", name, fam, ret);
	cr_expect(!b.timed_out, "%s %s: the burst should arrive before the watchdog (%u of %d)", name, fam, b.got,
		  BURST);
	cr_expect_eq(b.got, BURST, "%s %s: expected all %d datagrams, got %u", name, fam, BURST, b.got);
	cr_expect_eq(b.bad, 0, "%s %s: %u datagrams had wrong bytes or length", name, fam, b.bad);
	cr_expect_eq(b.dup, 0, "%s %s: %u datagrams came twice", name, fam, b.dup);
	cr_expect_eq(b.bad_src, 0, "%s %s: %u datagrams had a source other than the peer", name, fam, b.bad_src);
	cr_expect_eq(b.bad_window, 0, "%s %s: %u windows did not start at lo_min", name, fam, b.bad_window);
}
