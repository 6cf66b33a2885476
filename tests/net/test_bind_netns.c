/* SPDX-License-Identifier: MIT */
/*
 * ferry_udp_bind's multicast join and ferry_udp_bind_to_interface on the
 * fixture's veth "fh0": a group joined in the host namespace, traffic sent to
 * it from the peer namespace. Group traffic stays on the veth pair between the
 * two namespaces this test creates.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>
#include "netns.h"

static struct ferry_testns ns = { .root_fd = -1, .host_fd = -1, .peer_fd = -1 };

static void ns_teardown(void)
{
	ferry_testns_teardown(&ns);
}

static void ns_up(void)
{
	int err;

	if (!ferry_test_is_root())
		cr_skip_test("needs root to create network namespaces");
	err = ferry_testns_setup(&ns);
	if (err)
		cr_skip_test("could not create the test namespaces: %s", strerror(-err));
}

static void enter(enum ferry_testns_side side)
{
	int err = ferry_testns_enter(&ns, side);

	cr_assert_eq(err, 0, "expected to enter namespace side %d: %s", side, strerror(-err));
}

static void group_addr(int family, const char *group, uint16_t port, union ferry_sockaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET) {
		a->in4.sin_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET, group, &a->in4.sin_addr), 1, "bad group %s", group);
	} else {
		a->in6.sin6_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET6, group, &a->in6.sin6_addr), 1, "bad group %s", group);
	}
}

/* Whether the calling thread's namespace lists group on ifname in /proc/net/igmp{,6}. */
static bool member(int family, const union ferry_sockaddr *g, const char *ifname)
{
	char line[256], want[64], dev[IFNAMSIZ + 1] = "";
	FILE *f = fopen(family == AF_INET ? "/proc/thread-self/net/igmp" : "/proc/thread-self/net/igmp6", "r");
	bool found = false;

	cr_assert_not_null(f, "expected the kernel's group list to be readable");
	if (family == AF_INET) {
		/* "Idx Device : ..." opens an interface's block; its groups follow as raw hex of the address */
		uint32_t raw;

		memcpy(&raw, &g->in4.sin_addr, sizeof(raw));
		snprintf(want, sizeof(want), "%08X", raw);
		while (!found && fgets(line, sizeof(line), f)) {
			char grp[16];

			if (line[0] != '\t' && sscanf(line, "%*d %16s", dev) == 1)
				continue;
			if (sscanf(line, " %15s", grp) == 1 && !strcmp(dev, ifname) && !strcmp(grp, want))
				found = true;
		}
	} else {
		/* "idx dev group-in-32-hex users flags timer" */
		for (int i = 0; i < 16; i++)
			snprintf(want + 2 * i, 3, "%02x", g->in6.sin6_addr.s6_addr[i]);
		while (!found && fgets(line, sizeof(line), f)) {
			char grp[40];

			if (sscanf(line, "%*d %16s %39s", dev, grp) == 2 && !strcmp(dev, ifname) && !strcmp(grp, want))
				found = true;
		}
	}
	fclose(f);
	return found;
}

/* A socket in the peer namespace that sends its multicast out of fp0. */
static int peer_sender(int family)
{
	unsigned int idx;
	int fd, err;

	enter(FERRY_TESTNS_PEER);
	idx = if_nametoindex(FERRY_TESTNS_PEER_IF);
	cr_assert_neq(idx, 0, "expected %s in the peer namespace", FERRY_TESTNS_PEER_IF);
	fd = ferry_udp_bind_any(family);
	cr_assert_geq(fd, 0, "expected a sender in the peer namespace, got %d", fd);
	if (family == AF_INET) {
		struct ip_mreqn mr = { .imr_ifindex = (int)idx };

		err = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr));
	} else {
		err = setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx));
	}
	cr_assert_eq(err, 0, "expected the multicast interface set to %s: %s", FERRY_TESTNS_PEER_IF, strerror(errno));
	return fd; /* the socket keeps the peer namespace after the thread leaves it */
}

/* Sends to the group from the peer until rx gets one datagram (at most 20 tries, 2 s); checks it. */
static void expect_group_traffic(int tx, int rx, const union ferry_sockaddr *g, const char *what)
{
	char msg[64], got[128];
	union ferry_sockaddr src;
	socklen_t slen;

	snprintf(msg, sizeof(msg), "ferry group %s", what);
	for (int i = 0; i < 30; i++) {
		struct pollfd p = { .fd = rx, .events = POLLIN };
		ssize_t n = sendto(tx, msg, strlen(msg), 0, &g->sa, ferry_sockaddr_len(g));

		/*
		 * IPv6 multicast needs the ff00::/8 route the kernel adds only once
		 * the veth's carrier is up, ~100 ms after the fixture's link set up.
		 */
		if (n < 0 && errno == ENETUNREACH && g->sa.sa_family == AF_INET6) {
			usleep(100000);
			continue;
		}
		cr_assert_eq(n, (ssize_t)strlen(msg), "%s: expected the peer to send to the group: %s", what,
			     strerror(errno));
		if (poll(&p, 1, 100) != 1)
			continue;
		slen = sizeof(src);
		n = recvfrom(rx, got, sizeof(got), 0, &src.sa, &slen);
		cr_assert_eq(n, (ssize_t)strlen(msg), "%s: expected the %zu-byte datagram, got %zd", what, strlen(msg), n);
		cr_assert(!memcmp(got, msg, (size_t)n), "%s: expected the bytes sent", what);
		if (g->sa.sa_family == AF_INET) {
			char s[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &src.in4.sin_addr, s, sizeof(s));
			cr_assert_str_eq(s, FERRY_TESTNS_PEER4, "%s: expected it from the peer, got %s", what, s);
		}
		return;
	}
	cr_assert_fail("%s: expected a datagram sent to the group from the peer within 3 s", what);
}

static void multicast_case(int family, const char *group, uint16_t port)
{
	union ferry_sockaddr g;
	int tx, rx;

	ns_up();
	group_addr(family, group, port, &g);
	tx = peer_sender(family);

	enter(FERRY_TESTNS_HOST);
	cr_assert(!member(family, &g, FERRY_TESTNS_HOST_IF), "before the bind: expected %s not joined", group);
	rx = ferry_udp_bind(&g, FERRY_TESTNS_HOST_IF);
	cr_assert_geq(rx, 0, "bind to group %s on %s: expected an fd, got %d (%s)", group, FERRY_TESTNS_HOST_IF, rx,
		      strerror(-rx));
	cr_assert(member(family, &g, FERRY_TESTNS_HOST_IF), "after the bind: expected %s joined on %s (kernel's list)",
		  group, FERRY_TESTNS_HOST_IF);
	expect_group_traffic(tx, rx, &g, group);

	close(rx);
	cr_assert(!member(family, &g, FERRY_TESTNS_HOST_IF), "after close: expected %s left", group);
	close(tx);
}

Test(bind_netns, multicast_ipv4, .fini = ns_teardown, .timeout = 60)
{
	multicast_case(AF_INET, "239.255.77.1", 47701);
}

Test(bind_netns, multicast_ipv6_site_scope, .fini = ns_teardown, .timeout = 60)
{
	multicast_case(AF_INET6, "ff05::77:1", 47702);
}

/* A link-scoped group needs its link: ferry_udp_bind takes it from ifname. */
Test(bind_netns, multicast_ipv6_link_scope, .fini = ns_teardown, .timeout = 60)
{
	multicast_case(AF_INET6, "ff02::77:2", 47703);
}

/*
 * A named interface among several: the join is on that one, not where the
 * routes would take the group. A second veth pair in the host namespace
 * (fhm1/fhm2) carries the multicast routes, so a join that lost the name
 * would land on fhm1 and the peer's datagrams on fh0 would never arrive.
 * (IPv6 looks groups up in the local table first, where the kernel keeps
 * ff00::/8 of every interface: the more specific route goes there.)
 */
static void named_among_several_case(int family, const char *group, uint16_t port)
{
	union ferry_sockaddr g;
	int tx, rx, err;

	ns_up();
	err = ferry_testns_run(&ns, FERRY_TESTNS_HOST,
			       "ip link add fhm1 type veth peer name fhm2 && ip link set fhm1 up && "
			       "ip link set fhm2 up && ip -4 route add 224.0.0.0/4 dev fhm1 && "
			       "ip -6 route add table local ff05::/16 dev fhm1 metric 1");
	cr_assert_eq(err, 0, "expected a second interface with the multicast routes in the host namespace (%d)", err);
	group_addr(family, group, port, &g);
	tx = peer_sender(family);

	enter(FERRY_TESTNS_HOST);
	rx = ferry_udp_bind(&g, FERRY_TESTNS_HOST_IF);
	cr_assert_geq(rx, 0, "bind to group %s on %s: expected an fd, got %d (%s)", group, FERRY_TESTNS_HOST_IF, rx,
		      strerror(-rx));
	cr_assert(member(family, &g, FERRY_TESTNS_HOST_IF), "expected %s joined on the named %s", group,
		  FERRY_TESTNS_HOST_IF);
	cr_assert(!member(family, &g, "fhm1"), "expected %s not joined on fhm1, where the routes go", group);
	expect_group_traffic(tx, rx, &g, group);
	close(rx);
	close(tx);
}

Test(bind_netns, multicast_ipv4_on_the_named_interface_among_several, .fini = ns_teardown, .timeout = 60)
{
	named_among_several_case(AF_INET, "239.255.77.6", 47706);
}

Test(bind_netns, multicast_ipv6_on_the_named_interface_among_several, .fini = ns_teardown, .timeout = 60)
{
	named_among_several_case(AF_INET6, "ff05::77:6", 47707);
}

/* Two sockets on one group and port (SO_REUSEADDR) both get each datagram. */
Test(bind_netns, multicast_two_members_share_the_port, .fini = ns_teardown, .timeout = 60)
{
	union ferry_sockaddr g;
	int tx, rx1, rx2;

	ns_up();
	group_addr(AF_INET, "239.255.77.4", 47704, &g);
	tx = peer_sender(AF_INET);
	enter(FERRY_TESTNS_HOST);
	rx1 = ferry_udp_bind(&g, FERRY_TESTNS_HOST_IF);
	cr_assert_geq(rx1, 0, "first member: expected an fd, got %d", rx1);
	rx2 = ferry_udp_bind(&g, FERRY_TESTNS_HOST_IF);
	cr_assert_geq(rx2, 0, "second member on the same group and port: expected an fd, got %d", rx2);
	expect_group_traffic(tx, rx1, &g, "239.255.77.4");
	/* each send reaches both members: rx2 holds a copy of what rx1 got */
	expect_group_traffic(tx, rx2, &g, "239.255.77.4");
	close(rx1);
	close(rx2);
	close(tx);
}

/* Without ifname the kernel picks the interface by route; with an unknown one it refuses. */
Test(bind_netns, multicast_errors, .fini = ns_teardown, .timeout = 60)
{
	union ferry_sockaddr g;
	int fd;

	ns_up();
	enter(FERRY_TESTNS_HOST);
	group_addr(AF_INET, "239.255.77.5", 47705, &g);
	fd = ferry_udp_bind(&g, FERRY_TESTNS_PEER_IF); /* fp0 lives in the other namespace */
	cr_assert_eq(fd, -ENODEV, "a group on an interface of another namespace: expected -ENODEV, got %d", fd);
	group_addr(AF_INET6, "ff02::77:5", 47705, &g);
	fd = ferry_udp_bind(&g, NULL);
	cr_assert_lt(fd, 0, "a link-scoped group with no link named: expected an error, got fd %d", fd);
}

Test(bind_netns, bind_to_interface_fh0, .fini = ns_teardown, .timeout = 60)
{
	char name[IFNAMSIZ + 8];
	socklen_t len = sizeof(name);
	union ferry_sockaddr host;
	int fd, tx, r;
	char got[32];

	ns_up();
	/* the root namespace has no fh0 */
	fd = ferry_udp_bind_any(AF_INET);
	cr_assert_geq(fd, 0, "expected bind_any");
	r = ferry_udp_bind_to_interface(fd, FERRY_TESTNS_HOST_IF);
	cr_assert_eq(r, -ENODEV, "fh0 from the root namespace: expected -ENODEV, got %d", r);
	close(fd);

	tx = peer_sender(AF_INET);
	enter(FERRY_TESTNS_HOST);
	ferry_testns_addr(FERRY_TESTNS_HOST, AF_INET, 47706, &host);
	fd = ferry_udp_bind(&host, NULL);
	cr_assert_geq(fd, 0, "expected a socket on the host address, got %d", fd);
	r = ferry_udp_bind_to_interface(fd, FERRY_TESTNS_HOST_IF);
	cr_assert_eq(r, 0, "bind_to_interface(fh0) in the host namespace: expected 0, got %d (%s)", r, strerror(-r));
	memset(name, 0, sizeof(name));
	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0, "expected getsockopt to work");
	cr_assert_str_eq(name, FERRY_TESTNS_HOST_IF, "SO_BINDTODEVICE: expected \"fh0\", got \"%s\"", name);
	r = ferry_udp_bind_to_interface(fd, "nosuchif0");
	cr_assert_eq(r, -ENODEV, "an unknown interface: expected -ENODEV, got %d", r);

	/* still bound to fh0, it gets what the peer sends to the host address over the veth */
	for (int i = 0; i < 20; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		cr_assert_eq(sendto(tx, "via fh0", 7, 0, &host.sa, sizeof(host.in4)), 7, "expected the peer to send");
		if (poll(&p, 1, 100) == 1) {
			cr_assert_eq(recv(fd, got, sizeof(got), 0), 7, "expected the 7-byte datagram");
			cr_assert(!memcmp(got, "via fh0", 7), "expected the bytes sent");
			close(fd);
			close(tx);
			return;
		}
	}
	cr_assert_fail("expected the datagram on the socket bound to fh0 within 2 s");
}
