/* SPDX-License-Identifier: MIT */
/* One AF_XDP queue of a worker (xsk_queue.h). */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "dataplane.h"
#include "packet.h"
#include "prog.h"
#include "worker.h"
#include "xsk_queue.h"

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

#define RX_ROUNDS 4	/* RX batches per readiness, then yield to the reactor's other watches */
#define KICK_TRIES 64	/* copy mode sends at most 32 descriptors per wake-up */
#define BUSY_POLL_USEC 20

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* Where the frames are, for the control thread's stats (relaxed stores: one writer). */
static void publish_frames(struct ferryd_xq *q)
{
	__atomic_store_n(&q->pub.free, q->umem.nfree, __ATOMIC_RELAXED);
	__atomic_store_n(&q->pub.kernel, q->umem.n_kernel, __ATOMIC_RELAXED);
	__atomic_store_n(&q->pub.user, q->umem.n_user, __ATOMIC_RELAXED);
	__atomic_store_n(&q->pub.tx, q->umem.n_tx, __ATOMIC_RELAXED);
}

/* ---- fill and completion -------------------------------------------------------- */

/*
 * Tops the fill ring up to fill_target frames in the kernel; wakes the
 * kernel only if it asked. Counts what it finds: a fill ring the kernel
 * drained (every frame we gave it is in use: the next datagram may find
 * none) and a top-up cut short for want of free frames.
 */
static void refill(struct ferryd_xq *q)
{
	struct ferryd_umem *u = &q->umem;
	struct ferryd_stats *st = &q->w->st;
	uint32_t want, idx;

	if (u->n_kernel >= q->fill_target)
		return;
	if (u->n_kernel && xsk_prod_nb_free(&q->fill, q->fill.size) == q->fill.size)
		FERRYD_STAT_INC(st, rx_fill_empty);
	want = q->fill_target - u->n_kernel;
	if (want > u->nfree) {
		FERRYD_STAT_INC(st, rx_fill_short);
		want = u->nfree;
	}
	if (xsk_prod_nb_free(&q->fill, want) < want) /* cannot be short (ring >= frames); stay safe */
		want = xsk_prod_nb_free(&q->fill, want);
	if (want && xsk_ring_prod__reserve(&q->fill, want, &idx) == want) {
		for (uint32_t i = 0; i < want; i++) {
			uint32_t fi = 0;

			ferryd_umem_take(u, FERRYD_FRAME_KERNEL, &fi);
			*xsk_ring_prod__fill_addr(&q->fill, idx + i) = ferryd_umem_addr(u, fi);
		}
		xsk_ring_prod__submit(&q->fill, want);
	}
	if (xsk_ring_prod__needs_wakeup(&q->fill)) {
		FERRYD_STAT_INC(st, kicks);
		recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	}
}

/* Takes TX completions back to the free list. */
static void reap(struct ferryd_xq *q)
{
	struct ferryd_umem *u = &q->umem;
	uint32_t idx, n = xsk_ring_cons__peek(&q->comp, q->comp.size, &idx);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&q->comp, idx + i);
		uint32_t fi = ferryd_umem_frame(u, addr);

		if (fi == UINT32_MAX || u->state[fi] != FERRYD_FRAME_TX) {
			if (!q->w->st.bad_desc)
				ferryd_log(LOG_ERR, "queue %u: completion for frame address %#llx not on TX", q->id,
					   (unsigned long long)addr);
			FERRYD_STAT_INC(&q->w->st, bad_desc);
			continue;
		}
		ferryd_umem_put(u, fi);
		FERRYD_STAT_INC(q, tx_completed);
	}
	if (n)
		xsk_ring_cons__release(&q->comp, n);
}

static bool tx_ring_empty(struct ferryd_xq *q)
{
	return xsk_prod_nb_free(&q->tx, q->tx.size) == q->tx.size;
}

/* Makes the kernel send what is on the TX ring, when it asked for a wake-up. */
static void kick(struct ferryd_xq *q)
{
	struct ferryd_stats *st = &q->w->st;

	q->kick_due = false;
	for (int tries = 0; tries < KICK_TRIES && !tx_ring_empty(q); tries++) {
		if (!xsk_ring_prod__needs_wakeup(&q->tx))
			return;
		FERRYD_STAT_INC(st, kicks);
		if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			continue;
		/* EAGAIN: the kernel's per-call budget ran out, or completions are full */
		if (errno == EAGAIN || errno == EBUSY || errno == ENOBUFS || errno == EINTR) {
			reap(q);
			continue;
		}
		/* Counted always, logged at 1, 2, 4, 8, ... failures: a link going
		 * down must not flood the log with one line per kick. */
		FERRYD_STAT_INC(st, kick_errors);
		if (!(st->kick_errors & (st->kick_errors - 1)))
			ferryd_log(LOG_WARNING, "queue %u: TX wake-up: %s (%llu failures so far)", q->id, strerror(errno),
				   (unsigned long long)st->kick_errors);
		return;
	}
}

/* ---- TX ------------------------------------------------------------------------- */

/* Moves what the backlog holds onto the TX ring, as far as there is room. */
static void backlog_to_ring(struct ferryd_xq *q)
{
	uint32_t n = q->bl_n, idx;

	if (!n)
		return;
	if (xsk_prod_nb_free(&q->tx, n) < n)
		n = xsk_prod_nb_free(&q->tx, n);
	if (!n || xsk_ring_prod__reserve(&q->tx, n, &idx) != n)
		return;
	for (uint32_t i = 0; i < n; i++) {
		*xsk_ring_prod__tx_desc(&q->tx, idx + i) = q->backlog[q->bl_head];
		q->bl_head = (q->bl_head + 1) % q->bl_cap;
	}
	q->bl_n -= n;
	xsk_ring_prod__submit(&q->tx, n);
	q->kick_due = true;
}

bool ferryd_xq_tx(struct ferryd_xq *q, uint32_t fi, uint32_t off, uint32_t len)
{
	struct xdp_desc d = { .addr = ferryd_umem_addr(&q->umem, fi) + off, .len = len, .options = 0 };
	uint32_t idx;

	if (!q->bl_n && xsk_ring_prod__reserve(&q->tx, 1, &idx) == 1) {
		*xsk_ring_prod__tx_desc(&q->tx, idx) = d;
		xsk_ring_prod__submit(&q->tx, 1);
		q->kick_due = true;
		return true;
	}
	if (q->bl_n == q->bl_cap) {
		ferryd_umem_put(&q->umem, fi);
		return false;
	}
	q->backlog[(q->bl_head + q->bl_n) % q->bl_cap] = d;
	q->bl_n++;
	FERRYD_STAT_INC(&q->w->st, tx_ring_full);
	return true;
}

void ferryd_xq_flush(struct ferryd_xq *q)
{
	reap(q);
	if (q->bl_n) {
		if (!tx_ring_empty(q))
			kick(q); /* makes room */
		reap(q);
		backlog_to_ring(q);
	}
	if (q->kick_due || !tx_ring_empty(q))
		kick(q);
	publish_frames(q);
}

bool ferryd_xq_tx_idle(struct ferryd_xq *q)
{
	return !q->bl_n && !q->umem.n_tx;
}

/* ---- RX ------------------------------------------------------------------------- */

uint32_t ferryd_xq_rx_batch(struct ferryd_xq *q)
{
	struct ferryd_worker *w = q->w;
	struct ferryd_umem *u = &q->umem;
	struct ferryd_stats *st = &w->st;
	uint32_t idx, n = xsk_ring_cons__peek(&q->rx, w->dp->cfg.batch, &idx);
	unsigned int k = 0, i, j;
	uint64_t bytes = 0;

	if (!n)
		return 0;
	for (i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + i);
		uint64_t addr = d->addr;
		uint32_t len = d->len, fi = ferryd_umem_frame(u, addr);
		struct ferryd_packet pkt;
		struct ferry_iobuf *b;
		int s;

		if (fi == UINT32_MAX || u->state[fi] != FERRYD_FRAME_KERNEL) {
			/* a frame we never gave the kernel: not ours to recycle */
			if (!st->bad_desc)
				ferryd_log(LOG_ERR, "queue %u: RX descriptor for frame address %#llx not in the kernel", q->id,
					   (unsigned long long)addr);
			FERRYD_STAT_INC(st, bad_desc);
			FERRYD_STAT_INC(st, rx_bad_header);
			continue;
		}
		ferryd_umem_to_user(u, fi);
		if ((addr & (u->frame_size - 1)) + len > u->frame_size ||
		    ferryd_packet_parse(u->area + addr, len, w->ls->ifindex, &pkt)) {
			FERRYD_STAT_INC(st, rx_bad_header);
			ferryd_umem_put(u, fi);
			continue;
		}
		s = ferryd_svc_table_find(w->svcs, &pkt.dst);
		if (s < 0 || !w->svcs->by_id[s].svc->cb) {
			FERRYD_STAT_INC(st, rx_no_service);
			ferryd_umem_put(u, fi);
			continue;
		}
		b = &u->iob[fi];
		b->data = u->area + addr;
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
		bytes += pkt.payload_len;
		k++;
	}
	xsk_ring_cons__release(&q->rx, n);
	refill(q); /* before the callbacks run: the kernel keeps receiving meanwhile */
	if (!k)
		return n;
	FERRYD_STAT_ADD(q, rx_packets, k);
	FERRYD_STAT_INC(q, rx_batches);
	FERRYD_STAT_ADD(st, rx_packets, k);
	FERRYD_STAT_ADD(st, rx_bytes, bytes);
	FERRYD_STAT_INC(st, rx_batches);

	w->cur_q = q;
	for (i = 0; i < k; i = j) {
		for (j = i + 1; j < k && q->svc_of[j] == q->svc_of[i]; j++)
			;
		ferryd_worker_deliver(w, q->svc_of[i], q->bufs + i, q->srcs + i, j - i);
	}
	w->cur_q = NULL;

	for (i = 0; i < k; i++) {
		uint32_t fi = ferryd_umem_iobuf_frame(u, q->orig[i]);

		if (q->bufs[i] == q->orig[i] || u->state[fi] == FERRYD_FRAME_USER_RELEASED)
			ferryd_umem_put(u, fi);
		else
			u->state[fi] = FERRYD_FRAME_KEPT; /* still counted in n_user */
	}
	refill(q);
	return n;
}

void ferryd_xq_release(struct ferryd_xq *q, uint32_t fi)
{
	struct ferryd_umem *u = &q->umem;

	if (u->state[fi] == FERRYD_FRAME_USER) {
		/* kept and released within one callback: its batch frees it when the callback returns */
		u->state[fi] = FERRYD_FRAME_USER_RELEASED;
		return;
	}
	ferryd_umem_put(u, fi);
	refill(q);
	publish_frames(q);
}

static void on_ready(void *user, uint32_t events)
{
	struct ferryd_xq *q = user;

	(void)events;
	reap(q);
	for (int round = 0; round < RX_ROUNDS; round++)
		if (!ferryd_xq_rx_batch(q))
			break;
	refill(q);
	/* the replies of every batch above in one wake-up */
	ferryd_xq_flush(q);
}

void ferryd_xq_drain_rx(struct ferryd_xq *q)
{
	/* Out of the XSKMAP a queue receives nothing new, so this ends. */
	for (uint32_t round = 0; round <= q->umem.nframes / q->w->dp->cfg.batch; round++)
		if (!ferryd_xq_rx_batch(q))
			break;
	publish_frames(q);
}

/* ---- life ------------------------------------------------------------------------- */

static void set_busy_poll(struct ferryd_xq *q, unsigned int budget)
{
	int one = 1, usec = BUSY_POLL_USEC, b = (int)budget;

	if (setsockopt(q->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) ||
	    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof(usec)) ||
	    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &b, sizeof(b)))
		ferryd_log(LOG_WARNING, "queue %u: busy polling refused (%s); running without it", q->id,
			   strerror(errno));
}

/* One attempt at UMEM + socket with the given bind mode (XDP_ZEROCOPY or XDP_COPY). 0 or -errno. */
static int open_socket(struct ferryd_xq *q, const char *ifname, uint16_t mode)
{
	uint32_t ring = pow2_at_least(q->umem.nframes);
	struct xsk_umem_config ucfg = {
		.fill_size = ring,
		.comp_size = ring,
		.frame_size = q->umem.frame_size,
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

	err = xsk_umem__create(&q->xumem, q->umem.area, q->umem.area_len, &q->fill, &q->comp, &ucfg);
	if (err) {
		q->xumem = NULL;
		return err < 0 ? err : -err;
	}
	err = xsk_socket__create(&q->xsk, ifname, q->id, q->xumem, &q->rx, &q->tx, &scfg);
	if (err) {
		q->xsk = NULL;
		xsk_umem__delete(q->xumem);
		q->xumem = NULL;
		return err < 0 ? err : -err;
	}
	return 0;
}

/* The interface's receive queues as the driver reports them (ETHTOOL_GCHANNELS), or 0 if it does not say. */
unsigned int ferryd_iface_rx_queues(const char *ifname)
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

int ferryd_xq_open(struct ferryd_xq *q, struct ferryd_worker *w, unsigned int id, const struct ferryd_xq_config *c,
		   char *zc_note, size_t notelen, char *why, size_t whylen)
{
	struct xdp_options opts;
	socklen_t optlen = sizeof(opts);
	uint32_t reserve;
	char reason[160];
	int err;

	memset(q, 0, sizeof(*q));
	q->w = w;
	q->id = id;
	q->fd = -1;
	err = ferryd_umem_init(&q->umem, c->frames, c->frame_size, reason, sizeof(reason));
	if (err) {
		snprintf(why, whylen, "queue %u: %s", id, reason);
		return err;
	}
	/* Out of the fill ring, for sends: what two readinesses of replies take
	 * (at most a quarter of the frames, at least a batch). */
	reserve = c->frames / 4 > 2 * RX_ROUNDS * c->batch ? 2 * RX_ROUNDS * c->batch : c->frames / 4;
	if (reserve < c->batch)
		reserve = c->batch;
	q->fill_target = reserve < c->frames ? c->frames - reserve : c->frames / 2;
	q->bl_cap = c->frames; /* every frame could wait there, so the backlog never refuses one we built */
	q->backlog = calloc(q->bl_cap, sizeof(*q->backlog));
	q->bufs = calloc(c->batch, sizeof(*q->bufs));
	q->orig = calloc(c->batch, sizeof(*q->orig));
	q->srcs = calloc(c->batch, sizeof(*q->srcs));
	q->svc_of = calloc(c->batch, sizeof(*q->svc_of));
	if (!q->backlog || !q->bufs || !q->orig || !q->srcs || !q->svc_of) {
		snprintf(why, whylen, "out of memory");
		ferryd_xq_close(q);
		return -ENOMEM;
	}

	if (c->zero_copy == FERRYD_ZC_OFF) {
		err = open_socket(q, c->ifname, XDP_COPY);
	} else {
		err = open_socket(q, c->ifname, XDP_ZEROCOPY);
		if (err && c->zero_copy == FERRYD_ZC_AUTO) {
			if (!zc_note[0])
				snprintf(zc_note, notelen, "zero-copy refused: %s", strerror(-err));
			err = open_socket(q, c->ifname, XDP_COPY);
		}
	}
	if (err) {
		unsigned int nrx = err == -EINVAL ? ferryd_iface_rx_queues(c->ifname) : 0;
		char hint[96] = "";

		if (err == -EOPNOTSUPP && c->zero_copy == FERRYD_ZC_ON)
			snprintf(hint, sizeof(hint), " (the driver has no zero-copy support)");
		else if (nrx && id >= nrx) /* the kernel binds queues below the interface's count only */
			snprintf(hint, sizeof(hint), ": %s has %u receive queue%s, so at most %u queue%s", c->ifname, nrx,
				 nrx == 1 ? "" : "s", nrx, nrx == 1 ? "" : "s");
		snprintf(why, whylen, "AF_XDP socket on %s queue %u (%s): %s%s", c->ifname, id,
			 c->zero_copy == FERRYD_ZC_ON	 ? "zero-copy required"
			 : c->zero_copy == FERRYD_ZC_OFF ? "copy mode"
							 : "zero-copy, then copy mode",
			 strerror(-err), hint);
		ferryd_xq_close(q);
		return err;
	}
	q->fd = xsk_socket__fd(q->xsk);
	if (getsockopt(q->fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0)
		q->zero_copy = opts.flags & XDP_OPTIONS_ZEROCOPY;
	if (c->busy_poll)
		set_busy_poll(q, c->batch);
	refill(q);
	publish_frames(q);
	return 0;
}

int ferryd_xq_start(struct ferryd_xq *q, char *why, size_t whylen)
{
	int err = ferryd_prog_set_socket(q->w->dp->prog, q->id, q->fd);

	if (err) {
		snprintf(why, whylen, "queue %u: registering the AF_XDP socket with the XDP program: %s", q->id,
			 strerror(-err));
		return err;
	}
	q->in_map = true;
	err = ferry_reactor_add(q->w->r, q->fd, EPOLLIN, on_ready, q, &q->watch);
	if (err) {
		q->watch = NULL;
		snprintf(why, whylen, "queue %u: watching the AF_XDP socket: %s", q->id, strerror(-err));
		return err;
	}
	return 0;
}

void ferryd_xq_stop(struct ferryd_xq *q)
{
	if (q->watch) {
		ferry_reactor_del(q->w->r, q->watch);
		q->watch = NULL;
	}
	if (q->in_map) {
		ferryd_prog_set_socket(q->w->dp->prog, q->id, -1);
		q->in_map = false;
	}
}

bool ferryd_xq_kernel_stats(const struct ferryd_xq *q, struct xdp_statistics *out, socklen_t *len)
{
	*len = sizeof(*out);
	memset(out, 0, sizeof(*out));
	return q->fd >= 0 && !getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, out, len);
}

void ferryd_xq_close(struct ferryd_xq *q)
{
	ferryd_xq_stop(q);
	if (q->xsk)
		xsk_socket__delete(q->xsk);
	if (q->xumem)
		xsk_umem__delete(q->xumem);
	ferryd_umem_destroy(&q->umem);
	free(q->backlog);
	free(q->bufs);
	free(q->orig);
	free(q->srcs);
	free(q->svc_of);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}
