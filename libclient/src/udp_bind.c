/* SPDX-License-Identifier: MIT */
/* Binding: new UDP sockets on an address (joining its multicast group) or an ephemeral port, and SO_BINDTODEVICE. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ferry/udp.h>

static int new_udp_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

/* The interface index of ifname, 0 for NULL (the kernel picks), -ENODEV if there is no such interface. */
static int ifindex_of(const char *ifname)
{
	unsigned int idx;

	if (!ifname)
		return 0;
	if (!*ifname || strlen(ifname) >= IFNAMSIZ)
		return -ENODEV;
	idx = if_nametoindex(ifname);
	if (!idx)
		return errno == ENXIO || !errno ? -ENODEV : -errno;
	return (int)idx;
}

static int join_group(int fd, const union ferry_sockaddr *group, int ifindex)
{
	int err;

	if (group->sa.sa_family == AF_INET) {
		struct ip_mreqn mr;

		memset(&mr, 0, sizeof(mr));
		mr.imr_multiaddr = group->in4.sin_addr;
		mr.imr_address.s_addr = htonl(INADDR_ANY);
		mr.imr_ifindex = ifindex;
		err = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr));
	} else {
		struct ipv6_mreq mr;

		memset(&mr, 0, sizeof(mr));
		mr.ipv6mr_multiaddr = group->in6.sin6_addr;
		mr.ipv6mr_interface = (unsigned int)ifindex;
		err = setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr));
	}
	return err ? -errno : 0;
}

int ferry_udp_bind(const union ferry_sockaddr *addr, const char *ifname)
{
	union ferry_sockaddr a;
	socklen_t alen;
	bool multicast;
	int fd, ifindex = 0, one = 1, err;

	if (!addr)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	switch (addr->sa.sa_family) {
	case AF_INET:
		a.in4 = addr->in4;
		alen = sizeof(a.in4);
		multicast = IN_MULTICAST(ntohl(a.in4.sin_addr.s_addr));
		break;
	case AF_INET6:
		a.in6 = addr->in6;
		alen = sizeof(a.in6);
		multicast = IN6_IS_ADDR_MULTICAST(&a.in6.sin6_addr);
		break;
	default:
		return -EAFNOSUPPORT;
	}
	if (multicast) {
		ifindex = ifindex_of(ifname);
		if (ifindex < 0)
			return ifindex;
		/* A link-scoped group (ff02::...) can only be bound with its link named. */
		if (a.sa.sa_family == AF_INET6 && !a.in6.sin6_scope_id &&
		    (IN6_IS_ADDR_MC_LINKLOCAL(&a.in6.sin6_addr) || IN6_IS_ADDR_MC_NODELOCAL(&a.in6.sin6_addr)))
			a.in6.sin6_scope_id = (uint32_t)ifindex;
		if (a.sa.sa_family == AF_INET6 && !ifindex)
			ifindex = (int)a.in6.sin6_scope_id;
	}

	fd = new_udp_socket(a.sa.sa_family);
	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto err_close;
	if (bind(fd, &a.sa, alen))
		goto err_close;
	if (multicast) {
		err = join_group(fd, &a, ifindex);
		if (err)
			goto err_close_keep;
	}
	return fd;

err_close:
	err = -errno;
err_close_keep:
	close(fd);
	return err;
}

int ferry_udp_bind_any(int family)
{
	union ferry_sockaddr a;
	socklen_t alen;
	int fd, err;

	memset(&a, 0, sizeof(a));
	switch (family) {
	case 0:
	case AF_INET:
		a.in4.sin_family = AF_INET;
		a.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		alen = sizeof(a.in4);
		break;
	case AF_INET6:
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_any;
		alen = sizeof(a.in6);
		break;
	default:
		return -EAFNOSUPPORT;
	}
	fd = new_udp_socket(a.sa.sa_family);
	if (fd < 0)
		return fd;
	/* Port 0: the kernel picks a port no other socket holds; no SO_REUSEADDR to keep it that way. */
	if (bind(fd, &a.sa, alen)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int ferry_udp_bind_to_interface(int fd, const char *ifname)
{
	size_t len;

	if (!ifname)
		return -EINVAL;
	len = strlen(ifname);
	/* An empty name unbinds (the kernel's own rule); a longer name than any interface's cannot exist. */
	if (len >= IFNAMSIZ)
		return -ENODEV;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)len + 1))
		return -errno;
	return 0;
}
