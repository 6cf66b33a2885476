/* SPDX-License-Identifier: MIT */
/*
 * The AF_XDP engine: per queue one UMEM and one AF_XDP socket; received UMEM
 * frames are handed to the services' batch callbacks as iobufs, sends get
 * their Ethernet/IP/UDP headers built here and go out on the TX ring.
 *
 * One UMEM per queue (not one shared): each queue's frames then only ever
 * move through that queue's fill/completion rings and free list, so a queue
 * can later be given its own thread without sharing anything, and the
 * accounting of a queue is checkable on its own. The price is that a frame
 * received on queue q can only be sent on q, which is what we do anyway.
 *
 * What the XDP program leaves to the kernel for a service (IPv4 fragments,
 * IPv6 fragment headers, a queue with no socket registered) and what is too
 * big for one frame on the wire both go through an inner socket engine
 * (sock.c, one UDP socket per service on the same reactor): the kernel
 * reassembles and fragments, the service's callback sees the datagram all
 * the same. Composing the engine, rather than opening sockets here, reuses
 * its receive loop, its pool of kept buffers with their checked release,
 * and its sendmmsg with the service's own source port.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <xdp/xsk.h>

#include "ferryd.h"
#include "iface.h"
#include "neigh.h"
#include "packet.h"
#include "prog.h"
#include "xsk.h"

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

#define RX_ROUNDS 4	   /* RX batches per readiness notification, then yield to other watches */
#define TX_CHUNK 64	   /* datagrams prepared per step of a send */
#define KICK_TRIES 64	   /* copy mode sends at most 32 descriptors per kick */
#define DRAIN_MS 1000	   /* how long drain waits for TX completions */
#define BUSY_POLL_USEC 20
#define SVC_SLOTS 128	   /* service hash table, > 2 * FERRY_MAX_SERVICES */
#define RAW_SNDBUF (4 << 20)
#define INNER_BATCH 16	   /* the kernel's path carries the exceptions, not the bulk: small batches */

/* Where a UMEM frame is. Exactly one state per frame; the counters of struct xq follow it. */
enum frame_state {
	FRAME_FREE,   /* on the free list */
	FRAME_KERNEL, /* on the fill ring, in the kernel, or on the RX ring not yet consumed */
	FRAME_USER,   /* in a callback */
	FRAME_KEPT,   /* a callback replaced it in its array: the handler holds it until release */
	FRAME_TX,     /* on the TX ring or waiting for its completion */
	FRAME_USER_RELEASED, /* in a callback that already released it (after replacing it): freed when it returns */
};

struct xdp_engine;

struct xq {
	struct xdp_engine *xe;
	unsigned int id;
	uint8_t *area;
	size_t area_len;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	int fd;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	struct ferry_watch *watch;
	bool in_map; /* registered in the XSKMAP */
	bool zero_copy;
	uint32_t nframes, fill_target;
	uint32_t *free_list, nfree;
	uint8_t *state;		/* enum frame_state per frame */
	struct ferry_iobuf *iob; /* one per frame: a kept frame's iobuf stays valid */
	uint32_t n_kernel, n_user, n_tx;
	uint64_t rx_packets, rx_batches, tx_completed; /* this queue's share of the engine's counters */
	/* one RX batch */
	struct ferry_iobuf **bufs, **orig;
	union ferry_sockaddr *srcs;
	uint16_t *svc_of;
};

struct svc_slot {
	bool used;
	uint8_t family; /* 4 or 6, as in struct ferry_service_key */
	uint16_t port;	/* network order */
	uint8_t addr[16];
	uint16_t idx;
};

/* One datagram that leaves through the raw socket instead of the TX ring. */
struct slow_tx {
	const uint8_t *payload;
	size_t len;
	union ferry_sockaddr src, dst;
};

struct xdp_engine {
	struct ferryd_engine e; /* first: the engine pointer is this */
	struct ferry_reactor *r;
	char ifname[IF_NAMESIZE];
	struct ferryd_service *svcs;
	unsigned int nsvc;
	unsigned int batch, frame_size, frame_shift;
	struct ferryd_prog *prog;
	struct ferryd_iface *iface; /* not ours: the interface's facts and the host's addresses */
	const struct ferryd_link_state *ls; /* its view while a batch or a send runs */
	bool subscribed;
	struct ferryd_neigh *neigh;
	int raw4, raw6; /* IPPROTO_RAW sockets: the kernel routes and resolves what we cannot */
	struct xq *q;
	unsigned int nq;
	struct xq *cur; /* the queue whose callback runs: its sends go out on it */
	/* The socket engine for what the kernel delivers or must fragment; its
	 * buffers are not UMEM frames (it holds none). Owned: freed with us. */
	struct ferryd_engine *inner;
	struct svc_slot slots[SVC_SLOTS];
	struct ferryd_stats st;
	uint64_t bad_desc, bad_release;
	bool drained;
	/* the slow path's scratch */
	struct slow_tx slow[TX_CHUNK];
	struct mmsghdr msgs[TX_CHUNK];
	struct iovec iov[TX_CHUNK][2];
	union ferry_sockaddr to[TX_CHUNK];
	uint8_t hdr[TX_CHUNK][FERRYD_TX_HEADROOM];
};

static const struct ferryd_engine_ops xdp_ops;

static struct xdp_engine *to_xe(struct ferryd_engine *e)
{
	return (struct xdp_engine *)e;
}

/* ---- services --------------------------------------------------------------- */

/* A service that does not name the unicast address it replies from: a wildcard, or a multicast group. */
static bool replies_from_route(const union ferry_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY) || IN_MULTICAST(ntohl(a->in4.sin_addr.s_addr));
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr) || IN6_IS_ADDR_MULTICAST(&a->in6.sin6_addr);
}

/* family (4/6), port and a 16-byte address of a canonical socket address. */
static void svc_key(const union ferry_sockaddr *a, uint8_t *family, uint16_t *port, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (a->sa.sa_family == AF_INET) {
		*family = 4;
		*port = a->in4.sin_port;
		memcpy(addr, &a->in4.sin_addr, 4);
	} else {
		*family = 6;
		*port = a->in6.sin6_port;
		memcpy(addr, &a->in6.sin6_addr, 16);
	}
}

static unsigned int svc_hash(uint8_t family, uint16_t port, const uint8_t addr[16])
{
	uint32_t h = 2166136261u ^ family; /* FNV-1a */

	h = (h ^ (port & 0xff)) * 16777619u;
	h = (h ^ (port >> 8)) * 16777619u;
	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % SVC_SLOTS;
}

static int svc_lookup(const struct xdp_engine *xe, uint8_t family, uint16_t port, const uint8_t addr[16])
{
	for (unsigned int h = svc_hash(family, port, addr), n = 0; n < SVC_SLOTS; n++, h = (h + 1) % SVC_SLOTS) {
		const struct svc_slot *s = &xe->slots[h];

		if (!s->used)
			return -1;
		if (s->family == family && s->port == port && !memcmp(s->addr, addr, 16))
			return s->idx;
	}
	return -1;
}

/* The service a datagram to dst belongs to: the exact address first, then the wildcard. */
static int svc_find(const struct xdp_engine *xe, const union ferry_sockaddr *dst)
{
	static const uint8_t zero[16];
	uint8_t family, addr[16];
	uint16_t port;
	int idx;

	svc_key(dst, &family, &port, addr);
	idx = svc_lookup(xe, family, port, addr);
	return idx >= 0 ? idx : svc_lookup(xe, family, port, zero);
}

static int svc_table_add(struct xdp_engine *xe, unsigned int idx, char *why, size_t whylen)
{
	union ferry_sockaddr a;
	uint8_t family, addr[16];
	uint16_t port;
	unsigned int h;

	ferryd_sockaddr_canon(&xe->svcs[idx].addr, &a);
	if ((a.sa.sa_family != AF_INET && a.sa.sa_family != AF_INET6) || !a.in4.sin_port) {
		snprintf(why, whylen, "service %s: needs an IPv4 or IPv6 address and a port", xe->svcs[idx].name);
		return -EINVAL;
	}
	svc_key(&a, &family, &port, addr);
	if (svc_lookup(xe, family, port, addr) >= 0) {
		snprintf(why, whylen, "service %s: its address is also another service's", xe->svcs[idx].name);
		return -EEXIST;
	}
	for (h = svc_hash(family, port, addr); xe->slots[h].used; h = (h + 1) % SVC_SLOTS)
		;
	xe->slots[h] = (struct svc_slot){ .used = true, .family = family, .port = port, .idx = (uint16_t)idx };
	memcpy(xe->slots[h].addr, addr, 16);
	return 0;
}

/* ---- frames ------------------------------------------------------------------- */

static inline uint64_t frame_addr(const struct xdp_engine *xe, uint32_t fi)
{
	return (uint64_t)fi << xe->frame_shift;
}

/* A frame leaves a callback (or is released) for the free list. */
static inline void frame_recycle(struct xq *q, uint32_t fi)
{
	q->state[fi] = FRAME_FREE;
	q->n_user--;
	q->free_list[q->nfree++] = fi;
}

/*
 * Tops the fill ring up to fill_target frames in the kernel; kicks only if the
 * kernel asked. Counts what it finds: a fill ring the kernel drained (every
 * frame we gave it is in use, the next datagram may find none) and a top-up
 * cut short for want of free frames.
 */
static void refill(struct xq *q)
{
	struct xdp_engine *xe = q->xe;
	uint32_t want, idx;

	if (q->n_kernel >= q->fill_target)
		return;
	if (q->n_kernel && xsk_prod_nb_free(&q->fill, q->fill.size) == q->fill.size)
		xe->st.rx_fill_empty++;
	want = q->fill_target - q->n_kernel;
	if (want > q->nfree) {
		xe->st.rx_fill_short++;
		want = q->nfree;
	}
	if (xsk_prod_nb_free(&q->fill, want) < want) /* cannot be short (ring >= frames); stay safe */
		want = xsk_prod_nb_free(&q->fill, want);
	if (want && xsk_ring_prod__reserve(&q->fill, want, &idx) == want) {
		for (uint32_t i = 0; i < want; i++) {
			uint32_t fi = q->free_list[--q->nfree];

			q->state[fi] = FRAME_KERNEL;
			*xsk_ring_prod__fill_addr(&q->fill, idx + i) = frame_addr(xe, fi);
		}
		xsk_ring_prod__submit(&q->fill, want);
		q->n_kernel += want;
	}
	if (xsk_ring_prod__needs_wakeup(&q->fill)) {
		xe->st.kicks++;
		recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	}
}

/* Takes TX completions back to the free list. */
static void reap(struct xq *q)
{
	struct xdp_engine *xe = q->xe;
	uint32_t idx, n = xsk_ring_cons__peek(&q->comp, q->comp.size, &idx);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&q->comp, idx + i);
		uint64_t fi = addr >> xe->frame_shift;

		if (fi >= q->nframes || q->state[fi] != FRAME_TX) {
			if (!xe->bad_desc++)
				ferryd_log(LOG_ERR, "queue %u: completion for frame address %#llx not on TX", q->id,
					   (unsigned long long)addr);
			continue;
		}
		q->state[fi] = FRAME_FREE;
		q->n_tx--;
		q->free_list[q->nfree++] = (uint32_t)fi;
		q->tx_completed++;
	}
	if (n)
		xsk_ring_cons__release(&q->comp, n);
}

static bool tx_ring_empty(struct xq *q)
{
	return xsk_prod_nb_free(&q->tx, q->tx.size) == q->tx.size;
}

/* Makes the kernel send what is on the TX ring, when it asked for a wake-up. */
static void kick_tx(struct xq *q)
{
	struct xdp_engine *xe = q->xe;

	for (int tries = 0; tries < KICK_TRIES && !tx_ring_empty(q); tries++) {
		if (!xsk_ring_prod__needs_wakeup(&q->tx))
			return;
		xe->st.kicks++;
		if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			continue;
		/* EAGAIN: the kernel's per-call budget ran out, or completions are full */
		if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS || errno == EINTR) {
			reap(q);
			continue;
		}
		/* Counted always, logged at 1, 2, 4, 8, ... failures: a link going
		 * down must not flood the log with one line per kick. */
		xe->st.kick_errors++;
		if (!(xe->st.kick_errors & (xe->st.kick_errors - 1)))
			ferryd_log(LOG_WARNING, "queue %u: TX wake-up: %s (%llu failures so far)", q->id,
				   strerror(errno), (unsigned long long)xe->st.kick_errors);
		return;
	}
}

/* ---- receive ------------------------------------------------------------------ */

/* One batch from the RX ring through the callbacks. Returns the descriptors consumed. */
static uint32_t rx_batch(struct xq *q)
{
	struct xdp_engine *xe = q->xe;
	uint32_t idx, n = xsk_ring_cons__peek(&q->rx, xe->batch, &idx);
	unsigned int k = 0, i, j;

	if (!n)
		return 0;
	for (i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + i);
		uint64_t addr = d->addr, fi = addr >> xe->frame_shift;
		uint32_t len = d->len;
		struct ferryd_packet pkt;
		struct ferry_iobuf *b;
		int s;

		if (fi >= q->nframes || q->state[fi] != FRAME_KERNEL) {
			/* a frame we never gave the kernel: not ours to recycle */
			if (!xe->bad_desc++)
				ferryd_log(LOG_ERR, "queue %u: RX descriptor for frame address %#llx not in the kernel",
					   q->id, (unsigned long long)addr);
			xe->st.rx_bad_header++;
			continue;
		}
		q->state[fi] = FRAME_USER;
		q->n_kernel--;
		q->n_user++;
		if ((addr & (xe->frame_size - 1)) + len > xe->frame_size ||
		    ferryd_packet_parse(q->area + addr, len, xe->ls->ifindex, &pkt)) {
			xe->st.rx_bad_header++;
			frame_recycle(q, (uint32_t)fi);
			continue;
		}
		s = svc_find(xe, &pkt.dst);
		if (s < 0 || !xe->svcs[s].cb) {
			xe->st.rx_no_service++;
			frame_recycle(q, (uint32_t)fi);
			continue;
		}
		b = &q->iob[fi];
		b->data = q->area + addr;
		b->lo_min = 0;
		b->lo = pkt.payload_off;
		b->hi = pkt.payload_off + pkt.payload_len;
		b->hi_max = len;
		b->flags = 0;
		b->reserved = 0;
		b->cookie = addr;
		q->bufs[k] = q->orig[k] = b;
		q->srcs[k] = pkt.src;
		q->svc_of[k] = (uint16_t)s;
		xe->st.rx_bytes += pkt.payload_len;
		k++;
	}
	xsk_ring_cons__release(&q->rx, n);
	refill(q); /* before the callbacks run: the kernel keeps receiving meanwhile */
	if (!k)
		return n;
	xe->st.rx_packets += k;
	xe->st.rx_batches++;
	q->rx_packets += k;
	q->rx_batches++;

	xe->cur = q;
	for (i = 0; i < k; i = j) {
		const struct ferryd_service *svc = &xe->svcs[q->svc_of[i]];

		for (j = i + 1; j < k && q->svc_of[j] == q->svc_of[i]; j++)
			;
		svc->cb(svc->user, q->bufs + i, q->srcs + i, j - i);
	}
	xe->cur = NULL;

	for (i = 0; i < k; i++) {
		uint32_t fi = (uint32_t)(q->orig[i] - q->iob);

		if (q->bufs[i] == q->orig[i] || q->state[fi] == FRAME_USER_RELEASED)
			frame_recycle(q, fi);
		else
			q->state[fi] = FRAME_KEPT; /* still counted in n_user */
	}
	refill(q);
	return n;
}

static void on_ready(void *user, uint32_t events)
{
	struct xq *q = user;

	reap(q);
	for (int round = 0; round < RX_ROUNDS; round++)
		if (!rx_batch(q))
			break;
	refill(q);
	if (!tx_ring_empty(q))
		kick_tx(q);
}

/* ---- send --------------------------------------------------------------------- */

/*
 * The source address of a datagram from svc (canonical) to dst: the
 * service's, or for a wildcard or a multicast group the route's (else the
 * interface's primary), with the service's port, as the kernel does for a
 * socket bound so.
 */
static bool pick_source(const struct xdp_engine *xe, const union ferry_sockaddr *svc_addr,
			const union ferry_sockaddr *prefsrc, union ferry_sockaddr *src)
{
	*src = *svc_addr;
	if (!replies_from_route(svc_addr))
		return true;
	if (svc_addr->sa.sa_family == AF_INET) {
		if (prefsrc->sa.sa_family == AF_INET)
			src->in4.sin_addr = prefsrc->in4.sin_addr;
		else if (xe->ls->has4)
			src->in4.sin_addr = xe->ls->addr4;
		else
			return false;
	} else {
		if (prefsrc->sa.sa_family == AF_INET6)
			src->in6.sin6_addr = prefsrc->in6.sin6_addr;
		else if (xe->ls->has6)
			src->in6.sin6_addr = xe->ls->addr6;
		else
			return false;
	}
	return true;
}

static void count_not_sent(struct xdp_engine *xe, int err)
{
	if (err == EMSGSIZE)
		xe->st.tx_too_big++;
	else
		xe->st.tx_errors++;
	xe->st.tx_dropped++;
}

/* Sends through the raw sockets: the kernel routes, resolves the next hop (queueing meanwhile) and sends. */
static unsigned int slow_send(struct xdp_engine *xe, unsigned int n)
{
	unsigned int sent = 0;

	for (int pass = 0; pass < 2; pass++) {
		int family = pass ? AF_INET6 : AF_INET, fd = pass ? xe->raw6 : xe->raw4;
		unsigned int m = 0, done = 0;

		for (unsigned int i = 0; i < n; i++) {
			struct slow_tx *t = &xe->slow[i];
			long start;

			if (t->dst.sa.sa_family != family)
				continue;
			if (fd < 0) {
				count_not_sent(xe, EAFNOSUPPORT);
				continue;
			}
			start = ferryd_packet_build(xe->hdr[m], FERRYD_TX_HEADROOM, t->payload, t->len, xe->ls->mac,
						    xe->ls->mac, &t->src, &t->dst);
			if (start < 0) {
				count_not_sent(xe, (int)-start);
				continue;
			}
			/* the raw socket takes the IP header on: skip the Ethernet one */
			xe->iov[m][0].iov_base = xe->hdr[m] + start + FERRYD_ETH_HLEN;
			xe->iov[m][0].iov_len = FERRYD_TX_HEADROOM - (size_t)start - FERRYD_ETH_HLEN;
			xe->iov[m][1].iov_base = (void *)t->payload;
			xe->iov[m][1].iov_len = t->len;
			xe->to[m] = t->dst;
			xe->to[m].in4.sin_port = 0; /* a raw socket's port is its protocol */
			xe->msgs[m] = (struct mmsghdr){ .msg_hdr = { .msg_name = &xe->to[m],
								     .msg_namelen = ferry_sockaddr_len(&t->dst),
								     .msg_iov = xe->iov[m],
								     .msg_iovlen = 2 } };
			m++;
		}
		while (done < m) {
			int r = sendmmsg(fd, xe->msgs + done, m - done, MSG_DONTWAIT);

			if (r > 0) {
				for (unsigned int k = done; k < done + (unsigned int)r; k++)
					xe->st.tx_bytes += xe->iov[k][1].iov_len;
				xe->st.tx_via_socket += (unsigned int)r;
				xe->st.tx_packets += (unsigned int)r;
				sent += (unsigned int)r;
				done += (unsigned int)r;
			} else if (r < 0 && errno == EINTR) {
				continue;
			} else {
				/* the first unsent one failed: count it by its reason and go on with the rest */
				count_not_sent(xe, r < 0 ? errno : EIO);
				done++;
			}
		}
	}
	return sent;
}

/* More than one frame on the wire (or in a UMEM frame)? */
static bool too_big(const struct xdp_engine *xe, size_t len, int family)
{
	return len + FERRYD_TX_HEADROOM > xe->frame_size ||
	       len + ferryd_packet_header_len(family) - FERRYD_ETH_HLEN > xe->ls->mtu;
}

static unsigned int send_chunk(struct xdp_engine *xe, struct xq *q, const struct ferryd_service *svc,
			       const union ferry_sockaddr *svc_addr, struct ferry_iobuf **bufs,
			       const union ferry_sockaddr *dsts, unsigned int n, uint64_t now)
{
	uint32_t fis[TX_CHUNK], lens[TX_CHUNK], offs[TX_CHUNK];
	unsigned int which[TX_CHUNK]; /* index into bufs/dsts */
	union ferry_sockaddr srcs[TX_CHUNK], big_dsts[TX_CHUNK], cdsts[TX_CHUNK], prefsrcs[TX_CHUNK];
	enum ferryd_neigh_result nrs[TX_CHUNK];
	uint8_t macs[TX_CHUNK][6];
	struct ferry_iobuf *big[TX_CHUNK];
	size_t plens[TX_CHUNK];
	unsigned int nx = 0, ns = 0, nb = 0, c, sent;
	uint32_t idx;
	bool missed = false, ok[TX_CHUNK];

	/* The next hops of the whole chunk first. A lookup never makes a syscall;
	 * a miss queues a question, and one submit then asks the kernel all of
	 * them and takes the answers it already has (rtnetlink answers within the
	 * write, never making us wait): a peer whose route and neighbour entry
	 * exist goes out on the TX ring from its first datagram, one the kernel
	 * has yet to resolve goes the kernel's way. No miss, no syscall. */
	for (unsigned int i = 0; i < n; i++) {
		ferryd_sockaddr_canon(&dsts[i], &cdsts[i]);
		nrs[i] = FERRYD_NEIGH_NO_ROUTE;
		memset(macs[i], 0, 6);
		prefsrcs[i].sa.sa_family = AF_UNSPEC;
		/* Never to ourselves, a whole segment, or port 0: counted there. */
		ok[i] = ferryd_stats_dst_ok(&xe->st, xe->ls, svc_addr->in4.sin_port, &cdsts[i]);
		if (!ok[i] || cdsts[i].sa.sa_family != svc_addr->sa.sa_family ||
		    too_big(xe, bufs[i]->hi - bufs[i]->lo, cdsts[i].sa.sa_family))
			continue; /* not sent by AF_XDP: no next hop needed */
		nrs[i] = ferryd_neigh_lookup(xe->neigh, &cdsts[i], now, macs[i], &prefsrcs[i]);
		missed |= nrs[i] == FERRYD_NEIGH_MISS;
	}
	if (missed && ferryd_neigh_submit(xe->neigh, now))
		for (unsigned int i = 0; i < n; i++)
			if (nrs[i] == FERRYD_NEIGH_MISS)
				nrs[i] = ferryd_neigh_lookup(xe->neigh, &cdsts[i], now, macs[i], &prefsrcs[i]);

	for (unsigned int i = 0; i < n; i++) {
		const struct ferry_iobuf *b = bufs[i];
		size_t len = b->hi - b->lo;
		union ferry_sockaddr dst = cdsts[i], src;
		enum ferryd_neigh_result nr = nrs[i];
		const uint8_t *mac = macs[i];
		uint32_t fi;
		long start;

		if (!ok[i])
			continue;
		if (dst.sa.sa_family != svc_addr->sa.sa_family) {
			count_not_sent(xe, EAFNOSUPPORT);
			continue;
		}
		if (too_big(xe, len, dst.sa.sa_family)) {
			/* More than one frame on the wire: the kernel fragments it, sent from
			 * the service's own UDP socket (an IPPROTO_RAW socket would refuse it,
			 * IPv6 never fragments what it is handed with headers). */
			big[nb] = bufs[i];
			big_dsts[nb++] = dst;
			continue;
		}
		if (!pick_source(xe, svc_addr, &prefsrcs[i], &src)) {
			count_not_sent(xe, EADDRNOTAVAIL);
			continue;
		}
		if (nr != FERRYD_NEIGH_OK || !q->nfree) {
			/* the kernel's path: it resolves, routes elsewhere, or says why not */
			if (nr == FERRYD_NEIGH_MISS)
				xe->st.tx_neigh_miss++;
			else if (nr == FERRYD_NEIGH_OK)
				xe->st.tx_no_frame++;
			xe->slow[ns++] = (struct slow_tx){ .payload = b->data + b->lo, .len = len, .src = src, .dst = dst };
			continue;
		}
		fi = q->free_list[--q->nfree];
		memcpy(q->area + frame_addr(xe, fi) + FERRYD_TX_HEADROOM, b->data + b->lo, len);
		start = ferryd_packet_build(q->area + frame_addr(xe, fi), FERRYD_TX_HEADROOM, NULL, len, xe->ls->mac,
					    mac, &src, &dst);
		if (start < 0) {
			q->free_list[q->nfree++] = fi;
			count_not_sent(xe, (int)-start);
			continue;
		}
		q->state[fi] = FRAME_TX; /* counted in n_tx once on the ring, below */
		fis[nx] = fi;
		which[nx] = i;
		srcs[nx] = src;
		offs[nx] = (uint32_t)start;
		lens[nx] = (uint32_t)(FERRYD_TX_HEADROOM - (size_t)start + len);
		plens[nx] = len;
		nx++;
	}

	c = nx;
	if (c && xsk_prod_nb_free(&q->tx, c) < c) {
		reap(q);
		kick_tx(q);
		c = xsk_prod_nb_free(&q->tx, c);
		if (c > nx)
			c = nx;
	}
	if (c && xsk_ring_prod__reserve(&q->tx, c, &idx) == c) {
		for (unsigned int i = 0; i < c; i++) {
			struct xdp_desc *d = xsk_ring_prod__tx_desc(&q->tx, idx + i);

			d->addr = frame_addr(xe, fis[i]) + offs[i];
			d->len = lens[i];
			d->options = 0;
			xe->st.tx_bytes += plens[i];
		}
		xsk_ring_prod__submit(&q->tx, c);
		q->n_tx += c;
		xe->st.tx_packets += c;
	} else {
		c = 0;
	}
	/* No room on the TX ring for the rest: their frames go back, the datagrams the kernel's way. */
	for (unsigned int i = c; i < nx; i++) {
		const struct ferry_iobuf *b = bufs[which[i]];

		xe->st.tx_ring_full++;
		q->state[fis[i]] = FRAME_FREE;
		q->free_list[q->nfree++] = fis[i];
		xe->slow[ns] = (struct slow_tx){ .payload = b->data + b->lo, .len = plens[i], .src = srcs[i] };
		ferryd_sockaddr_canon(&dsts[which[i]], &xe->slow[ns].dst);
		ns++;
	}
	sent = c;
	/* From inside this queue's own batch the kick waits for the end of the
	 * readiness (on_ready): one wake-up for every reply of several batches. */
	if (c && xe->cur != q)
		kick_tx(q);
	if (ns)
		sent += slow_send(xe, ns);
	if (nb)
		sent += xe->inner->ops->send(xe->inner, svc, big, big_dsts, nb); /* it counts what it refuses */
	return sent;
}

static unsigned int xdp_send(struct ferryd_engine *e, const struct ferryd_service *svc, struct ferry_iobuf **bufs,
			     const union ferry_sockaddr *dsts, unsigned int n)
{
	struct xdp_engine *xe = to_xe(e);
	struct xq *q = xe->cur ? xe->cur : &xe->q[0];
	union ferry_sockaddr svc_addr;
	unsigned int sent = 0;
	uint64_t now = ferryd_now_ms();

	ferryd_sockaddr_canon(&svc->addr, &svc_addr);
	if (svc_addr.sa.sa_family != AF_INET && svc_addr.sa.sa_family != AF_INET6) {
		for (unsigned int i = 0; i < n; i++)
			count_not_sent(xe, EAFNOSUPPORT);
		return 0;
	}
	reap(q);
	for (unsigned int base = 0; base < n; base += TX_CHUNK)
		sent += send_chunk(xe, q, svc, &svc_addr, bufs + base, dsts + base,
				   n - base < TX_CHUNK ? n - base : TX_CHUNK, now);
	return sent;
}

/* ---- handing frames back, counting them -------------------------------------------- */

/* The queue and frame index of an iobuf, if it really is one of ours. */
static struct xq *frame_of(struct xdp_engine *xe, const struct ferry_iobuf *b, uint32_t *fi)
{
	uintptr_t p = (uintptr_t)b;

	for (unsigned int i = 0; i < xe->nq; i++) {
		struct xq *q = &xe->q[i];
		uintptr_t lo = (uintptr_t)q->iob, hi = (uintptr_t)(q->iob + q->nframes);

		if (p < lo || p >= hi)
			continue;
		if ((p - lo) % sizeof(*q->iob))
			return NULL;
		*fi = (uint32_t)((p - lo) / sizeof(*q->iob));
		return q;
	}
	return NULL;
}

static void xdp_release(struct ferryd_engine *e, struct ferry_iobuf **bufs, unsigned int n)
{
	struct xdp_engine *xe = to_xe(e);
	bool touched[FERRY_MAX_QUEUES] = { false };

	for (unsigned int i = 0; i < n; i++) {
		struct xq *q;
		uint32_t fi;

		if (!bufs[i])
			continue;
		q = frame_of(xe, bufs[i], &fi);
		if (!q) {
			/* not a frame: a buffer of the kernel's path, or nothing of ours; the
			 * socket engine checks which (and refuses and logs what is not its own) */
			xe->inner->ops->release(xe->inner, &bufs[i], 1);
			continue;
		}
		if (q->state[fi] == FRAME_USER) {
			/* kept and released within one callback: its batch frees it when the callback returns */
			q->state[fi] = FRAME_USER_RELEASED;
			continue;
		}
		if (q->state[fi] != FRAME_KEPT) {
			/* not kept (released twice, or still in its callback): leave it alone */
			if (!xe->bad_release++)
				ferryd_log(LOG_ERR, "release of a buffer the AF_XDP engine did not hand out as kept (%p)",
					   (void *)bufs[i]);
			continue;
		}
		frame_recycle(q, fi);
		touched[q->id] = true;
	}
	for (unsigned int i = 0; i < xe->nq; i++)
		if (touched[i])
			refill(&xe->q[i]);
}

/* Adds what the inner socket engine counted: everything it received came the kernel's way, everything it sent too. */
static void add_inner_stats(struct ferryd_stats *out, const struct ferryd_stats *in)
{
	out->rx_packets += in->rx_packets;
	out->rx_bytes += in->rx_bytes;
	out->rx_batches += in->rx_batches;
	out->rx_truncated += in->rx_truncated;
	out->rx_via_socket += in->rx_packets;
	out->tx_packets += in->tx_packets;
	out->tx_bytes += in->tx_bytes;
	out->tx_via_socket += in->tx_packets;
	out->tx_too_big += in->tx_too_big;
	out->tx_errors += in->tx_errors;
	out->tx_dropped += in->tx_dropped;
	out->kicks += in->kicks;
}

static void xdp_get_stats(struct ferryd_engine *e, struct ferryd_stats *out)
{
	struct xdp_engine *xe = to_xe(e);

	*out = xe->st;
	if (xe->inner) {
		struct ferryd_stats in;

		memset(&in, 0, sizeof(in));
		xe->inner->ops->get_stats(xe->inner, &in);
		add_inner_stats(out, &in);
	}
	out->frames_total = out->frames_free = out->frames_kernel = out->frames_user = out->frames_tx = 0;
	for (unsigned int i = 0; i < xe->nq; i++) {
		const struct xq *q = &xe->q[i];
		struct xdp_statistics ks;
		socklen_t len = sizeof(ks);

		if (q->fd >= 0 && !getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &ks, &len)) {
			out->xsk_rx_dropped += ks.rx_dropped;
			out->xsk_rx_invalid_descs += ks.rx_invalid_descs;
			out->xsk_tx_invalid_descs += ks.tx_invalid_descs;
			if (len >= offsetof(struct xdp_statistics, rx_fill_ring_empty_descs) + sizeof(__u64)) {
				out->xsk_rx_ring_full += ks.rx_ring_full;
				out->xsk_rx_fill_ring_empty += ks.rx_fill_ring_empty_descs;
				out->xsk_tx_ring_empty += ks.tx_ring_empty_descs;
			}
		}

		out->frames_total += q->nframes;
		out->frames_free += q->nfree;
		out->frames_kernel += q->n_kernel;
		out->frames_user += q->n_user;
		out->frames_tx += q->n_tx;
	}
}

/* Every frame in exactly one place: the per-frame states agree with the counters, and they add up. */
static int xdp_check_frames(struct ferryd_engine *e)
{
	struct xdp_engine *xe = to_xe(e);
	int ret = 0;

	for (unsigned int i = 0; i < xe->nq; i++) {
		const struct xq *q = &xe->q[i];
		uint32_t count[FRAME_USER_RELEASED + 1] = { 0 };

		for (uint32_t fi = 0; fi < q->nframes; fi++) {
			if (q->state[fi] > FRAME_USER_RELEASED) {
				ferryd_log(LOG_ERR, "queue %u: frame %u in no known state (%u)", q->id, fi, q->state[fi]);
				ret = -EUCLEAN;
				continue;
			}
			count[q->state[fi]]++;
		}
		for (uint32_t k = 0; k < q->nfree; k++)
			if (q->free_list[k] >= q->nframes || q->state[q->free_list[k]] != FRAME_FREE) {
				ferryd_log(LOG_ERR, "queue %u: free list entry %u is frame %u, not free", q->id, k,
					   q->free_list[k]);
				ret = -EUCLEAN;
				break;
			}
		if (count[FRAME_FREE] != q->nfree || count[FRAME_KERNEL] != q->n_kernel ||
		    count[FRAME_USER] + count[FRAME_KEPT] + count[FRAME_USER_RELEASED] != q->n_user ||
		    count[FRAME_TX] != q->n_tx ||
		    q->nfree + q->n_kernel + q->n_user + q->n_tx != q->nframes) {
			ferryd_log(LOG_ERR,
				   "queue %u: frames out of balance: states free %u kernel %u user %u kept %u tx %u; "
				   "counted free %u kernel %u user %u tx %u; total %u",
				   q->id, count[FRAME_FREE], count[FRAME_KERNEL], count[FRAME_USER], count[FRAME_KEPT],
				   count[FRAME_TX], q->nfree, q->n_kernel, q->n_user, q->n_tx, q->nframes);
			ret = -EUCLEAN;
		}
	}
	if (xe->bad_desc) {
		ferryd_log(LOG_ERR, "%llu descriptors from the kernel named frames it did not hold",
			   (unsigned long long)xe->bad_desc);
		ret = -EUCLEAN;
	}
	return ret;
}

/* What the kernel counted on a socket: drops we cannot see from user space. */
static void log_kernel_stats(const struct xq *q)
{
	struct xdp_statistics s;
	socklen_t len = sizeof(s);

	if (getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &s, &len))
		return;
	if (s.rx_dropped || s.rx_invalid_descs || s.tx_invalid_descs || s.rx_ring_full || s.rx_fill_ring_empty_descs)
		ferryd_log(LOG_WARNING,
			   "queue %u: kernel AF_XDP counters: rx_dropped %llu rx_invalid %llu tx_invalid %llu "
			   "rx_ring_full %llu fill_ring_empty %llu",
			   q->id, (unsigned long long)s.rx_dropped, (unsigned long long)s.rx_invalid_descs,
			   (unsigned long long)s.tx_invalid_descs, (unsigned long long)s.rx_ring_full,
			   (unsigned long long)s.rx_fill_ring_empty_descs);
}

static void stop_receiving(struct xdp_engine *xe)
{
	for (unsigned int i = 0; i < xe->nq; i++) {
		struct xq *q = &xe->q[i];

		if (q->watch) {
			ferry_reactor_del(xe->r, q->watch);
			q->watch = NULL;
		}
		if (q->in_map) {
			ferryd_prog_set_socket(xe->prog, q->id, -1);
			q->in_map = false;
		}
	}
}

static void xdp_drain(struct ferryd_engine *e)
{
	struct xdp_engine *xe = to_xe(e);
	uint64_t deadline = ferryd_now_ms() + DRAIN_MS;
	bool pending;

	stop_receiving(xe);
	/* What is already on the RX rings (a readiness served only RX_ROUNDS
	 * batches, or it arrived after the last one) is delivered, not left
	 * there: out of the XSKMAP, a queue receives nothing new, so this ends. */
	for (unsigned int i = 0; i < xe->nq; i++)
		for (uint32_t round = 0; round <= xe->q[i].nframes / xe->batch; round++)
			if (!rx_batch(&xe->q[i]))
				break;
	/* What the kernel queued on the service sockets meanwhile (with no AF_XDP
	 * socket left in the map, the program passes everything to it) is handled
	 * now; the replies it sends by AF_XDP complete below. */
	if (xe->inner)
		xe->inner->ops->drain(xe->inner);
	do {
		pending = false;
		for (unsigned int i = 0; i < xe->nq; i++) {
			struct xq *q = &xe->q[i];

			reap(q);
			if (!tx_ring_empty(q))
				kick_tx(q);
			reap(q);
			pending |= q->n_tx != 0;
		}
		if (pending)
			poll(NULL, 0, 1);
	} while (pending && ferryd_now_ms() < deadline);
	for (unsigned int i = 0; i < xe->nq; i++) {
		if (xe->q[i].n_tx)
			ferryd_log(LOG_WARNING, "queue %u: %u sends not completed after %d ms", i, xe->q[i].n_tx, DRAIN_MS);
		if (xe->q[i].xsk)
			log_kernel_stats(&xe->q[i]);
	}
	xe->drained = true;
}

static void queue_free(struct xdp_engine *xe, struct xq *q)
{
	if (q->watch)
		ferry_reactor_del(xe->r, q->watch);
	if (q->in_map)
		ferryd_prog_set_socket(xe->prog, q->id, -1);
	if (q->xsk)
		xsk_socket__delete(q->xsk);
	if (q->umem)
		xsk_umem__delete(q->umem);
	if (q->area)
		munmap(q->area, q->area_len);
	free(q->free_list);
	free(q->state);
	free(q->iob);
	free(q->bufs);
	free(q->orig);
	free(q->srcs);
	free(q->svc_of);
	memset(q, 0, sizeof(*q));
}

static void xdp_free(struct ferryd_engine *e)
{
	struct xdp_engine *xe = to_xe(e);

	if (!xe)
		return;
	if (xe->subscribed)
		ferryd_iface_unsubscribe(xe->iface, xe);
	if (!xe->drained)
		for (unsigned int i = 0; i < xe->nq; i++)
			if (xe->q[i].xsk)
				log_kernel_stats(&xe->q[i]);
	/* No more AF_XDP batches: the inner drain below runs the reactor, and after a
	 * failed start (or a free without drain) no callback may get our frames now. */
	stop_receiving(xe);
	/* First: its drain may still run callbacks whose replies go out on our queues. */
	if (xe->inner)
		xe->inner->ops->free(xe->inner);
	xe->inner = NULL;
	for (unsigned int i = 0; i < xe->nq; i++)
		queue_free(xe, &xe->q[i]);
	free(xe->q);
	ferryd_prog_detach(xe->prog);
	ferryd_neigh_free(xe->neigh);
	if (xe->raw4 >= 0)
		close(xe->raw4);
	if (xe->raw6 >= 0)
		close(xe->raw6);
	free(xe);
}

static int xdp_xdp_counters(struct ferryd_engine *e, uint64_t *out)
{
	struct xdp_engine *xe = to_xe(e);

	if (!xe->prog)
		return -ENOENT;
	return ferryd_prog_counters(xe->prog, out);
}

int ferryd_xdp_queue_stats(struct ferryd_engine *e, unsigned int qi, struct ferryd_xdp_queue_stats *out)
{
	const struct xq *q;

	if (!e || e->ops != &xdp_ops)
		return -EINVAL;
	if (qi >= to_xe(e)->nq)
		return -ENOENT;
	q = &to_xe(e)->q[qi];
	*out = (struct ferryd_xdp_queue_stats){
		.rx_packets = q->rx_packets,
		.rx_batches = q->rx_batches,
		.tx_completed = q->tx_completed,
		.frames_total = q->nframes,
		.frames_free = q->nfree,
		.frames_kernel = q->n_kernel,
		.frames_user = q->n_user,
		.frames_tx = q->n_tx,
		.zero_copy = q->zero_copy,
	};
	return 0;
}

static const struct ferryd_engine_ops xdp_ops = {
	.name = "xdp",
	.send = xdp_send,
	.release = xdp_release,
	.get_stats = xdp_get_stats,
	.drain = xdp_drain,
	.free = xdp_free,
	.check_frames = xdp_check_frames,
	.xdp_counters = xdp_xdp_counters,
};

/* ---- setting up ------------------------------------------------------------------- */

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static void set_busy_poll(struct xq *q, unsigned int budget)
{
	int one = 1, usec = BUSY_POLL_USEC, b = (int)budget;

	if (setsockopt(q->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) ||
	    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof(usec)) ||
	    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &b, sizeof(b)))
		ferryd_log(LOG_WARNING, "queue %u: busy polling refused (%s); running without it", q->id,
			   strerror(errno));
}

/* One attempt at UMEM + socket with the given bind mode (XDP_ZEROCOPY or XDP_COPY). 0 or -errno. */
static int xsk_open(struct xdp_engine *xe, struct xq *q, uint16_t mode)
{
	uint32_t ring = pow2_at_least(q->nframes);
	struct xsk_umem_config ucfg = {
		.fill_size = ring,
		.comp_size = ring,
		.frame_size = xe->frame_size,
		.frame_headroom = 0,
		.flags = 0,
	};
	struct xsk_socket_config scfg = {
		.rx_size = ring,
		.tx_size = ring,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD, /* prog.c loads ours */
		.xdp_flags = 0,
		.bind_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | mode),
	};
	int err;

	err = xsk_umem__create(&q->umem, q->area, q->area_len, &q->fill, &q->comp, &ucfg);
	if (err) {
		q->umem = NULL;
		return err < 0 ? err : -err;
	}
	err = xsk_socket__create(&q->xsk, xe->ifname, q->id, q->umem, &q->rx, &q->tx, &scfg);
	if (err) {
		q->xsk = NULL;
		xsk_umem__delete(q->umem);
		q->umem = NULL;
		return err < 0 ? err : -err;
	}
	return 0;
}

/* The interface's receive queues as the driver reports them (ETHTOOL_GCHANNELS), or 0 if it does not say. */
static unsigned int iface_rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned int n = 0;

	if (fd < 0)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (char *)&ch;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == 0)
		n = ch.rx_count + ch.combined_count;
	close(fd);
	return n;
}

static int queue_setup(struct xdp_engine *xe, struct xq *q, const struct ferryd_config *cfg, char *zc_note,
		       size_t notelen, char *why, size_t whylen)
{
	struct xdp_options opts;
	socklen_t optlen = sizeof(opts);
	uint32_t reserve;
	int err;

	q->xe = xe;
	q->fd = -1;
	q->nframes = cfg->frames;
	/* Out of the fill ring, for sends: what two readinesses of replies take (at most a quarter of the frames, at least a batch). */
	reserve = q->nframes / 4 > 2 * RX_ROUNDS * xe->batch ? 2 * RX_ROUNDS * xe->batch : q->nframes / 4;
	if (reserve < xe->batch)
		reserve = xe->batch;
	q->fill_target = reserve < q->nframes ? q->nframes - reserve : q->nframes / 2;
	q->area_len = (size_t)q->nframes * xe->frame_size;
	q->area = mmap(NULL, q->area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (q->area == MAP_FAILED) {
		q->area = NULL;
		err = -errno;
		snprintf(why, whylen, "queue %u: mapping %zu bytes of UMEM: %s", q->id, q->area_len, strerror(-err));
		return err;
	}
	q->free_list = calloc(q->nframes, sizeof(*q->free_list));
	q->state = calloc(q->nframes, sizeof(*q->state));
	q->iob = calloc(q->nframes, sizeof(*q->iob));
	q->bufs = calloc(xe->batch, sizeof(*q->bufs));
	q->orig = calloc(xe->batch, sizeof(*q->orig));
	q->srcs = calloc(xe->batch, sizeof(*q->srcs));
	q->svc_of = calloc(xe->batch, sizeof(*q->svc_of));
	if (!q->free_list || !q->state || !q->iob || !q->bufs || !q->orig || !q->srcs || !q->svc_of) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t fi = 0; fi < q->nframes; fi++) {
		q->state[fi] = FRAME_FREE;
		q->free_list[q->nfree++] = q->nframes - 1 - fi; /* frame 0 handed out first */
	}

	if (cfg->zero_copy == FERRYD_ZC_OFF) {
		err = xsk_open(xe, q, XDP_COPY);
	} else {
		err = xsk_open(xe, q, XDP_ZEROCOPY);
		if (err && cfg->zero_copy == FERRYD_ZC_AUTO) {
			if (!zc_note[0])
				snprintf(zc_note, notelen, "zero-copy refused: %s", strerror(-err));
			err = xsk_open(xe, q, XDP_COPY);
		}
	}
	if (err) {
		unsigned int nrx = err == -EINVAL ? iface_rx_queues(xe->ifname) : 0;
		char hint[96] = "";

		if (err == -EOPNOTSUPP && cfg->zero_copy == FERRYD_ZC_ON)
			snprintf(hint, sizeof(hint), " (the driver has no zero-copy support)");
		else if (nrx && q->id >= nrx) /* the kernel binds queues below the interface's count only */
			snprintf(hint, sizeof(hint), ": %s has %u receive queue%s, so at most %u queue%s", xe->ifname, nrx,
				 nrx == 1 ? "" : "s", nrx, nrx == 1 ? "" : "s");
		snprintf(why, whylen, "AF_XDP socket on %s queue %u (%s): %s%s", xe->ifname, q->id,
			 cfg->zero_copy == FERRYD_ZC_ON	 ? "zero-copy required"
			 : cfg->zero_copy == FERRYD_ZC_OFF ? "copy mode"
							   : "zero-copy, then copy mode",
			 strerror(-err), hint);
		return err;
	}
	q->fd = xsk_socket__fd(q->xsk);
	if (getsockopt(q->fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0)
		q->zero_copy = opts.flags & XDP_OPTIONS_ZEROCOPY;
	if (cfg->busy_poll)
		set_busy_poll(q, xe->batch);

	refill(q);
	err = ferryd_prog_set_socket(xe->prog, q->id, q->fd);
	if (err) {
		snprintf(why, whylen, "queue %u: registering the AF_XDP socket with the XDP program: %s", q->id,
			 strerror(-err));
		return err;
	}
	q->in_map = true;
	err = ferry_reactor_add(xe->r, q->fd, EPOLLIN, on_ready, q, &q->watch);
	if (err) {
		q->watch = NULL;
		snprintf(why, whylen, "queue %u: watching the AF_XDP socket: %s", q->id, strerror(-err));
		return err;
	}
	return 0;
}

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

/*
 * The service sockets, before anything touches the interface: a service whose
 * address cannot be bound fails the start here, with the socket engine's
 * reason. One socket per service is enough (the kernel's path is the exception).
 */
static int inner_engine_new(struct xdp_engine *xe, const struct ferryd_config *cfg, char *why, size_t whylen)
{
	struct ferryd_config *icfg = malloc(sizeof(*icfg)); /* large: every service */
	char reason[200] = "";
	int err;

	if (!icfg) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	*icfg = *cfg;
	icfg->mode = FERRYD_MODE_SOCKET;
	icfg->queues = 1;
	icfg->batch = cfg->batch < INNER_BATCH ? cfg->batch : INNER_BATCH;
	err = ferryd_sock_engine_new(xe->r, xe->iface, icfg, xe->svcs, xe->nsvc, &xe->inner, reason, sizeof(reason));
	free(icfg);
	if (err) {
		xe->inner = NULL;
		snprintf(why, whylen, "the kernel socket of a service (for what XDP passes): %s",
			 reason[0] ? reason : strerror(-err));
	}
	return err;
}

/* The largest frame an AF_XDP socket of ours takes: the UMEM frame less the kernel's headroom (copy mode). */
static unsigned int max_rx_frame(const struct xdp_engine *xe)
{
	return xe->frame_size - XDP_PACKET_HEADROOM;
}

/* What the XDP program must know of the interface and the host: its MAC, our frame size, the addresses. */
static int tell_prog(struct xdp_engine *xe, const struct ferryd_link_state *ls, const struct ferryd_link_state *old)
{
	int err = 0;

	if (!old || memcmp(old->mac, ls->mac, 6))
		err = ferryd_prog_set_config(xe->prog, ls->mac, max_rx_frame(xe));
	if (!old || !ferryd_addrset_equal(&old->addrs, &ls->addrs)) {
		int e2 = ferryd_prog_set_addrs(xe->prog, &ls->addrs);

		err = err ? err : e2;
	}
	return err;
}

static void on_iface_change(void *user, const struct ferryd_link_state *old, const struct ferryd_link_state *now)
{
	struct xdp_engine *xe = user;

	xe->ls = now;
	if (xe->prog)
		tell_prog(xe, now, old);
	if (old->mtu != now->mtu)
		ferryd_log(LOG_INFO, "%s: MTU %u -> %u", now->ifname, old->mtu, now->mtu);
}

int ferryd_xdp_engine_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
			  struct ferryd_service *svcs, unsigned int nsvc, struct ferryd_engine **out, char *why,
			  size_t whylen)
{
	struct xdp_engine *xe;
	char zc_note[128] = "";
	unsigned int zc = 0, hw_queues;
	int err;

	*out = NULL;
	if (!iface || !ferryd_iface_state(iface)->ifindex) {
		snprintf(why, whylen, "AF_XDP needs an interface");
		return -EINVAL;
	}
	if (!ferryd_iface_state(iface)->ethernet) {
		snprintf(why, whylen, "interface %s: not an Ethernet interface", ferryd_iface_state(iface)->ifname);
		return -EPROTONOSUPPORT;
	}
	if (!cfg->queues || cfg->queues > FERRY_MAX_QUEUES) {
		snprintf(why, whylen, "queues must be 1..%d, not %u", FERRY_MAX_QUEUES, cfg->queues);
		return -EINVAL;
	}
	if ((cfg->frame_size != 2048 && cfg->frame_size != 4096) || cfg->frames < 64 || !cfg->batch ||
	    cfg->batch > cfg->frames / 2) {
		snprintf(why, whylen, "bad UMEM geometry: %u frames of %u bytes, batch %u (frames >= 64, 2048 or 4096 "
			 "bytes, batch <= frames / 2)", cfg->frames, cfg->frame_size, cfg->batch);
		return -EINVAL;
	}
	if (!nsvc || nsvc > FERRY_MAX_SERVICES) {
		snprintf(why, whylen, "AF_XDP needs 1..%d services, not %u", FERRY_MAX_SERVICES, nsvc);
		return -EINVAL;
	}
	xe = calloc(1, sizeof(*xe));
	if (!xe) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	xe->e.ops = &xdp_ops;
	xe->r = r;
	xe->iface = iface;
	xe->ls = ferryd_iface_state(iface);
	xe->svcs = svcs;
	xe->nsvc = nsvc;
	xe->batch = cfg->batch;
	xe->frame_size = cfg->frame_size;
	xe->frame_shift = cfg->frame_size == 4096 ? 12 : 11;
	xe->raw4 = xe->raw6 = -1;
	snprintf(xe->ifname, sizeof(xe->ifname), "%s", cfg->ifname);

	for (unsigned int i = 0; i < nsvc; i++) {
		err = svc_table_add(xe, i, why, whylen);
		if (err)
			goto err_free;
	}
	err = ferryd_iface_subscribe(iface, on_iface_change, xe);
	if (err) {
		snprintf(why, whylen, "watching the interface: %s", strerror(-err));
		goto err_free;
	}
	xe->subscribed = true;
	err = ferryd_neigh_new(xe->r, xe->ls->ifindex, 0, &xe->neigh);
	if (err) {
		snprintf(why, whylen, "rtnetlink socket for neighbour lookups: %s", strerror(-err));
		goto err_free;
	}
	xe->raw4 = raw_socket(AF_INET);
	xe->raw6 = raw_socket(AF_INET6);
	err = inner_engine_new(xe, cfg, why, whylen);
	if (err)
		goto err_free;

	err = ferryd_bpffs_ensure();
	if (err)
		ferryd_log(LOG_WARNING, "no bpffs at /sys/fs/bpf (%s); libxdp may not manage a dispatcher",
			   strerror(-err));
	err = ferryd_prog_attach(cfg->ifname, cfg->xdp_mode, &xe->prog, why, whylen);
	if (err)
		goto err_free;
	err = tell_prog(xe, xe->ls, NULL);
	if (err) {
		snprintf(why, whylen, "telling the XDP program the interface's facts: %s", strerror(-err));
		goto err_free;
	}
	for (unsigned int i = 0; i < nsvc; i++) {
		err = ferryd_prog_add_service(xe->prog, &svcs[i]);
		if (err) {
			snprintf(why, whylen, "service %s: steering it in the XDP program: %s", svcs[i].name,
				 strerror(-err));
			goto err_free;
		}
	}

	xe->q = calloc(cfg->queues, sizeof(*xe->q));
	if (!xe->q) {
		err = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto err_free;
	}
	xe->nq = cfg->queues;
	for (unsigned int i = 0; i < xe->nq; i++) {
		xe->q[i].id = i;
		xe->q[i].fd = -1;
	}
	for (unsigned int i = 0; i < xe->nq; i++) {
		err = queue_setup(xe, &xe->q[i], cfg, zc_note, sizeof(zc_note), why, whylen);
		if (err)
			goto err_free;
		zc += xe->q[i].zero_copy;
	}
	/* Not an error (the kernel socket serves the other queues, nothing is lost),
	 * but their traffic then takes the slow way: say so once, at start. */
	hw_queues = iface_rx_queues(xe->ifname);
	if (hw_queues > xe->nq)
		ferryd_log(LOG_WARNING,
			   "%s has %u receive queues and only %u %s an AF_XDP socket: datagrams the NIC puts on "
			   "the others reach the services through the kernel socket (rx_via_socket); use --queues %u",
			   xe->ifname, hw_queues, xe->nq, xe->nq == 1 ? "has" : "have", hw_queues);

	snprintf(xe->e.describe, sizeof(xe->e.describe),
		 "AF_XDP on %s, %u queue%s, %s%s%s%s, %u x %u B frames, fragments by kernel socket; %s", xe->ifname,
		 xe->nq, xe->nq == 1 ? "" : "s", zc == xe->nq ? "zero-copy" : zc ? "partly zero-copy" : "copy mode",
		 zc_note[0] ? " (" : "", zc_note, zc_note[0] ? ")" : "", cfg->frames, cfg->frame_size,
		 ferryd_prog_describe(xe->prog));
	*out = &xe->e;
	return 0;

err_free:
	xdp_free(&xe->e);
	return err;
}
