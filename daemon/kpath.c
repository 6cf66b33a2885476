/* SPDX-License-Identifier: MIT */
/* A worker's kernel sockets (kpath.h): libferry's recvmmsg loops in, sendmmsg with a backlog out. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "dataplane.h"
#include "kpath.h"
#include "service.h"
#include "worker.h"

#define SOCK_RCVBUF (4 << 20) /* absorbs bursts while the handler runs */
#define SOCK_SNDBUF (4 << 20)
#define SEND_CHUNK 64	      /* messages per sendmmsg */
#define OUT_CAP 1024	      /* datagrams a socket's backlog holds */
#define RETRY_MIN_MS 1	      /* ENOBUFS: first back-off, doubled up to */
#define RETRY_MAX_MS 64
#define DRAIN_MS 1000	      /* how long a drain waits for queued datagrams, loop ends, backlogs */

#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif

/* Where a buffer of the pool is. Exactly one state per buffer, so a release can be checked. */
enum buf_state {
	BUF_FREE,	 /* on free[] */
	BUF_LOOP,	 /* in a receive loop's batch, between callbacks */
	BUF_CB,		 /* in a running callback */
	BUF_CB_RELEASED, /* in a running callback that already released it (after replacing it) */
	BUF_KEPT,	 /* a callback replaced it in its array: the handler holds it until release */
};

/* A datagram waiting in a socket's backlog: a copy (the caller's buffer is the caller's). */
struct kp_out {
	union ferry_sockaddr dst;
	size_t len;
	uint8_t *data;
};

struct kp_sock {
	struct ferryd_kpath *kp;
	unsigned int id; /* the service */
	struct ferryd_service *svc;
	unsigned int nth; /* of the service's sockets on this worker */
	int fd;
	struct ferry_stop *stop;
	bool running; /* registered, on_end not yet called */
	bool closing;
	void (*done)(void *user, uint64_t seq);
	void *done_user;
	uint64_t done_seq;
	/* the loop's batch */
	struct ferry_iobuf **bufs;
	struct ferry_iobuf **cbufs; /* what the callback gets: the batch, less what was cut */
	union ferry_sockaddr *csrcs;
	unsigned int *slot; /* cbufs[k] is bufs[slot[k]] */
	struct ferry_iobuf **orig;
	unsigned int *orig_idx;
	struct ferry_udp_loop_stats loop_stats;
	/* the backlog */
	struct kp_out *out;
	unsigned int out_head, out_n;
	int out_fd; /* a dup of fd, watched for EPOLLOUT while the backlog waits on it */
	struct ferry_watch *out_watch;
	struct ferry_timer *retry;
	uint64_t retry_ms;
};

static struct ferryd_stats *st_of(struct ferryd_kpath *kp)
{
	return &kp->w->st;
}

/* ---- the buffer pool ---------------------------------------------------------------- */

static unsigned int ptr_hash(const struct ferry_iobuf *b)
{
	uint64_t h = (uint64_t)(uintptr_t)b * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */

	return (unsigned int)(h >> 32);
}

/* The place of b in all[], or -1 if b is not one of the pool's buffers. */
static int pool_find(const struct kp_pool *p, const struct ferry_iobuf *b)
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
static int pool_reindex(struct kp_pool *p)
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

static int pool_grow(struct kp_pool *p, unsigned int n)
{
	unsigned int cap = p->nall + n;

	if (cap > p->cap) {
		struct ferry_iobuf **all = realloc(p->all, cap * sizeof(*all)), **fr;
		uint8_t *st;

		if (!all)
			return -ENOMEM;
		p->all = all;
		fr = realloc(p->free, cap * sizeof(*fr));
		if (!fr)
			return -ENOMEM;
		p->free = fr;
		st = realloc(p->state, cap);
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
static int pool_index_of(const struct kp_pool *p, const struct ferry_iobuf *b)
{
	uint64_t c = b->cookie;

	if (ferry_likely(c < p->nall && p->all[c] == b))
		return (int)c;
	return pool_find(p, b);
}

/* A free buffer, now in state st, growing the pool (rarely: only while handlers keep buffers) when none is left. */
static struct ferry_iobuf *pool_get(struct kp_pool *p, enum buf_state st)
{
	struct ferry_iobuf *b;
	int i;

	if (!p->nfree && pool_grow(p, 64) && !p->nfree)
		return NULL;
	b = p->free[--p->nfree];
	i = pool_find(p, b);
	ferry_iobuf_reset(b);
	b->flags &= FERRY_IOBUF_OWNED;
	b->cookie = (uint64_t)i; /* the engine owns the region: its place, to find it again quickly */
	p->state[i] = (uint8_t)st;
	return b;
}

/* Buffer i of all[] back on the free list. */
static void pool_put(struct kp_pool *p, unsigned int i)
{
	p->state[i] = BUF_FREE;
	p->free[p->nfree++] = p->all[i];
}

static void pool_free(struct kp_pool *p)
{
	for (unsigned int i = 0; i < p->nall; i++)
		ferry_iobuf_free(p->all[i]);
	free(p->all);
	free(p->free);
	free(p->state);
	free(p->index);
	memset(p, 0, sizeof(*p));
}

/* Counts a release of something that is not a buffer we handed out as kept; logs the first. */
static void bad_release(struct ferryd_kpath *kp, const struct ferry_iobuf *b, const char *what)
{
	if (!kp->w->bad_release++)
		ferryd_log(LOG_ERR, "worker %u: release of %s (%p): ignored", kp->w->id, what, (const void *)b);
}

/* ---- receive ---------------------------------------------------------------------- */

/*
 * The loop's callback: count, run the service's handler on what arrived
 * whole (a cut datagram is counted and dropped: no handler ever acts on
 * one), and give the loop a fresh buffer for every one the handler kept.
 */
static void on_batch(void *user, struct ferry_iobuf **bufs, const union ferry_sockaddr *srcs, unsigned int count)
{
	struct kp_sock *s = user;
	struct ferryd_kpath *kp = s->kp;
	struct ferryd_stats *st = st_of(kp);
	struct kp_pool *p = &kp->pool;
	struct ferry_iobuf **cb_bufs = bufs;
	const union ferry_sockaddr *cb_srcs = srcs;
	unsigned int n = 0;
	uint64_t bytes = 0;

	for (unsigned int i = 0; i < count; i++) {
		if (ferry_unlikely(bufs[i]->flags & FERRY_IOBUF_TRUNCATED)) {
			FERRYD_STAT_INC(st, rx_truncated);
			continue;
		}
		bytes += ferry_iobuf_length(bufs[i]);
		s->cbufs[n] = bufs[i];
		s->csrcs[n] = srcs[i];
		s->slot[n++] = i;
	}
	if (ferry_unlikely(n < count)) {
		cb_bufs = s->cbufs;
		cb_srcs = s->csrcs;
	}
	if (ferry_unlikely(n && s->closing)) {
		/* its service is being removed: the handler is gone */
		FERRYD_STAT_ADD(st, rx_no_service, n);
		return;
	}
	if (!n)
		return;
	FERRYD_STAT_ADD(st, rx_packets, n);
	FERRYD_STAT_ADD(st, rx_bytes, bytes);
	FERRYD_STAT_INC(st, rx_batches);
	if (kp->via)
		FERRYD_STAT_ADD(st, rx_via_socket, n);
	for (unsigned int k = 0; k < n; k++) {
		/* the loop only ever holds pool buffers (we replace whatever a handler leaves) */
		s->orig[k] = cb_bufs[k];
		s->orig_idx[k] = (unsigned int)pool_index_of(p, cb_bufs[k]);
		p->state[s->orig_idx[k]] = BUF_CB;
	}
	ferryd_worker_deliver(kp->w, s->id, cb_bufs, cb_srcs, n);
	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = s->slot[k], idx = s->orig_idx[k];
		struct ferry_iobuf *b;

		if (ferry_likely(cb_bufs[k] == s->orig[k])) {
			if (ferry_unlikely(p->state[idx] == BUF_CB_RELEASED))
				/* released, yet left in the array: the loop keeps it, the release did not count */
				bad_release(kp, s->orig[k], "a buffer its callback did not replace");
			p->state[idx] = BUF_LOOP;
			continue;
		}
		b = pool_get(p, BUF_LOOP);
		if (ferry_unlikely(!b)) {
			/* Nothing to give the loop: take the buffer back (the handler must
			 * not use it) and stop this loop rather than corrupt memory later. */
			ferryd_log(LOG_CRIT, "worker %u: out of memory replacing a buffer service %s kept; its socket stops",
				   kp->w->id, s->svc->name);
			bufs[i] = s->orig[k];
			p->state[idx] = BUF_LOOP;
			ferry_stop_fire(s->stop);
			continue;
		}
		bufs[i] = b;
		if (p->state[idx] == BUF_CB_RELEASED) {
			pool_put(p, idx); /* kept and released within its callback */
			continue;
		}
		p->state[idx] = BUF_KEPT;
		kp->kept++;
	}
}

static void sock_free(struct kp_sock *s);

/*
 * A socket of a service being removed, before it closes: what the kernel
 * queued for it would go with it, uncounted. A filter that takes nothing
 * goes on first (the kernel drops and counts what comes after: UDP
 * InErrors), then what is queued is read and counted in rx_no_service.
 */
static void count_queued(struct kp_sock *s)
{
	struct sock_filter none = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog prog = { .len = 1, .filter = &none };
	unsigned int errs = 0;
	uint64_t n = 0;
	char byte;

	if (s->fd < 0)
		return;
	if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		ferryd_log(LOG_WARNING, "worker %u: service %s: closing its socket, no filter: %s", s->kp->w->id,
			   s->svc->name, strerror(errno));
	/* bounded: a socket's buffer holds a bounded number; errors (ICMP) come once each */
	while (n < (1u << 24) && errs < 16) {
		if (recv(s->fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) >= 0)
			n++;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		else
			errs++;
	}
	if (n)
		FERRYD_STAT_ADD(st_of(s->kp), rx_no_service, n);
}

static void on_end(void *user, int result, struct ferry_iobuf *last)
{
	struct kp_sock *s = user;
	struct ferryd_kpath *kp = s->kp;

	(void)last;
	s->running = false;
	if (s->closing) {
		void (*done)(void *, uint64_t) = s->done;
		void *done_user = s->done_user;
		uint64_t seq = s->done_seq;
		bool last_one;

		kp->socks[s->id][s->nth] = NULL;
		last_one = --kp->nsocks[s->id] == 0 || !done;
		kp->closing--;
		count_queued(s);
		sock_free(s);
		if (done && last_one)
			done(done_user, seq);
		return;
	}
	if (result < 0)
		ferryd_log(LOG_ERR, "worker %u: service %s: receive failed: %s", kp->w->id, s->svc->name,
			   strerror(-result));
	else if (result != FERRY_END_STOPPED)
		ferryd_log(LOG_ERR, "worker %u: service %s: socket closed", kp->w->id, s->svc->name);
}

/* ---- send, and the backlog ----------------------------------------------------------------- */

static void count_dropped(struct ferryd_kpath *kp, unsigned int id, int err, unsigned int n)
{
	struct ferryd_stats *st = st_of(kp);

	if (err == EMSGSIZE)
		FERRYD_STAT_ADD(st, tx_too_big, n);
	else if (err == ENOSPC)
		FERRYD_STAT_ADD(st, tx_backlog_full, n);
	else
		FERRYD_STAT_ADD(st, tx_errors, n);
	FERRYD_STAT_ADD(st, tx_dropped, n);
	FERRYD_STAT_ADD(&kp->w->svc_st[id], tx_dropped, n);
}

static void count_sent(struct ferryd_kpath *kp, unsigned int id, const struct mmsghdr *m, int n)
{
	struct ferryd_stats *st = st_of(kp);
	uint64_t bytes = 0;

	for (int i = 0; i < n; i++)
		bytes += m[i].msg_len;
	FERRYD_STAT_ADD(st, tx_packets, n);
	FERRYD_STAT_ADD(st, tx_bytes, bytes);
	if (kp->via)
		FERRYD_STAT_ADD(st, tx_via_socket, n);
	FERRYD_STAT_ADD(&kp->w->svc_st[id], tx_packets, n);
}

static void on_writable(void *user, uint32_t events);
static void on_retry(void *user, struct ferry_timer *t);

/* Waits for the socket to take more: EPOLLOUT for a full buffer, a back-off for a full device queue. */
static void wait_for_room(struct kp_sock *s, int err)
{
	struct ferry_reactor *r = s->kp->w->r;

	if (err == ENOBUFS) {
		if (!s->retry)
			s->retry = ferry_timer_new(r, on_retry, s);
		s->retry_ms = s->retry_ms ? (s->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : s->retry_ms * 2)
					  : RETRY_MIN_MS;
		if (s->retry)
			ferry_timer_arm(s->retry, s->retry_ms, 0);
		return;
	}
	if (s->out_watch)
		return;
	if (s->out_fd < 0)
		s->out_fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
	if (s->out_fd >= 0 && ferry_reactor_add(r, s->out_fd, EPOLLOUT, on_writable, s, &s->out_watch))
		s->out_watch = NULL;
}

static void stop_waiting(struct kp_sock *s)
{
	if (s->out_watch) {
		ferry_reactor_del(s->kp->w->r, s->out_watch);
		s->out_watch = NULL;
	}
	if (s->retry)
		ferry_timer_disarm(s->retry);
	s->retry_ms = 0;
}

/* Copies what sendmmsg did not take into the backlog; what does not fit is dropped, counted. */
static void enqueue(struct kp_sock *s, const struct iovec *iov, const union ferry_sockaddr *to, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct kp_out *o;

		if (s->out_n == OUT_CAP) {
			count_dropped(s->kp, s->id, ENOSPC, n - i);
			return;
		}
		o = &s->out[(s->out_head + s->out_n) % OUT_CAP];
		o->data = malloc(iov[i].iov_len ? iov[i].iov_len : 1);
		if (!o->data) {
			count_dropped(s->kp, s->id, ENOMEM, n - i);
			return;
		}
		memcpy(o->data, iov[i].iov_base, iov[i].iov_len);
		o->len = iov[i].iov_len;
		o->dst = to[i];
		s->out_n++;
		FERRYD_STAT_INC(st_of(s->kp), tx_waited);
	}
}

/* Sends what the backlog holds, oldest first, as far as the socket takes it. */
static void flush(struct kp_sock *s)
{
	struct mmsghdr msgs[SEND_CHUNK];
	struct iovec iov[SEND_CHUNK];

	while (s->out_n) {
		unsigned int m = s->out_n < SEND_CHUNK ? s->out_n : SEND_CHUNK;
		int sent;

		for (unsigned int i = 0; i < m; i++) {
			struct kp_out *o = &s->out[(s->out_head + i) % OUT_CAP];

			iov[i] = (struct iovec){ .iov_base = o->data, .iov_len = o->len };
			msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &o->dst,
								  .msg_namelen = ferry_sockaddr_len(&o->dst),
								  .msg_iov = &iov[i],
								  .msg_iovlen = 1 } };
		}
		sent = sendmmsg(s->fd, msgs, m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
			wait_for_room(s, errno);
			return;
		}
		if (sent > 0) {
			count_sent(s->kp, s->id, msgs, sent);
		} else { /* the first one failed (sendmmsg reports an error only then): counted, and past it */
			count_dropped(s->kp, s->id, sent < 0 ? errno : EIO, 1);
			sent = 1;
		}
		for (int i = 0; i < sent; i++) {
			free(s->out[s->out_head].data);
			s->out_head = (s->out_head + 1) % OUT_CAP;
			s->out_n--;
		}
	}
	stop_waiting(s);
}

static void on_writable(void *user, uint32_t events)
{
	(void)events;
	flush(user);
}

static void on_retry(void *user, struct ferry_timer *t)
{
	(void)t;
	flush(user);
}

unsigned int ferryd_kpath_send(struct ferryd_kpath *kp, unsigned int id, struct ferry_iobuf **bufs,
			       const union ferry_sockaddr *dsts, unsigned int n)
{
	struct mmsghdr msgs[SEND_CHUNK];
	struct iovec iov[SEND_CHUNK];
	union ferry_sockaddr to[SEND_CHUNK];
	unsigned int done = 0, accepted = 0;
	struct kp_sock *s;

	if (id >= FERRY_MAX_SERVICES || !(s = kp->socks[id][0]) || s->closing) {
		count_dropped(kp, id < FERRY_MAX_SERVICES ? id : 0, EBADF, n);
		return 0;
	}
	while (done < n) {
		unsigned int m = n - done < SEND_CHUNK ? n - done : SEND_CHUNK, k = 0;

		for (unsigned int i = 0; i < m; i++) {
			to[i] = dsts[done + i];
			iov[i].iov_base = ferry_iobuf_window(bufs[done + i]);
			iov[i].iov_len = ferry_iobuf_length(bufs[done + i]);
			msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to[i],
								  .msg_namelen = ferry_sockaddr_len(&to[i]),
								  .msg_iov = &iov[i],
								  .msg_iovlen = 1 } };
		}
		done += m;
		if (s->out_n) { /* keep the order: behind what already waits */
			enqueue(s, iov, to, m);
			accepted += m;
			continue;
		}
		while (k < m) {
			int sent = sendmmsg(s->fd, msgs + k, m - k, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (sent > 0) {
				count_sent(kp, id, msgs + k, sent);
				k += (unsigned int)sent;
				accepted += (unsigned int)sent;
				continue;
			}
			if (sent < 0 && errno == EINTR)
				continue;
			if (sent < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
				int err = errno;
				unsigned int before = s->out_n;

				enqueue(s, iov + k, to + k, m - k);
				accepted += s->out_n - before;
				wait_for_room(s, err);
				break;
			}
			/* The first message failed: count it by reason and go on after it. */
			{
				char addr[64];
				int err = sent < 0 ? errno : EIO;

				ferry_sockaddr_format(&to[k], addr, sizeof(addr));
				ferryd_log(LOG_DEBUG, "worker %u: service %s: send of %zu bytes to %s failed: %s", kp->w->id,
					   s->svc->name, iov[k].iov_len, addr, strerror(err));
				count_dropped(kp, id, err, 1);
				k++;
			}
		}
	}
	return accepted;
}

unsigned int ferryd_kpath_backlog(const struct ferryd_kpath *kp)
{
	unsigned int n = 0;

	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
		for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++)
			if (kp->socks[id][j])
				n += kp->socks[id][j]->out_n;
	return n;
}

/*
 * Only buffers handed out as kept go back: anything else (a buffer released
 * twice, one still in a receive loop) is refused and logged, and never touched.
 */
bool ferryd_kpath_release(struct ferryd_kpath *kp, struct ferry_iobuf *b)
{
	struct kp_pool *p = &kp->pool;
	int k = pool_find(p, b);

	if (k < 0)
		return false;
	switch (p->state[k]) {
	case BUF_KEPT:
		pool_put(p, (unsigned int)k);
		kp->kept--;
		break;
	case BUF_CB:
		/* kept and released within one callback: freed when the callback returns */
		p->state[k] = BUF_CB_RELEASED;
		break;
	default:
		bad_release(kp, b, "a buffer that is not kept (released twice, or still receiving)");
		break;
	}
	return true;
}

/* ---- sockets ------------------------------------------------------------------------ */

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

/* A non-blocking UDP socket bound to the service's address, in a SO_REUSEPORT group with its siblings. */
static int open_socket(const struct ferryd_svc_entry *e, const char *ifname, bool join, char *why, size_t whylen)
{
	const struct ferryd_service *svc = e->svc;
	int family = e->addr.sa.sa_family, one = 1, size, fd, err;
	char addr[64];

	/* An IPv6-only socket could not bind a mapped address: e->addr is canonical, IPv4 for those. */
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
	if (ifname && ifname[0]) {
		err = ferry_udp_bind_to_interface(fd, ifname);
		if (err) {
			snprintf(why, whylen, "service %s: SO_BINDTODEVICE %s: %s", svc->name, ifname, strerror(-err));
			goto err_close;
		}
	}
	if (bind(fd, &e->addr.sa, ferry_sockaddr_len(&e->addr))) {
		err = -errno;
		snprintf(why, whylen, "service %s: bind %s: %s", svc->name, addr, strerror(errno));
		goto err_close;
	}
	err = set_multicast(fd, &e->addr, ifname && ifname[0] ? if_nametoindex(ifname) : 0, join && e->multicast);
	if (err) {
		snprintf(why, whylen, "service %s: %s %s%s%s: %s", svc->name,
			 e->multicast && join ? "joining" : "multicast options for", addr, ifname && ifname[0] ? " on " : "",
			 ifname ? ifname : "", strerror(-err));
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return err;
}

static void sock_free(struct kp_sock *s)
{
	if (!s)
		return;
	stop_waiting(s);
	if (s->retry)
		ferry_timer_free(s->retry);
	while (s->out_n) {
		free(s->out[s->out_head].data);
		s->out_head = (s->out_head + 1) % OUT_CAP;
		s->out_n--;
	}
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->fd >= 0)
		close(s->fd);
	ferry_stop_free(s->stop);
	/* the loop's buffers go back to the pool; kept ones stay with their handler */
	for (unsigned int i = 0; s->bufs && i < s->kp->batch; i++) {
		int k = s->bufs[i] ? pool_find(&s->kp->pool, s->bufs[i]) : -1;

		if (k >= 0 && s->kp->pool.state[k] == BUF_LOOP)
			pool_put(&s->kp->pool, (unsigned int)k);
	}
	free(s->bufs);
	free(s->cbufs);
	free(s->csrcs);
	free(s->slot);
	free(s->orig);
	free(s->orig_idx);
	free(s->out);
	free(s);
}

static int start_loop(struct kp_sock *s, char *why, size_t whylen)
{
	struct ferryd_kpath *kp = s->kp;
	struct ferry_udp_loop_opts opts;
	struct ferry_udp_config config;
	int err;

	for (unsigned int i = 0; i < kp->batch; i++) {
		s->bufs[i] = pool_get(&kp->pool, BUF_LOOP);
		if (!s->bufs[i]) {
			snprintf(why, whylen, "service %s: out of memory for receive buffers", s->svc->name);
			return -ENOMEM;
		}
	}
	ferry_udp_config_init(&config);
	config.capacity = kp->pool.capacity;
	config.init = s->bufs[0];
	config.stop = s->stop;
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.reactor = kp->w->r;
	opts.on_end = on_end;
	opts.end_user = s;
	opts.stats = &s->loop_stats;
	opts.max_count = kp->batch;
	opts.bufs = s->bufs;
	opts.create_srcs = true;
	err = ferry_udp_recvmmsg_loop(&config, s->fd, &opts, on_batch, s);
	if (err) {
		snprintf(why, whylen, "service %s: cannot start the receive loop: %s", s->svc->name, strerror(-err));
		return err;
	}
	s->running = true;
	return 0;
}

int ferryd_kpath_open(struct ferryd_kpath *kp, const struct ferryd_svc_entry *e, const char *ifname,
		      unsigned int nsock, bool join, char *why, size_t whylen)
{
	unsigned int id = e->svc->id;
	int err = 0;

	if (nsock > FERRYD_KPATH_MAX_SOCKS)
		nsock = FERRYD_KPATH_MAX_SOCKS;
	for (unsigned int j = 0; j < nsock; j++) {
		struct kp_sock *s = calloc(1, sizeof(*s));

		if (s) {
			s->kp = kp;
			s->fd = s->out_fd = -1;
		}
		if (!s || !(s->stop = ferry_stop_new()) || !(s->bufs = calloc(kp->batch, sizeof(*s->bufs))) ||
		    !(s->cbufs = calloc(kp->batch, sizeof(*s->cbufs))) ||
		    !(s->csrcs = calloc(kp->batch, sizeof(*s->csrcs))) ||
		    !(s->slot = calloc(kp->batch, sizeof(*s->slot))) ||
		    !(s->orig = calloc(kp->batch, sizeof(*s->orig))) ||
		    !(s->orig_idx = calloc(kp->batch, sizeof(*s->orig_idx))) ||
		    !(s->out = calloc(OUT_CAP, sizeof(*s->out)))) {
			sock_free(s);
			snprintf(why, whylen, "service %s: out of memory", e->svc->name);
			err = -ENOMEM;
			break;
		}
		s->id = id;
		s->svc = e->svc;
		s->nth = j;
		s->fd = open_socket(e, ifname, join && j == 0, why, whylen);
		if (s->fd < 0) {
			err = s->fd;
			sock_free(s);
			break;
		}
		err = start_loop(s, why, whylen);
		if (err) {
			sock_free(s);
			break;
		}
		kp->socks[id][j] = s;
		kp->nsocks[id]++;
	}
	if (err)
		ferryd_kpath_close(kp, id, NULL, NULL, 0);
	return err;
}

bool ferryd_kpath_has(const struct ferryd_kpath *kp, unsigned int id)
{
	return id < FERRY_MAX_SERVICES && kp->nsocks[id];
}

void ferryd_kpath_close(struct ferryd_kpath *kp, unsigned int id, void (*done)(void *user, uint64_t seq),
			void *user, uint64_t seq)
{
	bool any = false;

	for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++) {
		struct kp_sock *s = kp->socks[id][j];

		if (!s || s->closing)
			continue;
		s->closing = true;
		s->done = done;
		s->done_user = user;
		s->done_seq = seq;
		kp->closing++;
		if (s->running) {
			any = true;
			ferry_stop_fire(s->stop); /* on_end closes it */
			continue;
		}
		kp->socks[id][j] = NULL;
		kp->nsocks[id]--;
		kp->closing--;
		count_queued(s);
		sock_free(s);
	}
	if (!any && done)
		done(user, seq);
}

/* ---- life ----------------------------------------------------------------------------- */

int ferryd_kpath_init(struct ferryd_kpath *kp, struct ferryd_worker *w, bool via, unsigned int batch)
{
	memset(kp, 0, sizeof(*kp));
	kp->w = w;
	kp->via = via;
	kp->batch = batch ? batch : 64;
	/* Buffers that hold any UDP datagram whole: what the kernel reassembles
	 * can be 64 KiB. Only what a datagram fills is ever touched. */
	kp->pool.capacity = FERRYD_MAX_UDP_PAYLOAD;
	return pool_grow(&kp->pool, 64);
}

static unsigned int loops_running(const struct ferryd_kpath *kp)
{
	unsigned int n = 0;

	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
		for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++)
			if (kp->socks[id][j] && kp->socks[id][j]->running)
				n++;
	return n;
}

void ferryd_kpath_drain(struct ferryd_kpath *kp)
{
	uint64_t deadline = ferryd_now_ms() + DRAIN_MS;
	struct ferry_reactor *r = kp->w->r;

	/* What the kernel already queued is handled before the loops stop. */
	while (ferryd_now_ms() < deadline) {
		uint64_t before = kp->w->st.rx_packets;

		if (ferry_reactor_run_once(r, 5) < 0 || kp->w->st.rx_packets == before)
			break;
	}
	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
		for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++)
			if (kp->socks[id][j])
				ferry_stop_fire(kp->socks[id][j]->stop);
	/* Its own bound: a fired stop ends each loop at its next dispatch;
	 * backlogs go out as their sockets take them. */
	deadline = ferryd_now_ms() + DRAIN_MS;
	while ((loops_running(kp) || ferryd_kpath_backlog(kp)) && ferryd_now_ms() < deadline)
		if (ferry_reactor_run_once(r, 10) < 0)
			break;
	if (loops_running(kp))
		ferryd_log(LOG_WARNING, "worker %u: %u receive loops did not end within %d ms", kp->w->id,
			   loops_running(kp), DRAIN_MS);
	if (ferryd_kpath_backlog(kp)) {
		ferryd_log(LOG_WARNING, "worker %u: %u datagrams still waiting to be sent after %d ms: dropped",
			   kp->w->id, ferryd_kpath_backlog(kp), DRAIN_MS);
		for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
			for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++)
				if (kp->socks[id][j] && kp->socks[id][j]->out_n)
					count_dropped(kp, id, ENOSPC, kp->socks[id][j]->out_n);
	}
}

void ferryd_kpath_destroy(struct ferryd_kpath *kp)
{
	uint64_t deadline = ferryd_now_ms() + DRAIN_MS;

	if (!kp->w)
		return;
	/* Loops still running (no drain before, or a start that failed) end at
	 * their next dispatch: run it, bounded, so none outlives its socket. */
	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
		for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++)
			if (kp->socks[id][j])
				ferry_stop_fire(kp->socks[id][j]->stop);
	while (loops_running(kp) && ferryd_now_ms() < deadline)
		if (ferry_reactor_run_once(kp->w->r, 10) < 0)
			break;
	for (unsigned int id = 0; id < FERRY_MAX_SERVICES; id++)
		for (unsigned int j = 0; j < FERRYD_KPATH_MAX_SOCKS; j++) {
			struct kp_sock *s = kp->socks[id][j];

			if (!s)
				continue;
			kp->socks[id][j] = NULL;
			sock_free(s);
		}
	pool_free(&kp->pool);
	memset(kp->nsocks, 0, sizeof(kp->nsocks));
	kp->w = NULL;
}
