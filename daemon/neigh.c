/* SPDX-License-Identifier: MIT */
/* Interface facts and next-hop MACs over rtnetlink (libmnl), with a small expiring cache (see neigh.h). */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "neigh.h"

#define CACHE_SLOTS 256		/* direct-mapped: a collision just evicts */
#define TTL_HIT_MS 5000		/* a resolved next hop is trusted this long */
#define TTL_MISS_MS 200		/* an unresolved one is asked again after this */
#define NL_TIMEOUT_MS 200	/* a kernel reply slower than this is given up on */
#define NL_BUF 16384

struct cache_entry {
	uint64_t expires_ms; /* 0: empty */
	uint8_t family;
	uint8_t result;
	uint8_t addr[16];
	uint32_t scope;
	uint8_t mac[6];
	union ferry_sockaddr prefsrc;
};

struct ferryd_neigh {
	struct mnl_socket *nl;
	unsigned int portid, seq, ifindex;
	uint64_t hits, queries;
	struct cache_entry cache[CACHE_SLOTS];
	char buf[NL_BUF];
};

static struct mnl_socket *nl_open(unsigned int *portid)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = NL_TIMEOUT_MS * 1000 };
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		int err = errno;

		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	*portid = mnl_socket_get_portid(nl);
	return nl;
}

/*
 * Sends the request in buf and runs cb on each reply until the ack (doit with
 * NLM_F_ACK) or NLMSG_DONE (dump). Replies to older, timed-out requests are
 * skipped. 0 or -errno (the kernel's error for the request, or -ETIMEDOUT).
 */
static int nl_talk(struct mnl_socket *nl, unsigned int portid, char *buf, size_t buflen, mnl_cb_t cb, void *data)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	unsigned int seq = nlh->nlmsg_seq;
	int ret;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (int stale = 0; stale < 64;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, buflen);
		const struct nlmsghdr *r = (const struct nlmsghdr *)buf;

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		/* A late answer to an earlier question (one datagram holds one answer):
		 * skip it here, as libmnl would only fail it (EPROTO) and leave the
		 * rest of the queue one answer behind from then on. */
		if ((size_t)n >= sizeof(*r) && r->nlmsg_seq && r->nlmsg_seq != seq) {
			stale++;
			continue;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret < 0)
			return -errno;
	}
	return -EPROTO;
}

/* ---- the interface -------------------------------------------------------- */

struct link_info {
	struct ferryd_iface *out;
	bool found_mac;
	unsigned short type;
};

static int link_attr(const struct nlattr *a, void *data)
{
	struct link_info *li = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_ADDRESS:
		if (mnl_attr_get_payload_len(a) == 6) {
			memcpy(li->out->mac, mnl_attr_get_payload(a), 6);
			li->found_mac = true;
		}
		break;
	case IFLA_MTU:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			li->out->mtu = mnl_attr_get_u32(a);
		break;
	}
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_info *li = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return MNL_CB_OK;
	li->type = ifi->ifi_type;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr, li);
	return MNL_CB_OK;
}

struct addr_info {
	struct ferryd_iface *out;
	int best4, best6; /* scope of what was chosen; lower is wider (RT_SCOPE_UNIVERSE = 0) */
};

struct addr_attrs {
	const struct nlattr *local, *address;
	uint32_t flags;
};

static int addr_attr(const struct nlattr *a, void *data)
{
	struct addr_attrs *aa = data;

	switch (mnl_attr_get_type(a)) {
	case IFA_LOCAL:
		aa->local = a;
		break;
	case IFA_ADDRESS:
		aa->address = a;
		break;
	case IFA_FLAGS:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			aa->flags = mnl_attr_get_u32(a);
		break;
	}
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_info *ai = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_attrs aa = { 0 };
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa) ||
	    ifa->ifa_index != ai->out->ifindex)
		return MNL_CB_OK;
	aa.flags = ifa->ifa_flags;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, &aa);
	if (ifa->ifa_family == AF_INET) {
		/* IFA_LOCAL is our address; IFA_ADDRESS is the peer's on point-to-point links */
		a = aa.local ? aa.local : aa.address;
		if (!a || mnl_attr_get_payload_len(a) != 4 || ifa->ifa_scope >= ai->best4)
			return MNL_CB_OK;
		memcpy(&ai->out->addr4, mnl_attr_get_payload(a), 4);
		ai->out->has4 = true;
		ai->best4 = ifa->ifa_scope;
	} else if (ifa->ifa_family == AF_INET6) {
		a = aa.address;
		if (!a || mnl_attr_get_payload_len(a) != 16 || ifa->ifa_scope >= ai->best6 ||
		    (aa.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED)))
			return MNL_CB_OK;
		memcpy(&ai->out->addr6, mnl_attr_get_payload(a), 16);
		ai->out->has6 = true;
		ai->best6 = ifa->ifa_scope;
	}
	return MNL_CB_OK;
}

int ferryd_iface_query(const char *ifname, struct ferryd_iface *out)
{
	struct link_info li = { .out = out };
	struct addr_info ai = { .out = out, .best4 = 256, .best6 = 256 };
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	unsigned int portid;
	char *buf;
	int err;

	memset(out, 0, sizeof(*out));
	out->ifindex = if_nametoindex(ifname);
	if (!out->ifindex)
		return -ENODEV;
	buf = malloc(NL_BUF);
	if (!buf)
		return -ENOMEM;
	nl = nl_open(&portid);
	if (!nl) {
		err = -errno;
		goto out_free;
	}

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	((struct ifinfomsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg)))->ifi_index =
		(int)out->ifindex;
	err = nl_talk(nl, portid, buf, NL_BUF, link_cb, &li);
	if (err)
		goto out_close;
	if (li.type != ARPHRD_ETHER || !li.found_mac) {
		err = -EPROTONOSUPPORT;
		goto out_close;
	}

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = 2;
	((struct ifaddrmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg)))->ifa_family = AF_UNSPEC;
	err = nl_talk(nl, portid, buf, NL_BUF, addr_cb, &ai);
out_close:
	mnl_socket_close(nl);
out_free:
	free(buf);
	return err;
}

/* ---- next hops ---------------------------------------------------------------- */

int ferryd_neigh_new(unsigned int ifindex, struct ferryd_neigh **out)
{
	struct ferryd_neigh *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->nl = nl_open(&n->portid);
	if (!n->nl) {
		int err = -errno;

		free(n);
		return err;
	}
	n->ifindex = ifindex;
	*out = n;
	return 0;
}

void ferryd_neigh_free(struct ferryd_neigh *n)
{
	if (!n)
		return;
	mnl_socket_close(n->nl);
	free(n);
}

void ferryd_neigh_flush(struct ferryd_neigh *n)
{
	memset(n->cache, 0, sizeof(n->cache));
}

void ferryd_neigh_counters(const struct ferryd_neigh *n, uint64_t *hits, uint64_t *queries)
{
	*hits = n->hits;
	*queries = n->queries;
}

struct route_info {
	int family;
	unsigned char type;
	unsigned int oif;
	bool has_gw, has_prefsrc, has_via;
	uint8_t gw[16], prefsrc[16];
};

static int route_attr(const struct nlattr *a, void *data)
{
	struct route_info *ri = data;
	size_t alen = ri->family == AF_INET ? 4 : 16;

	switch (mnl_attr_get_type(a)) {
	case RTA_OIF:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			ri->oif = mnl_attr_get_u32(a);
		break;
	case RTA_GATEWAY:
		if (mnl_attr_get_payload_len(a) == alen) {
			memcpy(ri->gw, mnl_attr_get_payload(a), alen);
			ri->has_gw = true;
		}
		break;
	case RTA_PREFSRC:
		if (mnl_attr_get_payload_len(a) == alen) {
			memcpy(ri->prefsrc, mnl_attr_get_payload(a), alen);
			ri->has_prefsrc = true;
		}
		break;
	case RTA_VIA: /* a gateway of the other family: leave it to the kernel */
		ri->has_via = true;
		break;
	}
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_info *ri = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return MNL_CB_OK;
	ri->type = rtm->rtm_type;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, ri);
	return MNL_CB_OK;
}

struct neigh_info {
	bool found;
	uint16_t state;
	bool has_mac;
	uint8_t mac[6];
};

static int neigh_attr(const struct nlattr *a, void *data)
{
	struct neigh_info *ni = data;

	if (mnl_attr_get_type(a) == NDA_LLADDR && mnl_attr_get_payload_len(a) == 6) {
		memcpy(ni->mac, mnl_attr_get_payload(a), 6);
		ni->has_mac = true;
	}
	return MNL_CB_OK;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct neigh_info *ni = data;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWNEIGH || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm))
		return MNL_CB_OK;
	ni->found = true;
	ni->state = ndm->ndm_state;
	mnl_attr_parse(nlh, sizeof(*ndm), neigh_attr, ni);
	return MNL_CB_OK;
}

/* Multicast destinations map to a MAC without asking anyone (RFC 1112, RFC 2464). */
static bool multicast_mac(int family, const uint8_t *a, uint8_t mac[6])
{
	if (family == AF_INET && (a[0] & 0xf0) == 0xe0) {
		mac[0] = 0x01, mac[1] = 0x00, mac[2] = 0x5e;
		mac[3] = a[1] & 0x7f, mac[4] = a[2], mac[5] = a[3];
		return true;
	}
	if (family == AF_INET6 && a[0] == 0xff) {
		mac[0] = 0x33, mac[1] = 0x33;
		memcpy(mac + 2, a + 12, 4);
		return true;
	}
	return false;
}

/* Asks the kernel: route to dst, then the neighbour entry of its next hop. */
static void resolve(struct ferryd_neigh *n, struct cache_entry *ce)
{
	size_t alen = ce->family == AF_INET ? 4 : 16;
	struct route_info ri = { .family = ce->family };
	struct neigh_info ni = { 0 };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	struct ndmsg *ndm;
	const uint8_t *hop;

	memset(&ce->prefsrc, 0, sizeof(ce->prefsrc));
	ce->result = FERRYD_NEIGH_NO_ROUTE;
	n->queries++;

	nlh = mnl_nlmsg_put_header(n->buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++n->seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = ce->family;
	rtm->rtm_dst_len = (unsigned char)(alen * 8);
	mnl_attr_put(nlh, RTA_DST, alen, ce->addr);
	if (ce->scope)
		mnl_attr_put_u32(nlh, RTA_OIF, ce->scope);
	if (nl_talk(n->nl, n->portid, n->buf, sizeof(n->buf), route_cb, &ri))
		return;
	if (ri.type != RTN_UNICAST && ri.type != RTN_BROADCAST && ri.type != RTN_MULTICAST) {
		ce->result = ri.type == RTN_LOCAL ? FERRYD_NEIGH_NOT_HERE : FERRYD_NEIGH_NO_ROUTE;
		return;
	}
	if (ri.has_prefsrc) {
		ce->prefsrc.sa.sa_family = ce->family;
		if (ce->family == AF_INET)
			memcpy(&ce->prefsrc.in4.sin_addr, ri.prefsrc, 4);
		else
			memcpy(&ce->prefsrc.in6.sin6_addr, ri.prefsrc, 16);
	}
	if (ri.oif != n->ifindex || ri.has_via) {
		ce->result = FERRYD_NEIGH_NOT_HERE;
		return;
	}
	if (ri.type == RTN_BROADCAST) {
		memset(ce->mac, 0xff, 6);
		ce->result = FERRYD_NEIGH_OK;
		return;
	}
	if (multicast_mac(ce->family, ce->addr, ce->mac)) {
		ce->result = FERRYD_NEIGH_OK;
		return;
	}
	hop = ri.has_gw ? ri.gw : ce->addr;

	nlh = mnl_nlmsg_put_header(n->buf);
	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++n->seq;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = ce->family;
	ndm->ndm_ifindex = (int)n->ifindex;
	mnl_attr_put(nlh, NDA_DST, alen, hop);
	ce->result = FERRYD_NEIGH_MISS;
	/* -ENOENT: no entry yet; the socket send that follows a miss creates it */
	if (nl_talk(n->nl, n->portid, n->buf, sizeof(n->buf), neigh_cb, &ni) || !ni.found)
		return;
	/* STALE/DELAY/PROBE still name the right host until proven otherwise, as the kernel itself uses them */
	if ((ni.state & (NUD_PERMANENT | NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE)) && ni.has_mac) {
		memcpy(ce->mac, ni.mac, 6);
		ce->result = FERRYD_NEIGH_OK;
	}
}

static unsigned int slot_of(int family, const uint8_t *addr, uint32_t scope)
{
	uint32_t h = 2166136261u ^ (uint32_t)family ^ scope; /* FNV-1a */
	size_t alen = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < alen; i++)
		h = (h ^ addr[i]) * 16777619u;
	return (h ^ (h >> 16)) % CACHE_SLOTS;
}

enum ferryd_neigh_result ferryd_neigh_lookup(struct ferryd_neigh *n, const union ferry_sockaddr *dst,
					     uint64_t now_ms, uint8_t mac[6], union ferry_sockaddr *prefsrc)
{
	int family = dst->sa.sa_family;
	uint8_t addr[16] = { 0 };
	uint32_t scope = 0;
	struct cache_entry *ce;

	if (family == AF_INET) {
		memcpy(addr, &dst->in4.sin_addr, 4);
	} else if (family == AF_INET6) {
		memcpy(addr, &dst->in6.sin6_addr, 16);
		scope = dst->in6.sin6_scope_id;
	} else {
		return FERRYD_NEIGH_NO_ROUTE;
	}
	ce = &n->cache[slot_of(family, addr, scope)];
	if (ce->expires_ms > now_ms && ce->family == family && ce->scope == scope && !memcmp(ce->addr, addr, 16)) {
		n->hits++;
	} else {
		ce->family = (uint8_t)family;
		ce->scope = scope;
		memcpy(ce->addr, addr, 16);
		resolve(n, ce);
		ce->expires_ms = now_ms + (ce->result == FERRYD_NEIGH_OK ? TTL_HIT_MS : TTL_MISS_MS);
	}
	if (ce->result == FERRYD_NEIGH_OK)
		memcpy(mac, ce->mac, 6);
	if (prefsrc)
		*prefsrc = ce->prefsrc;
	return (enum ferryd_neigh_result)ce->result;
}
