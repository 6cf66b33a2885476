/* SPDX-License-Identifier: MIT */
/*
 * ferry_udp_bind, _bind_any and _bind_to_interface on loopback: the socket's
 * options and flags, ephemeral ports, errors, and no fd leaked on any path.
 * (Multicast and real interfaces: tests/net/test_bind_netns.c.)
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>

#include "testutil.h"

static int sockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	cr_assert_eq(getsockopt(fd, level, name, &v, &len), 0, "expected getsockopt(%d, %d) to work: %s", level,
		     name, strerror(errno));
	return v;
}

static uint16_t port_of(int fd, int family)
{
	union ferry_sockaddr a;
	socklen_t len = sizeof(a);

	cr_assert_eq(getsockname(fd, &a.sa, &len), 0, "expected getsockname to work");
	cr_assert_eq(a.sa.sa_family, family, "expected a socket of family %d, got %d", family, a.sa.sa_family);
	return ntohs(family == AF_INET ? a.in4.sin_port : a.in6.sin6_port);
}

/* What every ferry socket is: UDP, non-blocking, close-on-exec. */
static void expect_udp_nonblock_cloexec(int fd, const char *what)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	cr_assert(fl >= 0 && (fl & O_NONBLOCK), "%s: expected O_NONBLOCK", what);
	cr_assert(fdfl >= 0 && (fdfl & FD_CLOEXEC), "%s: expected FD_CLOEXEC", what);
	cr_assert_eq(sockopt_int(fd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM, "%s: expected SOCK_DGRAM", what);
	cr_assert_eq(sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL), IPPROTO_UDP, "%s: expected IPPROTO_UDP", what);
}

static void loopback(int family, uint16_t port, union ferry_sockaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_port = htons(port);
		a->in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(port);
		a->in6.sin6_addr = in6addr_loopback;
	}
}

static void bind_port0(int family)
{
	union ferry_sockaddr a, got;
	socklen_t len = sizeof(got);
	int fd;

	loopback(family, 0, &a);
	fd = ferry_udp_bind(&a, NULL);
	cr_assert_geq(fd, 0, "ferry_udp_bind on loopback port 0: expected an fd, got %d (%s)", fd, strerror(-fd));
	expect_udp_nonblock_cloexec(fd, "ferry_udp_bind");
	cr_assert_eq(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1, "ferry_udp_bind: expected SO_REUSEADDR set");
	cr_assert_eq(getsockname(fd, &got.sa, &len), 0, "expected getsockname to work");
	if (family == AF_INET) {
		cr_assert_eq(got.in4.sin_addr.s_addr, htonl(INADDR_LOOPBACK), "expected bound to 127.0.0.1");
		cr_assert_neq(got.in4.sin_port, 0, "port 0: expected the kernel to pick a port");
	} else {
		cr_assert(IN6_IS_ADDR_LOOPBACK(&got.in6.sin6_addr), "expected bound to ::1");
		cr_assert_neq(got.in6.sin6_port, 0, "port 0: expected the kernel to pick a port");
	}
	close(fd);
}

Test(bind, loopback_ipv4_port0)
{
	bind_port0(AF_INET);
}

Test(bind, loopback_ipv6_port0)
{
	bind_port0(AF_INET6);
}

/* A given port: found free with bind_any, then bound by ferry_udp_bind (retried if another test took it). */
static void bind_given_port(int family)
{
	union ferry_sockaddr a;
	int fd = -EADDRINUSE, second, plain;
	uint16_t port = 0;

	for (int tries = 0; tries < 10 && fd == -EADDRINUSE; tries++) {
		int probe = ferry_udp_bind_any(family);

		cr_assert_geq(probe, 0, "expected bind_any to work");
		port = port_of(probe, family);
		close(probe);
		loopback(family, port, &a);
		fd = ferry_udp_bind(&a, NULL);
	}
	cr_assert_geq(fd, 0, "ferry_udp_bind on loopback port %u: expected an fd, got %d (%s)", port, fd,
		      strerror(-fd));
	cr_assert_eq(port_of(fd, family), port, "expected bound to the given port %u", port);
	cr_assert_eq(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1, "expected SO_REUSEADDR set");

	/* what SO_REUSEADDR buys: a second ferry_udp_bind may share the port; a plain socket may not */
	second = ferry_udp_bind(&a, NULL);
	cr_assert_geq(second, 0, "a second ferry_udp_bind on the same port: expected it to share (SO_REUSEADDR), got %d",
		      second);
	plain = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(plain, 0, "expected a socket");
	cr_assert_neq(bind(plain, &a.sa, family == AF_INET ? sizeof(a.in4) : sizeof(a.in6)), 0,
		      "a socket without SO_REUSEADDR: expected the port refused");
	cr_assert_eq(errno, EADDRINUSE, "expected EADDRINUSE, got %s", strerror(errno));
	close(plain);
	close(second);
	close(fd);
}

Test(bind, loopback_ipv4_given_port)
{
	bind_given_port(AF_INET);
}

Test(bind, loopback_ipv6_given_port)
{
	bind_given_port(AF_INET6);
}

Test(bind, bound_socket_receives)
{
	union ferry_sockaddr a, dst;
	socklen_t len = sizeof(dst);
	char got[16];
	int rx, tx;

	loopback(AF_INET, 0, &a);
	rx = ferry_udp_bind(&a, NULL);
	cr_assert_geq(rx, 0, "expected a bound socket");
	cr_assert_eq(getsockname(rx, &dst.sa, &len), 0, "expected getsockname");
	tx = ferry_udp_bind_any(AF_INET);
	cr_assert_geq(tx, 0, "expected a sender");
	cr_assert_eq(sendto(tx, "ferry", 5, 0, &dst.sa, len), 5, "expected the datagram sent");
	for (int i = 0; i < 200; i++) {
		ssize_t n = recv(rx, got, sizeof(got), 0);

		if (n >= 0) {
			cr_assert_eq(n, 5, "expected 5 bytes");
			cr_assert(!memcmp(got, "ferry", 5), "expected \"ferry\"");
			close(tx);
			close(rx);
			return;
		}
		cr_assert_eq(errno, EAGAIN, "a non-blocking socket: expected EAGAIN while empty, got %s",
			     strerror(errno));
		usleep(10000);
	}
	cr_assert_fail("expected the datagram within 2 s");
}

static void bind_any_distinct(int family, int asked)
{
	enum { N = 16 };
	int fds[N];
	uint16_t ports[N];

	for (int i = 0; i < N; i++) {
		fds[i] = ferry_udp_bind_any(asked);
		cr_assert_geq(fds[i], 0, "bind_any(%d) #%d: expected an fd, got %d", asked, i, fds[i]);
		expect_udp_nonblock_cloexec(fds[i], "bind_any");
		cr_assert_eq(sockopt_int(fds[i], SOL_SOCKET, SO_REUSEADDR), 0, "bind_any: expected no SO_REUSEADDR");
		ports[i] = port_of(fds[i], family);
		cr_assert_neq(ports[i], 0, "bind_any #%d: expected a nonzero port", i);
		for (int j = 0; j < i; j++)
			cr_assert_neq(ports[i], ports[j], "bind_any #%d and #%d: expected distinct ports, both %u", i,
				      j, ports[i]);
	}
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

Test(bind, bind_any_ipv4_distinct_ports)
{
	bind_any_distinct(AF_INET, AF_INET);
}

Test(bind, bind_any_ipv6_distinct_ports)
{
	bind_any_distinct(AF_INET6, AF_INET6);
}

Test(bind, bind_any_family_0_is_ipv4)
{
	bind_any_distinct(AF_INET, 0);
}

Test(bind, bind_any_is_wildcard)
{
	union ferry_sockaddr a;
	socklen_t len = sizeof(a);
	int fd = ferry_udp_bind_any(AF_INET6);

	cr_assert_geq(fd, 0, "expected bind_any(AF_INET6)");
	cr_assert_eq(getsockname(fd, &a.sa, &len), 0, "expected getsockname");
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr), "bind_any: expected the wildcard address ::");
	close(fd);
	fd = ferry_udp_bind_any(AF_INET);
	cr_assert_geq(fd, 0, "expected bind_any(AF_INET)");
	len = sizeof(a);
	cr_assert_eq(getsockname(fd, &a.sa, &len), 0, "expected getsockname");
	cr_assert_eq(a.in4.sin_addr.s_addr, htonl(INADDR_ANY), "bind_any: expected the wildcard address 0.0.0.0");
	close(fd);
}

Test(bind, errors_leak_no_fd)
{
	union ferry_sockaddr a;
	int fds = ferry_test_count_fds(), taken, r;

	r = ferry_udp_bind(NULL, NULL);
	cr_assert_eq(r, -EINVAL, "bind(NULL): expected -EINVAL, got %d", r);
	memset(&a, 0, sizeof(a));
	a.sa.sa_family = AF_UNIX;
	r = ferry_udp_bind(&a, NULL);
	cr_assert_eq(r, -EAFNOSUPPORT, "bind of an AF_UNIX address: expected -EAFNOSUPPORT, got %d", r);
	r = ferry_udp_bind_any(AF_UNIX);
	cr_assert_eq(r, -EAFNOSUPPORT, "bind_any(AF_UNIX): expected -EAFNOSUPPORT, got %d", r);
	cr_assert_eq(ferry_test_count_fds(), fds, "refused arguments: expected no fd opened");

	/* fails at bind(): an address this namespace does not have (from 198.18.0.0/15, no traffic) */
	memset(&a, 0, sizeof(a));
	a.in4.sin_family = AF_INET;
	inet_pton(AF_INET, "198.19.255.254", &a.in4.sin_addr);
	r = ferry_udp_bind(&a, NULL);
	cr_assert_eq(r, -EADDRNOTAVAIL, "bind to an address not on this host: expected -EADDRNOTAVAIL, got %d", r);
	cr_assert_eq(ferry_test_count_fds(), fds, "bind failed: expected its socket closed");

	/* fails at bind(): the port is held by a socket without SO_REUSEADDR */
	taken = ferry_udp_bind_any(AF_INET);
	cr_assert_geq(taken, 0, "expected bind_any");
	loopback(AF_INET, port_of(taken, AF_INET), &a);
	a.in4.sin_addr.s_addr = htonl(INADDR_ANY);
	r = ferry_udp_bind(&a, NULL);
	cr_assert_eq(r, -EADDRINUSE, "bind to a port bind_any holds: expected -EADDRINUSE, got %d", r);
	close(taken);
	cr_assert_eq(ferry_test_count_fds(), fds, "bind failed: expected its socket closed");

	/* fails before the socket: a multicast group on an interface that does not exist */
	memset(&a, 0, sizeof(a));
	a.in4.sin_family = AF_INET;
	a.in4.sin_port = htons(47790);
	inet_pton(AF_INET, "239.255.77.90", &a.in4.sin_addr);
	r = ferry_udp_bind(&a, "nosuchif0");
	cr_assert_eq(r, -ENODEV, "a group on an unknown interface: expected -ENODEV, got %d", r);
	r = ferry_udp_bind(&a, "a-name-longer-than-ifnamsiz");
	cr_assert_eq(r, -ENODEV, "a group on an over-long interface name: expected -ENODEV, got %d", r);
	cr_assert_eq(ferry_test_count_fds(), fds, "refused multicast binds: expected no fd left open");
}

Test(bind, multicast_on_loopback_joins)
{
	union ferry_sockaddr a;
	struct ip_mreqn mr;
	socklen_t len = sizeof(mr);
	int fd;

	/* lo has no MULTICAST flag, but the join itself works on it (and no frame leaves the host) */
	memset(&a, 0, sizeof(a));
	a.in4.sin_family = AF_INET;
	a.in4.sin_port = htons(47791);
	inet_pton(AF_INET, "239.255.77.91", &a.in4.sin_addr);
	fd = ferry_udp_bind(&a, "lo");
	cr_assert_geq(fd, 0, "bind to 239.255.77.91 on lo: expected an fd, got %d (%s)", fd, strerror(-fd));
	cr_assert_eq(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1, "expected SO_REUSEADDR set");
	/* joining twice on the same interface is refused: proof that the first join happened */
	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr = a.in4.sin_addr;
	mr.imr_ifindex = (int)if_nametoindex("lo");
	cr_assert_neq(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, len), 0,
		      "expected a second join of the same group on lo refused (already a member)");
	cr_assert_eq(errno, EADDRINUSE, "expected EADDRINUSE for a repeated join, got %s", strerror(errno));
	close(fd);
}

Test(bind, bind_to_interface_lo)
{
	char name[IFNAMSIZ + 8];
	socklen_t len = sizeof(name);
	int fd = ferry_udp_bind_any(AF_INET), r;

	cr_assert_geq(fd, 0, "expected bind_any");
	r = ferry_udp_bind_to_interface(fd, "lo");
	cr_assert_eq(r, 0, "bind_to_interface(lo): expected 0, got %d (%s)", r, strerror(-r));
	memset(name, 0, sizeof(name));
	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0, "expected getsockopt to work");
	cr_assert_str_eq(name, "lo", "SO_BINDTODEVICE: expected \"lo\", got \"%s\"", name);

	r = ferry_udp_bind_to_interface(fd, "nosuchif0");
	cr_assert_eq(r, -ENODEV, "bind_to_interface(unknown): expected -ENODEV, got %d", r);
	r = ferry_udp_bind_to_interface(fd, "a-name-longer-than-ifnamsiz");
	cr_assert_eq(r, -ENODEV, "bind_to_interface(over-long name): expected -ENODEV, got %d", r);
	r = ferry_udp_bind_to_interface(fd, NULL);
	cr_assert_eq(r, -EINVAL, "bind_to_interface(NULL): expected -EINVAL, got %d", r);
	len = sizeof(name);
	memset(name, 0, sizeof(name));
	getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len);
	cr_assert_str_eq(name, "lo", "failed calls: expected the binding to lo kept, got \"%s\"", name);

	r = ferry_udp_bind_to_interface(fd, "");
	cr_assert_eq(r, 0, "bind_to_interface(\"\") unbinds: expected 0, got %d", r);
	len = sizeof(name);
	memset(name, 0, sizeof(name));
	getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len);
	cr_assert_str_eq(name, "", "after unbinding: expected no device, got \"%s\"", name);
	close(fd);
}

Test(bind, bind_to_interface_bad_fd)
{
	int p[2];

	cr_assert_eq(ferry_udp_bind_to_interface(-1, "lo"), -EBADF, "fd -1: expected -EBADF");
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "expected a pipe");
	cr_assert_eq(ferry_udp_bind_to_interface(p[0], "lo"), -ENOTSOCK, "a pipe: expected -ENOTSOCK");
	close(p[0]);
	close(p[1]);
}
