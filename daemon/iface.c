/* SPDX-License-Identifier: MIT */
/*
 * The interface and the host's addresses over rtnetlink (libmnl): one
 * synchronous read at start, then notifications on the reactor; an address
 * notification makes the whole address table be read again (addresses
 * change rarely, and a full read cannot drift the way applied deltas can).
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <ferry/reactor.h>

#include "ferryd.h"
#include "iface.h"

#define NL_TIMEOUT_MS 200 /* a synchronous read: a reply slower than this is given up on */
#define NL_BUF 32768
#define MAX_SUBS 8
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

struct sub {
	ferryd_iface_cb cb;
	void *user;
};

struct ferryd_iface {
	struct ferry_reactor *r;
	struct ferry_watch *watch;
	struct mnl_socket *events; /* notifications, non-blocking */
	struct mnl_socket *query;  /* questions and their answers, blocking with a timeout */
	unsigned int query_portid, seq;
	unsigned int ifindex;
	struct ferryd_link_state *cur;
	struct sub subs[MAX_SUBS];
	struct ferryd_iface_stats st;
	char *buf;
};

static struct mnl_socket *nl_open(unsigned int groups_mask, bool nonblock, unsigned int *portid)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = NL_TIMEOUT_MS * 1000 };
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
	int sz = 1 << 20;

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups_mask, MNL_SOCKET_AUTOPID) < 0 ||
	    (!nonblock && setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)) {
		int err = errno;

		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	if (nonblock && setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (portid)
		*portid = mnl_socket_get_portid(nl);
	return nl;
}

/*
 * Sends the request in buf and runs cb on each reply until the ack or
 * NLMSG_DONE. Replies to older, timed-out requests are skipped. 0 or -errno
 * (the kernel's error for the request, or -ETIMEDOUT).
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
		/* A late answer to an earlier question: skip it here, as libmnl
		 * would only fail it (EPROTO) and stay one answer behind. */
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

/* ---- the link ------------------------------------------------------------ */

struct link_info {
	struct ferryd_link_state *out;
	unsigned short type;
	bool found, found_mac;
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
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(li->out->ifname, sizeof(li->out->ifname), "%s", mnl_attr_get_str(a));
		break;
	}
	return MNL_CB_OK;
}

/* A link message about our interface into *li->out (RTM_NEWLINK; RTM_DELLINK marks it gone). */
static void link_apply(const struct nlmsghdr *nlh, struct link_info *li)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	li->found = true;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		li->out->gone = true;
		li->out->up = li->out->running = false;
		return;
	}
	li->type = ifi->ifi_type;
	li->out->loopback = ifi->ifi_flags & IFF_LOOPBACK;
	li->out->up = ifi->ifi_flags & IFF_UP;
	li->out->running = (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING);
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr, li);
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_info *li = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi) ||
	    (unsigned int)ifi->ifi_index != li->out->ifindex)
		return MNL_CB_OK;
	link_apply(nlh, li);
	return MNL_CB_OK;
}

static int read_link(struct ferryd_iface *i, struct ferryd_link_state *s)
{
	struct link_info li = { .out = s };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(i->buf);
	int err;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++i->seq;
	((struct ifinfomsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg)))->ifi_index = (int)s->ifindex;
	err = nl_talk(i->query, i->query_portid, i->buf, NL_BUF, link_cb, &li);
	if (err == -ENODEV) {
		s->gone = true;
		s->up = s->running = false;
		return 0;
	}
	if (err)
		return err;
	if (!li.found)
		return -ENODEV;
	s->ethernet = li.type == ARPHRD_ETHER && li.found_mac;
	return 0;
}

/* ---- the addresses ------------------------------------------------------- */

struct addr_list {
	struct ferryd_host_addr *a;
	unsigned int n, cap;
	int err;
};

struct addr_attrs {
	const struct nlattr *local, *address, *broadcast;
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
	case IFA_BROADCAST:
		aa->broadcast = a;
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
	struct addr_list *l = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_attrs aa = { 0 };
	struct ferryd_host_addr *h;
	const struct nlattr *a;
	size_t alen;

	if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return MNL_CB_OK;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return MNL_CB_OK;
	aa.flags = ifa->ifa_flags;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, &aa);
	alen = ifa->ifa_family == AF_INET ? 4 : 16;
	/* IFA_LOCAL is ours; IFA_ADDRESS is the peer's on point-to-point links */
	a = aa.local ? aa.local : aa.address;
	if (!a || mnl_attr_get_payload_len(a) != alen)
		return MNL_CB_OK;
	if (l->n == l->cap) {
		unsigned int cap = l->cap ? 2 * l->cap : 64;
		struct ferryd_host_addr *na = realloc(l->a, cap * sizeof(*na));

		if (!na) {
			l->err = -ENOMEM;
			return MNL_CB_ERROR;
		}
		l->a = na;
		l->cap = cap;
	}
	h = &l->a[l->n++];
	memset(h, 0, sizeof(*h));
	h->family = ifa->ifa_family;
	h->prefixlen = ifa->ifa_prefixlen;
	h->ifindex = ifa->ifa_index;
	h->scope = ifa->ifa_scope;
	h->usable = !(aa.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED));
	memcpy(h->addr, mnl_attr_get_payload(a), alen);
	if (alen == 4 && aa.broadcast && mnl_attr_get_payload_len(aa.broadcast) == 4)
		memcpy(h->brd, mnl_attr_get_payload(aa.broadcast), 4);
	return MNL_CB_OK;
}

static int read_addrs(struct ferryd_iface *i, struct addr_list *l)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(i->buf);
	int err;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++i->seq;
	((struct ifaddrmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg)))->ifa_family = AF_UNSPEC;
	err = nl_talk(i->query, i->query_portid, i->buf, NL_BUF, addr_cb, l);
	return l->err ? l->err : err;
}

/* The interface's primary addresses: the widest scope, first found, usable and not deprecated. */
static void pick_primary(struct ferryd_link_state *s, const struct addr_list *l)
{
	int best4 = 256, best6 = 256;

	for (unsigned int k = 0; k < l->n; k++) {
		const struct ferryd_host_addr *h = &l->a[k];

		if (h->ifindex != s->ifindex || !h->usable)
			continue;
		if (h->family == AF_INET && h->scope < best4) {
			memcpy(&s->addr4, h->addr, 4);
			s->has4 = true;
			best4 = h->scope;
		} else if (h->family == AF_INET6 && h->scope < best6) {
			memcpy(&s->addr6, h->addr, 16);
			s->has6 = true;
			best6 = h->scope;
		}
	}
}

/* ---- views --------------------------------------------------------------- */

static void state_free(struct ferryd_link_state *s)
{
	if (!s)
		return;
	ferryd_addrset_free(&s->addrs);
	free(s);
}

const struct ferryd_link_state *ferryd_link_state_get(const struct ferryd_link_state *s)
{
	__atomic_add_fetch(&((struct ferryd_link_state *)s)->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void ferryd_link_state_put(const struct ferryd_link_state *s)
{
	if (s && __atomic_sub_fetch(&((struct ferryd_link_state *)s)->refs, 1, __ATOMIC_ACQ_REL) == 0)
		state_free((struct ferryd_link_state *)s);
}

/*
 * A new view: the link from base (a copy of the current one, possibly
 * changed by a notification) or read again, and the addresses read again.
 */
static int build(struct ferryd_iface *i, const struct ferryd_link_state *base, bool reread_link,
		 struct ferryd_link_state **out)
{
	struct ferryd_link_state *s = calloc(1, sizeof(*s));
	struct addr_list l = { 0 };
	int err;

	if (!s)
		return -ENOMEM;
	if (base) {
		*s = *base;
		memset(&s->addrs, 0, sizeof(s->addrs));
	}
	s->refs = 1;
	s->ifindex = i->ifindex;
	s->has4 = s->has6 = false;
	if (i->ifindex && reread_link && !s->gone) {
		err = read_link(i, s);
		if (err)
			goto err;
	}
	err = read_addrs(i, &l);
	if (err)
		goto err;
	if (i->ifindex && !s->gone)
		pick_primary(s, &l);
	err = ferryd_addrset_build(&s->addrs, l.a, l.n, s->gone ? 0 : i->ifindex);
	if (err)
		goto err;
	free(l.a);
	*out = s;
	return 0;
err:
	free(l.a);
	state_free(s);
	return err;
}

static bool same(const struct ferryd_link_state *a, const struct ferryd_link_state *b)
{
	return !strcmp(a->ifname, b->ifname) && !memcmp(a->mac, b->mac, 6) && a->mtu == b->mtu && a->up == b->up &&
	       a->ethernet == b->ethernet && a->loopback == b->loopback &&
	       a->running == b->running && a->gone == b->gone && a->has4 == b->has4 && a->has6 == b->has6 &&
	       !memcmp(&a->addr4, &b->addr4, sizeof(a->addr4)) && !memcmp(&a->addr6, &b->addr6, sizeof(a->addr6)) &&
	       ferryd_addrset_equal(&a->addrs, &b->addrs);
}

/* A fall (running, then not) or a return counted. */
static void count_step(struct ferryd_iface *i, bool was, bool now)
{
	if (was && !now)
		i->st.link_down++;
	else if (!was && now)
		i->st.link_up++;
}

/*
 * Makes s the current view (if it differs), tells the subscribers, frees the
 * old one. count: the step from the old view's running to s's is counted
 * here (not when the caller counted every step of the way itself).
 */
static void publish(struct ferryd_iface *i, struct ferryd_link_state *s, bool count)
{
	struct ferryd_link_state *old = i->cur;

	if (old && same(old, s)) {
		state_free(s);
		return;
	}
	s->seq = old ? old->seq + 1 : 1;
	if (old) {
		i->st.changes++;
		if (count)
			count_step(i, old->running, s->running);
	}
	i->cur = s;
	for (unsigned int k = 0; old && k < MAX_SUBS; k++)
		if (i->subs[k].cb)
			i->subs[k].cb(i->subs[k].user, old, s);
	ferryd_link_state_put(old);
}

int ferryd_iface_refresh(struct ferryd_iface *i)
{
	struct ferryd_link_state *s;
	int err = build(i, i->cur, true, &s);

	if (err)
		return err;
	publish(i, s, true);
	return 0;
}

/* ---- notifications -------------------------------------------------------- */

struct note {
	struct ferryd_iface *i;
	struct ferryd_link_state *link; /* a copy of the view, changed by link messages */
	bool addrs;			/* an address changed: read them all again */
	unsigned int downs, ups;	/* steps of running the messages took, one by one */
};

static int note_cb(const struct nlmsghdr *nlh, void *data)
{
	struct note *n = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK: {
		const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
		struct link_info li;
		bool was = n->link->running;

		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi) || !n->i->ifindex ||
		    (unsigned int)ifi->ifi_index != n->i->ifindex)
			break;
		li = (struct link_info){ .out = n->link };
		link_apply(nlh, &li);
		n->downs += was && !n->link->running;
		n->ups += !was && n->link->running;
		n->addrs = true; /* a link going away takes its addresses; one coming up may add some */
		break;
	}
	case RTM_NEWADDR:
	case RTM_DELADDR:
		n->addrs = true;
		break;
	}
	return MNL_CB_OK;
}

static void on_events(void *user, uint32_t events)
{
	struct ferryd_iface *i = user;
	struct ferryd_link_state *copy = malloc(sizeof(*copy)), *s;
	struct note n = { .i = i, .link = copy };
	unsigned int down, up, hidden;
	bool overrun = false, running;
	int err;

	(void)events;
	if (!copy)
		return; /* level-triggered: asked again */
	*copy = *i->cur;
	for (int round = 0; round < 64; round++) {
		ssize_t len = mnl_socket_recvfrom(i->events, i->buf, NL_BUF);

		if (len < 0) {
			if (errno == ENOBUFS) {
				overrun = true;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				ferryd_log(LOG_WARNING, "interface watch: reading rtnetlink: %s", strerror(errno));
			break;
		}
		mnl_cb_run(i->buf, (size_t)len, 0, 0, note_cb, &n);
	}
	if (overrun)
		i->st.overruns++;
	if (!overrun && !n.addrs && !memcmp(copy, i->cur, sizeof(*copy))) {
		free(copy);
		return;
	}
	/* The copy shares the current view's address table: build() reads a new one. */
	running = copy->running; /* where the messages left it */
	err = build(i, copy, overrun, &s);
	free(copy);
	if (err) {
		ferryd_log(LOG_WARNING, "interface watch: reading the interface and addresses again: %s", strerror(-err));
		return;
	}
	/*
	 * Every step the messages took counts, and the last one from where they
	 * left running to the view read now (overruns lose messages): a link that
	 * fell and came back within one read (ferryd busy or stopped meanwhile)
	 * looks unchanged from view to view, but each fall was one.
	 */
	down = n.downs + (running && !s->running);
	up = n.ups + (!running && s->running);
	i->st.link_down += down;
	i->st.link_up += up;
	hidden = down - (i->cur->running && !s->running);
	if (hidden)
		ferryd_log(LOG_WARNING, "%s fell %u time%s between two looks (counted in link_down_events)", s->ifname,
			   hidden, hidden == 1 ? "" : "s");
	publish(i, s, false);
}

/* ---- life cycle ------------------------------------------------------------- */

int ferryd_iface_new(struct ferry_reactor *r, const char *ifname, struct ferryd_iface **out, char *why, size_t whylen)
{
	struct ferryd_iface *i = calloc(1, sizeof(*i));
	struct ferryd_link_state *s;
	int err;

	*out = NULL;
	if (!i || !(i->buf = malloc(NL_BUF))) {
		free(i);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	i->r = r;
	if (ifname && ifname[0]) {
		i->ifindex = if_nametoindex(ifname);
		if (!i->ifindex) {
			err = -ENODEV;
			snprintf(why, whylen, "%s: no such interface", ifname);
			goto err_free;
		}
	}
	i->query = nl_open(0, false, &i->query_portid);
	i->events = nl_open((i->ifindex ? RTMGRP_LINK : 0) | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, true, NULL);
	if (!i->query || !i->events) {
		err = -errno;
		snprintf(why, whylen, "rtnetlink socket: %s", strerror(errno));
		goto err_free;
	}
	/* Subscribed before the first read: nothing that changes after it is missed. */
	err = build(i, NULL, true, &s);
	if (err) {
		snprintf(why, whylen, "%s%s%s", ifname && ifname[0] ? ifname : "", ifname && ifname[0] ? ": " : "",
			 err == -ENODEV ? "no such interface" : strerror(-err));
		goto err_free;
	}
	if (s->gone) {
		state_free(s);
		err = -ENODEV;
		snprintf(why, whylen, "%s: no such interface", ifname);
		goto err_free;
	}
	i->cur = s;
	i->cur->seq = 1;
	err = ferry_reactor_add(r, mnl_socket_get_fd(i->events), EPOLLIN, on_events, i, &i->watch);
	if (err) {
		snprintf(why, whylen, "watching rtnetlink: %s", strerror(-err));
		goto err_free;
	}
	*out = i;
	return 0;

err_free:
	ferryd_iface_free(i);
	return err;
}

void ferryd_iface_free(struct ferryd_iface *i)
{
	if (!i)
		return;
	if (i->watch)
		ferry_reactor_del(i->r, i->watch);
	if (i->events)
		mnl_socket_close(i->events);
	if (i->query)
		mnl_socket_close(i->query);
	ferryd_link_state_put(i->cur);
	free(i->buf);
	free(i);
}

const struct ferryd_link_state *ferryd_iface_state(const struct ferryd_iface *i)
{
	return i->cur;
}

int ferryd_iface_subscribe(struct ferryd_iface *i, ferryd_iface_cb cb, void *user)
{
	for (unsigned int k = 0; k < MAX_SUBS; k++)
		if (!i->subs[k].cb) {
			i->subs[k] = (struct sub){ cb, user };
			return 0;
		}
	return -ENOSPC;
}

void ferryd_iface_unsubscribe(struct ferryd_iface *i, void *user)
{
	for (unsigned int k = 0; i && k < MAX_SUBS; k++)
		if (i->subs[k].user == user)
			i->subs[k] = (struct sub){ NULL, NULL };
}

void ferryd_iface_get_stats(const struct ferryd_iface *i, struct ferryd_iface_stats *out)
{
	*out = i->st;
}
