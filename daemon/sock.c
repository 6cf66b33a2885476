/* SPDX-License-Identifier: MIT */
/*
 * The socket engine: ferryd's data path where AF_XDP cannot run. Per service,
 * one SO_REUSEPORT UDP socket per queue, each run by libferry's recvmmsg loop
 * on the reactor into the service's batch callback; sends by sendmmsg.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ferryd.h"
#include "iface.h"

#define SOCK_RCVBUF (4 << 20) /* absorbs bursts while the handler runs */
#define SOCK_SNDBUF (4 << 20)
#define SEND_CHUNK 64	      /* messages per sendmmsg */
#define SEND_RETRY_MS 20      /* how long a send waits for room before it gives up */
#define DRAIN_MS 1000	      /* how long drain waits for pending datagrams and loop ends */

struct sock_engine;

/* One socket and its recvmmsg loop. */
struct sock_rx {
	struct sock_engine *se;
	struct ferryd_service *svc;
	unsigned int queue;
	int fd;
	bool running; /* registered, on_end not yet called */
	struct ferry_iobuf **bufs; /* the loop's batch (opts.bufs), batch entries */
	struct ferry_iobuf **cbufs; /* what the callback gets: the batch, less what was cut */
	union ferry_sockaddr *csrcs;
	unsigned int *slot;	    /* cbufs[k] is bufs[slot[k]] */
	struct ferry_iobuf **orig; /* cbufs as it was before the callback */
	unsigned int *orig_idx;	   /* and their places in the pool's all[] */
	struct ferry_udp_loop_stats loop_stats;
};

/* Where a buffer of the pool is. Exactly one state per buffer, so a release can be checked. */
enum buf_state {
	BUF_FREE,	  /* on free[] */
	BUF_LOOP,	  /* in a receive loop's batch, between callbacks */
	BUF_CB,		  /* in a running callback */
	BUF_CB_RELEASED,  /* in a running callback that already released it (after replacing it) */
	BUF_KEPT,	  /* a callback replaced it in its array: the handler holds it until release */
};

/*
 * Buffers: every one the engine made is in all[], with its state in state[];
 * the unused ones are also on free[]. index[] is an open-addressing table
 * from a buffer's address to its place in all[] (+1, 0 = empty slot), so
 * release() can tell our buffers from any other pointer without touching it.
 */
struct buf_pool {
	struct ferry_iobuf **all, **free;
	uint8_t *state;
	uint32_t *index;
	unsigned int nall, nfree, cap, index_mask;
	size_t capacity; /* bytes per buffer */
};

struct sock_engine {
	struct ferryd_engine e; /* first: the engine pointer is this */
	struct ferry_reactor *r;
	struct ferryd_iface *iface;
	struct ferry_stop *stop;
	struct ferryd_service *svcs;
	unsigned int nsvc, queues, batch;
	struct sock_rx *rx; /* nsvc * queues, service-major */
	unsigned int nrx;
	struct buf_pool pool;
	uint64_t kept; /* buffers handlers hold (replaced and not yet released) */
	uint64_t bad_release; /* releases of pointers that were not a kept buffer of ours */
	struct ferryd_stats stats;
	bool drained;
};

static const struct ferryd_engine_ops sock_ops;

static struct sock_engine *to_se(struct ferryd_engine *e)
{
	return (struct sock_engine *)e;
}

static unsigned int ptr_hash(const struct ferry_iobuf *b)
{
	uint64_t h = (uint64_t)(uintptr_t)b * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */

	return (unsigned int)(h >> 32);
}

/* The place of b in all[], or -1 if b is not one of the pool's buffers. */
static int pool_find(const struct buf_pool *p, const struct ferry_iobuf *b)
{
	if (!p->index)
		return -1;
	for (unsigned int h = ptr_hash(b) & p->index_mask;; h = (h + 1) & p->index_mask) {
		uint32_t slot = p->index[h];

		if (!slot)
			return -1;
		if (p->all[slot - 1] == b)
			return (int)(slot - 1);
	}
}

/* Rebuilds the address table for cap buffers (at most half full). */
static int pool_reindex(struct buf_pool *p)
{
	unsigned int size = 64;
	uint32_t *index;

	while (size < 2 * p->cap)
		size <<= 1;
	index = calloc(size, sizeof(*index));
	if (!index)
		return -ENOMEM;
	free(p->index);
	p->index = index;
	p->index_mask = size - 1;
	for (unsigned int i = 0; i < p->nall; i++) {
		unsigned int h = ptr_hash(p->all[i]) & p->index_mask;

		while (p->index[h])
			h = (h + 1) & p->index_mask;
		p->index[h] = i + 1;
	}
	return 0;
}

static int pool_grow(struct buf_pool *p, unsigned int n)
{
	unsigned int cap = p->nall + n;

	if (cap > p->cap) {
		struct ferry_iobuf **all = realloc(p->all, cap * sizeof(*all));

		if (!all)
			return -ENOMEM;
		p->all = all;
		struct ferry_iobuf **fr = realloc(p->free, cap * sizeof(*fr));

		if (!fr)
			return -ENOMEM;
		p->free = fr;
		uint8_t *st = realloc(p->state, cap);

		if (!st)
			return -ENOMEM;
		p->state = st;
		p->cap = cap;
		/* the table only grows with the pool: rarely, and never on the way of a datagram */
		if (pool_reindex(p))
			return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct ferry_iobuf *b = ferry_iobuf_new(p->capacity);
		unsigned int h;

		if (!b)
			return -ENOMEM;
		p->state[p->nall] = BUF_FREE;
		p->all[p->nall++] = b;
		p->free[p->nfree++] = b;
		for (h = ptr_hash(b) & p->index_mask; p->index[h]; h = (h + 1) & p->index_mask)
			;
		p->index[h] = p->nall;
	}
	return 0;
}

/* The place of one of the pool's buffers in all[]: the cookie says it, unless someone changed it. */
static int pool_index_of(const struct buf_pool *p, const struct ferry_iobuf *b)
{
	uint64_t c = b->cookie;

	if (ferry_likely(c < p->nall && p->all[c] == b))
		return (int)c;
	return pool_find(p, b);
}

/* A free buffer, now in state st, growing the pool (rarely: only while handlers keep buffers) when none is left. */
static struct ferry_iobuf *pool_get(struct buf_pool *p, enum buf_state st)
{
	if (!p->nfree && pool_grow(p, 64) && !p->nfree)
		return NULL;
	struct ferry_iobuf *b = p->free[--p->nfree];

	int i = pool_find(p, b);

	ferry_iobuf_reset(b);
	b->flags &= FERRY_IOBUF_OWNED;
	b->cookie = (uint64_t)i; /* the engine owns the region: its place, to find it again quickly */
	p->state[i] = (uint8_t)st;
	return b;
}

/* Buffer i of all[] back on the free list. */
static void pool_put(struct buf_pool *p, unsigned int i)
{
	p->state[i] = BUF_FREE;
	p->free[p->nfree++] = p->all[i];
}

static void pool_free(struct buf_pool *p)
{
	for (unsigned int i = 0; i < p->nall; i++)
		ferry_iobuf_free(p->all[i]);
	free(p->all);
	free(p->free);
	free(p->state);
	free(p->index);
	memset(p, 0, sizeof(*p));
}

/* Counts a release of something that is not a buffer this engine handed out as kept; logs the first. */
static void bad_release(struct sock_engine *se, const struct ferry_iobuf *b, const char *what)
{
	if (!se->bad_release++)
		ferryd_log(LOG_ERR, "socket engine: release of %s (%p): ignored", what, (const void *)b);
}

/*
 * The loop's callback: count, run the service's handler on what arrived
 * whole (a cut datagram is counted and dropped: no handler ever acts on
 * one), and give the loop a fresh buffer for every one the handler kept
 * (replaced in its array).
 */
static void sock_rx_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct sock_rx *rx = user;
	struct sock_engine *se = rx->se;
	struct buf_pool *p = &se->pool;
	struct ferryd_service *svc = rx->svc;
	struct ferry_iobuf **cb_bufs = bufs;
	const union ferry_sockaddr *cb_srcs = srcs;
	unsigned int n = 0;
	uint64_t bytes = 0;

	for (unsigned int i = 0; i < count; i++) {
		if (ferry_unlikely(bufs[i]->flags & FERRY_IOBUF_TRUNCATED)) {
			se->stats.rx_truncated++;
			continue;
		}
		bytes += ferry_iobuf_length(bufs[i]);
		rx->cbufs[n] = bufs[i];
		rx->csrcs[n] = srcs[i];
		rx->slot[n++] = i;
	}
	if (ferry_unlikely(n < count)) {
		cb_bufs = rx->cbufs;
		cb_srcs = rx->csrcs;
	}
	if (!n)
		return;
	se->stats.rx_packets += n;
	se->stats.rx_bytes += bytes;
	se->stats.rx_batches++;
	if (!svc->cb)
		return;
	for (unsigned int k = 0; k < n; k++) {
		/* the loop only ever holds pool buffers (we replace whatever a handler leaves) */
		rx->orig[k] = cb_bufs[k];
		rx->orig_idx[k] = (unsigned int)pool_index_of(p, cb_bufs[k]);
		p->state[rx->orig_idx[k]] = BUF_CB;
	}
	svc->cb(svc->user, cb_bufs, cb_srcs, n);
	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = rx->slot[k], idx = rx->orig_idx[k];
		struct ferry_iobuf *b;

		if (ferry_likely(cb_bufs[k] == rx->orig[k])) {
			if (ferry_unlikely(p->state[idx] == BUF_CB_RELEASED))
				/* released, yet left in the array: the loop keeps it, the release did not count */
				bad_release(se, rx->orig[k], "a buffer its callback did not replace");
			p->state[idx] = BUF_LOOP;
			continue;
		}
		b = pool_get(p, BUF_LOOP);
		if (ferry_unlikely(!b)) {
			/* Nothing to give the loop: take the buffer back (the handler
			 * must not use it) and stop rather than corrupt memory later. */
			ferryd_log(LOG_CRIT, "socket engine: out of memory replacing a buffer service %s kept; stopping",
				   svc->name);
			bufs[i] = rx->orig[k];
			p->state[idx] = BUF_LOOP;
			ferry_stop_fire(se->stop);
			continue;
		}
		bufs[i] = b;
		if (p->state[idx] == BUF_CB_RELEASED) {
			pool_put(p, idx); /* kept and released within its callback */
			continue;
		}
		p->state[idx] = BUF_KEPT;
		se->kept++;
	}
}

static void sock_rx_end(void *user, int result, struct ferry_iobuf *last)
{
	struct sock_rx *rx = user;

	rx->running = false;
	if (result == FERRY_END_STOPPED)
		ferryd_log(LOG_DEBUG, "socket engine: service %s queue %u: loop stopped", rx->svc->name, rx->queue);
	else if (result < 0)
		ferryd_log(LOG_ERR, "socket engine: service %s queue %u: receive failed: %s", rx->svc->name, rx->queue,
			   strerror(-result));
	else
		ferryd_log(LOG_ERR, "socket engine: service %s queue %u: socket closed", rx->svc->name, rx->queue);
}

/* Counts n datagrams starting at bufs[0] as given up on, by reason. */
static void count_dropped(struct sock_engine *se, int err, unsigned int n)
{
	if (err == EMSGSIZE)
		se->stats.tx_too_big += n;
	else
		se->stats.tx_errors += n;
	se->stats.tx_dropped += n;
}

static unsigned int sock_send(struct ferryd_engine *e, const struct ferryd_service *svc, struct ferry_iobuf **bufs,
			      const union ferry_sockaddr *dsts, unsigned int n)
{
	struct sock_engine *se = to_se(e);
	const struct ferryd_link_state *ls = ferryd_iface_state(se->iface);
	struct mmsghdr msgs[SEND_CHUNK];
	struct iovec iov[SEND_CHUNK];
	union ferry_sockaddr to[SEND_CHUNK], svc_addr;
	unsigned int done = 0, accepted = 0;
	uint64_t deadline = 0;
	int fd;

	if (!svc || svc->id >= se->nsvc || &se->svcs[svc->id] != svc) {
		count_dropped(se, EINVAL, n);
		return 0;
	}
	fd = se->rx[svc->id * se->queues].fd;
	ferryd_sockaddr_canon(&svc->addr, &svc_addr);
	while (done < n) {
		unsigned int take = n - done < SEND_CHUNK ? n - done : SEND_CHUNK, m = 0, k = 0;

		/* The guard first: what it refuses is counted there and never sent. */
		for (unsigned int i = 0; i < take; i++) {
			union ferry_sockaddr c;

			ferryd_sockaddr_canon(&dsts[done + i], &c);
			if (!ferryd_stats_dst_ok(&se->stats, ls, svc_addr.in4.sin_port, &c))
				continue;
			/* as given: an IPv6 socket sends to a mapped address as such */
			to[m] = dsts[done + i];
			iov[m].iov_base = ferry_iobuf_window(bufs[done + i]);
			iov[m].iov_len = ferry_iobuf_length(bufs[done + i]);
			memset(&msgs[m].msg_hdr, 0, sizeof(msgs[m].msg_hdr));
			msgs[m].msg_hdr.msg_name = &to[m];
			msgs[m].msg_hdr.msg_namelen = ferry_sockaddr_len(&to[m]);
			msgs[m].msg_hdr.msg_iov = &iov[m];
			msgs[m].msg_hdr.msg_iovlen = 1;
			msgs[m].msg_len = 0;
			m++;
		}
		done += take;
		while (k < m) {
			int sent = sendmmsg(fd, msgs + k, m - k, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (sent > 0) {
				for (int i = 0; i < sent; i++)
					se->stats.tx_bytes += msgs[k + (unsigned int)i].msg_len;
				se->stats.tx_packets += (unsigned int)sent;
				accepted += (unsigned int)sent;
				k += (unsigned int)sent;
				continue;
			}
			if (sent < 0 && errno == EINTR)
				continue;
			if (sent < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
				/* The socket buffer is full: wait briefly for room rather than drop. */
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				uint64_t now = ferryd_now_ms();

				if (!deadline)
					deadline = now + SEND_RETRY_MS;
				if (now < deadline) {
					poll(&pfd, 1, (int)(deadline - now));
					continue;
				}
				ferryd_log(LOG_WARNING,
					   "socket engine: service %s: send buffer full for %d ms, %u datagrams dropped",
					   svc->name, SEND_RETRY_MS, m - k + n - done);
				count_dropped(se, errno, m - k + n - done);
				return accepted;
			}
			/* The first message failed (sendmmsg reports an error only
			 * then): count it by reason and go on after it. */
			{
				char addr[64];
				int err = sent < 0 ? errno : EIO;

				ferry_sockaddr_format(&to[k], addr, sizeof(addr));
				ferryd_log(LOG_DEBUG, "socket engine: service %s: send of %zu bytes to %s failed: %s",
					   svc->name, iov[k].iov_len, addr, strerror(err));
				count_dropped(se, err, 1);
				k++;
			}
		}
	}
	return accepted;
}

/*
 * Only buffers handed out as kept go back: anything else (a pointer that is
 * not ours, a buffer released twice, one still in a receive loop) is refused
 * and logged, and never touched.
 */
static void sock_release(struct ferryd_engine *e, struct ferry_iobuf **bufs, unsigned int n)
{
	struct sock_engine *se = to_se(e);
	struct buf_pool *p = &se->pool;

	for (unsigned int i = 0; i < n; i++) {
		int k;

		if (!bufs[i])
			continue;
		k = pool_find(p, bufs[i]);
		if (k < 0) {
			bad_release(se, bufs[i], "a buffer the socket engine did not hand out");
			continue;
		}
		switch (p->state[k]) {
		case BUF_KEPT:
			pool_put(p, (unsigned int)k);
			se->kept--;
			break;
		case BUF_CB:
			/* kept and released within one callback: freed when the callback returns */
			p->state[k] = BUF_CB_RELEASED;
			break;
		default:
			bad_release(se, bufs[i], "a buffer that is not kept (released twice, or still receiving)");
			break;
		}
	}
}

static void sock_get_stats(struct ferryd_engine *e, struct ferryd_stats *out)
{
	*out = to_se(e)->stats;
}

static unsigned int loops_running(const struct sock_engine *se)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < se->nrx; i++)
		n += se->rx[i].running;
	return n;
}

/* Runs the reactor without blocking until nothing more arrives (bounded), so
 * what the kernel already queued is handled before the loops stop. */
static void drain_pending(struct sock_engine *se, uint64_t deadline)
{
	while (ferryd_now_ms() < deadline) {
		uint64_t before = se->stats.rx_packets;

		if (ferry_reactor_run_once(se->r, 5) < 0)
			break;
		if (se->stats.rx_packets == before)
			break;
	}
}

static void sock_drain(struct ferryd_engine *e)
{
	struct sock_engine *se = to_se(e);
	uint64_t deadline = ferryd_now_ms() + DRAIN_MS;

	if (se->drained || !se->stop)
		return;
	se->drained = true;
	if (!ferry_stop_is_fired(se->stop))
		drain_pending(se, deadline);
	ferry_stop_fire(se->stop);
	/* Its own bound: traffic that went on may have used drain_pending's whole
	 * time, and a loop left registered would outlive the buffers and sockets
	 * sock_free() releases. A fired stop ends each loop at its next dispatch. */
	deadline = ferryd_now_ms() + DRAIN_MS;
	while (loops_running(se) && ferryd_now_ms() < deadline)
		if (ferry_reactor_run_once(se->r, 10) < 0)
			break;
	if (loops_running(se))
		ferryd_log(LOG_WARNING, "socket engine: %u receive loops did not end within %d ms", loops_running(se),
			   DRAIN_MS);
}

static void sock_free(struct ferryd_engine *e)
{
	struct sock_engine *se;

	if (!e)
		return;
	se = to_se(e);
	sock_drain(e);
	for (unsigned int i = 0; i < se->nrx; i++) {
		if (se->rx[i].fd >= 0)
			close(se->rx[i].fd);
		free(se->rx[i].bufs);
		free(se->rx[i].cbufs);
		free(se->rx[i].csrcs);
		free(se->rx[i].slot);
		free(se->rx[i].orig);
		free(se->rx[i].orig_idx);
	}
	free(se->rx);
	pool_free(&se->pool);
	ferry_stop_free(se->stop);
	free(se);
}

static const struct ferryd_engine_ops sock_ops = {
	.name = "socket",
	.send = sock_send,
	.release = sock_release,
	.get_stats = sock_get_stats,
	.drain = sock_drain,
	.free = sock_free,
};

#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif

static bool is_multicast(const union ferry_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return IN_MULTICAST(ntohl(a->in4.sin_addr.s_addr));
	return a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_MULTICAST(&a->in6.sin6_addr);
}

/*
 * The socket receives only the groups it joined itself (Linux's default
 * hands a socket bound to a port every group any socket of the host joined
 * on it), and joins its service's group on the interface (the kernel then
 * sends the IGMP/MLD reports; the membership ends with the socket).
 */
static int set_multicast(int fd, const union ferry_sockaddr *a, unsigned int ifindex, bool join)
{
	int zero = 0;

	if (a->sa.sa_family == AF_INET) {
		struct ip_mreqn m = { .imr_multiaddr = a->in4.sin_addr, .imr_ifindex = (int)ifindex };

		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero)))
			return -errno;
		if (join && setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)))
			return -errno;
	} else {
		struct ipv6_mreq m = { .ipv6mr_multiaddr = a->in6.sin6_addr, .ipv6mr_interface = ifindex };

		/* older kernels lack the option (and deliver only joined groups there anyway) */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof(zero)) && errno != ENOPROTOOPT)
			return -errno;
		if (join && setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof(m)))
			return -errno;
	}
	return 0;
}

/*
 * A non-blocking UDP socket bound to svc's address, in a SO_REUSEPORT group
 * with its siblings; the first of a multicast service's sockets (join) is the
 * one that joins the group, so a datagram to it is received once.
 */
static int open_socket(const struct ferryd_config *cfg, const struct ferryd_service *svc, bool join, char *why,
		       size_t whylen)
{
	union ferry_sockaddr a;
	int family, one = 1, size;
	char addr[64];
	int fd, err;

	/* An IPv6-only socket could not bind a mapped address: an IPv4 socket serves it. */
	ferryd_sockaddr_canon(&svc->addr, &a);
	family = a.sa.sa_family;
	ferry_sockaddr_format(&svc->addr, addr, sizeof(addr));
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		snprintf(why, whylen, "service %s: socket(): %s", svc->name, strerror(errno));
		return err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))) {
		err = -errno;
		snprintf(why, whylen, "service %s: setsockopt: %s", svc->name, strerror(errno));
		goto err_close;
	}
	/* Bigger buffers where privileges allow; the defaults still work. */
	size = SOCK_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	size = SOCK_SNDBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (cfg->ifname[0]) {
		err = ferry_udp_bind_to_interface(fd, cfg->ifname);
		if (err) {
			snprintf(why, whylen, "service %s: SO_BINDTODEVICE %s: %s", svc->name, cfg->ifname,
				 strerror(-err));
			goto err_close;
		}
	}
	if (bind(fd, &a.sa, ferry_sockaddr_len(&a))) {
		err = -errno;
		snprintf(why, whylen, "service %s: bind %s: %s", svc->name, addr, strerror(errno));
		goto err_close;
	}
	err = set_multicast(fd, &a, cfg->ifname[0] ? if_nametoindex(cfg->ifname) : 0, join && is_multicast(&a));
	if (err) {
		snprintf(why, whylen, "service %s: %s %s%s%s: %s", svc->name,
			 is_multicast(&a) && join ? "joining" : "multicast options for", addr,
			 cfg->ifname[0] ? " on " : "", cfg->ifname, strerror(-err));
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return err;
}

static int start_loop(struct sock_engine *se, struct sock_rx *rx, size_t capacity, char *why, size_t whylen)
{
	struct ferry_udp_loop_opts opts;
	struct ferry_udp_config config;
	int err;

	rx->bufs = calloc(se->batch, sizeof(*rx->bufs));
	rx->cbufs = calloc(se->batch, sizeof(*rx->cbufs));
	rx->csrcs = calloc(se->batch, sizeof(*rx->csrcs));
	rx->slot = calloc(se->batch, sizeof(*rx->slot));
	rx->orig = calloc(se->batch, sizeof(*rx->orig));
	rx->orig_idx = calloc(se->batch, sizeof(*rx->orig_idx));
	if (!rx->bufs || !rx->cbufs || !rx->csrcs || !rx->slot || !rx->orig || !rx->orig_idx)
		goto err_nomem;
	for (unsigned int i = 0; i < se->batch; i++) {
		rx->bufs[i] = pool_get(&se->pool, BUF_LOOP);
		if (!rx->bufs[i])
			goto err_nomem;
	}
	ferry_udp_config_init(&config);
	config.capacity = capacity;
	config.init = rx->bufs[0];
	config.stop = se->stop;
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = se->r;
	opts.on_end = sock_rx_end;
	opts.end_user = rx;
	opts.stats = &rx->loop_stats;
	opts.max_count = se->batch;
	opts.bufs = rx->bufs;
	opts.create_srcs = true;
	err = ferry_udp_recvmmsg_loop(&config, rx->fd, &opts, sock_rx_batch, rx);
	if (err) {
		snprintf(why, whylen, "service %s queue %u: cannot start the receive loop: %s", rx->svc->name,
			 rx->queue, strerror(-err));
		return err;
	}
	rx->running = true;
	return 0;

err_nomem:
	snprintf(why, whylen, "service %s: out of memory for receive buffers", rx->svc->name);
	return -ENOMEM;
}

int ferryd_sock_engine_new(struct ferry_reactor *r, struct ferryd_iface *iface, const struct ferryd_config *cfg,
			   struct ferryd_service *svcs, unsigned int nsvc, struct ferryd_engine **out, char *why,
			   size_t whylen)
{
	struct sock_engine *se;
	int err;

	if (!r || !iface || !cfg || !svcs || !nsvc || !out) {
		snprintf(why, whylen, "socket engine: no reactor, interface watch, configuration or service");
		return -EINVAL;
	}
	se = calloc(1, sizeof(*se));
	if (!se) {
		snprintf(why, whylen, "socket engine: out of memory");
		return -ENOMEM;
	}
	se->e.ops = &sock_ops;
	se->r = r;
	se->iface = iface;
	se->svcs = svcs;
	se->nsvc = nsvc;
	se->queues = cfg->queues ? cfg->queues : 1;
	se->batch = cfg->batch ? cfg->batch : 64;
	/* Buffers that hold any UDP datagram whole: what the kernel reassembles
	 * can be 64 KiB. Only what a datagram fills is ever touched. */
	se->pool.capacity = FERRYD_MAX_UDP_PAYLOAD;
	se->nrx = nsvc * se->queues;
	se->rx = calloc(se->nrx, sizeof(*se->rx));
	se->stop = ferry_stop_new();
	if (!se->rx || !se->stop) {
		err = -ENOMEM;
		snprintf(why, whylen, "socket engine: out of memory");
		goto err_free;
	}
	for (unsigned int i = 0; i < se->nrx; i++)
		se->rx[i].fd = -1;
	err = pool_grow(&se->pool, se->nrx * se->batch + 64);
	if (err) {
		snprintf(why, whylen, "socket engine: out of memory for %u buffers of %zu bytes",
			 se->nrx * se->batch + 64, se->pool.capacity);
		goto err_free;
	}
	for (unsigned int s = 0; s < nsvc; s++) {
		for (unsigned int q = 0; q < se->queues; q++) {
			struct sock_rx *rx = &se->rx[s * se->queues + q];

			rx->se = se;
			rx->svc = &svcs[s];
			rx->queue = q;
			rx->fd = open_socket(cfg, &svcs[s], q == 0, why, whylen);
			if (rx->fd < 0) {
				err = rx->fd;
				goto err_free;
			}
			err = start_loop(se, rx, se->pool.capacity, why, whylen);
			if (err)
				goto err_free;
		}
	}
	snprintf(se->e.describe, sizeof(se->e.describe),
		 "socket mode: %u service%s x %u SO_REUSEPORT socket%s, recvmmsg batch %u, %zu-byte buffers%s%s",
		 nsvc, nsvc == 1 ? "" : "s", se->queues, se->queues == 1 ? "" : "s", se->batch, se->pool.capacity,
		 cfg->ifname[0] ? ", bound to " : "", cfg->ifname);
	*out = &se->e;
	return 0;

err_free:
	/* Stop the loops already registered and let them end before their sockets close. */
	if (se->stop)
		ferry_stop_fire(se->stop);
	sock_free(&se->e);
	return err;
}
