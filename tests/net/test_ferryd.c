/* SPDX-License-Identifier: MIT */
/*
 * ferryd end to end: the real binary in the fixture's host namespace, traffic
 * from the peer namespace. Echo (both engines, both families, edge sizes),
 * the kernel's own traffic beside XDP, a counted burst, the socket fallback,
 * and clean detach on SIGTERM and after SIGKILL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "ferryd_proc.h"
#include "netns.h"
#include "testutil.h"

#define ECHO_PORT 9000
#define TCP_PORT 9100
#define UDP_OTHER_PORT 9200
#define READY_TIMEOUT_MS 15000
#define EXIT_TIMEOUT_MS 10000

/* What one test runs: the namespaces, ferryd (its pid, log and wait status). */
static struct {
	struct ferry_testns ns;
	struct ferry_test_ferryd d;
} fx = {.d = FERRY_TEST_FERRYD_INIT};

static void teardown(void)
{
	ferry_test_ferryd_stop(&fx.d);
	ferry_testns_teardown(&fx.ns);
}

static void env_up(void)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root for network namespaces and XDP");
	err = ferry_testns_setup(&fx.ns);
	cr_assert_eq(err, 0, "expected the namespace fixture to come up, got %s", strerror(-err));
	fx.d.pid = -1;
}

/* The whole log so far (NUL-terminated; cut at FERRY_TEST_FERRYD_LOG_MAX). */
static const char *read_log(void)
{
	return ferry_test_ferryd_log(&fx.d);
}

/* Starts ferryd in the host namespace with args (NULL-terminated) appended; does not wait. */
static void spawn_ferryd(const char *const *args)
{
	ferry_test_ferryd_spawn(&fx.d, &fx.ns, "ferryd", args);
}

/* Waits until ferryd logs "ready": 0; or it exited first: -1 (fx.d.status set). */
static int wait_ready(void)
{
	int r = ferry_test_ferryd_wait_ready(&fx.d, READY_TIMEOUT_MS);

	if (r == -ETIMEDOUT)
		cr_assert_fail("expected ferryd to log 'ferryd: ready' within %d ms; log:\n%s", READY_TIMEOUT_MS,
			       read_log());
	return r == 0 ? 0 : -1;
}

static void start_ferryd(const char *const *args)
{
	spawn_ferryd(args);
	cr_assert_eq(wait_ready(), 0, "expected ferryd to start, it exited (status 0x%x); log:\n%s", fx.d.status,
		     read_log());
}

/* Waits (bounded) for ferryd to exit; returns its wait status. */
static int wait_exit(void)
{
	if (ferry_test_ferryd_wait_exit(&fx.d, EXIT_TIMEOUT_MS) == 0)
		return fx.d.status;
	cr_assert_fail("expected ferryd to exit within %d ms; log:\n%s", EXIT_TIMEOUT_MS, read_log());
	return -1;
}

static int64_t ask_stats(const char *key)
{
	return ferry_test_ferryd_ask(&fx.d, key);
}

static bool xdp_attached(void)
{
	return ferry_test_xdp_attached(&fx.ns);
}

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms);
}

/* A UDP socket of family in the current namespace on an ephemeral port. */
static int udp_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "expected a UDP socket: %s", strerror(errno));
	return fd;
}

/* From the peer: len bytes to the host's service on port, back byte-exact from it (ferry_test_expect_echo). */
static void expect_echo(int family, uint16_t port, size_t len)
{
	union ferry_sockaddr dst;

	ferry_testns_addr(FERRY_TESTNS_HOST, family, port, &dst);
	ferry_test_expect_echo(&fx.d, &dst, len);
}

/* ------------------------------------------------------------------ echo */

/* Arrays, not pointers: Criterion hands parameters to a freshly started worker. */
struct echo_case {
	char mode[8];
	unsigned int mtu;
};

static struct echo_case echo_cases[] = {
	{"socket", 1500}, {"auto", 1500}, {"xdp", 1500}, {"socket", 9000}, {"auto", 9000}, {"xdp", 9000},
};

ParameterizedTestParameters(ferryd_echo, every_size_whole)
{
	return cr_make_param_array(struct echo_case, echo_cases, sizeof(echo_cases) / sizeof(echo_cases[0]));
}

/* The two services every echo test configures. */
#define ECHO_SERVICES "--service", "e4=198.18.0.1:9000", "--service", "e6=[2001:2::1]:9000"

/*
 * Every legal datagram comes back whole, in every mode, at a 1500- and a
 * 9000-byte MTU: small ones through AF_XDP, those larger than an AF_XDP
 * frame or than the MTU (fragmented) through the kernel's path, up to the
 * largest IPv4 datagram (65507 bytes). At MTU 9000 the XDP program must still
 * attach (it takes multi-buffer frames), so auto mode stays on AF_XDP.
 */
ParameterizedTest(struct echo_case *c, ferryd_echo, every_size_whole, .fini = teardown, .timeout = 120)
{
	static const size_t sizes[] = {0, 1, 18, 1472, 4096, 5000, 20000, 65507};
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", c->mode, "--handler", "echo",
			      ECHO_SERVICES, NULL};
	bool xdp = c->mode[0] != 's';

	env_up();
	if (c->mtu != 1500)
		cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_ROOT,
					      "ip -n %s link set " FERRY_TESTNS_HOST_IF " mtu %u && "
					      "ip -n %s link set " FERRY_TESTNS_PEER_IF " mtu %u",
					      fx.ns.host, c->mtu, fx.ns.peer, c->mtu),
			     0, "expected MTU %u on the veth pair", c->mtu);
	start_ferryd(args);
	cr_assert(strstr(read_log(), xdp ? "AF_XDP on fh0" : "socket mode"),
		  "expected ferryd %s at MTU %u to run the %s engine; log:\n%s", c->mode, c->mtu,
		  xdp ? "AF_XDP" : "socket", read_log());
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		expect_echo(AF_INET, ECHO_PORT, sizes[i]);
		expect_echo(AF_INET6, ECHO_PORT, sizes[i]);
	}
	cr_assert_eq(ask_stats("rx_packets"), ask_stats("tx_packets"),
		     "expected every datagram received to be echoed; log:\n%s", read_log());
	cr_assert_eq(ask_stats("tx_dropped"), 0, "expected no datagram dropped; log:\n%s", read_log());
	cr_assert_eq(ask_stats("rx_truncated"), 0, "expected no datagram cut; log:\n%s", read_log());
	if (xdp) {
		/* 0, 1 and 18 bytes of both families at least went by AF_XDP, the biggest by the kernel */
		cr_assert_geq(ask_stats("xdp_redirected"), 6, "expected the small datagrams by AF_XDP; log:\n%s",
			      read_log());
		cr_assert_geq(ask_stats("rx_via_socket"), 2, "expected the biggest through the kernel; log:\n%s",
			      read_log());
		cr_assert_geq(ask_stats("tx_via_socket"), 2, "expected their replies through the kernel; log:\n%s",
			      read_log());
	} else {
		cr_assert_eq(ask_stats("rx_via_socket"), 0, "expected no inner socket in socket mode; log:\n%s",
			     read_log());
	}
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(wait_exit(), 0, "expected ferryd to exit 0 on SIGTERM; log:\n%s", read_log());
}

/* ------------------------------------------------------ kernel traffic */

/*
 * Our own "ping -c count -W 1" (iputils is not installed on a fresh machine):
 * ICMP/ICMPv6 echo requests on a raw socket in the current namespace.
 * Returns how many replies came back, each within timeout_ms.
 */
static int ping(int family, const char *dst_str, int count, int timeout_ms)
{
	uint16_t id = (uint16_t)(getpid() ^ (uint16_t)ferry_test_now_ms());
	union ferry_sockaddr dst;
	int fd, replies = 0;

	memset(&dst, 0, sizeof(dst));
	dst.sa.sa_family = (sa_family_t)family;
	if (family == AF_INET)
		inet_pton(AF_INET, dst_str, &dst.in4.sin_addr);
	else
		inet_pton(AF_INET6, dst_str, &dst.in6.sin6_addr);
	fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	cr_assert_geq(fd, 0, "expected a raw ICMP socket: %s", strerror(errno));
	for (int seq = 1; seq <= count; seq++) {
		uint8_t pkt[64], in[1500];
		uint64_t deadline = ferry_test_now_ms() + (uint64_t)timeout_ms;

		memset(pkt, 0xab, sizeof(pkt));
		pkt[0] = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
		pkt[1] = 0;
		pkt[2] = pkt[3] = 0;
		memcpy(pkt + 4, &id, 2);
		pkt[6] = (uint8_t)(seq >> 8);
		pkt[7] = (uint8_t)seq;
		if (family == AF_INET) {
			uint16_t c = htons((uint16_t)~ferry_test_sum16(0, pkt, sizeof(pkt)));

			memcpy(pkt + 2, &c, 2);
		} /* ICMPv6: the kernel computes the checksum of raw ICMPv6 sockets */
		cr_assert_eq(sendto(fd, pkt, sizeof(pkt), 0, &dst.sa, ferry_sockaddr_len(&dst)), (ssize_t)sizeof(pkt),
			     "expected to send an echo request to %s: %s", dst_str, strerror(errno));
		while (ferry_test_now_ms() < deadline) {
			ssize_t r;
			const uint8_t *icmp = in;

			if (wait_readable(fd, (int)(deadline - ferry_test_now_ms())) <= 0)
				break;
			r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			if (r <= 0)
				continue;
			if (family == AF_INET) {
				size_t ihl = (size_t)(in[0] & 0xf) * 4;

				if ((size_t)r < ihl + 8)
					continue;
				icmp = in + ihl;
				r -= (ssize_t)ihl;
			}
			if (r >= 8 && icmp[0] == (family == AF_INET ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY) &&
			    !memcmp(icmp + 4, &id, 2) && icmp[6] == (uint8_t)(seq >> 8) && icmp[7] == (uint8_t)seq) {
				replies++;
				break;
			}
		}
	}
	close(fd);
	return replies;
}

/* A TCP connection from the peer to a listener of the host, with a few bytes across. */
static void expect_tcp(int family, uint16_t port)
{
	union ferry_sockaddr a;
	int lfd, cfd, afd, one = 1, soerr = -1;
	socklen_t sl = sizeof(soerr);
	struct pollfd p;
	char buf[16] = "";

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_HOST), 0, "expected to enter the host namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, family, port, &a);
	lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(lfd, &a.sa, ferry_sockaddr_len(&a)), 0, "expected a TCP listener on the host: %s",
		     strerror(errno));
	cr_assert_eq(listen(lfd, 4), 0, "expected listen to work");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	cfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	connect(cfd, &a.sa, ferry_sockaddr_len(&a));
	p = (struct pollfd){.fd = cfd, .events = POLLOUT};
	cr_assert_eq(poll(&p, 1, 3000), 1, "expected the TCP connect from the peer to finish within 3 s");
	getsockopt(cfd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	cr_assert_eq(soerr, 0, "expected the TCP connect to succeed, got %s", strerror(soerr));
	cr_assert_eq(wait_readable(lfd, 3000), 1, "expected the host's listener to see the connection");
	afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0, "expected accept to work: %s", strerror(errno));
	cr_assert_eq(send(cfd, "ferry", 5, MSG_NOSIGNAL), 5, "expected to send over TCP");
	cr_assert_eq(wait_readable(afd, 3000), 1, "expected the bytes to arrive over TCP");
	cr_assert_eq(recv(afd, buf, sizeof(buf), 0), 5, "expected 5 bytes over TCP");
	cr_assert_eq(memcmp(buf, "ferry", 5), 0, "expected the bytes sent over TCP");
	close(afd);
	close(cfd);
	close(lfd);
}

/* UDP from the peer to a host port that is no service: the kernel delivers it, and the answer comes back. */
static void expect_kernel_udp(int family, uint16_t port)
{
	union ferry_sockaddr a, from;
	socklen_t fl = sizeof(from);
	int hfd, pfd;
	char buf[16] = "";

	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_HOST), 0, "expected to enter the host namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, family, port, &a);
	hfd = udp_socket(family);
	cr_assert_eq(bind(hfd, &a.sa, ferry_sockaddr_len(&a)), 0, "expected a UDP socket on the host: %s",
		     strerror(errno));
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	pfd = udp_socket(family);
	cr_assert_eq(sendto(pfd, "kernel", 6, 0, &a.sa, ferry_sockaddr_len(&a)), 6, "expected to send UDP");
	cr_assert_eq(wait_readable(hfd, 2000), 1, "expected the kernel socket on port %u to get the datagram", port);
	cr_assert_eq(recvfrom(hfd, buf, sizeof(buf), 0, &from.sa, &fl), 6, "expected 6 bytes");
	cr_assert_eq(sendto(hfd, "back", 4, 0, &from.sa, fl), 4, "expected to answer");
	cr_assert_eq(wait_readable(pfd, 2000), 1, "expected the answer to reach the peer");
	cr_assert_eq(recv(pfd, buf, sizeof(buf), 0), 4, "expected the 4-byte answer");
	close(hfd);
	close(pfd);
}

struct mode_case {
	char mode[8];
};

static struct mode_case mode_cases[] = {{"xdp"}, {"socket"}};

ParameterizedTestParameters(ferryd_kernel, traffic_beside_ferryd)
{
	return cr_make_param_array(struct mode_case, mode_cases, sizeof(mode_cases) / sizeof(mode_cases[0]));
}

ParameterizedTest(struct mode_case *c, ferryd_kernel, traffic_beside_ferryd, .fini = teardown, .timeout = 90)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", c->mode, "--handler", "echo",
			      ECHO_SERVICES, NULL};
	char out[4096];

	env_up();
	start_ferryd(args);
	cr_assert_eq(xdp_attached(), c->mode[0] == 'x', "expected an XDP program on fh0 exactly in xdp mode");

	/* ping both ways of addressing, then again after the peer forgets the host's MAC (ARP / ND). */
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	cr_assert_eq(ping(AF_INET, FERRY_TESTNS_HOST4, 2, 1000), 2, "expected 2 of 2 IPv4 pings answered");
	cr_assert_eq(ping(AF_INET6, FERRY_TESTNS_HOST6, 2, 1000), 2, "expected 2 of 2 IPv6 pings answered");
	cr_assert_eq(ferry_testns_run(&fx.ns, FERRY_TESTNS_PEER,
				      "ip neigh del " FERRY_TESTNS_HOST4 " dev " FERRY_TESTNS_PEER_IF " && "
				      "ip -6 neigh del " FERRY_TESTNS_HOST6 " dev " FERRY_TESTNS_PEER_IF),
		     0, "expected to flush the peer's neighbour entries for the host");
	cr_assert_eq(ping(AF_INET, FERRY_TESTNS_HOST4, 2, 1000), 2, "expected 2 of 2 IPv4 pings after ARP");
	cr_assert_eq(ping(AF_INET6, FERRY_TESTNS_HOST6, 2, 1000), 2, "expected 2 of 2 IPv6 pings after ND");
	ferry_test_capture(out, sizeof(out), "ip -n %s neigh show dev " FERRY_TESTNS_PEER_IF, fx.ns.peer);
	cr_assert(strstr(out, FERRY_TESTNS_HOST4 " lladdr"), "expected ARP to have resolved the host: %s", out);
	cr_assert(strstr(out, FERRY_TESTNS_HOST6 " lladdr"), "expected ND to have resolved the host: %s", out);
	cr_assert_not(strstr(out, "PERMANENT"), "expected the entries to be learnt, not the fixture's: %s", out);

	expect_tcp(AF_INET, TCP_PORT);
	expect_tcp(AF_INET6, TCP_PORT);
	expect_kernel_udp(AF_INET, UDP_OTHER_PORT);
	expect_kernel_udp(AF_INET6, UDP_OTHER_PORT);

	/* and ferryd still serves its own port */
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	expect_echo(AF_INET, ECHO_PORT, 18);
	expect_echo(AF_INET6, ECHO_PORT, 18);
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(wait_exit(), 0, "expected ferryd to exit 0 on SIGTERM; log:\n%s", read_log());
}

/* --------------------------------------------------------------- burst */

#define BURST_COUNT 100000
#define BURST_PPS 40000
#define BURST_BATCH 32
#define BURST_TIME_MS 20000

ParameterizedTestParameters(ferryd_burst, every_datagram_counted)
{
	return cr_make_param_array(struct mode_case, mode_cases, sizeof(mode_cases) / sizeof(mode_cases[0]));
}

/* 100000 datagrams paced at 40 kpps from the peer; ferryd's final stats count every one, and frames balance. */
ParameterizedTest(struct mode_case *c, ferryd_burst, every_datagram_counted, .fini = teardown, .timeout = 120)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", c->mode, "--handler", "count",
			      "--service", "c=198.18.0.1:9000", NULL};
	static uint8_t payload[BURST_BATCH][18];
	struct mmsghdr msgs[BURST_BATCH];
	struct iovec iov[BURST_BATCH];
	union ferry_sockaddr dst;
	unsigned int sent = 0;
	uint64_t start, deadline;
	int64_t got = -1;
	int fd, st;

	env_up();
	start_ferryd(args);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, ECHO_PORT, &dst);
	fd = udp_socket(AF_INET);
	cr_assert_eq(connect(fd, &dst.sa, ferry_sockaddr_len(&dst)), 0, "expected to connect the sender");
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BURST_BATCH; i++) {
		memset(payload[i], 'b', sizeof(payload[i]));
		iov[i] = (struct iovec){.iov_base = payload[i], .iov_len = sizeof(payload[i])};
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	start = ferry_test_now_ms();
	deadline = start + BURST_TIME_MS;
	while (sent < BURST_COUNT && ferry_test_now_ms() < deadline) {
		uint64_t due = start + (uint64_t)sent * 1000 / BURST_PPS;
		unsigned int n = BURST_COUNT - sent < BURST_BATCH ? BURST_COUNT - sent : BURST_BATCH;
		int r;

		if (ferry_test_now_ms() < due) {
			usleep(500);
			continue;
		}
		r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
		if (r > 0)
			sent += (unsigned int)r;
		else if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			cr_assert_fail("sendmmsg failed after %u datagrams: %s", sent, strerror(errno));
		else
			usleep(200);
	}
	cr_assert_eq(sent, BURST_COUNT, "expected to send %d datagrams within %d ms, sent %u", BURST_COUNT,
		     BURST_TIME_MS, sent);
	close(fd);
	/* Let ferryd catch up (bounded), then stop it and read its final count. */
	deadline = ferry_test_now_ms() + 5000;
	while (ferry_test_now_ms() < deadline && (got = ask_stats("rx_packets")) < BURST_COUNT)
		usleep(100000);
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	st = wait_exit();
	got = ferry_test_stats_value(read_log(), "rx_packets");
	cr_log_info("ferryd %s mode: %" PRId64 " of %d datagrams counted in %" PRIu64 " ms", c->mode, got,
		    BURST_COUNT, ferry_test_now_ms() - start);
	cr_assert_eq(got, BURST_COUNT, "expected the final stats to count all %d datagrams, got %" PRId64 "; log:\n%s",
		     BURST_COUNT, got, read_log());
	cr_assert_eq(ferry_test_stats_value(read_log(), "handler_datagrams"), BURST_COUNT,
		     "expected the count handler to see all %d datagrams", BURST_COUNT);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "expected ferryd to exit 0 (frame accounting balanced), status 0x%x; log:\n%s", st, read_log());
}

/* ------------------------------------------------------------ fallback */

/* fh0 (veth) has one receive queue: AF_XDP cannot bind queues 1..3, so XDP is refused. */
Test(ferryd_fallback, auto_mode_falls_back_to_sockets, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "auto", "--queues", "4", "--handler",
			      "echo", ECHO_SERVICES, NULL};
	const char *log;

	env_up();
	start_ferryd(args);
	log = read_log();
	cr_assert(strstr(log, "falling back to sockets"), "expected the log to say it falls back; log:\n%s", log);
	cr_assert(strstr(log, "AF_XDP engine unavailable ("), "expected the log to give the reason; log:\n%s", log);
	cr_assert(strstr(log, "socket mode"), "expected the socket engine to run; log:\n%s", log);
	cr_assert_not(xdp_attached(), "expected no XDP program left on fh0 after the refused attach");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	expect_echo(AF_INET, ECHO_PORT, 18);
	expect_echo(AF_INET6, ECHO_PORT, 1);
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(wait_exit(), 0, "expected ferryd to exit 0 on SIGTERM; log:\n%s", read_log());
}

Test(ferryd_fallback, xdp_mode_fails_with_reason, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--queues", "4", "--handler",
			      "echo", ECHO_SERVICES, NULL};
	const char *log;
	int st;

	env_up();
	spawn_ferryd(args);
	cr_assert_eq(wait_ready(), -1, "expected ferryd --mode xdp to refuse to start; log:\n%s", read_log());
	st = fx.d.status;
	log = read_log();
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "expected a non-zero exit status, got 0x%x; log:\n%s", st,
		  log);
	cr_assert(strstr(log, "cannot start the AF_XDP engine: "), "expected the reason in the log; log:\n%s", log);
	cr_assert_not(strstr(log, "ready"), "expected no 'ready' line; log:\n%s", log);
	cr_assert_not(xdp_attached(), "expected no XDP program left on fh0");
}

Test(ferryd_fallback, bad_interface_is_usage_error, .fini = teardown, .timeout = 30)
{
	const char *args[] = {"--interface", "nosuchif0", "--mode", "socket", ECHO_SERVICES, NULL};
	int st;

	env_up();
	spawn_ferryd(args);
	cr_assert_eq(wait_ready(), -1, "expected ferryd to refuse an unknown interface");
	st = fx.d.status;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "expected exit status 2, got 0x%x", st);
	cr_assert(strstr(read_log(), "--interface: 'nosuchif0'"), "expected the option and value in: %s", read_log());
}

/* ------------------------------------------------------------- cleanup */

/* Anything of ours pinned in bpffs: names with "ferry", or libxdp's dispatcher state for fh0. */
static bool bpffs_has_ours(char *out, size_t len)
{
	char idx[64];

	ferry_test_capture(idx, sizeof(idx), "ip netns exec %s cat /sys/class/net/" FERRY_TESTNS_HOST_IF "/ifindex", fx.ns.host);
	idx[strcspn(idx, "\n")] = '\0';
	ferry_test_capture(out, len, "find /sys/fs/bpf -name '*ferry*' -o -name 'dispatch-%s-*' 2>/dev/null", idx);
	return out[0] != '\0';
}

Test(ferryd_cleanup, sigterm_leaves_nothing, .fini = teardown, .timeout = 60)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo",
			      ECHO_SERVICES, NULL};
	char out[4096];
	pid_t pid;

	env_up();
	start_ferryd(args);
	cr_assert(xdp_attached(), "expected an XDP program on fh0 while ferryd runs");
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	expect_echo(AF_INET, ECHO_PORT, 18);
	pid = fx.d.pid;
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(wait_exit(), 0, "expected ferryd to exit 0 on SIGTERM; log:\n%s", read_log());
	cr_assert_not(xdp_attached(), "expected no XDP program on fh0 after SIGTERM");
	cr_assert_not(bpffs_has_ours(out, sizeof(out)), "expected nothing of ours pinned in /sys/fs/bpf: %s", out);
	cr_assert(kill(pid, 0) == -1 && errno == ESRCH, "expected no ferryd process left");
	cr_assert_neq(ferry_test_stats_value(read_log(), "rx_packets"), -1, "expected a final stats line; log:\n%s",
		      read_log());
	/* the XDP program's own counters follow: the echoed datagram was redirected to AF_XDP */
	cr_assert(strstr(read_log(), " xdp_redirected="), "expected xdp_<counter>= in the stats line; log:\n%s",
		  read_log());
	cr_assert_geq(ferry_test_stats_value(read_log(), "xdp_redirected"), 1,
		      "expected xdp_redirected >= 1; log:\n%s", read_log());
	cr_assert_geq(ferry_test_stats_value(read_log(), "xdp_pass_fragment"), 0,
		      "expected every XDP counter printed; log:\n%s", read_log());
}

Test(ferryd_cleanup, restart_after_sigkill, .fini = teardown, .timeout = 90)
{
	const char *args[] = {"--interface", FERRY_TESTNS_HOST_IF, "--mode", "xdp", "--handler", "echo",
			      ECHO_SERVICES, NULL};
	char out[4096];

	env_up();
	start_ferryd(args);
	cr_assert_eq(ferry_testns_enter(&fx.ns, FERRY_TESTNS_PEER), 0, "expected to enter the peer namespace");
	expect_echo(AF_INET, ECHO_PORT, 18);
	ferry_test_ferryd_signal(&fx.d, SIGKILL);
	wait_exit();
	cr_assert(xdp_attached(), "expected the killed ferryd's XDP program to stay on fh0 (nothing detached it)");

	/* A new instance sweeps it and serves again. */
	unlink(fx.d.log);
	start_ferryd(args);
	cr_assert(strstr(read_log(), "removed"), "expected the new ferryd to log what it swept; log:\n%s", read_log());
	expect_echo(AF_INET, ECHO_PORT, 18);
	expect_echo(AF_INET6, ECHO_PORT, 18);
	ferry_test_ferryd_signal(&fx.d, SIGTERM);
	cr_assert_eq(wait_exit(), 0, "expected the new ferryd to exit 0 on SIGTERM; log:\n%s", read_log());
	cr_assert_not(xdp_attached(), "expected no XDP program on fh0 after SIGTERM");
	cr_assert_not(bpffs_has_ours(out, sizeof(out)), "expected nothing of ours pinned in /sys/fs/bpf: %s", out);
}
