/* SPDX-License-Identifier: MIT */
/*
 * Next-hop MACs from a cache kept current by asynchronous rtnetlink questions
 * and notifications (see neigh.h).
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <ferry/reactor.h>

#include "ferryd.h"
#include "neigh.h"
#include "nexthop.h"

/* ---- next hops ---------------------------------------------------------------- */

/*
 * Two tables in fixed pools, chained through indices (stable: a question in
 * flight names its entry by index): destinations (what the send path asks
 * for: the route's verdict, preferred source, and which next hop) and next
 * hops (the neighbour entry's MAC and state), so a neighbour notification
 * updates one entry however many destinations route through it. A route
 * notification bumps its family's generation instead: every destination
 * answer of that family is asked again on its next lookup, which costs
 * O(1) at the notification, whatever the cache holds.
 */
#define MIN_CAPACITY 64
#define MAX_INFLIGHT 32	   /* questions in flight; their replies fit the receive buffer with room to spare */
#define REQ_TIMEOUT_MS 1000 /* rtnetlink answers within the write: only a lost reply takes this long */
#define RETRY_MS 1000	   /* an unresolved next hop or a failed question is asked again after this */
#define SUBMIT_ROUNDS 4	   /* write/read rounds per submit: route answers queue neighbour questions */
#define RECV_BATCH 32
#define RECV_ROUNDS 8	   /* recvmmsg calls per read-out, then the reactor serves others */
#define RECV_MSG 4096	   /* one reply or notification (unicast replies are one message each) */
#define REQ_MAX 128	   /* bytes of one question */
#define RCVBUF (4 << 20)   /* notification bursts (a neighbour table flush) without overflow */
#define NONE UINT32_MAX

enum { F_PENDING = 1, F_INFLIGHT = 2, F_REF = 4, F_DIRECT = 8 };
enum dst_state { DST_FREE, DST_ASKING, DST_KNOWN, DST_RETRY };
enum hop_state { HOP_FREE, HOP_ASKING, HOP_VALID, HOP_INVALID };
enum req_kind { REQ_NONE, REQ_ROUTE, REQ_NEIGH };

/* Links of the question queues; first member of both entry types. */
struct qlink {
	uint32_t prev, next;
};

struct dst {
	struct qlink q;
	uint8_t addr[16];
	uint32_t scope;	   /* IPv6 scope id (link-local destinations), else 0 */
	uint32_t next;	   /* hash chain, or the free list */
	uint32_t hop;	   /* KNOWN with result OK and not F_DIRECT: the next hop entry; else NONE */
	uint32_t gen;	   /* the route generation the answer is from */
	uint64_t retry_ms; /* DST_RETRY: not asked again before */
	uint8_t family, state, result, flags;
	uint8_t mac[6]; /* F_DIRECT: broadcast or multicast, no neighbour entry */
	union ferry_sockaddr prefsrc;
};

struct hop {
	struct qlink q;
	uint8_t addr[16];
	uint32_t next, refs; /* refs: destinations routed through it */
	uint64_t retry_ms;   /* HOP_INVALID: not asked again before */
	uint8_t family, state, flags;
	uint8_t mac[6];
};

struct req {
	uint32_t seq, idx;
	uint8_t kind; /* enum req_kind; REQ_NONE: the slot is free */
	uint64_t sent_ms;
};

struct fifo {
	uint32_t head, tail;
};

struct ferryd_neigh {
	struct ferry_reactor *r;
	struct ferry_timer *tick; /* questions unanswered too long are given up on, traffic or not */
	struct ferryd_nexthops *table; /* where answers are published for other threads, or NULL */
	struct ferry_watch *watch;
	int fd;
	uint32_t portid, seq, ifindex;
	uint64_t seed;
	uint32_t cap, hcap, dmask, hmask;
	struct dst *dsts;
	uint32_t *dbucket, dfree, hand;
	struct hop *hops;
	uint32_t *hbucket, hfree;
	struct fifo dq, hq; /* destinations and next hops to ask about */
	uint32_t gen[2];    /* route generations, IPv4 and IPv6 */
	struct req req[MAX_INFLIGHT];
	unsigned int ninflight;
	struct ferryd_neigh_stats st;
	bool warned;
	uint8_t qbuf[MAX_INFLIGHT * REQ_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct mmsghdr rmsg[RECV_BATCH];
	struct iovec riov[RECV_BATCH];
	struct sockaddr_nl rfrom[RECV_BATCH];
	uint8_t rbuf[RECV_BATCH][RECV_MSG] __attribute__((aligned(NLMSG_ALIGNTO)));
};

static inline unsigned int gen_of(int family)
{
	return family == AF_INET6;
}

static inline size_t alen_of(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* Keyed with a random seed: peers choose their addresses, they must not choose our chains. */
static inline uint32_t key_hash(const struct ferryd_neigh *n, int family, const uint8_t addr[16], uint32_t scope)
{
	uint64_t w[2], h = n->seed ^ (uint64_t)family ^ ((uint64_t)scope << 8);

	memcpy(w, addr, 16);
	h = (h ^ w[0]) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 32;
	h = (h ^ w[1]) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	h *= 0x94d049bb133111ebull;
	return (uint32_t)(h ^ (h >> 32));
}

/* ---- question queues (doubly linked through struct qlink, first in both entry types) ---- */

static inline struct qlink *ql(void *base, size_t stride, uint32_t i)
{
	return (struct qlink *)((char *)base + stride * i);
}

static void fifo_push(struct fifo *f, void *base, size_t stride, uint32_t i)
{
	ql(base, stride, i)->prev = f->tail;
	ql(base, stride, i)->next = NONE;
	if (f->tail == NONE)
		f->head = i;
	else
		ql(base, stride, f->tail)->next = i;
	f->tail = i;
}

static void fifo_remove(struct fifo *f, void *base, size_t stride, uint32_t i)
{
	struct qlink *l = ql(base, stride, i);

	if (l->prev == NONE)
		f->head = l->next;
	else
		ql(base, stride, l->prev)->next = l->next;
	if (l->next == NONE)
		f->tail = l->prev;
	else
		ql(base, stride, l->next)->prev = l->prev;
	l->prev = l->next = NONE;
}

/* ---- next hop entries ---- */

static uint32_t hop_find(const struct ferryd_neigh *n, int family, const uint8_t addr[16])
{
	uint32_t i = n->hbucket[key_hash(n, family, addr, 0) & n->hmask];

	while (i != NONE && (n->hops[i].family != family || memcmp(n->hops[i].addr, addr, 16)))
		i = n->hops[i].next;
	return i;
}

static void hop_free(struct ferryd_neigh *n, uint32_t i)
{
	struct hop *h = &n->hops[i];
	uint32_t *p = &n->hbucket[key_hash(n, h->family, h->addr, 0) & n->hmask];

	if (h->flags & F_PENDING)
		fifo_remove(&n->hq, n->hops, sizeof(*h), i);
	while (*p != i)
		p = &n->hops[*p].next;
	*p = h->next;
	memset(h, 0, sizeof(*h));
	h->next = n->hfree;
	n->hfree = i;
}

/* Queues a question about h (once); a valid entry stays usable meanwhile. */
static void ask_hop(struct ferryd_neigh *n, uint32_t i)
{
	struct hop *h = &n->hops[i];

	if (h->state != HOP_VALID)
		h->state = HOP_ASKING;
	if (h->flags & (F_PENDING | F_INFLIGHT))
		return;
	h->flags |= F_PENDING;
	fifo_push(&n->hq, n->hops, sizeof(*h), i);
}

/* The entry for next hop addr with one more reference, asked about if new; NONE if the pool is full. */
static uint32_t hop_get(struct ferryd_neigh *n, int family, const uint8_t addr[16])
{
	uint32_t i = hop_find(n, family, addr), b;
	struct hop *h;

	if (i != NONE) {
		n->hops[i].refs++;
		return i;
	}
	i = n->hfree;
	if (i == NONE)
		return NONE;
	h = &n->hops[i];
	n->hfree = h->next;
	memset(h, 0, sizeof(*h));
	h->family = (uint8_t)family;
	memcpy(h->addr, addr, 16);
	h->refs = 1;
	b = key_hash(n, family, addr, 0) & n->hmask;
	h->next = n->hbucket[b];
	n->hbucket[b] = i;
	h->state = HOP_ASKING;
	ask_hop(n, i);
	return i;
}

/* One reference less; unreferenced, it goes (or when the question in flight about it is answered). */
static void hop_put(struct ferryd_neigh *n, uint32_t i)
{
	struct hop *h = &n->hops[i];

	if (--h->refs == 0 && !(h->flags & F_INFLIGHT))
		hop_free(n, i);
}

/* ---- destination entries ---- */

static uint32_t dst_find(const struct ferryd_neigh *n, int family, const uint8_t addr[16], uint32_t scope)
{
	uint32_t i = n->dbucket[key_hash(n, family, addr, scope) & n->dmask];

	while (i != NONE) {
		const struct dst *d = &n->dsts[i];

		if (d->family == family && d->scope == scope && !memcmp(d->addr, addr, 16))
			return i;
		i = d->next;
	}
	return NONE;
}

static void dst_drop(struct ferryd_neigh *n, uint32_t i)
{
	struct dst *d = &n->dsts[i];

	if (n->table)
		ferryd_nexthops_put(n->table, d->family, d->addr, d->scope, FERRYD_NEXTHOP_MISS, NULL, NULL, 0);
	uint32_t *p = &n->dbucket[key_hash(n, d->family, d->addr, d->scope) & n->dmask];

	if (d->flags & F_PENDING)
		fifo_remove(&n->dq, n->dsts, sizeof(*d), i);
	while (*p != i)
		p = &n->dsts[*p].next;
	*p = d->next;
	if (d->hop != NONE)
		hop_put(n, d->hop);
	memset(d, 0, sizeof(*d));
	d->hop = NONE;
	n->st.entries--;
}

/*
 * A free destination entry, evicting one if the pool is full: the clock
 * algorithm (a lookup marks its entry referenced; the hand clears marks and
 * takes the first entry not referenced since it last passed), which keeps
 * the peers in use and costs the send path one flag store. An entry with a
 * question in flight stays (its answer names it); there are few of those.
 */
static uint32_t dst_alloc(struct ferryd_neigh *n)
{
	uint32_t i = n->dfree;

	if (i != NONE) {
		n->dfree = n->dsts[i].next;
		return i;
	}
	for (uint32_t step = 0; step < 2 * n->cap + 1; step++) {
		struct dst *d = &n->dsts[i = n->hand];

		n->hand = n->hand + 1 == n->cap ? 0 : n->hand + 1;
		if (d->flags & F_INFLIGHT)
			continue;
		if (d->flags & F_REF) {
			d->flags &= (uint8_t)~F_REF;
			continue;
		}
		dst_drop(n, i); /* not onto the free list: it is ours now */
		n->st.evictions++;
		return i;
	}
	return NONE;
}

static void ask_dst(struct ferryd_neigh *n, uint32_t i)
{
	struct dst *d = &n->dsts[i];

	d->state = DST_ASKING;
	if (d->flags & (F_PENDING | F_INFLIGHT))
		return;
	d->flags |= F_PENDING;
	fifo_push(&n->dq, n->dsts, sizeof(*d), i);
}

/* ---- the lookup (the send path: no syscall) ---- */

enum ferryd_neigh_result ferryd_neigh_lookup(struct ferryd_neigh *n, const union ferry_sockaddr *dst,
					     uint64_t now_ms, uint8_t mac[6], union ferry_sockaddr *prefsrc)
{
	int family = dst->sa.sa_family;
	uint8_t addr[16] = { 0 };
	uint32_t scope = 0, i, b;
	struct dst *d;
	const struct hop *h;

	if (prefsrc)
		prefsrc->sa.sa_family = AF_UNSPEC;
	if (family == AF_INET) {
		memcpy(addr, &dst->in4.sin_addr, 4);
	} else if (family == AF_INET6) {
		memcpy(addr, &dst->in6.sin6_addr, 16);
		scope = dst->in6.sin6_scope_id;
	} else {
		return FERRYD_NEIGH_NO_ROUTE;
	}
	i = dst_find(n, family, addr, scope);
	if (i == NONE) {
		n->st.misses++;
		i = dst_alloc(n);
		if (i == NONE) {
			n->st.uncached++;
			return FERRYD_NEIGH_MISS;
		}
		d = &n->dsts[i];
		memset(d, 0, sizeof(*d));
		d->family = (uint8_t)family;
		d->scope = scope;
		memcpy(d->addr, addr, 16);
		d->hop = NONE;
		d->flags = F_REF;
		b = key_hash(n, family, addr, scope) & n->dmask;
		d->next = n->dbucket[b];
		n->dbucket[b] = i;
		n->st.entries++;
		ask_dst(n, i);
		return FERRYD_NEIGH_MISS;
	}
	d = &n->dsts[i];
	if (!(d->flags & F_REF))
		d->flags |= F_REF;
	if (d->state != DST_KNOWN || d->gen != n->gen[gen_of(family)]) {
		/* asked already, or a route changed since the answer: the kernel's path meanwhile */
		if (d->state == DST_KNOWN || (d->state == DST_RETRY && now_ms >= d->retry_ms))
			ask_dst(n, i);
		n->st.misses++;
		return FERRYD_NEIGH_MISS;
	}
	if (prefsrc)
		*prefsrc = d->prefsrc;
	if (d->result != FERRYD_NEIGH_OK) {
		n->st.hits++;
		return (enum ferryd_neigh_result)d->result;
	}
	if (d->flags & F_DIRECT) {
		memcpy(mac, d->mac, 6);
		n->st.hits++;
		return FERRYD_NEIGH_OK;
	}
	h = &n->hops[d->hop];
	if (h->state == HOP_VALID) {
		memcpy(mac, h->mac, 6);
		n->st.hits++;
		return FERRYD_NEIGH_OK;
	}
	if (h->state == HOP_INVALID && now_ms >= h->retry_ms)
		ask_hop(n, d->hop);
	n->st.misses++;
	return FERRYD_NEIGH_MISS;
}

/* ---- answers and notifications ---- */

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
	size_t alen = alen_of(ri->family);

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

struct neigh_info {
	uint16_t state;
	bool has_mac, has_dst;
	uint8_t mac[6], dst[16];
	size_t alen;
};

static int neigh_attr(const struct nlattr *a, void *data)
{
	struct neigh_info *ni = data;

	switch (mnl_attr_get_type(a)) {
	case NDA_LLADDR:
		if (mnl_attr_get_payload_len(a) == 6) {
			memcpy(ni->mac, mnl_attr_get_payload(a), 6);
			ni->has_mac = true;
		}
		break;
	case NDA_DST:
		if (mnl_attr_get_payload_len(a) == ni->alen) {
			memcpy(ni->dst, mnl_attr_get_payload(a), ni->alen);
			ni->has_dst = true;
		}
		break;
	}
	return MNL_CB_OK;
}

static void publish_hop(struct ferryd_neigh *n, uint32_t hop);

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

/* What a neighbour entry says about a next hop. STALE/DELAY/PROBE still name the
 * right host until proven otherwise, as the kernel itself uses them. */
static void hop_apply(struct ferryd_neigh *n, struct hop *h, const struct neigh_info *ni, bool deleted, uint64_t now)
{
	uint8_t old_state = h->state, old_mac[6];

	memcpy(old_mac, h->mac, 6);
	if (!deleted && ni->has_mac &&
	    (ni->state & (NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE))) {
		memcpy(h->mac, ni->mac, 6);
		h->state = HOP_VALID;
	} else {
		/* no entry yet, or resolving, or failed: the kernel's path resolves it and we hear so */
		h->state = HOP_INVALID;
		h->retry_ms = now + RETRY_MS;
	}
	/* NUD states come and go (REACHABLE, STALE, ...); what the send path sees changes only with these */
	if (h->state != old_state || memcmp(h->mac, old_mac, 6))
		publish_hop(n, (uint32_t)(h - n->hops));
}

/*
 * What the send path of another thread may know of d: the answer while it is
 * current (the generation of its family's routes), else nothing.
 */
static void publish(struct ferryd_neigh *n, const struct dst *d)
{
	enum ferryd_nexthop_result r = FERRYD_NEXTHOP_MISS;
	uint8_t mac[6] = { 0 };

	if (!n->table)
		return;
	if (d->state == DST_KNOWN && d->gen == n->gen[gen_of(d->family)]) {
		if (d->result != FERRYD_NEIGH_OK) {
			r = (enum ferryd_nexthop_result)d->result;
		} else if (d->flags & F_DIRECT) {
			r = FERRYD_NEXTHOP_OK;
			memcpy(mac, d->mac, 6);
		} else if (d->hop != NONE && n->hops[d->hop].state == HOP_VALID) {
			r = FERRYD_NEXTHOP_OK;
			memcpy(mac, n->hops[d->hop].mac, 6);
		}
	}
	ferryd_nexthops_put(n->table, d->family, d->addr, d->scope, r, mac, &d->prefsrc,
			    ferryd_nexthops_gen(n->table, d->family));
}

/* A next hop changed: what every destination through it knows changed with it (rare: a scan). */
static void publish_hop(struct ferryd_neigh *n, uint32_t hop)
{
	if (!n->table)
		return;
	for (uint32_t i = 0; i < n->cap; i++)
		if (n->dsts[i].family && n->dsts[i].hop == hop)
			publish(n, &n->dsts[i]);
}

/* Routes changed: every answer of a family (4 or 6 as gen_of gives, or both) is to be asked again. */
static void new_generation(struct ferryd_neigh *n, int which)
{
	for (int g = 0; g < 2; g++) {
		if (which >= 0 && g != which)
			continue;
		n->gen[g]++;
		if (n->table)
			ferryd_nexthops_invalidate(n->table, g ? AF_INET6 : AF_INET);
	}
}

static void dst_retry(struct ferryd_neigh *n, struct dst *d, uint64_t at)
{
	d->state = DST_RETRY;
	d->retry_ms = at;
	publish(n, d);
}

/* The kernel's route toward d (an RTM_NEWROUTE answer). */
static void dst_route(struct ferryd_neigh *n, uint32_t i, const struct nlmsghdr *nlh, uint64_t now)
{
	struct dst *d = &n->dsts[i];
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct route_info ri = { .family = d->family };
	uint32_t old = d->hop, hop = NONE;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm)) {
		dst_retry(n, d, now + RETRY_MS);
		return;
	}
	ri.type = rtm->rtm_type;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr, &ri);
	memset(&d->prefsrc, 0, sizeof(d->prefsrc));
	d->flags &= (uint8_t)~F_DIRECT;
	if (ri.type != RTN_UNICAST && ri.type != RTN_BROADCAST && ri.type != RTN_MULTICAST) {
		d->result = ri.type == RTN_LOCAL ? FERRYD_NEIGH_NOT_HERE : FERRYD_NEIGH_NO_ROUTE;
	} else {
		if (ri.has_prefsrc) {
			d->prefsrc.sa.sa_family = d->family;
			if (d->family == AF_INET)
				memcpy(&d->prefsrc.in4.sin_addr, ri.prefsrc, 4);
			else
				memcpy(&d->prefsrc.in6.sin6_addr, ri.prefsrc, 16);
		}
		d->result = FERRYD_NEIGH_OK;
		if (ri.oif != n->ifindex || ri.has_via) {
			d->result = FERRYD_NEIGH_NOT_HERE;
		} else if (ri.type == RTN_BROADCAST) {
			memset(d->mac, 0xff, 6);
			d->flags |= F_DIRECT;
		} else if (multicast_mac(d->family, d->addr, d->mac)) {
			d->flags |= F_DIRECT;
		} else {
			uint8_t a[16] = { 0 };

			memcpy(a, ri.has_gw ? ri.gw : d->addr, alen_of(d->family));
			hop = hop_get(n, d->family, a);
			if (hop == NONE) { /* more next hops than the pool holds: later */
				n->st.uncached++;
				d->hop = NONE;
				if (old != NONE)
					hop_put(n, old);
				dst_retry(n, d, now + RETRY_MS);
				return;
			}
		}
	}
	d->hop = hop;
	if (old != NONE)
		hop_put(n, old); /* after the get: the same next hop is not freed in between */
	d->state = DST_KNOWN;
	d->gen = n->gen[gen_of(d->family)];
	publish(n, d);
}

/* The answer to the question in slot q (taken off it already). */
static void answer(struct ferryd_neigh *n, const struct req *q, const struct nlmsghdr *nlh, uint64_t now)
{
	int err = 0;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		err = mnl_nlmsg_get_payload_len(nlh) >= sizeof(*e) && e->error ? -e->error : EPROTO;
	}
	if (q->kind == REQ_ROUTE) {
		struct dst *d = &n->dsts[q->idx];

		d->flags &= (uint8_t)~F_INFLIGHT;
		if (!err && nlh->nlmsg_type == RTM_NEWROUTE) {
			dst_route(n, q->idx, nlh, now);
		} else if (err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES || err == EPERM) {
			/* an answer too, kept until a route changes */
			if (d->hop != NONE)
				hop_put(n, d->hop);
			d->hop = NONE;
			memset(&d->prefsrc, 0, sizeof(d->prefsrc));
			d->result = FERRYD_NEIGH_NO_ROUTE;
			d->state = DST_KNOWN;
			d->gen = n->gen[gen_of(d->family)];
			publish(n, d);
		} else {
			dst_retry(n, d, now + RETRY_MS);
		}
		return;
	}
	{
		struct hop *h = &n->hops[q->idx];
		struct neigh_info ni = { .alen = alen_of(h->family) };
		const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);

		h->flags &= (uint8_t)~F_INFLIGHT;
		if (!h->refs) {
			hop_free(n, q->idx);
			return;
		}
		if (!err && nlh->nlmsg_type == RTM_NEWNEIGH && mnl_nlmsg_get_payload_len(nlh) >= sizeof(*ndm)) {
			ni.state = ndm->ndm_state;
			mnl_attr_parse(nlh, sizeof(*ndm), neigh_attr, &ni);
			hop_apply(n, h, &ni, false, now);
		} else {
			hop_apply(n, h, &ni, true, now); /* -ENOENT: no entry (yet) */
		}
	}
}

/* The kernel's tables changed (a message not answering us). */
static void notified(struct ferryd_neigh *n, const struct nlmsghdr *nlh, uint64_t now)
{
	switch (nlh->nlmsg_type) {
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH: {
		const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
		struct neigh_info ni = { 0 };
		uint8_t a[16] = { 0 };
		uint32_t i;

		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm) ||
		    (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6) || (unsigned int)ndm->ndm_ifindex != n->ifindex)
			return;
		ni.alen = alen_of(ndm->ndm_family);
		ni.state = ndm->ndm_state;
		mnl_attr_parse(nlh, sizeof(*ndm), neigh_attr, &ni);
		if (!ni.has_dst)
			return;
		memcpy(a, ni.dst, ni.alen);
		i = hop_find(n, ndm->ndm_family, a);
		if (i == NONE)
			return;
		hop_apply(n, &n->hops[i], &ni, nlh->nlmsg_type == RTM_DELNEIGH, now);
		n->st.neigh_events++;
		return;
	}
	case RTM_NEWROUTE:
	case RTM_DELROUTE: {
		const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm) || (rtm->rtm_flags & RTM_F_CLONED))
			return;
		if (rtm->rtm_family == AF_INET || rtm->rtm_family == AF_INET6) {
			new_generation(n, (int)gen_of(rtm->rtm_family));
			n->st.route_events++;
		}
		return;
	}
	case RTM_NEWNEXTHOP:
	case RTM_DELNEXTHOP: /* routes may use it without a route notification */
		new_generation(n, -1);
		n->st.route_events++;
		return;
	}
}

/* A question that will not be answered (timed out, cancelled): its entry may be asked again from at. */
static void req_drop(struct ferryd_neigh *n, struct req *q, uint64_t at)
{
	if (q->kind == REQ_ROUTE) {
		struct dst *d = &n->dsts[q->idx];

		d->flags &= (uint8_t)~F_INFLIGHT;
		dst_retry(n, d, at);
	} else if (q->kind == REQ_NEIGH) {
		struct hop *h = &n->hops[q->idx];

		h->flags &= (uint8_t)~F_INFLIGHT;
		if (!h->refs) {
			hop_free(n, q->idx);
		} else if (h->state != HOP_VALID) {
			h->state = HOP_INVALID;
			h->retry_ms = at;
		}
	}
	q->kind = REQ_NONE;
	n->ninflight--;
}

static void expire(struct ferryd_neigh *n, uint64_t now)
{
	for (unsigned int k = 0; k < MAX_INFLIGHT && n->ninflight; k++)
		if (n->req[k].kind != REQ_NONE && now >= n->req[k].sent_ms + REQ_TIMEOUT_MS) {
			n->st.timeouts++;
			req_drop(n, &n->req[k], now);
		}
}

/*
 * Messages were lost (the socket overflowed): answers and notifications alike.
 * Every question in flight is dropped (a late answer is ignored by its
 * sequence number), every route answer re-asked on its next lookup, and every
 * next hop in use asked about again, usable meanwhile.
 */
static void overrun(struct ferryd_neigh *n, uint64_t now)
{
	n->st.overruns++;
	for (unsigned int k = 0; k < MAX_INFLIGHT; k++)
		if (n->req[k].kind != REQ_NONE)
			req_drop(n, &n->req[k], now);
	new_generation(n, -1);
	for (uint32_t i = 0; i < n->hcap; i++)
		if (n->hops[i].state != HOP_FREE && n->hops[i].refs)
			ask_hop(n, i);
}

static void take_message(struct ferryd_neigh *n, const struct nlmsghdr *nlh, uint64_t now, unsigned int *answered)
{
	if (nlh->nlmsg_pid == n->portid && nlh->nlmsg_seq) {
		/* an answer (we change nothing, so nothing else carries our port id) */
		for (unsigned int k = 0; k < MAX_INFLIGHT; k++) {
			struct req *q = &n->req[k];

			if (q->kind != REQ_NONE && q->seq == nlh->nlmsg_seq) {
				struct req taken = *q;

				q->kind = REQ_NONE;
				n->ninflight--;
				n->st.answers++;
				(*answered)++;
				answer(n, &taken, nlh, now);
				return;
			}
		}
		n->st.stale_answers++; /* to a question given up on: its entry was asked again, or forgotten */
		return;
	}
	notified(n, nlh, now);
}

/* Reads what is queued on the socket, without waiting. Returns the answers taken. */
static unsigned int take_answers(struct ferryd_neigh *n, uint64_t now)
{
	unsigned int answered = 0;

	for (int round = 0; round < RECV_ROUNDS; round++) {
		int got;

		for (int k = 0; k < RECV_BATCH; k++) {
			n->riov[k] = (struct iovec){ .iov_base = n->rbuf[k], .iov_len = RECV_MSG };
			n->rmsg[k].msg_hdr = (struct msghdr){ .msg_name = &n->rfrom[k],
							      .msg_namelen = sizeof(n->rfrom[k]),
							      .msg_iov = &n->riov[k],
							      .msg_iovlen = 1 };
		}
		got = recvmmsg(n->fd, n->rmsg, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno == ENOBUFS) {
				overrun(n, now);
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK && !n->warned) {
				n->warned = true;
				ferryd_log(LOG_WARNING, "neighbour updates: reading rtnetlink: %s", strerror(errno));
			}
			break;
		}
		for (int k = 0; k < got; k++) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)n->rbuf[k];
			int len = (int)n->rmsg[k].msg_len;

			if (n->rmsg[k].msg_hdr.msg_namelen != sizeof(struct sockaddr_nl) || n->rfrom[k].nl_pid != 0) {
				n->st.foreign++; /* only the kernel speaks for the kernel's tables */
				continue;
			}
			if (n->rmsg[k].msg_hdr.msg_flags & MSG_TRUNC)
				continue; /* too big to be ours; an answer lost so times out */
			for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
				take_message(n, nlh, now, &answered);
		}
		if (got < RECV_BATCH)
			break;
	}
	return answered;
}

/* Builds the next question into buf; 0 if none is queued. */
static size_t next_question(struct ferryd_neigh *n, uint8_t *buf, struct req *q)
{
	struct nlmsghdr *nlh;
	uint32_t i;

	while ((i = n->hq.head) != NONE) {
		struct hop *h = &n->hops[i];
		struct ndmsg *ndm;

		fifo_remove(&n->hq, n->hops, sizeof(*h), i);
		h->flags &= (uint8_t)~F_PENDING;
		if (!h->refs) {
			hop_free(n, i);
			continue;
		}
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_GETNEIGH;
		nlh->nlmsg_flags = NLM_F_REQUEST;
		ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
		ndm->ndm_family = h->family;
		ndm->ndm_ifindex = (int)n->ifindex;
		mnl_attr_put(nlh, NDA_DST, alen_of(h->family), h->addr);
		h->flags |= F_INFLIGHT;
		q->kind = REQ_NEIGH;
		q->idx = i;
		goto out;
	}
	if ((i = n->dq.head) != NONE) {
		struct dst *d = &n->dsts[i];
		struct rtmsg *rtm;

		fifo_remove(&n->dq, n->dsts, sizeof(*d), i);
		d->flags &= (uint8_t)~F_PENDING;
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_GETROUTE;
		nlh->nlmsg_flags = NLM_F_REQUEST;
		rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = d->family;
		rtm->rtm_dst_len = (unsigned char)(alen_of(d->family) * 8);
		mnl_attr_put(nlh, RTA_DST, alen_of(d->family), d->addr);
		if (d->scope)
			mnl_attr_put_u32(nlh, RTA_OIF, d->scope);
		d->flags |= F_INFLIGHT;
		q->kind = REQ_ROUTE;
		q->idx = i;
		goto out;
	}
	return 0;
out:
	if (!++n->seq)
		n->seq = 1;
	nlh->nlmsg_seq = q->seq = n->seq;
	return nlh->nlmsg_len;
}

/* Sends queued questions while slots are free, all in one write (rtnetlink takes
 * several messages per datagram and answers each). Returns how many were sent. */
static unsigned int send_questions(struct ferryd_neigh *n, uint64_t now)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	unsigned int slots[MAX_INFLIGHT], m = 0;
	size_t off = 0;

	for (unsigned int k = 0; k < MAX_INFLIGHT && n->ninflight < MAX_INFLIGHT; k++) {
		struct req *q = &n->req[k];
		size_t len;

		if (q->kind != REQ_NONE)
			continue;
		len = next_question(n, n->qbuf + off, q);
		if (!len)
			break;
		q->sent_ms = now;
		n->ninflight++;
		slots[m++] = k;
		off += len;
	}
	if (!m)
		return 0;
	while (sendto(n->fd, n->qbuf, off, MSG_DONTWAIT, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		if (errno == EINTR)
			continue;
		/* not sent: asked again after a while, not at once (whatever failed may last) */
		n->st.send_errors++;
		if (!n->warned) {
			n->warned = true;
			ferryd_log(LOG_WARNING, "neighbour updates: writing rtnetlink: %s", strerror(errno));
		}
		for (unsigned int k = 0; k < m; k++)
			req_drop(n, &n->req[slots[k]], now + RETRY_MS);
		return 0;
	}
	n->st.queries += m;
	return m;
}

unsigned int ferryd_neigh_submit(struct ferryd_neigh *n, uint64_t now_ms)
{
	unsigned int answered = 0;

	if (n->hq.head == NONE && n->dq.head == NONE)
		return 0;
	if (n->ninflight)
		expire(n, now_ms);
	for (int round = 0; round < SUBMIT_ROUNDS; round++) {
		if (!send_questions(n, now_ms))
			break;
		answered += take_answers(n, now_ms);
		if (n->hq.head == NONE && n->dq.head == NONE)
			break;
	}
	return answered;
}

static void on_readable(void *user, uint32_t events)
{
	struct ferryd_neigh *n = user;
	uint64_t now = ferryd_now_ms();

	(void)events;
	take_answers(n, now);
	if (n->ninflight)
		expire(n, now);
	ferryd_neigh_submit(n, now); /* the neighbour questions that route answers queued */
}

static void on_tick(void *user, struct ferry_timer *t)
{
	struct ferryd_neigh *n = user;
	uint64_t now = ferryd_now_ms();

	(void)t;
	if (n->ninflight)
		expire(n, now);
	ferryd_neigh_submit(n, now); /* what the expired ones left to ask again */
}

/* ---- life cycle ---- */

static void tables_reset(struct ferryd_neigh *n)
{
	memset(n->req, 0, sizeof(n->req));
	n->ninflight = 0;
	for (uint32_t b = 0; b <= n->dmask; b++)
		n->dbucket[b] = NONE;
	for (uint32_t b = 0; b <= n->hmask; b++)
		n->hbucket[b] = NONE;
	memset(n->dsts, 0, (size_t)n->cap * sizeof(*n->dsts));
	for (uint32_t i = 0; i < n->cap; i++) {
		n->dsts[i].hop = NONE;
		n->dsts[i].next = i + 1 < n->cap ? i + 1 : NONE;
	}
	memset(n->hops, 0, (size_t)n->hcap * sizeof(*n->hops));
	for (uint32_t i = 0; i < n->hcap; i++)
		n->hops[i].next = i + 1 < n->hcap ? i + 1 : NONE;
	n->dfree = n->hfree = 0;
	n->hand = 0;
	n->dq = n->hq = (struct fifo){ NONE, NONE };
	n->st.entries = 0;
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static int nl_async_open(struct ferryd_neigh *n)
{
	static const unsigned int groups[] = { RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEXTHOP };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t salen = sizeof(sa);
	int sz = RCVBUF, one = 1;

	n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (n->fd < 0)
		return -errno;
	if (bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) || getsockname(n->fd, (struct sockaddr *)&sa, &salen))
		return -errno;
	n->portid = sa.nl_pid;
	if (setsockopt(n->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(n->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)); /* capped by rmem_max: still works */
	/* an error carries the question's header only, not the whole question */
	setsockopt(n->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	for (size_t k = 0; k < sizeof(groups) / sizeof(groups[0]); k++)
		if (setsockopt(n->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[k], sizeof(groups[k])) &&
		    groups[k] != RTNLGRP_NEXTHOP) /* older kernels have no nexthop objects */
			return -errno;
	return 0;
}

int ferryd_neigh_new(struct ferry_reactor *r, unsigned int ifindex, unsigned int capacity, struct ferryd_neigh **out)
{
	struct ferryd_neigh *n = calloc(1, sizeof(*n));
	int err;

	if (!n)
		return -ENOMEM;
	n->fd = -1;
	n->r = r;
	n->ifindex = ifindex;
	n->cap = capacity ? capacity : FERRYD_NEIGH_DEFAULT_CAPACITY;
	if (n->cap < MIN_CAPACITY)
		n->cap = MIN_CAPACITY;
	/* one next hop per destination at most, plus the unreferenced ones whose question is in flight */
	n->hcap = n->cap + MAX_INFLIGHT;
	n->dmask = pow2_at_least(n->cap) - 1;
	n->hmask = pow2_at_least(n->hcap) - 1;
	n->dsts = calloc(n->cap, sizeof(*n->dsts));
	n->hops = calloc(n->hcap, sizeof(*n->hops));
	n->dbucket = calloc((size_t)n->dmask + 1, sizeof(*n->dbucket));
	n->hbucket = calloc((size_t)n->hmask + 1, sizeof(*n->hbucket));
	if (!n->dsts || !n->hops || !n->dbucket || !n->hbucket) {
		err = -ENOMEM;
		goto err_free;
	}
	if (getrandom(&n->seed, sizeof(n->seed), GRND_NONBLOCK) != sizeof(n->seed))
		n->seed = ferryd_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	n->seq = (uint32_t)(n->seed >> 32);
	tables_reset(n);
	err = nl_async_open(n);
	if (err)
		goto err_free;
	err = ferry_reactor_add(r, n->fd, EPOLLIN, on_readable, n, &n->watch);
	if (err) {
		n->watch = NULL;
		goto err_free;
	}
	n->tick = ferry_timer_new(r, on_tick, n);
	if (!n->tick || ferry_timer_arm(n->tick, REQ_TIMEOUT_MS, REQ_TIMEOUT_MS)) {
		err = -ENOMEM;
		goto err_free;
	}
	*out = n;
	return 0;

err_free:
	ferryd_neigh_free(n);
	return err;
}

void ferryd_neigh_free(struct ferryd_neigh *n)
{
	if (!n)
		return;
	if (n->watch)
		ferry_reactor_del(n->r, n->watch);
	ferry_timer_free(n->tick);
	if (n->fd >= 0)
		close(n->fd);
	free(n->dsts);
	free(n->hops);
	free(n->dbucket);
	free(n->hbucket);
	free(n);
}

void ferryd_neigh_flush(struct ferryd_neigh *n)
{
	new_generation(n, -1); /* whatever was published reads as unknown */
	tables_reset(n); /* answers to questions in flight now match no slot: ignored */
}

void ferryd_neigh_get_stats(const struct ferryd_neigh *n, struct ferryd_neigh_stats *out)
{
	*out = n->st;
}

void ferryd_neigh_set_table(struct ferryd_neigh *n, struct ferryd_nexthops *t)
{
	n->table = t;
}

void ferryd_neigh_ask(struct ferryd_neigh *n, const union ferry_sockaddr *dst, uint64_t now_ms)
{
	uint8_t mac[6], addr[16] = { 0 };
	int family = dst->sa.sa_family;
	uint32_t scope = 0, i;

	if (ferryd_neigh_lookup(n, dst, now_ms, mac, NULL) != FERRYD_NEIGH_MISS) {
		/* known here, not there (it was published before a route change, or the
		 * table lost it to a collision): publish it again */
		if (family == AF_INET) {
			memcpy(addr, &dst->in4.sin_addr, 4);
		} else {
			memcpy(addr, &dst->in6.sin6_addr, 16);
			scope = dst->in6.sin6_scope_id;
		}
		i = dst_find(n, family, addr, scope);
		if (i != NONE)
			publish(n, &n->dsts[i]);
		return;
	}
	ferryd_neigh_submit(n, now_ms);
}
