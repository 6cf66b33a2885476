/* SPDX-License-Identifier: MIT */
/* A worker's send path (tx.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "dataplane.h"
#include "nexthop.h"
#include "tx.h"
#include "worker.h"

#define RAW_SNDBUF (4 << 20)

static int raw_socket(int family)
{
	int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW), sz = RAW_SNDBUF;

	if (fd < 0) {
		ferryd_log(LOG_WARNING, "no raw IPv%d socket (%s): datagrams to unresolved next hops will be dropped",
			   family == AF_INET ? 4 : 6, strerror(errno));
		return -1;
	}
	/* IPPROTO_RAW receives nothing; it only sends what we built (IP_HDRINCL is implied) */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	return fd;
}

int ferryd_tx_init(struct ferryd_tx *tx, bool xdp)
{
	memset(tx, 0, sizeof(*tx));
	tx->raw4 = xdp ? raw_socket(AF_INET) : -1;
	tx->raw6 = xdp ? raw_socket(AF_INET6) : -1;
	return 0;
}

void ferryd_tx_destroy(struct ferryd_tx *tx)
{
	if (tx->raw4 >= 0)
		close(tx->raw4);
	if (tx->raw6 >= 0)
		close(tx->raw6);
	tx->raw4 = tx->raw6 = -1;
}

/* A service that does not name the unicast address it replies from: a wildcard, or a multicast group. */
static bool replies_from_route(const union ferry_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY) || IN_MULTICAST(ntohl(a->in4.sin_addr.s_addr));
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr) || IN6_IS_ADDR_MULTICAST(&a->in6.sin6_addr);
}

/*
 * The source address of a datagram from svc (canonical) to dst: the
 * service's, or for a wildcard or a multicast group the route's (else the
 * interface's primary), with the service's port, as the kernel does for a
 * socket bound so.
 */
static bool pick_source(const struct ferryd_link_state *ls, const union ferry_sockaddr *svc_addr,
			const union ferry_sockaddr *prefsrc, union ferry_sockaddr *src)
{
	*src = *svc_addr;
	if (!replies_from_route(svc_addr))
		return true;
	if (svc_addr->sa.sa_family == AF_INET) {
		if (prefsrc->sa.sa_family == AF_INET)
			src->in4.sin_addr = prefsrc->in4.sin_addr;
		else if (ls->has4)
			src->in4.sin_addr = ls->addr4;
		else
			return false;
	} else {
		if (prefsrc->sa.sa_family == AF_INET6)
			src->in6.sin6_addr = prefsrc->in6.sin6_addr;
		else if (ls->has6)
			src->in6.sin6_addr = ls->addr6;
		else
			return false;
	}
	return true;
}

static void count_not_sent(struct ferryd_worker *w, unsigned int id, int err)
{
	struct ferryd_stats *st = &w->st;

	if (err == EMSGSIZE)
		FERRYD_STAT_INC(st, tx_too_big);
	else if (err == ENOSPC)
		FERRYD_STAT_INC(st, tx_backlog_full);
	else
		FERRYD_STAT_INC(st, tx_errors);
	FERRYD_STAT_INC(st, tx_dropped);
	FERRYD_STAT_INC(&w->svc_st[id], tx_dropped);
}

/* Sends through the raw sockets: the kernel routes, resolves the next hop (queueing meanwhile) and sends. */
static unsigned int slow_send(struct ferryd_worker *w, unsigned int id, unsigned int n)
{
	struct ferryd_tx *tx = &w->tx;
	struct ferryd_stats *st = &w->st;
	unsigned int sent = 0;

	for (int pass = 0; pass < 2; pass++) {
		int family = pass ? AF_INET6 : AF_INET, fd = pass ? tx->raw6 : tx->raw4;
		unsigned int m = 0, done = 0;

		for (unsigned int i = 0; i < n; i++) {
			struct ferryd_slow_tx *t = &tx->slow[i];
			long start;

			if (t->dst.sa.sa_family != family)
				continue;
			if (fd < 0) {
				count_not_sent(w, id, EAFNOSUPPORT);
				continue;
			}
			start = ferryd_packet_build(tx->hdr[m], FERRYD_TX_HEADROOM, t->payload, t->len, w->ls->mac,
						    w->ls->mac, &t->src, &t->dst);
			if (start < 0) {
				count_not_sent(w, id, (int)-start);
				continue;
			}
			/* the raw socket takes the IP header on: skip the Ethernet one */
			tx->iov[m][0].iov_base = tx->hdr[m] + start + FERRYD_ETH_HLEN;
			tx->iov[m][0].iov_len = FERRYD_TX_HEADROOM - (size_t)start - FERRYD_ETH_HLEN;
			tx->iov[m][1].iov_base = (void *)t->payload;
			tx->iov[m][1].iov_len = t->len;
			tx->to[m] = t->dst;
			tx->to[m].in4.sin_port = 0; /* a raw socket's port is its protocol */
			tx->msgs[m] = (struct mmsghdr){ .msg_hdr = { .msg_name = &tx->to[m],
								     .msg_namelen = ferry_sockaddr_len(&t->dst),
								     .msg_iov = tx->iov[m],
								     .msg_iovlen = 2 } };
			m++;
		}
		while (done < m) {
			int r = sendmmsg(fd, tx->msgs + done, m - done, MSG_DONTWAIT);

			if (r > 0) {
				uint64_t bytes = 0;

				for (unsigned int k = done; k < done + (unsigned int)r; k++)
					bytes += tx->iov[k][1].iov_len;
				FERRYD_STAT_ADD(st, tx_bytes, bytes);
				FERRYD_STAT_ADD(st, tx_via_socket, r);
				FERRYD_STAT_ADD(st, tx_packets, r);
				FERRYD_STAT_ADD(&w->svc_st[id], tx_packets, r);
				sent += (unsigned int)r;
				done += (unsigned int)r;
			} else if (r < 0 && errno == EINTR) {
				continue;
			} else if (r < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
				/* the kernel holds enough for unresolved next hops already: the rest is dropped */
				for (; done < m; done++)
					count_not_sent(w, id, ENOSPC);
			} else {
				/* the first unsent one failed: count it by its reason and go on with the rest */
				count_not_sent(w, id, r < 0 ? errno : EIO);
				done++;
			}
		}
	}
	return sent;
}

/* More than one frame on the wire (or in a UMEM frame)? */
static bool too_big(const struct ferryd_worker *w, size_t len, int family)
{
	return len + FERRYD_TX_HEADROOM > w->dp->cfg.frame_size ||
	       len + ferryd_packet_header_len(family) - FERRYD_ETH_HLEN > w->ls->mtu;
}

/* The three ways out, in the order datagrams were given: what waits on one goes before another is used. */
enum path { PATH_NONE, PATH_RING, PATH_RAW, PATH_SOCKET };

struct chunk {
	struct ferryd_worker *w;
	struct ferryd_xq *q;
	unsigned int id;
	unsigned int ns, nb; /* waiting for the raw sockets, for the service's socket */
	struct ferry_iobuf *big[FERRYD_TX_CHUNK];
	union ferry_sockaddr big_dsts[FERRYD_TX_CHUNK];
	unsigned int sent;
};

/*
 * Sends what waits on path p now. The ring's frames go when the queue is
 * woken: inside the queue's own batch that waits for the end of the
 * readiness (one wake-up for the replies of several batches), unless another
 * way is about to be used (then now: a flow is never reordered).
 */
static void flush_path(struct chunk *c, enum path p, bool switching)
{
	switch (p) {
	case PATH_RING:
		if (c->q->kick_due && (switching || c->w->cur_q != c->q))
			ferryd_xq_flush(c->q);
		break;
	case PATH_RAW:
		if (c->ns)
			c->sent += slow_send(c->w, c->id, c->ns);
		c->ns = 0;
		break;
	case PATH_SOCKET:
		if (c->nb) /* it counts what it refuses */
			c->sent += ferryd_kpath_send(&c->w->kp, c->id, c->big, c->big_dsts, c->nb);
		c->nb = 0;
		break;
	case PATH_NONE:
		break;
	}
}

static unsigned int send_chunk(struct ferryd_worker *w, struct ferryd_xq *q, const struct ferryd_service *svc,
			       const union ferry_sockaddr *svc_addr, struct ferry_iobuf **bufs,
			       const union ferry_sockaddr *dsts, unsigned int n, uint64_t now)
{
	struct ferryd_tx *tx = &w->tx;
	struct ferryd_stats *st = &w->st;
	struct chunk c = { .w = w, .q = q, .id = svc->id };
	/* frames on the ring from before this call (the same readiness) count as waiting there */
	enum path pending = q->kick_due ? PATH_RING : PATH_NONE, path;
	union ferry_sockaddr cdst, prefsrc;
	uint64_t bytes = 0, ntx = 0;

	for (unsigned int i = 0; i < n; i++) {
		const struct ferry_iobuf *b = bufs[i];
		size_t len = b->hi - b->lo;
		enum ferryd_nexthop_result nr = FERRYD_NEXTHOP_NO_ROUTE;
		union ferry_sockaddr src;
		uint8_t mac[6];
		uint32_t fi = 0;
		long start;

		ferryd_sockaddr_canon(&dsts[i], &cdst);
		/* Never to ourselves, a whole segment, or port 0: counted there. */
		if (!ferryd_stats_dst_ok(st, w->ls, svc_addr->in4.sin_port, &cdst))
			continue;
		if (cdst.sa.sa_family != svc_addr->sa.sa_family) {
			count_not_sent(w, c.id, EAFNOSUPPORT);
			continue;
		}
		if (too_big(w, len, cdst.sa.sa_family)) {
			/* More than one frame on the wire: the kernel fragments it, sent from
			 * the service's own UDP socket (an IPPROTO_RAW socket would refuse it,
			 * IPv6 never fragments what it is handed with headers). */
			path = PATH_SOCKET;
		} else {
			/* The next hop from what the control thread published: no syscall, no lock. */
			nr = ferryd_nexthops_lookup(&w->dp->nh, &cdst, mac, &prefsrc);
			if (nr == FERRYD_NEXTHOP_MISS) {
				ferryd_worker_ask(w, &cdst, now);
				if (!w->threaded) /* asked on this thread: what the kernel knew is published now */
					nr = ferryd_nexthops_lookup(&w->dp->nh, &cdst, mac, &prefsrc);
			}
			if (!pick_source(w->ls, svc_addr, &prefsrc, &src)) {
				count_not_sent(w, c.id, EADDRNOTAVAIL);
				continue;
			}
			path = nr == FERRYD_NEXTHOP_OK && ferryd_umem_take(&q->umem, FERRYD_FRAME_TX, &fi) ? PATH_RING
													 : PATH_RAW;
		}
		if (path != pending) {
			flush_path(&c, pending, true);
			pending = path;
		}
		if (path == PATH_SOCKET) {
			c.big[c.nb] = bufs[i];
			c.big_dsts[c.nb++] = cdst;
			continue;
		}
		if (path == PATH_RAW) {
			/* the kernel's path: it resolves, routes elsewhere, or says why not */
			if (nr == FERRYD_NEXTHOP_MISS)
				FERRYD_STAT_INC(st, tx_neigh_miss);
			else if (nr == FERRYD_NEXTHOP_OK)
				FERRYD_STAT_INC(st, tx_no_frame);
			tx->slow[c.ns++] = (struct ferryd_slow_tx){ .payload = b->data + b->lo, .len = len, .src = src,
								    .dst = cdst };
			continue;
		}
		memcpy(q->umem.area + ferryd_umem_addr(&q->umem, fi) + FERRYD_TX_HEADROOM, b->data + b->lo, len);
		start = ferryd_packet_build(q->umem.area + ferryd_umem_addr(&q->umem, fi), FERRYD_TX_HEADROOM, NULL, len,
					    w->ls->mac, mac, &src, &cdst);
		if (start < 0) {
			ferryd_umem_put(&q->umem, fi);
			count_not_sent(w, c.id, (int)-start);
			continue;
		}
		if (!ferryd_xq_tx(q, fi, (uint32_t)start, (uint32_t)(FERRYD_TX_HEADROOM - (size_t)start + len))) {
			count_not_sent(w, c.id, ENOSPC);
			continue;
		}
		bytes += len;
		ntx++;
	}
	FERRYD_STAT_ADD(st, tx_packets, ntx);
	FERRYD_STAT_ADD(st, tx_bytes, bytes);
	FERRYD_STAT_ADD(&w->svc_st[c.id], tx_packets, ntx);
	c.sent += (unsigned int)ntx;
	flush_path(&c, pending, false);
	return c.sent;
}

/* Socket mode: the guard, then the service's socket. */
static unsigned int sock_send(struct ferryd_worker *w, const struct ferryd_service *svc,
			      const union ferry_sockaddr *svc_addr, struct ferry_iobuf **bufs,
			      const union ferry_sockaddr *dsts, unsigned int n)
{
	struct ferry_iobuf *ok_bufs[FERRYD_TX_CHUNK];
	union ferry_sockaddr ok_dsts[FERRYD_TX_CHUNK], c;
	unsigned int m = 0;

	for (unsigned int i = 0; i < n; i++) {
		ferryd_sockaddr_canon(&dsts[i], &c);
		if (!ferryd_stats_dst_ok(&w->st, w->ls, svc_addr->in4.sin_port, &c))
			continue;
		ok_bufs[m] = bufs[i];
		ok_dsts[m++] = dsts[i]; /* as given: an IPv6 socket sends to a mapped address as such */
	}
	return m ? ferryd_kpath_send(&w->kp, svc->id, ok_bufs, ok_dsts, m) : 0;
}

unsigned int ferryd_tx_send(struct ferryd_worker *w, const struct ferryd_service *svc, struct ferry_iobuf **bufs,
			    const union ferry_sockaddr *dsts, unsigned int n)
{
	union ferry_sockaddr svc_addr;
	unsigned int sent = 0;
	uint64_t now = ferryd_now_ms();
	struct ferryd_xq *q = w->cur_q ? w->cur_q : w->nq ? &w->q[0] : NULL;

	if (!svc || svc->id >= FERRY_MAX_SERVICES || !w->svcs->by_id[svc->id].svc) {
		for (unsigned int i = 0; i < n; i++)
			count_not_sent(w, 0, EINVAL);
		return 0;
	}
	ferryd_sockaddr_canon(&svc->addr, &svc_addr);
	for (unsigned int base = 0; base < n; base += FERRYD_TX_CHUNK) {
		unsigned int m = n - base < FERRYD_TX_CHUNK ? n - base : FERRYD_TX_CHUNK;

		sent += q ? send_chunk(w, q, svc, &svc_addr, bufs + base, dsts + base, m, now)
			  : sock_send(w, svc, &svc_addr, bufs + base, dsts + base, m);
	}
	return sent;
}
